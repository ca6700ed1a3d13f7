//! `service ls` (one row per service, with running/desired tasks from `?status=true`) and
//! `service ps` (the task table `node ps` shows, for the tasks of some services).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{seg, Client, Query};
use crate::commands::node::natural_cmp;
use crate::commands::node_ps::{print_tasks, TaskListFlags};
use crate::error::StatusError;
use crate::format::short_id;
use crate::opts;
use crate::output::{row, ListFormat};

const LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}";

const LS_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Mode", "MODE"),
    ("Replicas", "REPLICAS"),
    ("Image", "IMAGE"),
    ("Ports", "PORTS"),
];

/// `berth service ls`
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// The image without its digest, as `service ls` and `service ps` show it.
pub fn image_without_digest(image: &str) -> String {
    image.split_once('@').map_or(image, |(n, _)| n).to_string()
}

/// `*:8080->80/tcp` for each ingress-published port (the allocated ones when the daemon
/// reports them, else the spec's).
pub fn ports_column(s: &Value) -> String {
    let ports = s["Endpoint"]["Ports"]
        .as_array()
        .or_else(|| s["Endpoint"]["Spec"]["Ports"].as_array())
        .or_else(|| s["Spec"]["EndpointSpec"]["Ports"].as_array());
    ports
        .into_iter()
        .flatten()
        .filter(|p| p["PublishMode"].as_str().unwrap_or("ingress") == "ingress")
        .map(|p| {
            format!(
                "*:{}->{}/{}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap_or(0),
                p["Protocol"].as_str().unwrap_or("tcp")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The MODE and REPLICAS columns of a service.
pub fn mode_and_replicas(s: &Value) -> (String, String) {
    let st = &s["ServiceStatus"];
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let (running, desired, completed) = (n("RunningTasks"), n("DesiredTasks"), n("CompletedTasks"));
    let mode = &s["Spec"]["Mode"];
    if let Some(r) = mode.get("Replicated") {
        let mut text = format!("{running}/{}", r["Replicas"].as_u64().unwrap_or(0));
        let max = s["Spec"]["TaskTemplate"]["Placement"]["MaxReplicas"]
            .as_u64()
            .unwrap_or(0);
        if max > 0 {
            text.push_str(&format!(" (max {max} per node)"));
        }
        return ("replicated".into(), text);
    }
    if let Some(j) = mode.get("ReplicatedJob") {
        let total = j["TotalCompletions"].as_u64().unwrap_or(0);
        return (
            "replicated job".into(),
            format!("{running}/{desired} ({completed}/{total} completed)"),
        );
    }
    if mode.get("GlobalJob").is_some() {
        return (
            "global job".into(),
            format!("{running}/{desired} ({completed}/{desired} completed)"),
        );
    }
    ("global".into(), format!("{running}/{desired}"))
}

/// One `service ls` row.
pub fn service_row(s: &Value) -> Value {
    let (mode, replicas) = mode_and_replicas(s);
    row(vec![
        ("ID", short_id(s["ID"].as_str().unwrap_or(""))),
        ("Name", s["Spec"]["Name"].as_str().unwrap_or("").to_string()),
        ("Mode", mode),
        ("Replicas", replicas),
        (
            "Image",
            image_without_digest(
                s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
                    .as_str()
                    .unwrap_or(""),
            ),
        ),
        ("Ports", ports_column(s)),
    ])
}

/// Renders rows with `--format`/`-q` (`-q` prints full IDs, as docker does).
pub fn render_services(services: &[Value], format: Option<&str>, quiet: bool) -> Result<String> {
    if quiet && matches!(format, None | Some("") | Some("table")) {
        return Ok(services
            .iter()
            .map(|s| format!("{}\n", s["ID"].as_str().unwrap_or("")))
            .collect());
    }
    let rows: Vec<Value> = services.iter().map(service_row).collect();
    ListFormat {
        format,
        default_table: LS_TABLE,
        headers: LS_HEADERS,
    }
    .render(&rows)
}

/// The services matching `filters`, with their task counts, sorted by name.
pub async fn list_services(client: &Client, filters: &Value) -> Result<Vec<Value>> {
    let mut q = Query::new();
    q.add("status", "true");
    q.filters(filters);
    let mut services: Vec<Value> = client.get_json(&q.to_path("/services")).await?;
    services.sort_by(|a, b| {
        natural_cmp(
            a["Spec"]["Name"].as_str().unwrap_or(""),
            b["Spec"]["Name"].as_str().unwrap_or(""),
        )
    });
    Ok(services)
}

pub async fn ls(client: &Client, a: LsArgs) -> Result<()> {
    let f = opts::parse_filters(&a.filter).map_err(anyhow::Error::msg)?;
    let services = list_services(client, &f).await?;
    print!(
        "{}",
        render_services(&services, a.format.as_deref(), a.quiet)?
    );
    Ok(())
}

/// `berth service ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    pub list: TaskListFlags,
    /// Services
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

pub async fn ps(client: &Client, a: PsArgs) -> Result<()> {
    let base = opts::parse_filters(&a.list.filter).map_err(anyhow::Error::msg)?;
    let mut tasks = Vec::new();
    let mut errors = Vec::new();
    for name in &a.services {
        let found = async {
            let s: Value = client
                .get_json(&format!("/services/{}?insertDefaults=false", seg(name)))
                .await?;
            let id = s["ID"].as_str().unwrap_or("").to_string();
            let mut f = base.clone();
            f["service"] = json!({ id: true });
            client
                .get_json::<Vec<Value>>(&Query::new().filters(&f).to_path("/tasks"))
                .await
        }
        .await;
        match found {
            Ok(t) => tasks.extend(t),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() && tasks.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    print_tasks(client, tasks, &a.list).await?;
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_rows_like_docker() {
        let s = json!({
            "ID": "hyz1768bs0dqm2we3h3kmo465",
            "Spec": {"Name": "svc", "Mode": {"Replicated": {"Replicas": 1}},
                     "TaskTemplate": {"ContainerSpec": {"Image": "127.0.0.1:5000/bb:1@sha256:5300"}}},
            "Endpoint": {"Spec": {"Mode": "vip"}},
            "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1},
        });
        assert_eq!(
            render_services(std::slice::from_ref(&s), None, false).expect("render"),
            "ID             NAME      MODE         REPLICAS   IMAGE                 PORTS\n\
             hyz1768bs0dq   svc       replicated   1/1        127.0.0.1:5000/bb:1   \n"
        );
        assert_eq!(
            render_services(std::slice::from_ref(&s), None, true).expect("quiet"),
            "hyz1768bs0dqm2we3h3kmo465\n"
        );
        let mut g = s;
        g["Spec"]["Mode"] = json!({"Global": {}});
        g["ServiceStatus"] = json!({"RunningTasks": 2, "DesiredTasks": 3});
        g["Endpoint"]["Spec"]["Ports"] = json!([{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                                                {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"}]);
        let r = service_row(&g);
        assert_eq!(
            (
                r["Mode"].as_str(),
                r["Replicas"].as_str(),
                r["Ports"].as_str()
            ),
            (Some("global"), Some("2/3"), Some("*:8080->80/tcp"))
        );
    }
}
