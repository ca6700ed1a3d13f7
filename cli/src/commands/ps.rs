//! `ps` / `container ls`: `GET /containers/json` rendered with docker's container columns.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{Client, Query};
use crate::format::{
    ago, created_at, display_ports, ellipsis, go_quote, human_size_prec, PortEntry,
};
use crate::opts;
use crate::output::{row, ListFormat};

/// `berth ps`
#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
}

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's `stringid.TruncateID`: drop anything up to `:`, keep 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
    id.chars().take(12).collect()
}

fn image_column(image: &str, image_id: &str, trunc: bool) -> String {
    if !trunc {
        return image.to_string();
    }
    if truncate_id(image) == truncate_id(image_id) {
        return truncate_id(image);
    }
    match image.split_once('@') {
        Some((name, _)) => name.to_string(),
        None => image.to_string(),
    }
}

/// One `ps` row from a `GET /containers/json` entry.
pub fn container_row(c: &Value, trunc: bool) -> Value {
    let mut r = container_fields(c, trunc);
    if let Some(m) = r.as_object_mut() {
        // The daemon (API < 1.48) reports no platform; docker prints it as null.
        m.insert(
            "Platform".into(),
            c.get("ImageManifestDescriptor")
                .and_then(|d| d.get("platform"))
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    r
}

/// `key=value` of each label, sorted.
fn sorted_labels(c: &Value) -> Vec<String> {
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    labels
}

/// Each mount's volume name, else its source (shortened to 15 characters with `trunc`).
fn mount_names(c: &Value, trunc: bool) -> Vec<String> {
    c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect()
}

/// `SIZE`: the writable layer, and the whole root file system when the daemon measured it.
fn size_column(c: &Value) -> String {
    let size_rw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let size_root = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    if size_root > 0.0 {
        format!(
            "{} (virtual {})",
            human_size_prec(size_rw, 3),
            human_size_prec(size_root, 3)
        )
    } else {
        human_size_prec(size_rw, 3)
    }
}

fn container_fields(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|n| !trunc || n.trim_start_matches('/').split('/').count() == 1)
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let command = c["Command"].as_str().unwrap_or("");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let ports: Vec<PortEntry> = c["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(PortEntry::from_json)
        .collect();
    let labels = sorted_labels(c);
    let mounts = mount_names(c, trunc);
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size = size_column(c);
    row(vec![
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            },
        ),
        (
            "Image",
            image_column(
                c["Image"].as_str().unwrap_or(""),
                c["ImageID"].as_str().unwrap_or(""),
                trunc,
            ),
        ),
        ("Command", go_quote(&command)),
        ("CreatedAt", created_at(created)),
        ("RunningFor", ago(created)),
        ("Ports", display_ports(&ports)),
        ("State", c["State"].as_str().unwrap_or("").to_string()),
        ("Status", c["Status"].as_str().unwrap_or("").to_string()),
        ("Size", size),
        ("Names", names.join(",")),
        ("Labels", labels.join(",")),
        ("Mounts", mounts.join(",")),
        ("Networks", networks.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
    ])
}

pub async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let filters = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone()
    };
    // Like docker, ask for sizes when the template shows them (`{{json .}}` includes Size).
    let wants_size = args.size
        || format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.contains("json .") || f.trim() == "json");
    let mut q = Query::new();
    let limit = if args.latest { 1 } else { args.last };
    q.flag("all", args.all || limit > 0);
    if limit > 0 {
        q.add("limit", limit.to_string());
    }
    q.flag("size", wants_size && !args.quiet);
    q.filters(&filters);
    let list: Value = client.get_json(&q.to_path("/containers/json")).await?;
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_row(c, trunc))
        .collect();
    let default_table = if args.size {
        format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
    } else {
        DEFAULT_TABLE.to_string()
    };
    let lf = ListFormat {
        format: format.as_deref(),
        default_table: &default_table,
        headers: HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_labels_and_mount_columns() {
        let c = json!({
            "SizeRw": 1000, "SizeRootFs": 2_000_000,
            "Labels": {"b": "2", "a": "1"},
            "Mounts": [{"Name": "", "Source": "/a/very/long/host/path"}, {"Name": "vol"}]
        });
        assert_eq!(size_column(&c), "1kB (virtual 2MB)");
        assert_eq!(size_column(&json!({"SizeRw": 0})), "0B");
        assert_eq!(sorted_labels(&c), vec!["a=1", "b=2"]);
        assert_eq!(
            mount_names(&c, false),
            vec!["/a/very/long/host/path", "vol"]
        );
        assert_eq!(mount_names(&c, true)[1], "vol");
        assert!(mount_names(&c, true)[0].chars().count() <= 15);
    }

    fn sample() -> Value {
        json!({
            "Id": "4cbae233075849d7e2aa7b9f8958325cbfdd2f994737c670c0be7f4600a77801",
            "Names": ["/web", "/other/link"],
            "Image": "busybox",
            "ImageID": "sha256:7cebfa74603a709f9ebee7b0041347f8fc8fd907cea3a206070ad9595b3f1c48",
            "Command": "httpd -f -p 80",
            "Created": chrono::Utc::now().timestamp() - 3,
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
            ],
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 3 seconds",
            "Mounts": [{"Name": "v1", "Driver": "local", "Source": "/var/lib/x"}],
            "NetworkSettings": {"Networks": {"bridge": {}}}
        })
    }

    #[test]
    fn table_matches_capture() {
        let rows = vec![container_row(&sample(), true)];
        let lf = ListFormat {
            format: None,
            default_table: DEFAULT_TABLE,
            headers: HEADERS,
        };
        assert_eq!(
            lf.render(&rows).expect("render"),
            "CONTAINER ID   IMAGE     COMMAND            CREATED         STATUS         PORTS                                     NAMES\n\
             4cbae2330758   busybox   \"httpd -f -p 80\"   3 seconds ago   Up 3 seconds   0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web\n"
        );
    }

    #[test]
    fn row_fields() {
        let r = container_row(&sample(), true);
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Mounts"], "v1");
        assert_eq!(r["LocalVolumes"], "1");
        assert_eq!(r["Networks"], "bridge");
        assert_eq!(r["Size"], "0B");
        let full = container_row(&sample(), false);
        assert_eq!(full["Names"], "web,other/link");
        assert_eq!(full["ID"].as_str().map(str::len), Some(64));
    }

    #[test]
    fn image_by_id_is_shortened() {
        let id = "sha256:7cebfa74603a709f9ebee7b0041347f8fc8fd907cea3a206070ad9595b3f1c48";
        assert_eq!(image_column(id, id, true), "7cebfa74603a");
        assert_eq!(image_column("app@sha256:abc", id, true), "app");
        assert_eq!(image_column("app:1", id, true), "app:1");
    }

    #[test]
    fn long_commands_are_cut() {
        let mut c = sample();
        c["Command"] = json!("sh -c 'while true; do sleep 1; done'");
        assert_eq!(
            container_row(&c, true)["Command"],
            "\"sh -c 'while true; …\""
        );
    }
}
