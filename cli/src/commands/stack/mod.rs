//! `stack deploy|ls|ps|services|rm`: compose files on a cluster, translated here as the
//! docker CLI translates them (the daemon knows no stacks, only objects labelled
//! `com.docker.stack.namespace=<stack>`).
//!
//! ```text
//!  deploy ─► compose.rs (YAML, merge keys, ${VAR} substitution) ─► convert.rs + service.rs +
//!            volumes.rs (plan: networks, secrets, configs, service specs) ─► deploy.rs (API)
//!  ls ─────► GET /services (the namespace label of each) ─► NAME SERVICES
//!  services► service ls --filter label=<ns>      ps ─► GET /tasks?filters={"label":[<ns>]}
//!  rm ─────► DELETE services, secrets, configs, networks carrying the label
//! ```

pub mod compose;
pub mod convert;
pub mod deploy;
pub mod service;
pub mod volumes;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{seg, Client, Query};
use crate::commands::node_ps::{print_tasks, TaskListFlags};
use crate::commands::service::list::render_services;
use crate::error::StatusError;
use crate::opts;
use crate::output::{row, ListFormat};
use convert::NAMESPACE_LABEL;
use deploy::stack_objects;

/// `berth stack ...`
#[derive(Subcommand, Debug)]
pub enum StackCmd {
    /// Deploy a new stack or update an existing stack
    #[command(visible_alias = "up")]
    Deploy(deploy::DeployArgs),
    /// List stacks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// List the tasks in the stack
    Ps(StackPsArgs),
    /// List the services in the stack
    Services(ServicesArgs),
    /// Remove one or more stacks
    #[command(visible_aliases = ["remove", "down"])]
    Rm(RmArgs),
}

pub async fn dispatch(client: &Client, cmd: StackCmd) -> Result<()> {
    match cmd {
        StackCmd::Deploy(a) => deploy::deploy(client, a).await,
        StackCmd::Ls(a) => ls(client, a).await,
        StackCmd::Ps(a) => ps(client, a).await,
        StackCmd::Services(a) => services(client, a).await,
        StackCmd::Rm(a) => rm(client, a).await,
    }
}

/// `berth stack ls`
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
}

async fn ls(client: &Client, a: LsArgs) -> Result<()> {
    let filters = json!({"label": {NAMESPACE_LABEL: true}});
    let list: Vec<Value> = client
        .get_json(&Query::new().filters(&filters).to_path("/services"))
        .await?;
    let mut stacks: BTreeMap<String, usize> = BTreeMap::new();
    for s in &list {
        if let Some(ns) = s["Spec"]["Labels"][NAMESPACE_LABEL].as_str() {
            *stacks.entry(ns.to_string()).or_default() += 1;
        }
    }
    let rows: Vec<Value> = stacks
        .iter()
        .map(|(n, c)| row(vec![("Name", n.clone()), ("Services", c.to_string())]))
        .collect();
    let lf = ListFormat {
        format: a.format.as_deref(),
        default_table: "table {{.Name}}\t{{.Services}}",
        headers: &[("Name", "NAME"), ("Services", "SERVICES")],
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

/// `berth stack services`
#[derive(Args, Debug)]
pub struct ServicesArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Stack
    #[arg(value_name = "STACK")]
    pub stack: String,
}

fn nothing_found(stack: &str) -> anyhow::Error {
    StatusError::new(0, format!("Nothing found in stack: {stack}")).into()
}

fn with_namespace(filters: &[String], stack: &str) -> Result<Value> {
    let mut f = opts::parse_filters(filters).map_err(anyhow::Error::msg)?;
    let label = format!("{NAMESPACE_LABEL}={stack}");
    match f.get_mut("label").and_then(Value::as_object_mut) {
        Some(m) => {
            m.insert(label, json!(true));
        }
        None => f["label"] = json!({ label: true }),
    }
    Ok(f)
}

async fn services(client: &Client, a: ServicesArgs) -> Result<()> {
    let f = with_namespace(&a.filter, &a.stack)?;
    let services = crate::commands::service::list::list_services(client, &f).await?;
    if services.is_empty() && a.filter.is_empty() {
        return Err(nothing_found(&a.stack));
    }
    print!(
        "{}",
        render_services(&services, a.format.as_deref(), a.quiet)?
    );
    Ok(())
}

/// `berth stack ps`
#[derive(Args, Debug)]
pub struct StackPsArgs {
    #[command(flatten)]
    pub list: TaskListFlags,
    /// Stack
    #[arg(value_name = "STACK")]
    pub stack: String,
}

async fn ps(client: &Client, a: StackPsArgs) -> Result<()> {
    let f = with_namespace(&a.list.filter, &a.stack)?;
    let tasks: Vec<Value> = client
        .get_json(&Query::new().filters(&f).to_path("/tasks"))
        .await?;
    if tasks.is_empty() && a.list.filter.is_empty() {
        return Err(nothing_found(&a.stack));
    }
    print_tasks(client, tasks, &a.list).await
}

/// `berth stack rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not wait for stack removal
    #[arg(short = 'd', long = "detach", num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    pub detach: bool,
    /// Stacks
    #[arg(value_name = "STACK", required = true)]
    pub stacks: Vec<String>,
}

fn name_of(o: &Value) -> String {
    o["Spec"]["Name"]
        .as_str()
        .or(o["Name"].as_str())
        .unwrap_or("")
        .to_string()
}

async fn rm_stack(client: &Client, stack: &str, detach: bool) -> Result<bool> {
    let services = stack_objects(client, "/services", stack).await?;
    let secrets = stack_objects(client, "/secrets", stack).await?;
    let configs = stack_objects(client, "/configs", stack).await?;
    let networks = stack_objects(client, "/networks", stack).await?;
    if services.is_empty() && secrets.is_empty() && configs.is_empty() && networks.is_empty() {
        eprintln!("Nothing found in stack: {stack}");
        return Ok(true);
    }
    let mut ok = true;
    for (word, path, list) in [
        ("service", "/services", &services),
        ("secret", "/secrets", &secrets),
        ("config", "/configs", &configs),
    ] {
        let mut sorted: Vec<&Value> = list.iter().collect();
        sorted.sort_by_key(|o| name_of(o));
        for o in sorted {
            println!("Removing {word} {}", name_of(o));
            if let Err(e) = client
                .delete(&format!("{path}/{}", seg(o["ID"].as_str().unwrap_or(""))))
                .await
            {
                eprintln!(
                    "Failed to remove {word} {}: {e:#}",
                    o["ID"].as_str().unwrap_or("")
                );
                ok = false;
            }
        }
    }
    for n in &networks {
        println!("Removing network {}", name_of(n));
        let id = n["Id"].as_str().or(n["ID"].as_str()).unwrap_or("");
        if let Err(e) = client.delete(&format!("/networks/{}", seg(id))).await {
            eprintln!("Failed to remove network {}: {e:#}", name_of(n));
            ok = false;
        }
    }
    if ok && !detach {
        let f = json!({"label": {format!("{NAMESPACE_LABEL}={stack}"): true}});
        while !client
            .get_json::<Vec<Value>>(&Query::new().filters(&f).to_path("/tasks"))
            .await?
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(ok)
}

async fn rm(client: &Client, a: RmArgs) -> Result<()> {
    let mut failed = Vec::new();
    for stack in &a.stacks {
        if !rm_stack(client, stack, a.detach).await? {
            failed.push(format!(
                "Failed to remove some resources from stack: {stack}"
            ));
        }
    }
    if !failed.is_empty() {
        return Err(StatusError::new(1, failed.join("\n")).into());
    }
    Ok(())
}
