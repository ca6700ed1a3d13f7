//! `service logs`: `GET /services/{name}/logs?details=1…` (or `/tasks/{id}/logs` when the name
//! is a task's ID), each line turned into docker's `name.slot.taskid@node    | line` by the
//! `com.docker.swarm.*` details the daemon puts before it. `--raw` prints lines as they come.

use std::collections::HashMap;

use anyhow::Result;
use berth_common::stream::{Demux, StreamId};
use clap::Args;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::client::{seg, Client, Query};
use crate::commands::logs::api_time;
use crate::error::is_not_found;
use crate::format::short_id;
use crate::tty::{Std, StdSink};

/// `berth service logs`
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Do not map IDs to Names in output
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Do not include task IDs in output
    #[arg(long = "no-task-ids")]
    pub no_task_ids: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not neatly format logs
    #[arg(long = "raw")]
    pub raw: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Service or task
    #[arg(value_name = "SERVICE|TASK")]
    pub target: String,
}

/// What the prefix of each line is made of.
pub struct Prefixer {
    pub service_names: HashMap<String, String>,
    pub node_names: HashMap<String, String>,
    /// Task ID → slot.
    pub slots: HashMap<String, u64>,
    /// Width of the largest slot number, for alignment.
    pub pad: usize,
    pub no_task_ids: bool,
    pub no_trunc: bool,
}

impl Prefixer {
    /// One output line from one daemon line (`[ts ]details text`).
    pub fn line(&self, raw: &str, timestamps: bool) -> String {
        let (ts, rest) = if timestamps {
            raw.split_once(' ').unwrap_or((raw, ""))
        } else {
            ("", raw)
        };
        let (details, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut ctx: HashMap<&str, &str> = HashMap::new();
        let mut extra = Vec::new();
        for kv in details.split(',') {
            match kv.split_once('=') {
                Some((k, v)) if k.starts_with("com.docker.swarm.") => {
                    ctx.insert(k, v);
                }
                _ if !kv.is_empty() => extra.push(kv),
                _ => {}
            }
        }
        let task = ctx.get("com.docker.swarm.task.id").copied().unwrap_or("");
        let node = ctx.get("com.docker.swarm.node.id").copied().unwrap_or("");
        let service = ctx
            .get("com.docker.swarm.service.id")
            .copied()
            .unwrap_or("");
        let slot = self.slots.get(task).copied().unwrap_or(0);
        let mut name = format!(
            "{}.{slot}",
            self.service_names
                .get(service)
                .map_or(service, String::as_str)
        );
        if !self.no_task_ids {
            let id = if self.no_trunc {
                task.to_string()
            } else {
                short_id(task)
            };
            name.push_str(&format!(".{id}"));
        }
        let pad = " ".repeat(self.pad.saturating_sub(slot.to_string().len()));
        let node = self.node_names.get(node).map_or(node, String::as_str);
        let mut out = format!("{name}{pad}@{node}    | ");
        if timestamps {
            out.push_str(ts);
            out.push(' ');
        }
        if !extra.is_empty() {
            out.push_str(&extra.join(","));
            out.push(' ');
        }
        out.push_str(text);
        out
    }
}

/// The names and slots the prefixes need, from the tasks of the service (or the one task).
async fn prefixer(
    client: &Client,
    a: &LogsArgs,
    service: &Value,
    tasks: &[Value],
) -> Result<Prefixer> {
    let mut p = Prefixer {
        service_names: HashMap::new(),
        node_names: HashMap::new(),
        slots: HashMap::new(),
        pad: 1,
        no_task_ids: a.no_task_ids,
        no_trunc: a.no_trunc,
    };
    let sid = service["ID"].as_str().unwrap_or("").to_string();
    if !a.no_resolve {
        p.service_names.insert(
            sid,
            service["Spec"]["Name"].as_str().unwrap_or("").to_string(),
        );
    }
    let replicas = service["Spec"]["Mode"]["Replicated"]["Replicas"]
        .as_u64()
        .unwrap_or(0);
    p.pad = replicas.max(1).to_string().len();
    for t in tasks {
        let id = t["ID"].as_str().unwrap_or("").to_string();
        p.slots.insert(id, t["Slot"].as_u64().unwrap_or(0));
        let nid = t["NodeID"].as_str().unwrap_or("").to_string();
        if !a.no_resolve && !nid.is_empty() && !p.node_names.contains_key(&nid) {
            if let Ok(n) = client
                .get_json::<Value>(&format!("/nodes/{}", seg(&nid)))
                .await
            {
                let host = n["Description"]["Hostname"]
                    .as_str()
                    .unwrap_or(&nid)
                    .to_string();
                p.node_names.insert(nid, host);
            }
        }
    }
    Ok(p)
}

pub async fn logs(client: &Client, a: LogsArgs) -> Result<()> {
    // A service by name or ID; else a task ID, as docker tries them.
    let (service, tasks, path) = match client
        .get_json::<Value>(&format!(
            "/services/{}?insertDefaults=false",
            seg(&a.target)
        ))
        .await
    {
        Ok(s) => {
            let id = s["ID"].as_str().unwrap_or("").to_string();
            let f = serde_json::json!({"service": {id: true}});
            let tasks: Vec<Value> = client
                .get_json(&Query::new().filters(&f).to_path("/tasks"))
                .await?;
            (s, tasks, format!("/services/{}/logs", seg(&a.target)))
        }
        Err(e) if is_not_found(&e) => {
            let t: Value = client
                .get_json(&format!("/tasks/{}", seg(&a.target)))
                .await
                .map_err(|_| e)?;
            let sid = t["ServiceID"].as_str().unwrap_or("");
            let s: Value = client
                .get_json(&format!("/services/{}?insertDefaults=false", seg(sid)))
                .await?;
            let path = format!("/tasks/{}/logs", seg(t["ID"].as_str().unwrap_or("")));
            (s, vec![t], path)
        }
        Err(e) => return Err(e),
    };
    let tty = service["Spec"]["TaskTemplate"]["ContainerSpec"]["TTY"]
        .as_bool()
        .unwrap_or(false);
    let mut q = Query::new();
    q.flag("details", !a.raw || a.details)
        .flag("follow", a.follow);
    q.opt("since", api_time(&a.since)?);
    q.add("stderr", "1").add("stdout", "1").add("tail", &a.tail);
    q.flag("timestamps", a.timestamps);
    let mut resp = client.get(&q.to_path(&path)).await?;
    let p = prefixer(client, &a, &service, &tasks).await?;
    let mut out = StdSink(Std::Out);
    let mut err = StdSink(Std::Err);
    let mut demux = Demux::new();
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(chunk) = resp.chunk().await? {
        let frames: Vec<(StreamId, Vec<u8>)> = if tty {
            vec![(StreamId::Stdout, chunk.to_vec())]
        } else {
            demux.push(&chunk);
            let mut v = Vec::new();
            while let Some((k, d)) = demux.next_frame()? {
                v.push((k, d.to_vec()));
            }
            v
        };
        for (kind, data) in frames {
            if kind == StreamId::SystemErr {
                anyhow::bail!("{}", String::from_utf8_lossy(&data).trim_end());
            }
            let i = usize::from(kind == StreamId::Stderr);
            pending[i].extend_from_slice(&data);
            while let Some(nl) = pending[i].iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending[i].drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                let shown = if a.raw {
                    text
                } else {
                    p.line(&text, a.timestamps)
                };
                let sink = if i == 0 { &mut out } else { &mut err };
                sink.write_all(format!("{shown}\n").as_bytes()).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixer() -> Prefixer {
        Prefixer {
            service_names: [("sid".to_string(), "svc".to_string())].into(),
            node_names: [("nid".to_string(), "vm".to_string())].into(),
            slots: [("87rp1biowty44iz0q7ontidcv".to_string(), 2)].into(),
            pad: 1,
            no_task_ids: false,
            no_trunc: false,
        }
    }

    #[test]
    fn prefixes_like_docker() {
        let raw = "com.docker.swarm.node.id=nid,com.docker.swarm.service.id=sid,com.docker.swarm.task.id=87rp1biowty44iz0q7ontidcv tick";
        assert_eq!(
            prefixer().line(raw, false),
            "svc.2.87rp1biowty4@vm    | tick"
        );
        let mut p = prefixer();
        p.no_task_ids = true;
        p.pad = 2;
        assert_eq!(p.line(raw, false), "svc.2 @vm    | tick");
        let ts = format!("2026-11-27T22:31:00.000000001Z {raw}");
        assert_eq!(
            prefixer().line(&ts, true),
            "svc.2.87rp1biowty4@vm    | 2026-11-27T22:31:00.000000001Z tick"
        );
    }
}
