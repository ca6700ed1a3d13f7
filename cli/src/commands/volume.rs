//! `volume create|ls|rm|inspect|prune`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{seg, Client, Query};
use crate::commands::container::{confirm, for_each};
use crate::commands::inspect::{self, Kind, TypedInspectArgs};
use crate::format::human_size;
use crate::opts;
use crate::output::{row, ListFormat};

/// `berth volume ...`
#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Display detailed information on one or more volumes
    Inspect(TypedInspectArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

pub async fn dispatch(client: &Client, cmd: VolumeCmd) -> Result<()> {
    match cmd {
        VolumeCmd::Create(a) => create(client, a).await,
        VolumeCmd::Ls(a) => ls(client, a).await,
        VolumeCmd::Rm(a) => rm(client, a).await,
        VolumeCmd::Inspect(a) => inspect::typed(client, Kind::Volume, a).await,
        VolumeCmd::Prune(a) => prune(client, a).await,
    }
}

/// `berth volume create`
#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Volume name
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

pub async fn create(client: &Client, args: VolumeCreateArgs) -> Result<()> {
    if args.name.is_some() && args.name_flag.is_some() && args.name != args.name_flag {
        bail!("conflicting options: cannot specify a volume-name through both --name and as a positional arg");
    }
    let name = args.name.or(args.name_flag).unwrap_or_default();
    let body = json!({
        "Driver": args.driver,
        "DriverOpts": Value::Object(opts::parse_kv_map(&args.opt, "opt").map_err(anyhow::Error::msg)?),
        "Labels": Value::Object(opts::parse_labels(&args.label)),
        "Name": name,
    });
    let resp: Value = client.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", resp["Name"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth volume ls`
#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("CreatedAt", "CREATED AT"),
];

/// One `volume ls` row.
pub fn volume_row(v: &Value) -> Value {
    let mut labels: Vec<String> = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let size = v["UsageData"]["Size"].as_i64().unwrap_or(-1);
    let links = v["UsageData"]["RefCount"].as_i64().unwrap_or(-1);
    row(vec![
        ("Driver", v["Driver"].as_str().unwrap_or("").to_string()),
        ("Name", v["Name"].as_str().unwrap_or("").to_string()),
        ("Scope", v["Scope"].as_str().unwrap_or("").to_string()),
        (
            "Mountpoint",
            v["Mountpoint"].as_str().unwrap_or("").to_string(),
        ),
        ("Labels", labels.join(",")),
        (
            "Links",
            if links < 0 {
                "N/A".to_string()
            } else {
                links.to_string()
            },
        ),
        (
            "Size",
            if size < 0 {
                "N/A".to_string()
            } else {
                human_size(size as f64)
            },
        ),
        (
            "CreatedAt",
            v["CreatedAt"].as_str().unwrap_or("").to_string(),
        ),
    ])
}

pub async fn ls(client: &Client, args: VolumeLsArgs) -> Result<()> {
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let resp: Value = client
        .get_json(&Query::new().filters(&f).to_path("/volumes"))
        .await?;
    let mut vols: Vec<Value> = resp["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|a, b| {
        a["Name"]
            .as_str()
            .unwrap_or("")
            .cmp(b["Name"].as_str().unwrap_or(""))
    });
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    let format = if args.quiet {
        Some("{{.Name}}".to_string())
    } else {
        args.format.clone()
    };
    let lf = ListFormat {
        format: format.as_deref(),
        default_table: "table {{.Driver}}\t{{.Name}}",
        headers: HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    for w in resp["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        eprintln!("{w}");
    }
    Ok(())
}

/// `berth volume rm`
#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Volumes
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

pub async fn rm(client: &Client, args: VolumeRmArgs) -> Result<()> {
    let mut q = Query::new();
    q.flag("force", args.force);
    for_each(&args.volumes, |v| {
        let path = q.to_path(&format!("/volumes/{}", seg(&v)));
        async move { client.delete(&path).await.map(|_| None) }
    })
    .await
}

/// `berth volume prune`
#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// `POST /volumes/prune`; returns (removed names, reclaimed bytes).
pub async fn prune_volumes(
    client: &Client,
    all: bool,
    filter: &[String],
) -> Result<(Vec<String>, u64)> {
    let mut items = filter.to_vec();
    if all {
        items.push("all=true".to_string());
    }
    let f = opts::parse_filters(&items).map_err(anyhow::Error::msg)?;
    let resp: Value = client
        .post_json(&Query::new().filters(&f).to_path("/volumes/prune"), None)
        .await?;
    let names = resp["VolumesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    Ok((names, resp["SpaceReclaimed"].as_u64().unwrap_or(0)))
}

pub async fn prune(client: &Client, args: VolumePruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !args.force && !confirm(warning) {
        return Ok(());
    }
    let (names, space) = prune_volumes(client, args.all, &args.filter).await?;
    if !names.is_empty() {
        println!("Deleted Volumes:");
        for n in names {
            println!("{n}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(space as f64));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_table() {
        let rows = vec![volume_row(
            &json!({"Driver": "local", "Name": "v1", "Scope": "local"}),
        )];
        let lf = ListFormat {
            format: None,
            default_table: "table {{.Driver}}\t{{.Name}}",
            headers: HEADERS,
        };
        assert_eq!(
            lf.render(&rows).expect("render"),
            "DRIVER    VOLUME NAME\nlocal     v1\n"
        );
    }
}
