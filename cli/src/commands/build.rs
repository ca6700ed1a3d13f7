//! `build` through the classic builder: the context directory is packed into a tar (honouring
//! `.dockerignore`), sent to `POST /build?...&version=1`, and the JSON-message answer is shown
//! as it streams (`Step 1/3 : FROM busybox`, ...). `-q` prints only the final image ID.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth_common::dockerignore::IgnoreRules;
use clap::Args;
use hyper::Method;
use serde_json::{Map, Value};

use crate::client::{Body, Client, Query, Response};
use crate::format::human_size;
use crate::opts;
use crate::progress::display_response;
use crate::tty;

/// `berth build`
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile")]
    pub iidfile: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network")]
    pub network: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long = "rm", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Set the target build stage to build
    #[arg(long = "target")]
    pub target: Option<String>,
    /// Context directory (or - for a tar on stdin)
    #[arg(value_name = "PATH")]
    pub context: String,
}

/// Packs `dir` into a tar, skipping excluded paths but always keeping the Dockerfile and
/// `.dockerignore`. An outside Dockerfile is added under `extra_name`.
fn pack_context(
    dir: &Path,
    rules: &IgnoreRules,
    keep: &[String],
    extra: Option<(&str, &[u8])>,
) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let full = dir.join(&rel_dir);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .with_context(|| format!("reading {}", full.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", full.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let rel = rel_dir.join(e.file_name());
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            let ft = e
                .file_type()
                .with_context(|| format!("stat {}", e.path().display()))?;
            let keep_it = keep.contains(&rel_s);
            if rules.excluded(&rel_s) && !keep_it {
                // An excluded directory may still hold re-included files.
                if ft.is_dir() && rules.may_include_below(&rel_s) {
                    stack.push(rel);
                }
                continue;
            }
            if ft.is_dir() {
                b.append_dir(&rel, e.path())
                    .with_context(|| format!("archiving {}", e.path().display()))?;
                stack.push(rel);
            } else {
                b.append_path_with_name(e.path(), &rel)
                    .with_context(|| format!("archiving {}", e.path().display()))?;
            }
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data)
            .context("archiving Dockerfile")?;
    }
    b.into_inner().context("finishing context archive")
}

fn json_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
            None => {
                // `--build-arg NAME` takes the value from the environment, else null.
                let v = std::env::var(item)
                    .map(Value::String)
                    .unwrap_or(Value::Null);
                m.insert(item.to_string(), v);
            }
        }
    }
    m
}

/// `berth build`: pack the context, send it with the build options, stream the output.
pub async fn build(client: &Client, args: BuildArgs) -> Result<()> {
    let (context, dockerfile) = if args.context == "-" {
        stdin_context(&args)?
    } else {
        dir_context(&args)?
    };
    let q = build_query(&args, &dockerfile)?;
    if !args.quiet {
        println!(
            "Sending build context to Docker daemon {:>8}",
            human_size(context.len() as f64)
        );
    }
    let headers = [("X-Registry-Config", super::auth::registry_config())];
    let body = Body::bytes(context, "application/x-tar");
    let mut resp = client
        .request(Method::POST, &q.to_path("/build"), body, &headers)
        .await?
        .ok()
        .await?;
    let image_id = show_build_output(&mut resp, args.quiet).await?;
    if let Some(id) = &image_id {
        if args.quiet {
            println!("{id}");
        }
        if let Some(f) = &args.iidfile {
            std::fs::write(f, id).with_context(|| format!("writing image ID to {f}"))?;
        }
    }
    Ok(())
}

/// `build -`: the context is a tar on stdin, the Dockerfile named by `-f` inside it.
fn stdin_context(args: &BuildArgs) -> Result<(Vec<u8>, String)> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .context("reading build context from stdin")?;
    let dockerfile = args
        .file
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    Ok((data, dockerfile))
}

/// `build DIR`: the directory packed as a tar (less `.dockerignore`d files), and the name the
/// Dockerfile has inside it.
fn dir_context(args: &BuildArgs) -> Result<(Vec<u8>, String)> {
    let dir = PathBuf::from(&args.context);
    if !dir.is_dir() {
        bail!(
            "unable to prepare context: path {:?} not found",
            args.context
        );
    }
    let rules = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text).context("error checking context")?,
        Err(_) => IgnoreRules::default(),
    };
    let df_path = match &args.file {
        Some(f) if f == "-" => None,
        Some(f) => Some(PathBuf::from(f)),
        None => Some(dir.join("Dockerfile")),
    };
    let (name, extra) = dockerfile_entry(&dir, df_path.as_deref())?;
    let keep = vec![name.clone(), ".dockerignore".to_string()];
    let extra_ref = extra.as_ref().map(|d| (name.as_str(), d.as_slice()));
    Ok((pack_context(&dir, &rules, &keep, extra_ref)?, name))
}

/// Where the Dockerfile goes in the context: its path inside `dir`, or, read from stdin
/// (`None`) or from outside the directory, a fixed name with the bytes to add.
fn dockerfile_entry(dir: &Path, df_path: Option<&Path>) -> Result<(String, Option<Vec<u8>>)> {
    let Some(p) = df_path else {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading Dockerfile from stdin")?;
        return Ok((".dockerfile.stdin".to_string(), Some(data)));
    };
    let abs_dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let abs = p
        .canonicalize()
        .map_err(|_| anyhow!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", p.display()))?;
    match abs.strip_prefix(&abs_dir) {
        Ok(rel) => Ok((rel.to_string_lossy().to_string(), None)),
        Err(_) => {
            let data = std::fs::read(&abs).with_context(|| format!("reading {}", abs.display()))?;
            Ok((".dockerfile.external".to_string(), Some(data)))
        }
    }
}

/// The `POST /build` query: the build options as the docker CLI sends them.
fn build_query(args: &BuildArgs, dockerfile: &str) -> Result<Query> {
    let mut q = Query::new();
    q.add("dockerfile", dockerfile);
    for t in &args.tag {
        q.add("t", t);
    }
    q.flag("q", args.quiet)
        .flag("nocache", args.no_cache)
        .flag("pull", args.pull);
    q.add("rm", if args.rm { "1" } else { "0" });
    q.flag("forcerm", args.force_rm);
    if !args.build_arg.is_empty() {
        q.add(
            "buildargs",
            Value::Object(json_map(&args.build_arg)).to_string(),
        );
    }
    if !args.label.is_empty() {
        q.add(
            "labels",
            Value::Object(opts::parse_labels(&args.label)).to_string(),
        );
    }
    if !args.cache_from.is_empty() {
        q.add("cachefrom", serde_json::json!(args.cache_from).to_string());
    }
    q.opt("target", args.target.as_deref())
        .opt("networkmode", args.network.as_deref());
    q.opt("platform", args.platform.as_deref())
        .opt("cpusetcpus", args.cpuset_cpus.as_deref());
    add_resource_params(&mut q, args)?;
    q.add("version", "1");
    Ok(q)
}

/// `--add-host`, `-m`, `--shm-size` and `--cpu-shares` as query parameters.
fn add_resource_params(q: &mut Query, args: &BuildArgs) -> Result<()> {
    for h in &args.add_host {
        q.add(
            "extrahosts",
            opts::parse_add_host(h).map_err(anyhow::Error::msg)?,
        );
    }
    if let Some(m) = &args.memory {
        q.add(
            "memory",
            opts::parse_ram(m)
                .map_err(|e| anyhow!(opts::flag_error(m, "-m, --memory", &e)))?
                .to_string(),
        );
    }
    if let Some(s) = &args.shm_size {
        q.add(
            "shmsize",
            opts::parse_ram(s)
                .map_err(|e| anyhow!(opts::flag_error(s, "--shm-size", &e)))?
                .to_string(),
        );
    }
    if let Some(c) = args.cpu_shares {
        q.add("cpushares", c.to_string());
    }
    Ok(())
}

/// Shows the build's JSON messages (only collected with `-q`) and returns the image ID the
/// daemon reported.
async fn show_build_output(resp: &mut Response, quiet: bool) -> Result<Option<String>> {
    let mut image_id = None;
    let capture = |aux: &Value| {
        if let Some(id) = aux["ID"].as_str() {
            image_id = Some(id.to_string());
        }
    };
    if quiet {
        // With `q=1` the daemon sends the ID either as `aux` or as the only `stream` text.
        let mut sink = Vec::new();
        display_response(resp, &mut sink, false, capture).await?;
        if image_id.is_none() {
            let text = String::from_utf8_lossy(&sink).trim().to_string();
            if !text.is_empty() {
                image_id = Some(text);
            }
        }
    } else {
        let mut out = std::io::stdout();
        display_response(resp, &mut out, tty::stdout_is_tty(), capture).await?;
    }
    Ok(image_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_context_with_ignores() {
        let dir = std::env::temp_dir().join(format!("berth-build-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("Dockerfile"), "FROM busybox\n").expect("write");
        std::fs::write(dir.join("a.log"), "x").expect("write");
        std::fs::write(dir.join("sub/f"), "y").expect("write");
        let rules = IgnoreRules::parse("*.log\nDockerfile\n").expect("rules");
        let tar = pack_context(&dir, &rules, &["Dockerfile".to_string()], None).expect("pack");
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, vec!["Dockerfile", "sub", "sub/f"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BuildArgs,
    }

    fn parse(args: &[&str]) -> BuildArgs {
        let mut full = vec!["build"];
        full.extend_from_slice(args);
        <Wrap as clap::Parser>::try_parse_from(full)
            .expect("parse")
            .args
    }

    #[test]
    fn query_carries_the_options_in_the_docker_cli_order() {
        let args = parse(&["-t", "a", "-q", "--no-cache", "-m", "1k", "-c", "2", "ctx"]);
        let q = build_query(&args, "Dockerfile").expect("query");
        assert_eq!(
            q.to_path("/build"),
            "/build?dockerfile=Dockerfile&t=a&q=1&nocache=1&rm=1&memory=1024&cpushares=2&version=1"
        );
    }

    #[test]
    fn query_names_a_bad_memory_value() {
        let args = parse(&["-m", "lots", "ctx"]);
        let err = build_query(&args, "Dockerfile").expect_err("bad memory");
        assert!(err.to_string().contains("-m, --memory"), "{err}");
    }
}
