//! The unified hierarchy (cgroup v2): one directory per container, limits in v2's own terms
//! (`memory.max`, `memory.swap.max` for swap alone, `cpu.weight`, `cpu.max`), statistics from
//! `cpu.stat` and `memory.*`.

use std::path::Path;

use serde_json::{json, Value};

use super::{read_kv, read_u64, system_cpu_ns, write};
use crate::container::ContainerError;

/// cgroup v2's `cpu.weight` (1–10000) for Docker's v1 `cpu.shares` (2–262144), as runc maps it.
pub(super) fn shares_to_weight(shares: i64) -> i64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// Writes what `res` (a spec's `linux.resources`) sets into the container's directory `d`.
pub(super) fn apply(d: &Path, res: &Value, unlimit_pids: bool) -> Result<(), ContainerError> {
    let n = |v: &Value| v.as_i64().map(|x| x.to_string());
    let mem = &res["memory"];
    let cpu = &res["cpu"];
    if let Some(m) = mem["limit"].as_i64() {
        write(d.join("memory.max"), &m.to_string())?;
        // v2 limits swap alone; Docker's MemorySwap is memory plus swap.
        match mem["swap"].as_i64() {
            Some(-1) => write(d.join("memory.swap.max"), "max")?,
            Some(sw) if sw >= m => write(d.join("memory.swap.max"), &(sw - m).to_string())?,
            _ => {}
        }
    }
    if let Some(r) = n(&mem["reservation"]) {
        write(d.join("memory.low"), &r)?;
    }
    if let Some(s) = cpu["shares"].as_i64() {
        write(d.join("cpu.weight"), &shares_to_weight(s).to_string())?;
    }
    if let Some(q) = n(&cpu["quota"]) {
        let p = n(&cpu["period"]).unwrap_or_else(|| "100000".into());
        write(d.join("cpu.max"), &format!("{q} {p}"))?;
    } else if let Some(p) = n(&cpu["period"]) {
        write(d.join("cpu.max"), &format!("max {p}"))?;
    }
    if let Some(c) = cpu["cpus"].as_str() {
        write(d.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = cpu["mems"].as_str() {
        write(d.join("cpuset.mems"), m)?;
    }
    if let Some(p) = n(&res["pids"]["limit"]) {
        write(d.join("pids.max"), &p)?;
    } else if unlimit_pids {
        write(d.join("pids.max"), "max")?;
    }
    Ok(())
}

/// Docker's `cpu_stats` from the container's directory `d`.
pub(super) fn cpu_sample(d: &Path, online: usize) -> Value {
    let st = read_kv(d.join("cpu.stat"));
    let g = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
    json!({
        "cpu_usage": { "total_usage": g("usage_usec"), "usage_in_kernelmode": g("system_usec"), "usage_in_usermode": g("user_usec") },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": { "periods": st.get("nr_periods"), "throttled_periods": st.get("nr_throttled"), "throttled_time": g("throttled_usec") },
    })
}

/// Docker's `memory_stats` from the container's directory `d`; `total` is the host's memory.
pub(super) fn memory_sample(d: &Path, total: u64) -> Value {
    let limit = std::fs::read_to_string(d.join("memory.max"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(total);
    json!({ "usage": read_u64(d.join("memory.current")), "stats": read_kv(d.join("memory.stat")), "limit": limit.min(total) })
}
