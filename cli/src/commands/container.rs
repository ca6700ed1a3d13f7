//! Container lifecycle verbs that act on one or more containers by name or ID: `stop`,
//! `restart`, `kill`, `pause`, `unpause`, `rm`, `wait`, `rename`, `update`, `container prune`,
//! `diff`, `port`, `top`. Multi-container verbs run concurrently, print each name that succeeded
//! in argument order, print each failure on stderr, and exit 1 if any failed.

use std::future::Future;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::client::{seg, Client, Query};
use crate::error::{is_not_found, StatusError};
use crate::format::human_size;
use crate::opts::{self, flag_error};
use crate::tabwriter::TabWriter;

/// Runs `op` for every name concurrently; prints the name (or `print` of the result) on success.
pub async fn for_each<F, Fut>(names: &[String], op: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<String>>>,
{
    let results = futures_util::future::join_all(names.iter().map(|n| op(n.clone()))).await;
    let mut failed = false;
    for (name, res) in names.iter().zip(results) {
        match res {
            Ok(Some(text)) => println!("{text}"),
            Ok(None) => println!("{name}"),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(StatusError::code(1).into());
    }
    Ok(())
}

/// Asks `[y/N]` on stdin; anything but y/Y is no.
pub fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

/// `berth stop` / `berth restart`
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    /// Containers
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

fn stop_query(args: &StopArgs) -> Query {
    let mut q = Query::new();
    if let Some(t) = args.timeout {
        q.add("t", t.to_string());
    }
    q.opt("signal", args.signal.as_deref());
    q
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<()> {
    let q = stop_query(&args);
    for_each(&args.containers, |c| {
        let path = q.to_path(&format!("/containers/{}/stop", seg(&c)));
        async move { client.post(&path, None).await.map(|_| None) }
    })
    .await
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<()> {
    let q = stop_query(&args);
    for_each(&args.containers, |c| {
        let path = q.to_path(&format!("/containers/{}/restart", seg(&c)));
        async move { client.post(&path, None).await.map(|_| None) }
    })
    .await
}

/// `berth kill`
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    /// Containers
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<()> {
    let mut q = Query::new();
    q.opt("signal", args.signal.as_deref());
    for_each(&args.containers, |c| {
        let path = q.to_path(&format!("/containers/{}/kill", seg(&c)));
        async move { client.post(&path, None).await.map(|_| None) }
    })
    .await
}

/// Arguments of verbs that only take container names (`pause`, `unpause`, `wait`).
#[derive(Args, Debug)]
pub struct ContainersArgs {
    /// Containers
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `pause` or `unpause`.
pub async fn simple_post(client: &Client, verb: &str, args: ContainersArgs) -> Result<()> {
    for_each(&args.containers, |c| {
        let path = format!("/containers/{}/{verb}", seg(&c));
        async move { client.post(&path, None).await.map(|_| None) }
    })
    .await
}

pub async fn wait(client: &Client, args: ContainersArgs) -> Result<()> {
    for_each(&args.containers, |c| {
        let path = format!("/containers/{}/wait", seg(&c));
        async move {
            let resp = client.post(&path, None).await?;
            let code = crate::commands::session::wait_status(resp).await?;
            Ok(Some(code.to_string()))
        }
    })
    .await
}

/// `berth rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long = "link")]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// Containers
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<()> {
    let mut q = Query::new();
    q.flag("force", args.force)
        .flag("link", args.link)
        .flag("v", args.volumes);
    let names: Vec<String> = args
        .containers
        .iter()
        .map(|c| c.trim_matches('/').to_string())
        .collect();
    let results = futures_util::future::join_all(names.iter().map(|name| {
        let path = q.to_path(&format!("/containers/{}", seg(name)));
        async move { client.delete(&path).await }
    }))
    .await;
    let mut failed = false;
    for (name, res) in names.iter().zip(results) {
        match res {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("{e:#}");
                // Like docker, `rm -f` does not fail for containers that are already gone.
                if !(args.force && is_not_found(&e)) {
                    failed = true;
                }
            }
        }
    }
    if failed {
        return Err(StatusError::code(1).into());
    }
    Ok(())
}

/// `berth rename`
#[derive(Args, Debug)]
pub struct RenameArgs {
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// New name
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub async fn rename(client: &Client, args: RenameArgs) -> Result<()> {
    let new = args.new_name.trim();
    if new.is_empty() || new == "/" {
        bail!("Error: Neither old nor new names may be empty");
    }
    let path = Query::new()
        .add("name", new)
        .to_path(&format!("/containers/{}/rename", seg(&args.container)));
    if let Err(e) = client.post(&path, None).await {
        eprintln!("{e:#}");
        return Err(StatusError::new(
            1,
            format!("Error: failed to rename container named {}", args.container),
        )
        .into());
    }
    Ok(())
}

/// `berth update`
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    pub restart: Option<String>,
    /// Containers
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    /// The `POST /containers/{id}/update` body: only the fields given.
    pub fn body(&self) -> Result<Value> {
        let usage = |e: String| anyhow::Error::new(StatusError::new(125, e));
        let mut m = Map::new();
        let ram = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
            match v {
                None => Ok(None),
                Some(s) if s == "-1" && flag == "--memory-swap" => Ok(Some(-1)),
                Some(s) => opts::parse_ram(s)
                    .map(Some)
                    .map_err(|e| usage(flag_error(s, flag, &e))),
            }
        };
        if let Some(v) = ram(&self.memory, "-m, --memory")? {
            m.insert("Memory".into(), json!(v));
        }
        if let Some(v) = ram(&self.memory_reservation, "--memory-reservation")? {
            m.insert("MemoryReservation".into(), json!(v));
        }
        if let Some(v) = ram(&self.memory_swap, "--memory-swap")? {
            m.insert("MemorySwap".into(), json!(v));
        }
        if let Some(c) = &self.cpus {
            let n = opts::parse_nano_cpus(c).map_err(|e| usage(flag_error(c, "--cpus", &e)))?;
            m.insert("NanoCpus".into(), json!(n));
        }
        if let Some(v) = self.blkio_weight {
            m.insert("BlkioWeight".into(), json!(v));
        }
        if let Some(v) = self.cpu_period {
            m.insert("CpuPeriod".into(), json!(v));
        }
        if let Some(v) = self.cpu_quota {
            m.insert("CpuQuota".into(), json!(v));
        }
        if let Some(v) = self.cpu_shares {
            m.insert("CpuShares".into(), json!(v));
        }
        if let Some(v) = &self.cpuset_cpus {
            m.insert("CpusetCpus".into(), json!(v));
        }
        if let Some(v) = &self.cpuset_mems {
            m.insert("CpusetMems".into(), json!(v));
        }
        if let Some(v) = self.pids_limit {
            m.insert("PidsLimit".into(), json!(v));
        }
        if let Some(r) = &self.restart {
            let p = opts::parse_restart(r).map_err(|e| usage(flag_error(r, "--restart", &e)))?;
            m.insert("RestartPolicy".into(), p);
        }
        if m.is_empty() {
            bail!("you must provide one or more flags when using this command");
        }
        Ok(Value::Object(m))
    }
}

pub async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let body = args.body()?;
    for_each(&args.containers, |c| {
        let path = format!("/containers/{}/update", seg(&c));
        let body = body.clone();
        async move {
            let resp: Value = client.post_json(&path, Some(&body)).await?;
            if let Some(w) = resp["Warnings"].as_array() {
                for w in w.iter().filter_map(Value::as_str) {
                    eprintln!("WARNING: {w}");
                }
            }
            Ok(None)
        }
    })
    .await
}

/// `berth container prune`
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

/// `POST /containers/prune`; returns (deleted IDs, reclaimed bytes).
pub async fn prune_containers(client: &Client, filters: &[String]) -> Result<(Vec<String>, u64)> {
    let f = opts::parse_filters(filters).map_err(anyhow::Error::msg)?;
    let resp: Value = client
        .post_json(&Query::new().filters(&f).to_path("/containers/prune"), None)
        .await?;
    let ids = resp["ContainersDeleted"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok((ids, resp["SpaceReclaimed"].as_u64().unwrap_or(0)))
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<()> {
    if !args.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(());
    }
    let (ids, space) = prune_containers(client, &args.filter).await?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for id in &ids {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(space as f64));
    Ok(())
}

/// Arguments of verbs that take one container.
#[derive(Args, Debug)]
pub struct ContainerArg {
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn diff(client: &Client, args: ContainerArg) -> Result<()> {
    let changes: Value = client
        .get_json(&format!("/containers/{}/changes", seg(&args.container)))
        .await?;
    for c in changes.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", c["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

/// `berth port`
#[derive(Args, Debug)]
pub struct PortArgs {
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// `80/tcp -> 0.0.0.0:8080` lines for a container's `NetworkSettings.Ports`, naturally sorted.
pub fn port_lines(ports: &Value, filter: Option<&str>) -> Result<Vec<String>, String> {
    let want = filter.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut out: Vec<(u32, String)> = Vec::new();
    if let Some(map) = ports.as_object() {
        for (key, bindings) in map {
            if want.as_deref().is_some_and(|w| w != key) {
                continue;
            }
            let num: u32 = key
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            for b in bindings.as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let port = b["HostPort"].as_str().unwrap_or("");
                let addr = if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                };
                if want.is_some() {
                    out.push((num, addr));
                } else {
                    out.push((num, format!("{key} -> {addr}")));
                }
            }
        }
    }
    if out.is_empty() {
        if let Some(w) = want {
            return Err(w);
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

pub async fn port(client: &Client, args: PortArgs) -> Result<()> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    match port_lines(&info["NetworkSettings"]["Ports"], args.port.as_deref()) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Err(_) => bail!(
            "Error: No public port '{}' published for {}",
            args.port.as_deref().unwrap_or(""),
            args.container
        ),
    }
}

/// `berth top`
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// ps options
    #[arg(value_name = "ps OPTIONS", trailing_var_arg = true)]
    pub ps_args: Vec<String>,
}

/// Renders `GET /containers/{id}/top` like docker (20-wide columns).
pub fn render_top(top: &Value) -> String {
    let mut tw = TabWriter::new(20, 3);
    let titles: Vec<String> = top["Titles"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    tw.row(&titles);
    for p in top["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<String> = p
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        tw.row(&cells);
    }
    tw.finish()
}

pub async fn top(client: &Client, args: TopArgs) -> Result<()> {
    let mut q = Query::new();
    if !args.ps_args.is_empty() {
        q.add("ps_args", args.ps_args.join(" "));
    }
    let top: Value = client
        .get_json(&q.to_path(&format!("/containers/{}/top", seg(&args.container))))
        .await?;
    print!("{}", render_top(&top));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn port_output() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "443/tcp": null,
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]
        });
        assert_eq!(
            port_lines(&ports, None),
            Ok(vec![
                "53/udp -> 127.0.0.1:5353".to_string(),
                "80/tcp -> 0.0.0.0:8080".to_string(),
                "80/tcp -> [::]:8080".to_string()
            ])
        );
        assert_eq!(
            port_lines(&ports, Some("80")),
            Ok(vec!["0.0.0.0:8080".to_string(), "[::]:8080".to_string()])
        );
        assert_eq!(port_lines(&ports, Some("81")), Err("81/tcp".to_string()));
    }

    #[test]
    fn top_table() {
        let top =
            json!({"Titles": ["UID", "PID", "CMD"], "Processes": [["root", "19573", "sleep 30"]]});
        assert_eq!(
            render_top(&top),
            "UID                 PID                 CMD\nroot                19573               sleep 30\n"
        );
    }

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: UpdateArgs,
    }

    #[test]
    fn update_body_has_only_given_fields() {
        let w = Wrap::try_parse_from([
            "update",
            "-m",
            "128m",
            "--cpus",
            "1.5",
            "--restart",
            "on-failure:2",
            "c1",
        ])
        .expect("parse");
        assert_eq!(
            w.args.body().expect("body"),
            json!({"Memory": 134217728, "NanoCpus": 1500000000, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        );
        let w = Wrap::try_parse_from(["update", "c1"]).expect("parse");
        assert!(w.args.body().is_err());
        let w = Wrap::try_parse_from(["update", "--cpus", "x", "c1"]).expect("parse");
        assert!(w.args.body().is_err());
    }
}
