//! `node ps`: the tasks that run on one or more nodes, in docker's task table (older tasks of
//! the same slot indented under the newest with ` \_ `).
//!
//! ```text
//!  self|NODE ──► node::reference ──► GET /nodes/{id} ──► GET /tasks?filters={"node":{id}}
//!            ──► GET /services/{id} (names) + GET /nodes/{id} (hostnames) ──► table
//! ```

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{seg, Client, Query};
use crate::commands::node::{pretty, reference};
use crate::error::StatusError;
use crate::format::{age_secs, ellipsis, human_duration, parse_rfc3339, short_id};
use crate::opts;
use crate::output::{row, ListFormat};

pub const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}";

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Node", "NODE"),
    ("DesiredState", "DESIRED STATE"),
    ("CurrentState", "CURRENT STATE"),
    ("Error", "ERROR"),
    ("Ports", "PORTS"),
];

/// The flags of every task table: `node ps`, `service ps`, `stack ps`.
#[derive(Args, Debug)]
pub struct TaskListFlags {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print tasks using a Go template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display task IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `berth node ps`
#[derive(Args, Debug)]
pub struct NodePsArgs {
    #[command(flatten)]
    pub list: TaskListFlags,
    /// Nodes (default: self)
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

/// Names of services and hostnames of nodes, looked up once each.
#[derive(Default)]
pub struct Names {
    pub services: HashMap<String, String>,
    pub nodes: HashMap<String, String>,
}

/// Task rows: sorted by service, slot (or node) and newest first, history indented.
pub fn task_rows(tasks: &mut [Value], names: &Names, trunc: bool) -> Vec<Value> {
    let name_of = |t: &Value| {
        let sid = t["ServiceID"].as_str().unwrap_or("");
        let service = names.services.get(sid).map(String::as_str).unwrap_or(sid);
        match t["Slot"].as_u64().filter(|s| *s != 0) {
            Some(slot) => format!("{service}.{slot}"),
            None => format!("{service}.{}", t["NodeID"].as_str().unwrap_or("")),
        }
    };
    let stamp = |t: &Value| t["Status"]["Timestamp"].as_str().unwrap_or("").to_string();
    tasks.sort_by(|a, b| {
        let (na, nb) = (name_of(a), name_of(b));
        na.cmp(&nb)
            .then_with(|| a["Slot"].as_u64().cmp(&b["Slot"].as_u64()))
            .then_with(|| stamp(b).cmp(&stamp(a)))
    });
    let mut prev = String::new();
    let mut rows = Vec::new();
    for t in tasks.iter() {
        let name = name_of(t);
        let shown = if name == prev {
            format!(" \\_ {name}")
        } else {
            name.clone()
        };
        prev = name;
        rows.push(task_row(t, &shown, names, trunc));
    }
    rows
}

fn task_row(t: &Value, name: &str, names: &Names, trunc: bool) -> Value {
    let id = t["ID"].as_str().unwrap_or("");
    let node_id = t["NodeID"].as_str().unwrap_or("");
    let mut image = t["Spec"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if trunc {
        if let Some((name, _digest)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let status = &t["Status"];
    let since = parse_rfc3339(status["Timestamp"].as_str().unwrap_or("")).unwrap_or(0);
    let current = format!(
        "{} {} ago",
        pretty(status["State"].as_str().unwrap_or("")),
        human_duration(age_secs(since)).to_lowercase()
    );
    let mut err = status["Err"].as_str().unwrap_or("").to_string();
    if trunc {
        err = ellipsis(&err, 30);
    }
    if !err.is_empty() {
        err = format!("\"{err}\"");
    }
    let ports: Vec<String> = status["PortStatus"]["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "*:{}->{}/{}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap_or(0),
                p["Protocol"].as_str().unwrap_or("tcp")
            )
        })
        .collect();
    row(vec![
        ("ID", if trunc { short_id(id) } else { id.to_string() }),
        ("Name", name.to_string()),
        ("Image", image),
        (
            "Node",
            names.nodes.get(node_id).cloned().unwrap_or(node_id.into()),
        ),
        (
            "DesiredState",
            pretty(t["DesiredState"].as_str().unwrap_or("")),
        ),
        ("CurrentState", current),
        ("Error", err),
        ("Ports", ports.join(",")),
    ])
}

/// Fills in the names of every service and node the tasks mention.
pub async fn resolve(client: &Client, tasks: &[Value], names: &mut Names) -> Result<()> {
    for t in tasks {
        let sid = t["ServiceID"].as_str().unwrap_or("").to_string();
        if !sid.is_empty() && !names.services.contains_key(&sid) {
            let path = format!("/services/{}?insertDefaults=false", seg(&sid));
            // A service removed meanwhile shows as its id, as the docker CLI does.
            let name = match client.get_json::<Value>(&path).await {
                Ok(s) => s["Spec"]["Name"].as_str().unwrap_or(&sid).to_string(),
                Err(_) => sid.clone(),
            };
            names.services.insert(sid, name);
        }
        let nid = t["NodeID"].as_str().unwrap_or("").to_string();
        if !nid.is_empty() && !names.nodes.contains_key(&nid) {
            let host = match client
                .get_json::<Value>(&format!("/nodes/{}", seg(&nid)))
                .await
            {
                Ok(n) => n["Description"]["Hostname"]
                    .as_str()
                    .unwrap_or(&nid)
                    .to_string(),
                Err(_) => nid.clone(),
            };
            names.nodes.insert(nid.clone(), host);
        }
    }
    Ok(())
}

/// Prints `tasks` as docker's task table (or `--format`, `-q`), names resolved unless
/// `--no-resolve`.
pub async fn print_tasks(client: &Client, mut tasks: Vec<Value>, a: &TaskListFlags) -> Result<()> {
    let mut names = Names::default();
    if !a.no_resolve {
        resolve(client, &tasks, &mut names).await?;
    }
    let rows = task_rows(&mut tasks, &names, !a.no_trunc);
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") if a.quiet => Some("{{.ID}}"),
        f => f,
    };
    let lf = ListFormat {
        format,
        default_table: DEFAULT_TABLE,
        headers: HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

pub async fn ps(client: &Client, args: NodePsArgs) -> Result<()> {
    let nodes = if args.nodes.is_empty() {
        vec!["self".to_string()]
    } else {
        args.nodes.clone()
    };
    let mut filters = opts::parse_filters(&args.list.filter).map_err(anyhow::Error::msg)?;
    let mut tasks: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    for name in &nodes {
        let found = async {
            let id = reference(client, name).await?;
            let node: Value = client.get_json(&format!("/nodes/{}", seg(&id))).await?;
            let node_id = node["ID"].as_str().unwrap_or(&id).to_string();
            filters["node"] = json!({ node_id: true });
            let path = Query::new().filters(&filters).to_path("/tasks");
            client.get_json::<Vec<Value>>(&path).await
        }
        .await;
        match found {
            Ok(t) => tasks.extend(t),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    print_tasks(client, tasks, &args.list).await?;
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, slot: u64, state: &str, desired: &str, ts: &str) -> Value {
        json!({
            "ID": id, "ServiceID": "svcid", "Slot": slot, "NodeID": "nodeid",
            "Spec": {"ContainerSpec": {"Image": "127.0.0.1:5000/bb:1@sha256:abcd"}},
            "Status": {"Timestamp": ts, "State": state},
            "DesiredState": desired,
        })
    }

    #[test]
    fn history_is_indented_under_the_newest_task() {
        let mut tasks = vec![
            task(
                "87rp1biowty4xxxxxxxx",
                2,
                "running",
                "shutdown",
                "2026-11-27T22:31:00Z",
            ),
            task(
                "ge6qtsnq6wunxxxxxxxx",
                1,
                "running",
                "running",
                "2026-11-27T22:30:00Z",
            ),
            task(
                "0zzjla7t6a3exxxxxxxx",
                2,
                "ready",
                "ready",
                "2026-11-27T22:31:10Z",
            ),
        ];
        tasks[0]["Status"]["Err"] = json!("task: non-zero exit (1)");
        let names = Names {
            services: [("svcid".to_string(), "svc".to_string())].into(),
            nodes: [("nodeid".to_string(), "vm".to_string())].into(),
        };
        let rows = task_rows(&mut tasks, &names, true);
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["ID"].as_str().expect("id"),
                    r["Name"].as_str().expect("name"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ge6qtsnq6wun", "svc.1"),
                ("0zzjla7t6a3e", "svc.2"),
                ("87rp1biowty4", " \\_ svc.2")
            ]
        );
        assert_eq!(rows[0]["Image"], "127.0.0.1:5000/bb:1");
        assert_eq!(rows[0]["Node"], "vm");
        assert_eq!(rows[2]["DesiredState"], "Shutdown");
        assert_eq!(rows[2]["Error"], "\"task: non-zero exit (1)\"");
        assert!(rows[1]["CurrentState"]
            .as_str()
            .expect("state")
            .starts_with("Ready "));
        assert!(rows[1]["CurrentState"]
            .as_str()
            .expect("state")
            .ends_with(" ago"));
    }
}
