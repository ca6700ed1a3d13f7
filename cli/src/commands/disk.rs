//! `system df` and `system prune`.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{Client, Query};
use crate::commands::container::{confirm, prune_containers};
use crate::commands::image::prune_images;
use crate::commands::network::prune_networks;
use crate::commands::system::s;
use crate::commands::volume::prune_volumes;
use crate::format::{ago, ellipsis, go_quote, human_size, short_id};
use crate::opts;
use crate::output::{row, ListFormat};

/// `berth system df`
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

fn with_percent(reclaimable: i64, total: i64) -> String {
    let r = human_size(reclaimable as f64);
    if total > 0 {
        format!("{r} ({}%)", reclaimable * 100 / total)
    } else {
        r
    }
}

fn is_active_state(state: &str) -> bool {
    state.contains("running") || state.contains("paused") || state.contains("restarting")
}

/// The four summary rows of `system df`.
pub fn df_rows(df: &Value) -> Vec<Value> {
    let arr = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let images = arr("Images");
    let layers = df["LayersSize"].as_i64().unwrap_or(0);
    let mut used = 0;
    let mut active_images = 0;
    for i in &images {
        if i["Containers"].as_i64().unwrap_or(0) > 0 {
            active_images += 1;
            let size = i["Size"].as_i64().unwrap_or(-1);
            let shared = i["SharedSize"].as_i64().unwrap_or(-1);
            if size != -1 && shared != -1 {
                used += size - shared;
            }
        }
    }
    let containers = arr("Containers");
    let (mut c_total, mut c_reclaim, mut c_active) = (0, 0, 0);
    for c in &containers {
        let size = c["SizeRw"].as_i64().unwrap_or(0);
        c_total += size;
        if is_active_state(c["State"].as_str().unwrap_or("")) {
            c_active += 1;
        } else {
            c_reclaim += size;
        }
    }
    let volumes = arr("Volumes");
    let (mut v_total, mut v_reclaim, mut v_active) = (0, 0, 0);
    for v in &volumes {
        let size = v["UsageData"]["Size"].as_i64().unwrap_or(-1);
        let refs = v["UsageData"]["RefCount"].as_i64().unwrap_or(0);
        if refs > 0 {
            v_active += 1;
        }
        if size != -1 {
            v_total += size;
            if refs == 0 {
                v_reclaim += size;
            }
        }
    }
    let cache = arr("BuildCache");
    let (mut b_total, mut b_in_use, mut b_active) = (0, 0, 0);
    for b in &cache {
        let size = b["Size"].as_i64().unwrap_or(0);
        let shared = b["Shared"].as_bool().unwrap_or(false);
        let in_use = b["InUse"].as_bool().unwrap_or(false);
        if in_use {
            b_active += 1;
        }
        if !shared {
            b_total += size;
            if in_use {
                b_in_use += size;
            }
        }
    }
    vec![
        row(vec![
            ("Type", "Images".to_string()),
            ("TotalCount", images.len().to_string()),
            ("Active", active_images.to_string()),
            ("Size", human_size(layers as f64)),
            ("Reclaimable", with_percent(layers - used, layers)),
        ]),
        row(vec![
            ("Type", "Containers".to_string()),
            ("TotalCount", containers.len().to_string()),
            ("Active", c_active.to_string()),
            ("Size", human_size(c_total as f64)),
            ("Reclaimable", with_percent(c_reclaim, c_total)),
        ]),
        row(vec![
            ("Type", "Local Volumes".to_string()),
            ("TotalCount", volumes.len().to_string()),
            ("Active", v_active.to_string()),
            ("Size", human_size(v_total as f64)),
            ("Reclaimable", with_percent(v_reclaim, v_total)),
        ]),
        row(vec![
            ("Type", "Build Cache".to_string()),
            ("TotalCount", cache.len().to_string()),
            ("Active", b_active.to_string()),
            ("Size", human_size(b_total as f64)),
            ("Reclaimable", human_size((b_total - b_in_use) as f64)),
        ]),
    ]
}

/// `docker system df -v`: one table per kind of object, each under its heading.
fn df_verbose(df: &Value) -> Result<String> {
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&images_usage(df)?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&containers_usage(df)?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&volumes_usage(df)?);
    let cache: i64 = df["BuildCache"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(cache as f64)
    ));
    out.push_str(&build_cache_usage(df)?);
    Ok(out)
}

/// The images table of `df -v`: the first tag's repository and tag, sizes shared and unique.
fn images_usage(df: &Value) -> Result<String> {
    let mut rows = Vec::new();
    for i in df["Images"].as_array().into_iter().flatten() {
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let (repo, tag) = match tags.first() {
            Some(t) => {
                let r = crate::reference::ImageRef::parse(t);
                (r.familiar_repo(), r.tag.unwrap_or_else(|| "latest".into()))
            }
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let size = i["Size"].as_f64().unwrap_or(0.0);
        let shared = i["SharedSize"].as_f64().unwrap_or(0.0);
        rows.push(row(vec![
            ("Repository", repo),
            ("Tag", tag),
            ("ID", short_id(i["Id"].as_str().unwrap_or(""))),
            ("CreatedSince", ago(i["Created"].as_i64().unwrap_or(0))),
            ("Size", crate::format::human_size_prec(size, 3)),
            ("SharedSize", human_size(shared.max(0.0))),
            ("UniqueSize", human_size(size - shared.max(0.0))),
            ("Containers", s(&i["Containers"])),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        headers: &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
    };
    lf.render(&rows)
}

/// The containers table of `df -v`: local volumes mounted, writable layer size.
fn containers_usage(df: &Value) -> Result<String> {
    let mut rows = Vec::new();
    for c in df["Containers"].as_array().into_iter().flatten() {
        let names: Vec<String> = c["Names"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| s(n).trim_start_matches('/').to_string())
            .collect();
        rows.push(row(vec![
            ("ID", short_id(c["Id"].as_str().unwrap_or(""))),
            ("Image", s(&c["Image"])),
            (
                "Command",
                go_quote(&ellipsis(c["Command"].as_str().unwrap_or(""), 20)),
            ),
            (
                "LocalVolumes",
                c["Mounts"]
                    .as_array()
                    .map(|m| m.iter().filter(|x| x["Driver"] == "local").count())
                    .unwrap_or(0)
                    .to_string(),
            ),
            ("Size", human_size(c["SizeRw"].as_f64().unwrap_or(0.0))),
            ("RunningFor", ago(c["Created"].as_i64().unwrap_or(0))),
            ("Status", s(&c["Status"])),
            ("Names", names.join(",")),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        headers: &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
    };
    lf.render(&rows)
}

/// The volumes table of `df -v`; `N/A` when the daemon did not measure a volume.
fn volumes_usage(df: &Value) -> Result<String> {
    let mut rows = Vec::new();
    for v in df["Volumes"].as_array().into_iter().flatten() {
        let size = v["UsageData"]["Size"].as_i64().unwrap_or(-1);
        rows.push(row(vec![
            ("Name", s(&v["Name"])),
            ("Links", s(&v["UsageData"]["RefCount"])),
            (
                "Size",
                if size < 0 {
                    "N/A".to_string()
                } else {
                    human_size(size as f64)
                },
            ),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        headers: &[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
    };
    lf.render(&rows)
}

/// The build cache table of `df -v`.
fn build_cache_usage(df: &Value) -> Result<String> {
    let mut rows = Vec::new();
    for b in df["BuildCache"].as_array().into_iter().flatten() {
        let since = |k: &str| {
            b[k].as_str()
                .and_then(crate::format::parse_rfc3339)
                .map(ago)
                .unwrap_or_default()
        };
        rows.push(row(vec![
            ("ID", s(&b["ID"]).chars().take(12).collect::<String>()),
            ("CacheType", s(&b["Type"])),
            ("Size", human_size(b["Size"].as_f64().unwrap_or(0.0))),
            ("CreatedSince", since("CreatedAt")),
            ("LastUsedSince", since("LastUsedAt")),
            ("UsageCount", s(&b["UsageCount"])),
            ("Shared", s(&b["Shared"])),
        ]));
    }
    let lf = ListFormat {
        format: None,
        default_table: "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        headers: &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
    };
    lf.render(&rows)
}

pub async fn df(client: &Client, args: DfArgs) -> Result<()> {
    let df: Value = client.get_json("/system/df").await?;
    if args.verbose && args.format.is_none() {
        print!("{}", df_verbose(&df)?);
        return Ok(());
    }
    let lf = ListFormat {
        format: args.format.as_deref(),
        default_table: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        headers: DF_HEADERS,
    };
    print!("{}", lf.render(&df_rows(&df))?);
    Ok(())
}

/// `berth system prune`
#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
}

/// The confirmation text of `system prune`.
pub fn prune_warning(all: bool, volumes: bool) -> String {
    let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if volumes {
        w.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if all {
        w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        w.push_str("  - all dangling images\n  - unused build cache\n");
    }
    w
}

pub async fn prune(client: &Client, args: SystemPruneArgs) -> Result<()> {
    if !args.force && !confirm(&prune_warning(args.all, args.volumes)) {
        return Ok(());
    }
    let mut total: u64 = 0;
    let section = |title: &str, lines: &[String]| {
        if !lines.is_empty() {
            println!("{title}");
            for l in lines {
                println!("{l}");
            }
            println!();
        }
    };
    let (ids, space) = prune_containers(client, &args.filter).await?;
    total += space;
    section("Deleted Containers:", &ids);
    let names = prune_networks(client, &args.filter).await?;
    section("Deleted Networks:", &names);
    if args.volumes {
        let (vols, space) = prune_volumes(client, false, &args.filter).await?;
        total += space;
        section("Deleted Volumes:", &vols);
    }
    let (lines, space) = prune_images(client, args.all, &args.filter).await?;
    total += space;
    section("Deleted Images:", &lines);
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let mut q = Query::new();
    q.flag("all", args.all);
    if f.as_object().is_some_and(|m| !m.is_empty()) {
        q.filters(&f);
    } else {
        q.add("filters", "");
    }
    if let Ok(resp) = client
        .post_json::<Value>(&q.to_path("/build/prune"), None)
        .await
    {
        total += resp["SpaceReclaimed"].as_u64().unwrap_or(0);
        let caches: Vec<String> = resp["CachesDeleted"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        section("Deleted build cache objects:", &caches);
    }
    println!("Total reclaimed space: {}", human_size(total as f64));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn df_summary_like_capture() {
        let df = json!({
            "LayersSize": 3_965_000,
            "Images": [{"Containers": 0, "Size": 1_981_952, "SharedSize": -1}, {"Containers": 0}, {"Containers": 0}],
            "Containers": [], "Volumes": [], "BuildCache": []
        });
        let lf = ListFormat {
            format: None,
            default_table:
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            headers: DF_HEADERS,
        };
        assert_eq!(
            lf.render(&df_rows(&df)).expect("render"),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          3         0         3.965MB   3.965MB (100%)\n\
             Containers      0         0         0B        0B\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }

    #[test]
    fn prune_warning_text() {
        assert_eq!(
            prune_warning(false, false),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
    }

    #[test]
    fn volumes_without_a_size_show_na() {
        let df = json!({"Volumes": [
            {"Name": "a", "UsageData": {"Size": -1, "RefCount": 0}},
            {"Name": "b", "UsageData": {"Size": 2048, "RefCount": 1}}
        ]});
        assert_eq!(
            volumes_usage(&df).expect("render"),
            "VOLUME NAME   LINKS     SIZE\n\
             a             0         N/A\n\
             b             1         2.048kB\n"
        );
    }
}
