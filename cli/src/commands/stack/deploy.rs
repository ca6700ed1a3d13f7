//! `stack deploy`: the compose file's plan (`convert.rs`) made real through the API, as the
//! docker CLI does it: prune (with `--prune`), networks, secrets, configs, then services,
//! each created or, when the stack already has it, updated at its current version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::{json, Value};

use super::compose;
use super::convert::{self, Context, DataObject, Plan, NAMESPACE_LABEL};
use crate::client::{seg, Client, Query};
use crate::commands::service::{post_update, progress, spec::resolve_image};
use crate::commands::swarm_data::{create_body, read_content};

/// `berth stack deploy`
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(short = 'c', long = "compose-file", required = true)]
    pub compose_file: Vec<String>,
    /// Prune services that are no longer referenced
    #[arg(long = "prune")]
    pub prune: bool,
    /// Query the registry to resolve image digest and supported platforms ("always", "changed", "never")
    #[arg(long = "resolve-image", default_value = "always")]
    pub resolve_image: String,
    /// Exit immediately instead of waiting for the stack services to converge
    #[arg(short = 'd', long = "detach", num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Stack
    #[arg(value_name = "STACK")]
    pub stack: String,
}

/// Docker's rule for stack names.
pub fn check_stack_name(name: &str) -> Result<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!("invalid name {name:?}: a stack name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*");
    }
    Ok(())
}

/// Later files override earlier ones, mapping by mapping (docker's multi `-c`).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(x) if x.is_object() && v.is_object() => merge(x, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Reads and merges the compose files; the directory relative paths start from.
pub fn load_compose(files: &[String]) -> Result<(Value, std::path::PathBuf)> {
    let mut doc = json!({});
    let mut dir = std::env::current_dir().map_err(|e| anyhow!("current directory: {e}"))?;
    for (i, f) in files.iter().enumerate() {
        let text =
            String::from_utf8(read_content(f)?).map_err(|_| anyhow!("{f}: not UTF-8 text"))?;
        let v =
            compose::load(&text, &|k| std::env::var(k).ok()).map_err(|e| anyhow!("{f}: {e}"))?;
        if i == 0 && f != "-" {
            if let Some(p) = Path::new(f).parent().filter(|p| !p.as_os_str().is_empty()) {
                dir = dir.join(p);
            }
        }
        merge(&mut doc, v);
    }
    Ok((doc, dir))
}

fn label_filter(stack: &str) -> Value {
    json!({"label": {format!("{NAMESPACE_LABEL}={stack}"): true}})
}

/// The stack's objects of one kind (`/services`, `/networks`, `/secrets`, `/configs`).
pub async fn stack_objects(client: &Client, path: &str, stack: &str) -> Result<Vec<Value>> {
    client
        .get_json(&Query::new().filters(&label_filter(stack)).to_path(path))
        .await
}

fn object_name(o: &Value) -> String {
    o["Spec"]["Name"]
        .as_str()
        .or(o["Name"].as_str())
        .unwrap_or("")
        .to_string()
}

async fn deploy_networks(client: &Client, stack: &str, plan: &Plan) -> Result<()> {
    let existing: BTreeSet<String> = stack_objects(client, "/networks", stack)
        .await?
        .iter()
        .map(object_name)
        .collect();
    for net in plan.networks.values() {
        if net.external {
            let found = client
                .get_json::<Value>(&format!("/networks/{}", seg(&net.name)))
                .await;
            match found {
                Ok(n) if n["Scope"].as_str().is_none_or(|s| s == "swarm") => {}
                Ok(n) => bail!("network {:?} is declared as external, but it is not in the right scope: {:?} instead of \"swarm\"", net.name, n["Scope"].as_str().unwrap_or("")),
                Err(_) => bail!("network {:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed", net.name),
            }
        } else if !existing.contains(&net.name) {
            println!("Creating network {}", net.name);
            client.post("/networks/create", Some(&net.body)).await?;
        }
    }
    Ok(())
}

/// Creates (or updates the labels of) the stack's secrets or configs; name → ID of each.
async fn deploy_data(
    client: &Client,
    path: &str,
    word: &str,
    objects: &BTreeMap<String, DataObject>,
) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for o in objects.values() {
        let source = json!({"names": {(o.name.clone()): true}});
        let found: Vec<Value> = client
            .get_json(&Query::new().filters(&source).to_path(path))
            .await?;
        let current = found.into_iter().find(|x| object_name(x) == o.name);
        if o.external {
            let c = current.ok_or_else(|| anyhow!("{word} not found: {}", o.name))?;
            ids.insert(o.name.clone(), c["ID"].as_str().unwrap_or("").to_string());
            continue;
        }
        let file = o
            .file
            .as_ref()
            .ok_or_else(|| anyhow!("{word} {}: no file", o.name))?;
        let data = read_content(&file.to_string_lossy())?;
        let body = create_body(
            &o.name,
            o.labels.clone(),
            &data,
            o.template_driver.as_deref(),
            None,
        );
        match current {
            Some(c) => {
                println!("Updating {word} {}", o.name);
                let id = c["ID"].as_str().unwrap_or("").to_string();
                let version = c["Version"]["Index"].as_u64().unwrap_or(0);
                client
                    .post(
                        &format!("{path}/{}/update?version={version}", seg(&id)),
                        Some(&body),
                    )
                    .await?;
                ids.insert(o.name.clone(), id);
            }
            None => {
                println!("Creating {word} {}", o.name);
                let created: Value = client
                    .post_json(&format!("{path}/create"), Some(&body))
                    .await?;
                ids.insert(
                    o.name.clone(),
                    created["ID"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    Ok(ids)
}

fn fill_ids(
    spec: &mut Value,
    list: &str,
    id_key: &str,
    name_key: &str,
    ids: &BTreeMap<String, String>,
) {
    for r in spec["TaskTemplate"]["ContainerSpec"][list]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let name = r[name_key].as_str().unwrap_or("").to_string();
        r[id_key] = json!(ids.get(&name).cloned().unwrap_or(name));
    }
}

async fn deploy_services(client: &Client, a: &DeployArgs, plan: Plan) -> Result<Vec<String>> {
    let existing: BTreeMap<String, Value> = stack_objects(client, "/services", &a.stack)
        .await?
        .into_iter()
        .map(|s| (object_name(&s), s))
        .collect();
    let mut ids = Vec::new();
    for (name, mut spec) in plan.services {
        let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let resolve = match a.resolve_image.as_str() {
            "always" => true,
            "never" => false,
            _ => existing
                .get(&name)
                .is_none_or(|s| s["Spec"]["Labels"][convert::IMAGE_LABEL] != image.as_str()),
        };
        if resolve {
            spec["TaskTemplate"]["ContainerSpec"]["Image"] =
                json!(resolve_image(client, &image).await);
        } else if let Some(s) = existing.get(&name).filter(|_| a.resolve_image == "changed") {
            spec["TaskTemplate"]["ContainerSpec"]["Image"] =
                s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].clone();
        }
        match existing.get(&name) {
            Some(s) => {
                let id = s["ID"].as_str().unwrap_or("").to_string();
                println!("Updating service {name} (id: {id})");
                // No --force here: keep the counter so unchanged tasks stay as they are.
                spec["TaskTemplate"]["ForceUpdate"] =
                    s["Spec"]["TaskTemplate"]["ForceUpdate"].clone();
                post_update(client, s, &spec, false).await?;
                ids.push(id);
            }
            None => {
                println!("Creating service {name}");
                let created: Value = client.post_json("/services/create", Some(&spec)).await?;
                ids.push(created["ID"].as_str().unwrap_or("").to_string());
            }
        }
    }
    Ok(ids)
}

pub async fn deploy(client: &Client, a: DeployArgs) -> Result<()> {
    check_stack_name(&a.stack)?;
    if !matches!(a.resolve_image.as_str(), "always" | "changed" | "never") {
        bail!(
            "Invalid option {} for flag --resolve-image",
            a.resolve_image
        );
    }
    let (doc, dir) = load_compose(&a.compose_file)?;
    let ctx = Context {
        namespace: &a.stack,
        dir: &dir,
    };
    let mut plan = convert::convert(&ctx, &doc).map_err(anyhow::Error::msg)?;
    if a.prune {
        for s in stack_objects(client, "/services", &a.stack).await? {
            let name = object_name(&s);
            if !plan.services.contains_key(&name) {
                println!("Removing service {name}");
                client
                    .delete(&format!(
                        "/services/{}",
                        seg(s["ID"].as_str().unwrap_or(""))
                    ))
                    .await?;
            }
        }
    }
    deploy_networks(client, &a.stack, &plan).await?;
    let secret_ids = deploy_data(client, "/secrets", "secret", &plan.secrets).await?;
    let config_ids = deploy_data(client, "/configs", "config", &plan.configs).await?;
    for spec in plan.services.values_mut() {
        fill_ids(spec, "Secrets", "SecretID", "SecretName", &secret_ids);
        fill_ids(spec, "Configs", "ConfigID", "ConfigName", &config_ids);
    }
    let ids = deploy_services(client, &a, plan).await?;
    if !a.detach {
        for id in ids {
            progress::wait(client, &id, a.quiet).await?;
        }
    }
    Ok(())
}
