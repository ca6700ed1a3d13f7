//! Checks of a container's settings that must fail `create` (and `update`) with a 400, not
//! its start with a 500: published ports and the CPU limits, worded as dockerd words them
//! (`verifyContainerSettings`, `verifyPlatformContainerResources`).
//!
//! ```text
//!  create / update ─► fit_resources (drop what the host can't enforce, with warnings)
//!                  ─► resources(h, &HostCpus::probe())   NanoCpus, CFS period/quota, cpuset
//!  create          ─► port_bindings(h)                    PortBindings keys and HostPorts
//! ```
//! Everything here is pure except `HostCpus::probe`, which reads what the host offers.

use super::model::HostConfig;
use berth_api::backend::Filters;
use serde_json::Value;

use super::ContainerError;

/// What the host offers the CPU limits (Docker's `sysinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCpus {
    /// CPUs this process may run on (Go's `runtime.NumCPU`).
    pub count: usize,
    /// The cpuset list containers can be given, e.g. `0-1`.
    pub cpus: String,
    /// The memory nodes containers can be given, e.g. `0`.
    pub mems: String,
}

impl HostCpus {
    pub fn probe() -> HostCpus {
        let count = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|i| set.is_set(*i).unwrap_or(false))
                    .count()
            })
            .unwrap_or(0)
            .max(1);
        let first = |paths: &[&str], fallback: &str| {
            paths
                .iter()
                .find_map(|p| {
                    std::fs::read_to_string(p)
                        .ok()
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                })
                .unwrap_or_else(|| fallback.to_owned())
        };
        HostCpus {
            count,
            cpus: first(
                &[
                    "/sys/fs/cgroup/cpuset.cpus.effective",
                    "/sys/fs/cgroup/cpuset/cpuset.cpus",
                    "/sys/devices/system/cpu/online",
                ],
                &format!("0-{}", count - 1),
            ),
            mems: first(
                &[
                    "/sys/fs/cgroup/cpuset.mems.effective",
                    "/sys/fs/cgroup/cpuset/cpuset.mems",
                    "/sys/devices/system/node/online",
                ],
                "0",
            ),
        }
    }
}

/// What `create` checks beyond the spec: ports, and the CPU limits against this host.
pub fn create_settings(h: &HostConfig) -> Result<(), ContainerError> {
    port_bindings(h)?;
    resources(h, &HostCpus::probe())
}

fn invalid(m: String) -> ContainerError {
    ContainerError::Invalid(m)
}

/// The CPU limits, after `fit_resources` dropped what the host can't enforce.
pub fn resources(h: &HostConfig, host: &HostCpus) -> Result<(), ContainerError> {
    // Docker sets no lower bound and lets the kernel refuse a quota under 1 ms at start;
    // 0.01 CPU (its message's lower end) is refused here instead.
    if h.nano_cpus != 0
        && (h.nano_cpus < 10_000_000 || h.nano_cpus > host.count as i64 * 1_000_000_000)
    {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = host.count
        )));
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ));
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
        ));
    }
    cpuset(&h.cpuset_cpus, &host.cpus, "cpuset cpus", "CPUs")?;
    cpuset(&h.cpuset_mems, &host.mems, "cpuset mems", "memory nodes")?;
    Ok(())
}

/// One cpuset list: well formed, within Docker's bound, and all of it available.
fn cpuset(want: &str, available: &str, what: &str, items: &str) -> Result<(), ContainerError> {
    if want.is_empty() {
        return Ok(());
    }
    let have = parse_list(available, u32::MAX).unwrap_or_default();
    // Linux's usual maximum number of CPUs, or more when the host has more.
    let max = have.iter().map(|r| r.1).max().unwrap_or(0).max(8192);
    let ranges = parse_list(want, max)
        .map_err(|why| invalid(format!("Invalid value {want} for {what}: {why}")))?;
    let inside = |(lo, hi): (u32, u32)| {
        // `have` is sorted and merged, so a wanted range is available only inside one of them.
        have.iter().any(|&(a, b)| a <= lo && hi <= b)
    };
    if !ranges.into_iter().all(inside) {
        return Err(invalid(format!(
            "Requested {items} are not available - requested {want}, available: {available}"
        )));
    }
    Ok(())
}

/// A cgroup list (`0-3,8,10-11`) as sorted, merged inclusive ranges; a value above
/// `maximum` is refused (Docker's `ParseUintListMaximum`, without expanding the ranges).
pub fn parse_list(val: &str, maximum: u32) -> Result<Vec<(u32, u32)>, String> {
    let bad = || format!("invalid format: {val}");
    let mut out = Vec::new();
    for part in val.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<u32, String> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            match s.parse::<u32>() {
                Ok(n) if n <= maximum => Ok(n),
                _ => Err(format!("value of out range, maximum is {maximum}")),
            }
        };
        let (lo, hi) = (num(a)?, num(b)?);
        if hi < lo {
            return Err(bad());
        }
        out.push((lo, hi));
    }
    out.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

/// `PortBindings`: every container port and host port a valid port or range, as dockerd's
/// `nat.ParsePort`/`nat.NewPort` check them.
pub fn port_bindings(h: &HostConfig) -> Result<(), ContainerError> {
    let Some(bindings) = &h.port_bindings else {
        return Ok(());
    };
    let Value::Object(map) = bindings else {
        return Err(invalid("invalid PortBindings: expected an object".into()));
    };
    let spec = |p: &str| invalid(format!("invalid port specification: {p:?}"));
    for (key, list) in map {
        let port = key.split_once('/').map_or(key.as_str(), |(p, _)| p);
        // One port per key (`nat.ParsePort`); ranges are the host side's.
        if port.contains('-') || port_range(port).is_none() {
            return Err(spec(port));
        }
        let entries: &[Value] = match list {
            Value::Array(a) => a,
            _ => &[],
        };
        for e in entries {
            let hp = e.get("HostPort").and_then(Value::as_str).unwrap_or("");
            if !hp.is_empty() && port_range(hp).is_none() {
                return Err(spec(hp));
            }
        }
    }
    // What start will ask of them besides (protocol, host address), checked now too.
    crate::network::ports::bindings(Some(bindings), None, false)?;
    Ok(())
}

/// `80` or `8000-8010` (0 allowed, as in Docker: "any port").
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let num = |x: &str| {
        x.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| x.parse::<u16>().ok())
            .flatten()
    };
    let (a, b) = (num(a)?, num(b)?);
    (a <= b).then_some((a, b))
}

/// The filters `GET /containers/json` understands (dockerd's `acceptedPsFilterTags`).
const PS_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// Refuses a filter key `ps` doesn't know, and a health it doesn't, as dockerd does.
pub fn ps_filters(filters: &Filters) -> Result<(), ContainerError> {
    if let Some(k) = filters.keys().find(|k| !PS_FILTERS.contains(&k.as_str())) {
        return Err(invalid(format!("invalid filter '{k}'")));
    }
    let known = |v: &str| v == "none" || super::health::HealthStatus::parse(v).is_some();
    match filters
        .get("health")
        .into_iter()
        .flatten()
        .find(|v| !known(v))
    {
        Some(v) => Err(invalid(format!(
            "Unrecognised filter value for health: {v}"
        ))),
        None => Ok(()),
    }
}

/// A restart policy as dockerd 20.10 checks it (same messages).
pub(crate) fn validate_restart_policy(
    p: &super::model::RestartPolicy,
) -> Result<(), ContainerError> {
    match p.name.as_str() {
        "" => Ok(()),
        "no" | "always" | "unless-stopped" if p.maximum_retry_count == 0 => Ok(()),
        "no" | "always" | "unless-stopped" => Err(ContainerError::Invalid(format!(
            "maximum retry count cannot be used with restart policy '{}'",
            p.name
        ))),
        "on-failure" if p.maximum_retry_count >= 0 => Ok(()),
        "on-failure" => Err(ContainerError::Invalid(
            "maximum retry count cannot be negative".into(),
        )),
        other => Err(ContainerError::Invalid(format!(
            "invalid restart policy '{other}': expected no, always, unless-stopped or on-failure"
        ))),
    }
}

pub(crate) fn validate_restart(h: &HostConfig) -> Result<(), ContainerError> {
    let p = &h.restart_policy;
    validate_restart_policy(p)?;
    if h.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(ContainerError::Invalid(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host() -> HostCpus {
        HostCpus {
            count: 2,
            cpus: "0-1".into(),
            mems: "0".into(),
        }
    }

    fn msg(r: Result<(), ContainerError>) -> String {
        match r {
            Err(ContainerError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn lists_parse_merge_and_respect_the_maximum() {
        assert_eq!(
            parse_list("0-3,8,10-11", 8192),
            Ok(vec![(0, 3), (8, 8), (10, 11)])
        );
        assert_eq!(parse_list("3,2,1", 8192), Ok(vec![(1, 3)]));
        assert_eq!(parse_list("0-0,0,1-7", 8192), Ok(vec![(0, 7)]));
        assert_eq!(
            parse_list("0-99999999", 8192),
            Err("value of out range, maximum is 8192".into())
        );
        for bad in ["", "a", "1-", "-1", "3-1", "1,,2", "+1", " 1"] {
            assert!(parse_list(bad, 8192).is_err(), "{bad:?}");
        }
        // Too big for u32 at all: out of range, not a panic.
        assert!(parse_list("99999999999", 8192).is_err());
    }

    #[test]
    fn cpusets_must_be_valid_and_available() {
        let h = |cpus: &str, mems: &str| HostConfig {
            cpuset_cpus: cpus.into(),
            cpuset_mems: mems.into(),
            ..Default::default()
        };
        assert!(resources(&h("0-1", "0"), &host()).is_ok());
        assert!(resources(&h("1", ""), &host()).is_ok());
        assert_eq!(
            msg(resources(&h("0-99999999", ""), &host())),
            "Invalid value 0-99999999 for cpuset cpus: value of out range, maximum is 8192"
        );
        assert_eq!(
            msg(resources(&h("0-4", ""), &host())),
            "Requested CPUs are not available - requested 0-4, available: 0-1"
        );
        assert_eq!(
            msg(resources(&h("", "x"), &host())),
            "Invalid value x for cpuset mems: invalid format: x"
        );
        assert_eq!(
            msg(resources(&h("", "1"), &host())),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
        // Holes in what the host offers count.
        let gappy = HostCpus {
            cpus: "0-1,4-5".into(),
            ..host()
        };
        assert!(resources(&h("4-5,0", ""), &gappy).is_ok());
        assert!(resources(&h("1-4", ""), &gappy).is_err());
    }

    #[test]
    fn nano_cpus_and_cfs_bounds() {
        let n = |v: i64| HostConfig {
            nano_cpus: v,
            ..Default::default()
        };
        let range = "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        for bad in [-1, 1, 9_999_999, 2_000_000_001, i64::MAX, i64::MIN] {
            assert_eq!(msg(resources(&n(bad), &host())), range, "{bad}");
        }
        for ok in [0, 10_000_000, 500_000_000, 2_000_000_000] {
            assert!(resources(&n(ok), &host()).is_ok(), "{ok}");
        }
        let cfs = |period: i64, quota: i64| HostConfig {
            cpu_period: period,
            cpu_quota: quota,
            ..Default::default()
        };
        assert!(resources(&cfs(100_000, 50_000), &host()).is_ok());
        assert!(resources(&cfs(0, -1), &host()).is_ok());
        assert!(msg(resources(&cfs(999, 0), &host())).starts_with("CPU cfs period"));
        assert!(msg(resources(&cfs(1_000_001, 0), &host())).starts_with("CPU cfs period"));
        assert!(msg(resources(&cfs(0, 999), &host())).starts_with("CPU cfs quota"));
    }

    #[test]
    fn port_bindings_like_dockerd() {
        let pb = |v: Value| HostConfig {
            port_bindings: Some(v),
            ..Default::default()
        };
        assert!(port_bindings(&pb(json!({"80/tcp": [{"HostPort": "8080"}]}))).is_ok());
        assert!(port_bindings(&pb(json!({"80/tcp": [{"HostPort": ""}]}))).is_ok());
        assert!(port_bindings(&pb(json!({"80": null}))).is_ok());
        assert!(port_bindings(&pb(json!({"81/udp": [{"HostPort": "9000-9001"}]}))).is_ok());
        assert_eq!(
            msg(port_bindings(&pb(json!({"80-81/tcp": []})))),
            "invalid port specification: \"80-81\""
        );
        assert_eq!(
            msg(port_bindings(&pb(
                json!({"80/tcp": [{"HostPort": "99999"}]})
            ))),
            "invalid port specification: \"99999\""
        );
        assert_eq!(
            msg(port_bindings(&pb(json!({"99999/tcp": []})))),
            "invalid port specification: \"99999\""
        );
        assert_eq!(
            msg(port_bindings(&pb(json!({"80/xyz": []})))),
            "invalid proto: xyz"
        );
        assert_eq!(
            msg(port_bindings(&pb(
                json!({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "80"}]})
            ))),
            "invalid IP address: 1.2.3"
        );
        for bad in ["-1", "1-", "9-8", "x", "+80", "80 "] {
            assert!(
                port_bindings(&pb(json!({"80/tcp": [{"HostPort": bad}]}))).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ps_filter_keys() {
        let f = |k: &str| Filters::from([(k.to_owned(), vec!["x".to_owned()])]);
        assert!(ps_filters(&f("status")).is_ok());
        assert!(ps_filters(&f("label")).is_ok());
        assert_eq!(msg(ps_filters(&f("foo"))), "invalid filter 'foo'");
        let health = |v: &str| Filters::from([("health".to_owned(), vec![v.to_owned()])]);
        for ok in ["starting", "healthy", "unhealthy", "none"] {
            assert!(ps_filters(&health(ok)).is_ok(), "{ok}");
        }
        assert_eq!(
            msg(ps_filters(&health("sick"))),
            "Unrecognised filter value for health: sick"
        );
    }

    #[test]
    fn restart_policies_validate() {
        let mut h = HostConfig::default();
        h.restart_policy.name = "on-failure".into();
        h.restart_policy.maximum_retry_count = 3;
        assert!(validate_restart(&h).is_ok());
        h.auto_remove = true;
        assert!(validate_restart(&h).is_err());
        h.auto_remove = false;
        h.restart_policy.name = "sometimes".into();
        assert!(validate_restart(&h).is_err_and(|e| e.to_string().contains("sometimes")));
    }
}
