//! Local image verbs: `images`/`image ls`, `rmi`/`image rm`, `tag`, `history`, `image prune`.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{Client, Query};
use crate::commands::container::confirm;
use crate::commands::inspect::image_path;
use crate::error::StatusError;
use crate::format::{ago, created_at, ellipsis, human_size, human_size_prec, short_id};
use crate::opts;
use crate::output::{row, ListFormat};
use crate::reference::ImageRef;

/// `berth images`
#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// `(repository, tag, digest)` of each row of an image: each tag of each repository (times
/// its digests with `--digests`), then the repositories known only by digest; one `<none>`
/// row for an image with neither.
fn repo_entries(img: &Value, show_digests: bool) -> Vec<(String, String, String)> {
    let repo_tags = group_by_repo(
        strs(&img["RepoTags"])
            .into_iter()
            .filter(|t| t != "<none>:<none>")
            .map(|t| {
                let r = ImageRef::parse(&t);
                (r.familiar_repo(), r.tag.unwrap_or_else(|| "latest".into()))
            }),
    );
    let mut repo_digests = group_by_repo(
        strs(&img["RepoDigests"])
            .into_iter()
            .filter(|d| d != "<none>@<none>")
            .filter_map(|d| {
                let r = ImageRef::parse(&d);
                let dg = r.digest.clone()?;
                Some((r.familiar_repo(), dg))
            }),
    );
    let mut entries: Vec<(String, String, String)> = Vec::new();
    if repo_tags.is_empty() && repo_digests.is_empty() {
        entries.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(k, _)| k == repo);
        let ds = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
        for tag in tags {
            if !show_digests || ds.is_empty() {
                entries.push((repo.clone(), tag.clone(), "<none>".into()));
            } else {
                for d in &ds {
                    entries.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
    }
    for (repo, ds) in repo_digests {
        if show_digests {
            for d in ds {
                entries.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            entries.push((repo, "<none>".into(), "<none>".into()));
        }
    }
    entries
}

/// `(repository, value)` pairs grouped by repository, in first-seen order.
fn group_by_repo(pairs: impl Iterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (repo, value) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == repo) {
            Some((_, v)) => v.push(value),
            None => groups.push((repo, vec![value])),
        }
    }
    groups
}

/// The rows docker shows for one image: one per repository and tag (or `<none>`).
pub fn image_rows(img: &Value, trunc: bool, show_digests: bool) -> Vec<Value> {
    let entries = repo_entries(img, show_digests);
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let shared = img["SharedSize"].as_f64().unwrap_or(-1.0);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    entries
        .into_iter()
        .map(|(repo, tag, digest)| {
            row(vec![
                ("Repository", repo),
                ("Tag", tag),
                ("Digest", digest),
                ("ID", if trunc { short_id(id) } else { id.to_string() }),
                ("CreatedSince", ago(created)),
                ("CreatedAt", created_at(created)),
                ("Size", human_size_prec(size, 3)),
                (
                    "Containers",
                    if containers < 0 {
                        "N/A".to_string()
                    } else {
                        containers.to_string()
                    },
                ),
                (
                    "VirtualSize",
                    human_size(img["VirtualSize"].as_f64().unwrap_or(size)),
                ),
                (
                    "SharedSize",
                    if shared < 0.0 {
                        "N/A".to_string()
                    } else {
                        human_size(shared)
                    },
                ),
                (
                    "UniqueSize",
                    if shared < 0.0 {
                        "N/A".to_string()
                    } else {
                        human_size(size - shared)
                    },
                ),
            ])
        })
        .collect()
}

pub async fn images(client: &Client, args: ImagesArgs) -> Result<()> {
    let mut filter_items = args.filter.clone();
    if let Some(r) = &args.reference {
        filter_items.push(format!("reference={r}"));
    }
    let filters = opts::parse_filters(&filter_items).map_err(anyhow::Error::msg)?;
    let mut q = Query::new();
    q.flag("all", args.all).filters(&filters);
    if args.digests {
        q.add("digests", "1");
    }
    let list: Value = client.get_json(&q.to_path("/images/json")).await?;
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|img| image_rows(img, trunc, args.digests))
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone()
    };
    let default_table = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let lf = ListFormat {
        format: format.as_deref(),
        default_table,
        headers: IMAGE_HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

/// `berth rmi`
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Images
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `Untagged: x` / `Deleted: y` lines of a delete or prune answer.
pub fn deleted_lines(items: &Value, lowercase: bool) -> Vec<String> {
    let (u, d) = if lowercase {
        ("untagged", "deleted")
    } else {
        ("Untagged", "Deleted")
    };
    let mut out = Vec::new();
    for item in items.as_array().into_iter().flatten() {
        if let Some(x) = item["Untagged"].as_str() {
            out.push(format!("{u}: {x}"));
        }
        if let Some(x) = item["Deleted"].as_str() {
            out.push(format!("{d}: {x}"));
        }
    }
    out
}

pub async fn rmi(client: &Client, args: RmiArgs) -> Result<()> {
    let mut q = Query::new();
    q.flag("force", args.force).flag("noprune", args.no_prune);
    let mut failed = false;
    for img in &args.images {
        match client
            .delete(&q.to_path(&format!("/images/{}", image_path(img))))
            .await
        {
            Ok(resp) => {
                let items: Value = resp.json().await?;
                for l in deleted_lines(&items, false) {
                    println!("{l}");
                }
            }
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

/// `berth tag`
#[derive(Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

pub async fn tag(client: &Client, args: TagArgs) -> Result<()> {
    let t = ImageRef::parse(&args.target);
    if t.digest.is_some() {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    let mut q = Query::new();
    q.add("repo", &t.repo).opt("tag", t.tag_or_latest());
    client
        .post(
            &q.to_path(&format!("/images/{}/tag", image_path(&args.source))),
            None,
        )
        .await?;
    Ok(())
}

/// `berth history`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Image
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// One `history` row.
pub fn history_row(h: &Value, trunc: bool, human: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("<missing>");
    let id = if id == "<missing>" || !trunc {
        id.to_string()
    } else {
        short_id(id)
    };
    let created = h["Created"].as_i64().unwrap_or(0);
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    let size = h["Size"].as_i64().unwrap_or(0);
    let created_at = chrono::DateTime::from_timestamp(created, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default();
    row(vec![
        ("ID", id),
        (
            "CreatedSince",
            if human {
                ago(created)
            } else {
                created_at.clone()
            },
        ),
        ("CreatedAt", created_at),
        ("CreatedBy", created_by),
        (
            "Size",
            if human {
                human_size_prec(size as f64, 3)
            } else {
                size.to_string()
            },
        ),
        ("Comment", h["Comment"].as_str().unwrap_or("").to_string()),
    ])
}

pub async fn history(client: &Client, args: HistoryArgs) -> Result<()> {
    let list: Value = client
        .get_json(&format!("/images/{}/history", image_path(&args.image)))
        .await?;
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| history_row(h, trunc, args.human))
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone()
    };
    let lf = ListFormat {
        format: format.as_deref(),
        default_table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        headers: HISTORY_HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

/// `berth image prune`
#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// `POST /images/prune`; returns (output lines, reclaimed bytes).
pub async fn prune_images(
    client: &Client,
    all: bool,
    filter: &[String],
) -> Result<(Vec<String>, u64)> {
    let mut items = filter.to_vec();
    items.push(format!("dangling={}", if all { "false" } else { "true" }));
    let f = opts::parse_filters(&items).map_err(anyhow::Error::msg)?;
    let resp: Value = client
        .post_json(&Query::new().filters(&f).to_path("/images/prune"), None)
        .await?;
    Ok((
        deleted_lines(&resp["ImagesDeleted"], true),
        resp["SpaceReclaimed"].as_u64().unwrap_or(0),
    ))
}

pub async fn prune(client: &Client, args: ImagePruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(warning) {
        return Ok(());
    }
    let (lines, space) = prune_images(client, args.all, &args.filter).await?;
    if !lines.is_empty() {
        println!("Deleted Images:");
        for l in lines {
            println!("{l}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(space as f64));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_pair_tags_with_their_repository_digests() {
        let dg = format!("sha256:{}", "a".repeat(64));
        let img = json!({
            "RepoTags": ["web:1", "web:2", "<none>:<none>"],
            "RepoDigests": [format!("web@{dg}"), format!("db@{dg}")],
        });
        let e = |r: &str, t: &str, d: &str| (r.to_string(), t.to_string(), d.to_string());
        assert_eq!(
            repo_entries(&img, true),
            vec![
                e("web", "1", &dg),
                e("web", "2", &dg),
                e("db", "<none>", &dg)
            ]
        );
        assert_eq!(
            repo_entries(&img, false),
            vec![
                e("web", "1", "<none>"),
                e("web", "2", "<none>"),
                e("db", "<none>", "<none>")
            ]
        );
        assert_eq!(
            repo_entries(&json!({}), true),
            vec![e("<none>", "<none>", "<none>")]
        );
    }

    #[test]
    fn rows_per_tag_and_dangling() {
        let now = chrono::Utc::now().timestamp();
        let img = json!({
            "Id": "sha256:6b1936ff73a612060089462c67c92311a149bcec9345786e276609f4baf81d0c",
            "RepoTags": ["tiny0:latest", "tiny:latest"],
            "RepoDigests": [],
            "Created": now - 4,
            "Size": 1_981_952
        });
        let rows = image_rows(&img, true, false);
        assert_eq!(rows.len(), 2);
        let lf = ListFormat {
            format: None,
            default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            headers: IMAGE_HEADERS,
        };
        assert_eq!(
            lf.render(&rows).expect("render"),
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
             tiny0        latest    6b1936ff73a6   4 seconds ago   1.98MB\n\
             tiny         latest    6b1936ff73a6   4 seconds ago   1.98MB\n"
        );
        let dangling = json!({"Id": "sha256:abc", "RepoTags": null, "RepoDigests": null, "Created": now, "Size": 0});
        let rows = image_rows(&dangling, true, false);
        assert_eq!(rows[0]["Repository"], "<none>");
        assert_eq!(rows[0]["Tag"], "<none>");
    }

    #[test]
    fn digests_rows() {
        let img = json!({
            "Id": "sha256:abc",
            "RepoTags": ["127.0.0.1:5000/bb:1"],
            "RepoDigests": ["127.0.0.1:5000/bb@sha256:5300", "other@sha256:99"],
            "Created": 0, "Size": 0
        });
        let rows = image_rows(&img, true, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "127.0.0.1:5000/bb");
        assert_eq!(rows[0]["Digest"], "sha256:5300");
        assert_eq!(rows[1]["Repository"], "other");
        assert_eq!(rows[1]["Tag"], "<none>");
        let rows = image_rows(&img, true, false);
        assert_eq!(rows[1]["Digest"], "<none>");
    }

    #[test]
    fn history_rows() {
        let h = json!({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"cat /f\"]", "Size": 0, "Comment": ""});
        let r = history_row(&h, true, true);
        assert_eq!(r["ID"], "<missing>");
        assert_eq!(
            r["CreatedBy"],
            "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"cat …"
        );
        assert_eq!(r["Size"], "0B");
    }

    #[test]
    fn delete_lines() {
        let items = json!([{"Untagged": "a:1"}, {"Deleted": "sha256:x"}]);
        assert_eq!(
            deleted_lines(&items, false),
            vec!["Untagged: a:1", "Deleted: sha256:x"]
        );
        assert_eq!(
            deleted_lines(&items, true),
            vec!["untagged: a:1", "deleted: sha256:x"]
        );
    }
}
