//! The v1 hierarchies (this machine's hybrid layout): one directory per controller
//! (`memory/`, `cpu/`, `cpuacct/`, `cpuset/`, `pids/`, `freezer/`), limits in Docker's own
//! terms, statistics from `cpuacct.*` and `memory.*`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{read_kv, read_u64, system_cpu_ns, write};
use crate::container::ContainerError;

/// Writes what `res` (a spec's `linux.resources`) sets; `dir` gives the container's directory
/// in a controller's hierarchy.
pub(super) fn apply(
    dir: impl Fn(&str) -> PathBuf,
    res: &Value,
    unlimit_pids: bool,
) -> Result<(), ContainerError> {
    let n = |v: &Value| v.as_i64().map(|x| x.to_string());
    let mem = &res["memory"];
    let cpu = &res["cpu"];
    let memd = dir("memory");
    if let Some(m) = n(&mem["limit"]) {
        // Raise swap first when growing, so memory ≤ memsw holds at every step.
        let sw = n(&mem["swap"]);
        if let Some(sw) = &sw {
            let _ = write(memd.join("memory.memsw.limit_in_bytes"), sw);
        }
        write(memd.join("memory.limit_in_bytes"), &m)?;
        if let Some(sw) = &sw {
            let _ = write(memd.join("memory.memsw.limit_in_bytes"), sw);
        }
    }
    if let Some(r) = n(&mem["reservation"]) {
        write(memd.join("memory.soft_limit_in_bytes"), &r)?;
    }
    let cpud = dir("cpu");
    if let Some(s) = n(&cpu["shares"]) {
        write(cpud.join("cpu.shares"), &s)?;
    }
    if let Some(p) = n(&cpu["period"]) {
        write(cpud.join("cpu.cfs_period_us"), &p)?;
    }
    if let Some(q) = n(&cpu["quota"]) {
        write(cpud.join("cpu.cfs_quota_us"), &q)?;
    }
    if let Some(c) = cpu["cpus"].as_str() {
        write(dir("cpuset").join("cpuset.cpus"), c)?;
    }
    if let Some(m) = cpu["mems"].as_str() {
        write(dir("cpuset").join("cpuset.mems"), m)?;
    }
    if let Some(p) = n(&res["pids"]["limit"]) {
        write(dir("pids").join("pids.max"), &p)?;
    } else if unlimit_pids {
        write(dir("pids").join("pids.max"), "max")?;
    }
    Ok(())
}

/// Docker's `cpu_stats`; `dir` as for [`apply`].
pub(super) fn cpu_sample(dir: impl Fn(&str) -> PathBuf, online: usize) -> Value {
    let acct = dir("cpuacct");
    let percpu: Vec<u64> = std::fs::read_to_string(acct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let st = read_kv(acct.join("cpuacct.stat"));
    let ticks = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
    let thr = read_kv(dir("cpu").join("cpu.stat"));
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

/// Docker's `memory_stats` from the container's memory directory `d`; `total` is the host's
/// memory.
pub(super) fn memory_sample(d: &std::path::Path, total: u64) -> Value {
    let limit = read_u64(d.join("memory.limit_in_bytes"));
    json!({
        "usage": read_u64(d.join("memory.usage_in_bytes")),
        "max_usage": read_u64(d.join("memory.max_usage_in_bytes")),
        "stats": read_kv(d.join("memory.stat")),
        "limit": if limit == 0 { total } else { limit.min(total) },
    })
}
