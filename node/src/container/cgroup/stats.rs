//! `docker stats` and `docker top`: readings of a container's cgroup (through [`super::v1`]
//! or [`super::v2`]) and its network namespace, in Docker's JSON.

use std::time::Duration;

use serde_json::{json, Value};

use super::{dir, is_v2, pids, read_u64, v1, v2};
use crate::config::DaemonConfig;
use crate::container::{ContainerError, Containers, Record};

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
        v2::cpu_sample(&dir(cfg, r, ""), online)
    } else {
        v1::cpu_sample(|c| dir(cfg, r, c), online)
    }
}

fn memory_sample(cfg: &DaemonConfig, r: &Record) -> Value {
    let total = mem_total();
    if is_v2() {
        v2::memory_sample(&dir(cfg, r, ""), total)
    } else {
        v1::memory_sample(&dir(cfg, r, "memory"), total)
    }
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
        let current = dir(cfg, r, "pids").join("pids.current");
        // Without the pids controller (v2), count the processes like runc does.
        let pids_now = if current.exists() {
            read_u64(current)
        } else {
            pids(cfg, r).len() as u64
        };
        (cpu_sample(cfg, r), memory_sample(cfg, r), pids_now)
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
}

/// Keeps the `ps` rows whose PID is in the container.
pub(super) fn parse_ps(out: &str, pids: &[i64]) -> Result<Value, ContainerError> {
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
