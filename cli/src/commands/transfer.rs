//! Moving images in and out: `pull`, `push`, `load`, `save`, `import`, `commit`.
//! Pull/push/load/import answer with JSON-message streams shown through [`crate::progress`].

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

use crate::client::{seg, Body, Client, Query};
use crate::commands::auth::registry_auth;
use crate::progress::display_response;
use crate::reference::ImageRef;
use crate::tty;

/// Pulls `image`, showing progress on `out` (a terminal gets live progress bars).
pub async fn pull_image(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    all_tags: bool,
    out: &mut dyn Write,
    out_is_tty: bool,
) -> Result<()> {
    let r = ImageRef::parse(image);
    let mut q = Query::new();
    q.add("fromImage", &r.repo);
    if !all_tags {
        if let Some(t) = r.tag_or_latest() {
            q.add("tag", t);
        } else if let Some(d) = &r.digest {
            q.add("tag", d);
        }
    }
    q.opt("platform", platform);
    let headers = [("X-Registry-Auth", registry_auth(&r.registry()))];
    let mut resp = client
        .request(
            Method::POST,
            &q.to_path("/images/create"),
            Body::Empty,
            &headers,
        )
        .await?
        .ok()
        .await?;
    display_response(&mut resp, out, out_is_tty, |_| {}).await
}

/// `berth pull`
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

pub async fn pull(client: &Client, args: PullArgs) -> Result<()> {
    let r = ImageRef::parse(&args.image);
    if args.all_tags && r.tag.is_some() {
        bail!("tag can't be used with --all-tags/-a");
    }
    if args.quiet {
        let mut sink = Vec::new();
        pull_image(
            client,
            &args.image,
            args.platform.as_deref(),
            args.all_tags,
            &mut sink,
            false,
        )
        .await?;
    } else {
        let mut out = std::io::stdout();
        pull_image(
            client,
            &args.image,
            args.platform.as_deref(),
            args.all_tags,
            &mut out,
            tty::stdout_is_tty(),
        )
        .await?;
    }
    if args.all_tags {
        println!("{}", r.canonical().trim_end_matches(":latest"));
    } else {
        println!("{}", r.canonical());
    }
    Ok(())
}

/// `berth push`
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

pub async fn push(client: &Client, args: PushArgs) -> Result<()> {
    let r = ImageRef::parse(&args.image);
    let mut q = Query::new();
    if !args.all_tags {
        q.opt("tag", r.tag_or_latest());
    }
    let headers = [("X-Registry-Auth", registry_auth(&r.registry()))];
    let path = q.to_path(&format!("/images/{}/push", r.repo));
    let mut resp = client
        .request(Method::POST, &path, Body::Empty, &headers)
        .await?
        .ok()
        .await?;
    if args.quiet {
        let mut sink = Vec::new();
        display_response(&mut resp, &mut sink, false, |_| {}).await?;
        println!("{}", r.familiar());
    } else {
        let mut out = std::io::stdout();
        display_response(&mut resp, &mut out, tty::stdout_is_tty(), |_| {}).await?;
    }
    Ok(())
}

/// `berth load`
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub async fn load(client: &Client, args: LoadArgs) -> Result<()> {
    let body = match &args.input {
        Some(path) => {
            let f = std::fs::File::open(path).with_context(|| format!("open {path}"))?;
            Body::from_reader(f, "application/x-tar")
        }
        None => {
            if tty::stdin_is_tty() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Body::from_reader(std::io::stdin(), "application/x-tar")
        }
    };
    let quiet = args.quiet || !tty::stdout_is_tty();
    let path = Query::new().flag("quiet", quiet).to_path("/images/load");
    let mut resp = client
        .request(Method::POST, &path, body, &[])
        .await?
        .ok()
        .await?;
    let mut out = std::io::stdout();
    display_response(&mut resp, &mut out, tty::stdout_is_tty(), |_| {}).await
}

/// `berth save`
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Images to save
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub async fn save(client: &Client, args: SaveArgs) -> Result<()> {
    if args.output.is_none() && tty::stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut q = Query::new();
    for i in &args.images {
        q.add("names", i);
    }
    let resp = client.get(&q.to_path("/images/get")).await?;
    write_body(resp, args.output.as_deref()).await
}

/// Streams a response body to a file (`-o`) or stdout.
pub async fn write_body(mut resp: crate::client::Response, output: Option<&str>) -> Result<()> {
    match output {
        Some(path) => {
            let tmp = format!("{path}.berth-tmp");
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("failed to save: open {tmp}"))?;
            while let Some(chunk) = resp.chunk().await? {
                f.write_all(&chunk)
                    .with_context(|| format!("writing {tmp}"))?;
            }
            f.sync_all().with_context(|| format!("writing {tmp}"))?;
            std::fs::rename(&tmp, path).with_context(|| format!("renaming {tmp} to {path}"))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = resp.chunk().await? {
                out.write_all(&chunk).context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
        }
    }
    Ok(())
}

/// `berth import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// A tar file, a URL, or - for stdin
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub async fn import(client: &Client, args: ImportArgs) -> Result<()> {
    let mut q = Query::new();
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let body = if args.source == "-" {
        q.add("fromSrc", "-");
        Body::from_reader(std::io::stdin(), "application/x-tar")
    } else if is_url {
        q.add("fromSrc", &args.source);
        Body::Empty
    } else {
        q.add("fromSrc", "-");
        let f =
            std::fs::File::open(&args.source).with_context(|| format!("open {}", args.source))?;
        Body::from_reader(f, "application/x-tar")
    };
    q.opt("repo", args.reference.as_deref());
    q.opt("message", args.message.as_deref());
    q.opt("platform", args.platform.as_deref());
    for c in &args.change {
        q.add("changes", c);
    }
    let mut resp = client
        .request(Method::POST, &q.to_path("/images/create"), body, &[])
        .await?
        .ok()
        .await?;
    let mut out = std::io::stdout();
    display_response(&mut resp, &mut out, tty::stdout_is_tty(), |_| {}).await
}

/// `berth commit`
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<()> {
    let mut q = Query::new();
    q.add("container", &args.container);
    if let Some(r) = &args.reference {
        let r = ImageRef::parse(r);
        q.add("repo", &r.repo);
        q.opt("tag", r.tag.as_deref());
    }
    q.opt("comment", args.message.as_deref());
    q.opt("author", args.author.as_deref());
    q.add("pause", if args.pause { "1" } else { "0" });
    for c in &args.change {
        q.add("changes", c);
    }
    let resp: Value = client
        .post_json(&q.to_path("/commit"), Some(&json!({})))
        .await?;
    println!("{}", resp["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<()> {
    if args.output.is_none() && tty::stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = client
        .get(&format!("/containers/{}/export", seg(&args.container)))
        .await?;
    write_body(resp, args.output.as_deref()).await
}
