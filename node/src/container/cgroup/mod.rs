//! What berthd reads and writes in a container's cgroup directly: stats, top, pause,
//! update, the OOM flag, and removal. Works on cgroup v1 (this machine's hybrid layout) and v2.
//!
//! ```text
//!  mod.rs      where a container's cgroup is (both layouts), what the host supports,
//!              Docker's fit of limits to it, freeze, kill, OOM flag, removal
//!  v1.rs       per-controller hierarchies: limits and readings in v1 files
//!  v2.rs       the unified hierarchy: limits and readings in v2 files
//!  stats.rs    `docker stats`, `docker top`
//!  control.rs  `docker pause`, `unpause`, `update`
//! ```
//! Which layout applies is decided here, once per call ([`is_v2`]); `v1` and `v2` never ask.

mod control;
mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::model::HostConfig;
use super::{ContainerError, Record};
use crate::config::DaemonConfig;

const ROOT: &str = "/sys/fs/cgroup";

pub fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// Which limits this host's cgroups can enforce (Docker's `sysinfo`): on v2, the
/// controllers the root cgroup offers; on v1, the mounted hierarchies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Support {
    pub v2: bool,
    pub memory: bool,
    pub swap: bool,
    pub oom_kill_disable: bool,
    pub cpu: bool,
    pub cpuset: bool,
    pub pids: bool,
    pub io: bool,
}

impl Support {
    #[cfg(test)]
    fn with_swap(mut self, swap: bool) -> Self {
        self.swap = swap;
        self
    }
}

pub fn support() -> Support {
    support_at(Path::new(ROOT))
}

fn support_at(root: &Path) -> Support {
    if let Ok(list) = std::fs::read_to_string(root.join("cgroup.controllers")) {
        let has = |c: &str| list.split_whitespace().any(|x| x == c);
        return Support {
            v2: true,
            memory: has("memory"),
            swap: has("memory"),
            oom_kill_disable: false,
            cpu: has("cpu"),
            cpuset: has("cpuset"),
            pids: has("pids"),
            io: has("io"),
        };
    }
    let has = |f: &str| root.join(f).exists();
    Support {
        v2: false,
        memory: has("memory/memory.limit_in_bytes"),
        swap: has("memory/memory.memsw.limit_in_bytes"),
        oom_kill_disable: has("memory/memory.oom_control"),
        cpu: has("cpu/cpu.cfs_quota_us"),
        cpuset: has("cpuset/cpuset.cpus"),
        pids: has("pids/cgroup.procs"),
        io: has("blkio/cgroup.procs"),
    }
}

/// Docker's `verifyPlatformContainerResources` for the controllers: a limit whose
/// controller is missing is dropped with Docker's warning (the container runs without it),
/// except `NanoCpus`, which is refused. Returns the warnings.
pub fn fit_resources(h: &mut HostConfig, s: Support) -> Result<Vec<String>, ContainerError> {
    let mut w = Vec::new();
    if h.memory > 0 && !s.memory {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".to_owned());
        h.memory = 0;
        h.memory_swap = -1;
    }
    if h.memory > 0 && h.memory_swap != -1 && !s.swap {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".to_owned());
        h.memory_swap = -1;
    }
    if h.memory_reservation > 0 && !s.memory {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".to_owned());
        h.memory_reservation = 0;
    }
    if h.oom_kill_disable.is_some() && !s.oom_kill_disable {
        if h.oom_kill_disable == Some(true) {
            w.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".to_owned(),
            );
        }
        h.oom_kill_disable = None;
    }
    if h.pids_limit.is_some() && !s.pids {
        if h.pids_limit.is_some_and(|p| p > 0) {
            w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".to_owned());
        }
        h.pids_limit = None;
    }
    if h.nano_cpus > 0 && !s.cpu {
        return Err(ContainerError::Invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted".into()));
    }
    if h.cpu_shares > 0 && !s.cpu {
        w.push("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.".to_owned());
        h.cpu_shares = 0;
    }
    if (h.cpu_period != 0 || h.cpu_quota != 0) && !s.cpu {
        w.push(
            "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded."
                .to_owned(),
        );
        h.cpu_period = 0;
        h.cpu_quota = 0;
    }
    if (!h.cpuset_cpus.is_empty() || !h.cpuset_mems.is_empty()) && !s.cpuset {
        w.push(
            "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
                .to_owned(),
        );
        h.cpuset_cpus.clear();
        h.cpuset_mems.clear();
    }
    Ok(w)
}

/// Docker's cgroup namespace default: private on v2, the host's on v1. `Invalid` for
/// anything but "", "private" and "host".
pub fn cgroupns_mode(requested: &str, v2: bool) -> Result<String, ContainerError> {
    match requested {
        "" if v2 => Ok("private".into()),
        "" => Ok("host".into()),
        "private" | "host" => Ok(requested.into()),
        other => Err(ContainerError::Invalid(format!(
            "invalid cgroup namespace mode: {other}"
        ))),
    }
}

/// Starts the kernel's cgroup-migration grace period ahead of the runtime.
///
/// Moving a process into a cgroup takes the kernel's threadgroup lock for writing, and that
/// waits for an RCU grace period unless one has just passed: ~8–16 ms on this machine's kernel,
/// more than the rest of libcontainer's create. The runtime pays it when it moves the new
/// container's init, about 10 ms into a start. Here a short-lived thread of berthd writes its
/// own thread id into the v1 `tasks` file of the cgroup it is already in — no membership
/// changes — so the grace period runs while the shim and the runtime start up, and the
/// runtime's own move finds it passed. Best effort: any failure just means no head start.
/// (Not done on v2, where the runtime can create the init in its cgroup directly.)
pub fn prime_attach() {
    if is_v2() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(|| {
            let Ok(own) = std::fs::read_to_string("/proc/thread-self/cgroup") else {
                return;
            };
            let Some(path) = own.lines().find_map(pids_path) else {
                return;
            };
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let tasks = PathBuf::from("/sys/fs/cgroup/pids")
                .join(path.trim_start_matches('/'))
                .join("tasks");
            let _ = std::fs::write(tasks, tid.to_string());
        });
}

/// The path in a `/proc/*/cgroup` line of the v1 pids hierarchy: `8:pids:/a/b` → `/a/b`.
fn pids_path(line: &str) -> Option<&str> {
    let mut parts = line.splitn(3, ':');
    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
    controllers.split(',').any(|c| c == "pids").then_some(path)
}

fn rel(cfg: &DaemonConfig, r: &Record) -> String {
    let parent = if r.host_config.cgroup_parent.is_empty() {
        &cfg.cgroup_parent
    } else {
        &r.host_config.cgroup_parent
    };
    format!("{}/{}", parent.trim_matches('/'), r.id)
}

/// The directory of `controller` (ignored on v2) for this container.
fn dir(cfg: &DaemonConfig, r: &Record, controller: &str) -> PathBuf {
    dir_at(Path::new(ROOT), is_v2(), &rel(cfg, r), controller)
}

fn dir_at(root: &Path, v2: bool, rel: &str, controller: &str) -> PathBuf {
    if v2 {
        root.join(rel)
    } else {
        root.join(controller).join(rel)
    }
}

fn read_u64(p: PathBuf) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn read_kv(p: PathBuf) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|n| (k.to_owned(), json!(n)))
        })
        .collect()
}

/// Writes a cgroup file, which must exist (a missing one is a missing controller).
fn write(p: PathBuf, v: &str) -> Result<(), ContainerError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .and_then(|mut f| f.write_all(v.as_bytes()))
        .map_err(|e| ContainerError::io("write", &p, e))
}

pub fn oom_killed(cfg: &DaemonConfig, r: &Record) -> bool {
    let p = if is_v2() {
        dir(cfg, r, "").join("memory.events")
    } else {
        dir(cfg, r, "memory").join("memory.oom_control")
    };
    read_kv(p)
        .get("oom_kill")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        > 0
}

/// Removes the container's cgroup directories (empty once its processes are gone).
pub fn remove(cfg: &DaemonConfig, r: &Record) {
    if is_v2() {
        let _ = std::fs::remove_dir(dir(cfg, r, ""));
        return;
    }
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir(e.path().join(rel(cfg, r)));
        }
    }
}

/// SIGKILLs every process left in the container's cgroup (its shim died, so nothing else
/// would ever reap or report them). On v2 the kernel does it at once (`cgroup.kill`), so
/// nothing forked meanwhile escapes; returns when the cgroup is empty.
pub fn kill_all(cfg: &DaemonConfig, r: &Record) {
    let kill = dir(cfg, r, "").join("cgroup.kill");
    if is_v2() && std::fs::write(&kill, "1").is_ok() {
        let events = dir(cfg, r, "").join("cgroup.events");
        for _ in 0..200 {
            let populated = std::fs::read_to_string(&events)
                .map(|e| e.lines().any(|l| l == "populated 1"))
                .unwrap_or(false);
            if !populated {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        return;
    }
    let _ = freeze(cfg, r, false);
    for pid in pids(cfg, r) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Freezes or thaws the container; returns once the kernel reports it done (v2 freezes
/// asynchronously), like runc.
pub fn freeze(cfg: &DaemonConfig, r: &Record, frozen: bool) -> Result<(), ContainerError> {
    if is_v2() {
        let d = dir(cfg, r, "");
        write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..200 {
            match std::fs::read_to_string(d.join("cgroup.events")) {
                Ok(e) if !e.lines().any(|l| l == want) => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => return Ok(()),
            }
        }
        Err(ContainerError::Runtime(format!(
            "cgroup {} did not reach \"{want}\"",
            d.display()
        )))
    } else {
        write(
            dir(cfg, r, "freezer").join("freezer.state"),
            if frozen { "FROZEN" } else { "THAWED" },
        )
    }
}

fn pids(cfg: &DaemonConfig, r: &Record) -> Vec<i64> {
    let p = dir(cfg, r, "pids").join("cgroup.procs");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub(super) fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

/// Writes the `linux.resources` of a spec into the cgroup `rel` under `root` (a v2
/// hierarchy, or the v1 controller hierarchies). Only what `res` sets is written, except
/// `unlimit_pids`, which lifts the pids limit (`--pids-limit 0|-1` on update).
pub(super) fn apply_resources(
    root: &Path,
    v2: bool,
    rel: &str,
    res: &Value,
    unlimit_pids: bool,
) -> Result<(), ContainerError> {
    if v2 {
        return v2::apply(&dir_at(root, true, rel, ""), res, unlimit_pids);
    }
    v1::apply(|c| dir_at(root, false, rel, c), res, unlimit_pids)
}

#[cfg(test)]
mod tests {
    use super::stats::parse_ps;
    use super::v2::shares_to_weight;
    use super::*;

    /// A cgroup directory stood for by a temp dir: the files `names`, empty.
    fn fake_cgroup(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for n in names {
            std::fs::write(dir.join(n), "").expect("file");
        }
    }

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn limited() -> HostConfig {
        HostConfig {
            memory: 64 << 20,
            memory_swap: 96 << 20,
            memory_reservation: 32 << 20,
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            pids_limit: Some(50),
            ..Default::default()
        }
    }

    fn resources(h: &HostConfig) -> Value {
        let doc = crate::container::spec::check(&Default::default(), h, 1 << 20).expect("spec");
        doc["linux"]["resources"].clone()
    }

    #[test]
    fn v2_limits_are_written_in_v2_terms() {
        let t = tempfile::tempdir().expect("tmp");
        let d = t.path().join("berth/abc");
        fake_cgroup(
            &d,
            &[
                "memory.max",
                "memory.swap.max",
                "memory.low",
                "cpu.max",
                "cpu.weight",
                "cpuset.cpus",
                "cpuset.mems",
                "pids.max",
            ],
        );
        let res = resources(&limited());
        // The spec carries Docker's (v1-shaped) values...
        assert_eq!(res["memory"]["swap"], json!(96 << 20));
        assert_eq!(res["cpu"]["quota"], json!(150_000));
        apply_resources(t.path(), true, "berth/abc", &res, false).expect("apply");
        // ...which v2 takes as: swap alone, weight for shares, "quota period".
        assert_eq!(read(d.join("memory.max")), (64 << 20).to_string());
        assert_eq!(read(d.join("memory.swap.max")), (32 << 20).to_string());
        assert_eq!(read(d.join("memory.low")), (32 << 20).to_string());
        assert_eq!(read(d.join("cpu.max")), "150000 100000");
        assert_eq!(read(d.join("cpu.weight")), "20");
        assert_eq!(read(d.join("cpuset.cpus")), "0-1");
        assert_eq!(read(d.join("cpuset.mems")), "0");
        assert_eq!(read(d.join("pids.max")), "50");
        // Unlimited swap, and `--pids-limit -1` on update.
        let h = HostConfig {
            memory: 64 << 20,
            memory_swap: -1,
            pids_limit: Some(-1),
            ..Default::default()
        };
        apply_resources(t.path(), true, "berth/abc", &resources(&h), true).expect("apply");
        assert_eq!(read(d.join("memory.swap.max")), "max");
        assert_eq!(read(d.join("pids.max")), "max");
        // A missing controller file is an error naming it, not a silent success.
        std::fs::remove_file(d.join("pids.max")).expect("rm");
        let e = apply_resources(t.path(), true, "berth/abc", &resources(&limited()), false)
            .expect_err("no pids.max");
        assert!(e.to_string().contains("pids.max"), "{e}");
    }

    #[test]
    fn v1_limits_go_to_their_controllers() {
        let t = tempfile::tempdir().expect("tmp");
        let at = |c: &str| t.path().join(c).join("berth/abc");
        fake_cgroup(
            &at("memory"),
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
            ],
        );
        fake_cgroup(
            &at("cpu"),
            &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
        );
        fake_cgroup(&at("cpuset"), &["cpuset.cpus", "cpuset.mems"]);
        fake_cgroup(&at("pids"), &["pids.max"]);
        apply_resources(t.path(), false, "berth/abc", &resources(&limited()), false)
            .expect("apply");
        assert_eq!(
            read(at("memory").join("memory.limit_in_bytes")),
            (64 << 20).to_string()
        );
        assert_eq!(
            read(at("memory").join("memory.memsw.limit_in_bytes")),
            (96 << 20).to_string()
        );
        assert_eq!(
            read(at("memory").join("memory.soft_limit_in_bytes")),
            (32 << 20).to_string()
        );
        assert_eq!(read(at("cpu").join("cpu.shares")), "512");
        assert_eq!(read(at("cpu").join("cpu.cfs_quota_us")), "150000");
        assert_eq!(read(at("cpu").join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(at("cpuset").join("cpuset.cpus")), "0-1");
        assert_eq!(read(at("pids").join("pids.max")), "50");
    }

    #[test]
    fn shares_map_onto_weights_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn support_comes_from_the_root_controllers() {
        let t = tempfile::tempdir().expect("tmp");
        std::fs::write(
            t.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .expect("w");
        let s = support_at(t.path());
        assert!(s.v2 && s.memory && s.cpu && s.cpuset && s.pids && s.io && !s.oom_kill_disable);
        std::fs::write(t.path().join("cgroup.controllers"), "hugetlb\n").expect("w");
        assert_eq!(
            support_at(t.path()),
            Support {
                v2: true,
                ..Default::default()
            }
        );
        // v1: the mounted hierarchies.
        let t = tempfile::tempdir().expect("tmp");
        fake_cgroup(
            &t.path().join("memory"),
            &["memory.limit_in_bytes", "memory.oom_control"],
        );
        fake_cgroup(&t.path().join("pids"), &["cgroup.procs"]);
        let s = support_at(t.path());
        assert!(
            !s.v2 && s.memory && !s.swap && s.oom_kill_disable && s.pids && !s.cpu && !s.cpuset
        );
    }

    #[test]
    fn missing_controllers_drop_limits_with_dockers_warnings() {
        let all = Support {
            v2: true,
            memory: true,
            swap: true,
            cpu: true,
            cpuset: true,
            pids: true,
            io: true,
            oom_kill_disable: false,
        };
        let mut h = limited();
        assert!(fit_resources(&mut h, all).expect("fit").is_empty());
        assert_eq!(h, limited());
        // None: every limit is dropped, each with its warning; --cpus is refused.
        let none = Support {
            v2: true,
            ..Default::default()
        };
        let mut h = limited();
        let e = fit_resources(&mut h, none).expect_err("nano cpus");
        assert!(e.to_string().contains("NanoCPUs can not be set"), "{e}");
        let mut h = HostConfig {
            nano_cpus: 0,
            cpu_quota: 50_000,
            oom_kill_disable: Some(true),
            ..limited()
        };
        let w = fit_resources(&mut h, none).expect("fit");
        assert_eq!(w.len(), 7, "{w:?}");
        assert!(w[0].starts_with("Your kernel does not support memory limit capabilities"));
        assert!(w.iter().any(|x| x.contains("PIDs limit discarded")));
        assert!(w.iter().any(|x| x.contains("Cpuset discarded")));
        assert!(w.iter().any(|x| x.contains("OomKillDisable discarded")));
        assert_eq!((h.memory, h.memory_swap, h.memory_reservation), (0, -1, 0));
        assert_eq!((h.cpu_shares, h.cpu_quota, h.pids_limit), (0, 0, None));
        assert!(h.cpuset_cpus.is_empty() && h.cpuset_mems.is_empty());
        assert_eq!(resources(&h).get("memory"), None);
        // Memory without swap accounting: limited, swap unlimited.
        let mut h = HostConfig {
            memory: 64 << 20,
            ..Default::default()
        };
        let w = fit_resources(
            &mut h,
            Support {
                memory: true,
                ..all
            }
            .with_swap(false),
        )
        .expect("fit");
        assert_eq!(w.len(), 1);
        assert!(w[0].ends_with("Memory limited without swap."));
        assert_eq!((h.memory, h.memory_swap), (64 << 20, -1));
    }

    #[test]
    fn cgroup_namespace_defaults_follow_the_hierarchy() {
        assert_eq!(cgroupns_mode("", true).expect("v2"), "private");
        assert_eq!(cgroupns_mode("", false).expect("v1"), "host");
        assert_eq!(cgroupns_mode("host", true).expect("host"), "host");
        let e = cgroupns_mode("bogus", true).expect_err("bogus");
        assert_eq!(e.to_string(), "invalid cgroup namespace mode: bogus");
        let private = HostConfig {
            cgroupns_mode: "private".into(),
            ..Default::default()
        };
        let doc =
            crate::container::spec::check(&Default::default(), &private, 1 << 20).expect("spec");
        assert!(doc["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .contains(&json!({"type": "cgroup"})));
        let doc =
            crate::container::spec::check(&Default::default(), &HostConfig::default(), 1 << 20)
                .expect("spec");
        assert!(!doc["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .contains(&json!({"type": "cgroup"})));
    }

    #[test]
    fn pids_line_is_found() {
        assert_eq!(pids_path("8:pids:/user.slice"), Some("/user.slice"));
        assert_eq!(pids_path("4:cpu,pids:/"), Some("/"));
        assert_eq!(pids_path("9:name=systemd:/"), None);
        assert_eq!(pids_path("0::/init.scope"), None);
    }

    #[test]
    fn ps_rows_are_filtered_and_joined() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 100\n";
        let v = parse_ps(out, &[42]).expect("parse");
        assert_eq!(
            v["Processes"],
            json!([[
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 100"
            ]])
        );
        assert!(parse_ps("A B\n", &[]).is_err());
    }
}
