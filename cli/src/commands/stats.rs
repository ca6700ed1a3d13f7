//! `stats`: `GET /containers/{id}/stats` per container (`stream=0` with `--no-stream`), shown
//! with docker's columns; streaming mode redraws the table every second until Ctrl-C.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{seg, Client, Query};
use crate::format::{bytes_size, human_size_prec};
use crate::output::{row, ListFormat};
use crate::stream::JsonStream;
use crate::tty;

/// `berth stats`
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Containers
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// The numbers docker derives from one stats sample.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub cpu: f64,
    pub mem: f64,
    pub mem_limit: f64,
    pub mem_perc: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub blk_read: f64,
    pub blk_write: f64,
    pub pids: u64,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Computes CPU %, memory (without inactive file cache), network and block I/O from a sample.
pub fn compute(s: &Value) -> StatsRow {
    let cpu_delta = f(&s["cpu_stats"]["cpu_usage"]["total_usage"])
        - f(&s["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        f(&s["cpu_stats"]["system_cpu_usage"]) - f(&s["precpu_stats"]["system_cpu_usage"]);
    let mut online = f(&s["cpu_stats"]["online_cpus"]);
    if online == 0.0 {
        online = s["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0) as f64;
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };

    let mem_stats = &s["memory_stats"];
    let usage = f(&mem_stats["usage"]);
    let mem = match mem_stats["stats"]["total_inactive_file"].as_f64() {
        Some(v) if v < usage => usage - v,
        Some(_) => usage,
        None => match mem_stats["stats"]["inactive_file"].as_f64() {
            Some(v) if v < usage => usage - v,
            _ => usage,
        },
    };
    let mem_limit = f(&mem_stats["limit"]);
    let mem_perc = if mem_limit != 0.0 {
        mem / mem_limit * 100.0
    } else {
        0.0
    };

    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += f(&n["rx_bytes"]);
            tx += f(&n["tx_bytes"]);
        }
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += f(&e["value"]),
            Some("write") => bw += f(&e["value"]),
            _ => {}
        }
    }
    StatsRow {
        cpu,
        mem,
        mem_limit,
        mem_perc,
        net_rx: rx,
        net_tx: tx,
        blk_read: br,
        blk_write: bw,
        pids: s["pids_stats"]["current"].as_u64().unwrap_or(0),
    }
}

/// A template row for one container.
pub fn stats_row(container: &str, s: &Value, trunc: bool) -> Value {
    let r = compute(s);
    let id = s["id"].as_str().unwrap_or(container);
    let id = if trunc {
        id.chars().take(12).collect()
    } else {
        id.to_string()
    };
    row(vec![
        ("Container", container.to_string()),
        ("ID", id),
        (
            "Name",
            s["name"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
        ),
        ("CPUPerc", format!("{:.2}%", r.cpu)),
        (
            "MemUsage",
            format!("{} / {}", bytes_size(r.mem), bytes_size(r.mem_limit)),
        ),
        ("MemPerc", format!("{:.2}%", r.mem_perc)),
        (
            "NetIO",
            format!(
                "{} / {}",
                human_size_prec(r.net_rx, 3),
                human_size_prec(r.net_tx, 3)
            ),
        ),
        (
            "BlockIO",
            format!(
                "{} / {}",
                human_size_prec(r.blk_read, 3),
                human_size_prec(r.blk_write, 3)
            ),
        ),
        ("PIDs", r.pids.to_string()),
    ])
}

pub async fn stats(client: &Client, args: StatsArgs) -> Result<()> {
    let names: Vec<String> = if args.containers.is_empty() {
        let q = Query::new()
            .flag("all", args.all)
            .to_path("/containers/json");
        let list: Value = client.get_json(&q).await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(|s| s.chars().take(12).collect()))
            .collect()
    } else {
        args.containers.clone()
    };
    let lf = ListFormat {
        format: args.format.as_deref(),
        default_table: DEFAULT_TABLE,
        headers: HEADERS,
    };
    let trunc = !args.no_trunc;
    if args.no_stream {
        let samples = futures_util::future::join_all(names.iter().map(|n| async move {
            let v: Value = client
                .get_json(&format!("/containers/{}/stats?stream=0", seg(n)))
                .await?;
            Ok::<Value, anyhow::Error>(stats_row(n, &v, trunc))
        }))
        .await;
        let mut rows = Vec::new();
        for s in samples {
            rows.push(s?);
        }
        print!("{}", lf.render(&rows)?);
        return Ok(());
    }
    let latest: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    for n in &names {
        // Fail early for unknown containers, as docker does.
        client.get(&format!("/containers/{}/json", seg(n))).await?;
        let client = client.clone();
        let latest = latest.clone();
        let name = n.clone();
        tokio::spawn(async move {
            let Ok(mut resp) = client
                .get(&format!("/containers/{}/stats?stream=1", seg(&name)))
                .await
            else {
                return;
            };
            let mut dec = JsonStream::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                dec.push(&chunk);
                while let Ok(Some(v)) = dec.next_value() {
                    if let Ok(mut map) = latest.lock() {
                        map.insert(name.clone(), stats_row(&name, &v, trunc));
                    }
                }
            }
        });
    }
    let is_tty = tty::stdout_is_tty();
    loop {
        // Runs until Ctrl-C ends the process, as docker's does.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let rows: Vec<Value> = match latest.lock() {
            Ok(map) => names.iter().filter_map(|n| map.get(n).cloned()).collect(),
            Err(_) => Vec::new(),
        };
        let text = lf.render(&rows)?;
        if is_tty {
            tty::write_stdout(format!("\x1b[2J\x1b[H{text}").as_bytes());
        } else {
            tty::write_stdout(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "id": "f5df305793224daabb9af0163ca915638683ad906ea86962423d7fa03539d5bd",
            "name": "/flags",
            "pids_stats": {"current": 1},
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000u64, "percpu_usage": [1, 2]}, "system_cpu_usage": 200_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000u64}, "system_cpu_usage": 100_000_000u64},
            "memory_stats": {"usage": 1_000_000u64, "limit": 67_108_864u64, "stats": {"total_inactive_file": 373_312u64}},
            "networks": {"eth0": {"rx_bytes": 486, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 0}]}
        })
    }

    #[test]
    fn computes_like_docker() {
        let r = compute(&sample());
        assert!((r.cpu - 2.0).abs() < 1e-9);
        assert_eq!(r.mem, 626_688.0);
        assert_eq!(r.pids, 1);
        let row = stats_row("flags", &sample(), true);
        assert_eq!(row["ID"], "f5df30579322");
        assert_eq!(row["Name"], "flags");
        assert_eq!(row["CPUPerc"], "2.00%");
        assert_eq!(row["MemUsage"], "612KiB / 64MiB");
        assert_eq!(row["MemPerc"], "0.93%");
        assert_eq!(row["NetIO"], "486B / 0B");
        assert_eq!(row["BlockIO"], "4.1kB / 0B");
    }

    #[test]
    fn table_like_capture() {
        let lf = ListFormat {
            format: None,
            default_table: DEFAULT_TABLE,
            headers: HEADERS,
        };
        let mut s = sample();
        s["cpu_stats"] = s["precpu_stats"].clone();
        s["blkio_stats"] = json!({});
        let out = lf.render(&[stats_row("flags", &s, true)]).expect("render");
        assert_eq!(
            out,
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O   PIDS\n\
             f5df30579322   flags     0.00%     612KiB / 64MiB      0.93%     486B / 0B   0B / 0B     1\n"
        );
    }
}
