//! What berthd reads and writes in a container's cgroup directly: stats, top, pause,
//! update, the OOM flag, and removal. Works on cgroup v1 (this machine's hybrid layout) and v2.

use std::path::PathBuf;
use std::time::Duration;

use berth_api::models::UpdateBody;
use serde_json::{json, Value};

use super::{ContainerError, Containers, Record};
use crate::config::DaemonConfig;

pub fn is_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
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
    if is_v2() {
        PathBuf::from("/sys/fs/cgroup").join(rel(cfg, r))
    } else {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(rel(cfg, r))
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

fn write(p: PathBuf, v: &str) -> Result<(), ContainerError> {
    std::fs::write(&p, v).map_err(|e| ContainerError::io("write", &p, e))
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
/// would ever reap or report them).
pub fn kill_all(cfg: &DaemonConfig, r: &Record) {
    let _ = freeze(cfg, r, false);
    for pid in pids(cfg, r) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

pub fn freeze(cfg: &DaemonConfig, r: &Record, frozen: bool) -> Result<(), ContainerError> {
    if is_v2() {
        write(
            dir(cfg, r, "").join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
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

fn system_cpu_ns() -> u64 {
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

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cpu_sample(cfg: &DaemonConfig, r: &Record) -> Value {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if is_v2() {
        let st = read_kv(dir(cfg, r, "").join("cpu.stat"));
        let g = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
        return json!({
            "cpu_usage": { "total_usage": g("usage_usec"), "usage_in_kernelmode": g("system_usec"), "usage_in_usermode": g("user_usec") },
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": online,
            "throttling_data": { "periods": st.get("nr_periods"), "throttled_periods": st.get("nr_throttled"), "throttled_time": g("throttled_usec") },
        });
    }
    let acct = dir(cfg, r, "cpuacct");
    let percpu: Vec<u64> = std::fs::read_to_string(acct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let st = read_kv(acct.join("cpuacct.stat"));
    let ticks = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
    let thr = read_kv(dir(cfg, r, "cpu").join("cpu.stat"));
    json!({
        "cpu_usage": { "total_usage": read_u64(acct.join("cpuacct.usage")), "percpu_usage": percpu,
                       "usage_in_kernelmode": ticks("system"), "usage_in_usermode": ticks("user") },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": { "periods": thr.get("nr_periods").cloned().unwrap_or(json!(0)),
                             "throttled_periods": thr.get("nr_throttled").cloned().unwrap_or(json!(0)),
                             "throttled_time": thr.get("throttled_time").cloned().unwrap_or(json!(0)) },
    })
}

fn memory_sample(cfg: &DaemonConfig, r: &Record) -> Value {
    let total = mem_total();
    if is_v2() {
        let d = dir(cfg, r, "");
        let limit = std::fs::read_to_string(d.join("memory.max"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(total);
        return json!({ "usage": read_u64(d.join("memory.current")), "stats": read_kv(d.join("memory.stat")), "limit": limit.min(total) });
    }
    let d = dir(cfg, r, "memory");
    let limit = read_u64(d.join("memory.limit_in_bytes"));
    json!({
        "usage": read_u64(d.join("memory.usage_in_bytes")),
        "max_usage": read_u64(d.join("memory.max_usage_in_bytes")),
        "stats": read_kv(d.join("memory.stat")),
        "limit": if limit == 0 { total } else { limit.min(total) },
    })
}

/// Interface counters of the container's network namespace, from its init's
/// `/proc/<pid>/net/dev` (`lo` left out, like Docker). Null when it has no interfaces.
fn net_sample(pid: i64) -> Value {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() < 16 {
            continue;
        }
        out.insert(
            name.to_owned(),
            json!({"rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2], "rx_dropped": f[3],
                   "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10], "tx_dropped": f[11]}),
        );
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

fn sample(cfg: &DaemonConfig, r: &Record, pre: &Value) -> Value {
    let running = r.state.status == "running" || r.state.status == "paused";
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (cpu, mem, pids_now) = if running {
        (
            cpu_sample(cfg, r),
            memory_sample(cfg, r),
            read_u64(dir(cfg, r, "pids").join("pids.current")),
        )
    } else {
        (
            json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0, "throttling_data": {}}),
            json!({}),
            0,
        )
    };
    json!({
        "read": now,
        "preread": pre.get("read").cloned().unwrap_or(json!("0001-01-01T00:00:00Z")),
        "pids_stats": { "current": pids_now },
        "blkio_stats": { "io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null,
                         "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
                         "io_time_recursive": null, "sectors_recursive": null },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": pre.get("cpu_stats").cloned().unwrap_or(json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}})),
        "memory_stats": mem,
        "networks": if running { net_sample(r.state.pid) } else { Value::Null },
        "name": format!("/{}", r.name),
        "id": r.id,
    })
}

impl Containers {
    pub async fn stats(
        &self,
        key: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<futures_util::stream::BoxStream<'static, Value>, ContainerError> {
        use futures_util::StreamExt;
        let c = self.get(key)?;
        let cfg = self.inner.cfg.clone();
        let first = sample(&cfg, &c.record(), &Value::Null);
        if !stream {
            if one_shot {
                return Ok(futures_util::stream::once(async move { first }).boxed());
            }
            // Like Docker: two readings a second apart, so the CPU percentage has a base.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = sample(&cfg, &c.record(), &first);
            return Ok(futures_util::stream::once(async move { second }).boxed());
        }
        let s = futures_util::stream::unfold((first, true), move |(prev, is_first)| {
            let cfg = cfg.clone();
            let c = c.clone();
            async move {
                if is_first {
                    return Some((prev.clone(), (prev, false)));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let rec = c.record();
                if rec.state.status == "removing" {
                    return None;
                }
                let next = sample(&cfg, &rec, &prev);
                Some((next.clone(), (next, false)))
            }
        });
        Ok(s.boxed())
    }

    pub async fn top(&self, key: &str, ps_args: Option<String>) -> Result<Value, ContainerError> {
        let c = self.get(key)?;
        let r = c.record();
        if !c.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = pids(&self.inner.cfg, &r);
        let args = ps_args.unwrap_or_else(|| "-ef".into());
        let out = tokio::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .await
            .map_err(|e| ContainerError::Runtime(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ContainerError::Runtime(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    pub async fn pause(&self, key: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        match c.status().as_str() {
            "running" => {}
            "paused" => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        freeze(&self.inner.cfg, &c.record(), true)?;
        c.update(|r| r.state.status = "paused".into());
        self.persist(&c)?;
        self.emit(&c, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(&self, key: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        if c.status() != "paused" {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        freeze(&self.inner.cfg, &c.record(), false)?;
        c.update(|r| r.state.status = "running".into());
        self.persist(&c)?;
        self.emit(&c, "unpause", &[]);
        Ok(())
    }

    pub async fn update(&self, key: &str, u: UpdateBody) -> Result<Value, ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let mut h = c.record().host_config;
        if let Some(v) = u.memory {
            h.memory = v;
        }
        if let Some(v) = u.memory_swap {
            h.memory_swap = v;
        }
        if let Some(v) = u.memory_reservation {
            h.memory_reservation = v;
        }
        if let Some(v) = u.nano_cpus {
            h.nano_cpus = v;
        }
        if let Some(v) = u.cpu_shares {
            h.cpu_shares = v;
        }
        if let Some(v) = u.cpu_period {
            h.cpu_period = v;
        }
        if let Some(v) = u.cpu_quota {
            h.cpu_quota = v;
        }
        if let Some(v) = u.cpuset_cpus.clone() {
            h.cpuset_cpus = v;
        }
        if let Some(v) = u.cpuset_mems.clone() {
            h.cpuset_mems = v;
        }
        if let Some(v) = u.pids_limit {
            h.pids_limit = Some(v);
        }
        if let Some(p) = u.restart_policy.clone() {
            if c.record().host_config.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(ContainerError::Invalid("Restart policy cannot be updated because AutoRemove is enabled for the container".into()));
            }
            h.restart_policy = p;
        }
        // Validate through the same code that builds the spec.
        let doc = super::spec::check(&c.record().config, &h, self.inner.nofile_hard)?;
        if c.is_running() {
            let mut r = c.record();
            r.host_config = h.clone();
            apply_resources(&self.inner.cfg, &r, &doc["linux"]["resources"])?;
        }
        c.update(|r| r.host_config = h);
        self.persist(&c)?;
        self.emit(&c, "update", &[]);
        Ok(json!({ "Warnings": [] }))
    }
}

fn apply_resources(cfg: &DaemonConfig, r: &Record, res: &Value) -> Result<(), ContainerError> {
    let n = |v: &Value| v.as_i64().map(|x| x.to_string());
    if is_v2() {
        let d = dir(cfg, r, "");
        if let Some(m) = n(&res["memory"]["limit"]) {
            write(d.join("memory.max"), &m)?;
        }
        if let (Some(q), Some(p)) = (n(&res["cpu"]["quota"]), n(&res["cpu"]["period"])) {
            write(d.join("cpu.max"), &format!("{q} {p}"))?;
        }
        if let Some(p) = n(&res["pids"]["limit"]) {
            write(d.join("pids.max"), &p)?;
        }
        if let Some(c) = res["cpu"]["cpus"].as_str() {
            write(d.join("cpuset.cpus"), c)?;
        }
        return Ok(());
    }
    let mem = dir(cfg, r, "memory");
    if let Some(m) = n(&res["memory"]["limit"]) {
        // Raise swap first when growing, so memory ≤ memsw holds at every step.
        let sw = n(&res["memory"]["swap"]);
        if let Some(sw) = &sw {
            let _ = write(mem.join("memory.memsw.limit_in_bytes"), sw);
        }
        write(mem.join("memory.limit_in_bytes"), &m)?;
        if let Some(sw) = &sw {
            let _ = write(mem.join("memory.memsw.limit_in_bytes"), sw);
        }
    }
    let cpu = dir(cfg, r, "cpu");
    if let Some(s) = n(&res["cpu"]["shares"]) {
        write(cpu.join("cpu.shares"), &s)?;
    }
    if let Some(p) = n(&res["cpu"]["period"]) {
        write(cpu.join("cpu.cfs_period_us"), &p)?;
    }
    if let Some(q) = n(&res["cpu"]["quota"]) {
        write(cpu.join("cpu.cfs_quota_us"), &q)?;
    }
    if let Some(c) = res["cpu"]["cpus"].as_str() {
        write(dir(cfg, r, "cpuset").join("cpuset.cpus"), c)?;
    }
    if let Some(p) = n(&res["pids"]["limit"]) {
        write(dir(cfg, r, "pids").join("pids.max"), &p)?;
    }
    Ok(())
}

/// Keeps the `ps` rows whose PID is in the container.
fn parse_ps(out: &str, pids: &[i64]) -> Result<Value, ContainerError> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ContainerError::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        if !fields[pid_col]
            .parse::<i64>()
            .is_ok_and(|p| pids.contains(&p))
        {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({ "Titles": titles, "Processes": procs }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
