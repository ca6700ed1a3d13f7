//! `service create|ls|ps|inspect|update|scale|rollback|rm|logs`: the cluster's services, as
//! the docker CLI drives them. Specs are built and changed here, from flags (`flags.rs`,
//! `parse.rs`, `spec.rs`, `update.rs`); the daemon only ever sees whole specs.
//!
//! ```text
//!  create ───► spec from flags ─► secret/config names → IDs ─► image → digest (unless
//!              --no-resolve-image) ─► POST /services/create ─► ID ─► progress (unless -d)
//!  update ───► GET /services/{name} ─► flags applied to Spec ─► POST /services/{id}/update
//!  scale       ?version=<Version.Index> (a stale version: the daemon's "update out of
//!  rollback    sequence") ─► progress (unless -d); rollback adds ?rollback=previous
//!  ls, ps ───► list.rs        inspect ─► inspect.rs       logs ─► logs.rs
//!  rm ───────► DELETE /services/{name}
//! ```

pub mod flags;
pub mod inspect;
pub mod list;
pub mod logs;
pub mod parse;
pub mod progress;
pub mod spec;
pub mod update;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::{seg, Client, Query};
use crate::error::StatusError;
use flags::{CreateArgs, UpdateArgs};
use spec::{create_spec, resolve_image, resolve_refs, RefKind};

/// `berth service ...`
// Parsed once per process; boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create a new service
    Create(CreateArgs),
    /// List services
    #[command(visible_alias = "list")]
    Ls(list::LsArgs),
    /// List the tasks of one or more services
    Ps(list::PsArgs),
    /// Display detailed information on one or more services
    Inspect(inspect::InspectArgs),
    /// Update a service
    Update(UpdateArgs),
    /// Scale one or multiple replicated services
    Scale(ScaleArgs),
    /// Revert changes to a service's configuration
    Rollback(RollbackArgs),
    /// Remove one or more services
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Fetch the logs of a service or task
    Logs(logs::LogsArgs),
}

pub async fn dispatch(client: &Client, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::Create(a) => create(client, a).await,
        ServiceCmd::Ls(a) => list::ls(client, a).await,
        ServiceCmd::Ps(a) => list::ps(client, a).await,
        ServiceCmd::Inspect(a) => inspect::inspect(client, a).await,
        ServiceCmd::Update(a) => update(client, a).await,
        ServiceCmd::Scale(a) => scale(client, a).await,
        ServiceCmd::Rollback(a) => rollback(client, a).await,
        ServiceCmd::Rm(a) => rm(client, a).await,
        ServiceCmd::Logs(a) => logs::logs(client, a).await,
    }
}

/// A flag value docker would refuse: its message, exit code 125 like a flag parse error.
fn bad_flag(e: String) -> anyhow::Error {
    StatusError::new(125, e).into()
}

async fn create(client: &Client, a: CreateArgs) -> Result<()> {
    let mut spec = create_spec(&a).map_err(bad_flag)?;
    let secrets = resolve_refs(client, RefKind::Secret, &a.secret).await?;
    let configs = resolve_refs(client, RefKind::Config, &a.config).await?;
    let cs = spec::obj(&mut spec, &["TaskTemplate", "ContainerSpec"]);
    if !secrets.is_empty() {
        cs.insert("Secrets".into(), Value::Array(secrets));
    }
    if !configs.is_empty() {
        cs.insert("Configs".into(), Value::Array(configs));
    }
    if !a.spec.no_resolve_image {
        let image = a.args.first().cloned().unwrap_or_default();
        let pinned = resolve_image(client, &image).await;
        spec::obj(&mut spec, &["TaskTemplate", "ContainerSpec"])
            .insert("Image".into(), pinned.into());
    }
    let created: Value = client.post_json("/services/create", Some(&spec)).await?;
    let id = created["ID"].as_str().unwrap_or("").to_string();
    print_warnings(&created);
    println!("{id}");
    if a.spec.detach {
        return Ok(());
    }
    progress::wait(client, &id, a.spec.quiet).await
}

fn print_warnings(resp: &Value) {
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
}

/// `POST /services/{id}/update?version=N[&rollback=previous]` with `spec`.
pub async fn post_update(
    client: &Client,
    service: &Value,
    spec: &Value,
    rollback: bool,
) -> Result<()> {
    let id = service["ID"].as_str().unwrap_or("");
    let version = service["Version"]["Index"].as_u64().unwrap_or(0);
    let mut q = Query::new();
    if rollback {
        q.add("rollback", "previous");
    }
    q.add("version", version.to_string());
    let resp: Value = client
        .post_json(
            &q.to_path(&format!("/services/{}/update", seg(id))),
            Some(spec),
        )
        .await?;
    print_warnings(&resp);
    Ok(())
}

/// `GET /services/{name}?insertDefaults=false`, as docker reads a spec to change it.
pub async fn get_service(client: &Client, name: &str) -> Result<Value> {
    client
        .get_json(&format!("/services/{}?insertDefaults=false", seg(name)))
        .await
}

async fn resolve_update(client: &Client, a: &UpdateArgs) -> Result<update::Resolved> {
    let mut r = update::Resolved {
        secrets_add: resolve_refs(client, RefKind::Secret, &a.secret_add).await?,
        configs_add: resolve_refs(client, RefKind::Config, &a.config_add).await?,
        ..Default::default()
    };
    for n in &a.network_rm {
        r.networks_rm.push(n.clone());
        if let Ok(net) = client
            .get_json::<Value>(&format!("/networks/{}", seg(n)))
            .await
        {
            r.networks_rm
                .push(net["Id"].as_str().unwrap_or("").to_string());
        }
    }
    if let Some(image) = &a.image {
        r.image = Some(if a.spec.no_resolve_image {
            image.clone()
        } else {
            resolve_image(client, image).await
        });
    }
    Ok(r)
}

async fn update(client: &Client, a: UpdateArgs) -> Result<()> {
    let service = get_service(client, &a.service).await?;
    let id = service["ID"].as_str().unwrap_or("").to_string();
    let mut spec = service["Spec"].clone();
    if a.rollback {
        post_update(client, &service, &spec, true).await?;
    } else {
        let r = resolve_update(client, &a).await?;
        update::apply_update(&mut spec, &a, &r).map_err(bad_flag)?;
        post_update(client, &service, &spec, false).await?;
    }
    println!("{}", a.service);
    if a.spec.detach {
        return Ok(());
    }
    progress::wait(client, &id, a.spec.quiet).await
}

/// `berth service scale`
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// SERVICE=REPLICAS pairs
    #[arg(value_name = "SERVICE=REPLICAS", required = true)]
    pub pairs: Vec<String>,
}

/// `svc=3` → ("svc", 3), with docker's messages for what is not.
pub fn parse_scale(s: &str) -> Result<(String, u64), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid scale specifier '{s}'.\nSee 'berth service scale --help'.\n\nUsage:  berth service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"))?;
    let n = n.parse::<u64>().map_err(|_| {
        format!("invalid replicas value {n}: strconv.ParseUint: parsing \"{n}\": invalid syntax")
    })?;
    Ok((name.to_string(), n))
}

async fn scale(client: &Client, a: ScaleArgs) -> Result<()> {
    let pairs = a
        .pairs
        .iter()
        .map(|p| parse_scale(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_flag)?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for (name, n) in pairs {
        let done = async {
            let service = get_service(client, &name).await?;
            let mut spec = service["Spec"].clone();
            match spec::mode_key(&spec) {
                "Replicated" => spec["Mode"]["Replicated"]["Replicas"] = n.into(),
                "ReplicatedJob" => spec["Mode"]["ReplicatedJob"]["TotalCompletions"] = n.into(),
                _ => bail!("scale can only be used with replicated or replicated-job mode"),
            }
            post_update(client, &service, &spec, false).await?;
            Ok::<String, anyhow::Error>(service["ID"].as_str().unwrap_or("").to_string())
        }
        .await;
        match done {
            Ok(id) => {
                println!("{name} scaled to {n}");
                scaled.push(id);
            }
            Err(e) => errors.push(format!("{name}: {e:#}")),
        }
    }
    if !a.detach {
        for id in &scaled {
            progress::wait(client, id, false).await?;
        }
    }
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

/// `berth service rollback`
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Service
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

async fn rollback(client: &Client, a: RollbackArgs) -> Result<()> {
    let service = get_service(client, &a.service).await?;
    post_update(client, &service, &service["Spec"], true).await?;
    println!("{}", a.service);
    if a.detach {
        return Ok(());
    }
    progress::wait(client, service["ID"].as_str().unwrap_or(""), a.quiet).await
}

/// `berth service rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Services
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

async fn rm(client: &Client, a: RmArgs) -> Result<()> {
    client
        .delete_each(&a.services, |name| format!("/services/{}", seg(name)))
        .await
}
