//! `run`, `create`, `start` and `attach`, in the request order the docker CLI uses:
//!
//! ```text
//! run:  create (404 → "Unable to find image" → pull → create) → attach (101) →
//!       wait?condition=next-exit|removed (headers only) → start → [resize] → output EOF →
//!       wait body → exit with StatusCode
//! run -d: create → start → print ID
//! start -a: inspect → attach → wait?condition=next-exit → start → exit with StatusCode
//! attach: inspect → wait → attach → exit with StatusCode
//! ```

use anyhow::{anyhow, bail, Result};
use clap::Args;
use hyper::Method;
use serde_json::Value;

use crate::client::{seg, Body, Client, Hijacked, Query, Response};
use crate::commands::runconfig::{ContainerOpts, CreateRequest};
use crate::commands::session::{self, SessionEnd, SessionOpts};
use crate::commands::transfer::pull_image;
use crate::error::{daemon_error, is_not_found, StatusError};
use crate::reference::{is_id_like, ImageRef};
use crate::tty::{self, RawMode};

/// `berth run`
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `berth create`
#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// A `run`/`create` failure: `berth: <message>` plus the help hint, with `code`.
fn setup_error(cmd: &str, message: impl std::fmt::Display, code: i32) -> anyhow::Error {
    StatusError::new(
        code,
        format!("berth: {message}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

/// A configuration error (exit 125). Flag-value errors (`invalid argument "64x" for ...`)
/// carry the usage line like docker's flag parser; other validation errors read
/// `berth: <message>`.
fn usage_error(cmd: &str, message: &str) -> anyhow::Error {
    if !message.starts_with("invalid argument \"") {
        return setup_error(cmd, message, 125);
    }
    let usage = match cmd {
        "create" => "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]",
        _ => "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    };
    StatusError::new(
        125,
        format!("{message}\n\nUsage:  {usage}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

/// Exit status for a failed start: 127 not found, 126 cannot invoke, else 125.
pub fn start_error_code(message: &str) -> i32 {
    let m = message.trim_start_matches("Error response from daemon: ");
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied")
        || m.contains("exec format error")
        || m.contains("is a directory")
    {
        126
    } else {
        125
    }
}

/// Creates the container, pulling the image first when the daemon does not have it.
pub async fn create_container(
    client: &Client,
    req: &CreateRequest,
    pull: &str,
    quiet: bool,
) -> Result<String> {
    if !matches!(pull, "always" | "missing" | "never") {
        bail!("invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"");
    }
    if pull == "always" {
        pull_to_stderr(client, &req.image, req.platform.as_deref(), quiet).await?;
    }
    let mut q = Query::new();
    q.opt("name", req.name.as_deref())
        .opt("platform", req.platform.as_deref());
    let path = q.to_path("/containers/create");
    let resp: Value = match client.post_json(&path, Some(&req.body)).await {
        Ok(v) => v,
        Err(e)
            if is_not_found(&e)
                && pull == "missing"
                && !is_id_like(&req.image)
                && is_missing_image(&e) =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                ImageRef::parse(&req.image).familiar()
            );
            pull_to_stderr(client, &req.image, req.platform.as_deref(), quiet).await?;
            client.post_json(&path, Some(&req.body)).await?
        }
        Err(e) => return Err(e),
    };
    if let Some(warnings) = resp["Warnings"].as_array() {
        for w in warnings.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    let id = resp["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("daemon returned no container ID"))?;
    Ok(id.to_string())
}

fn is_missing_image(e: &anyhow::Error) -> bool {
    daemon_error(e).is_some_and(|d| {
        let m = d.message.to_ascii_lowercase();
        m.contains("no such image") || (m.contains("image") && m.contains("not found"))
    })
}

async fn pull_to_stderr(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<()> {
    if quiet {
        let mut sink = Vec::new();
        return pull_image(client, image, platform, false, &mut sink, false).await;
    }
    let mut err = std::io::stderr();
    pull_image(
        client,
        image,
        platform,
        false,
        &mut err,
        tty::stderr_is_tty(),
    )
    .await
}

fn write_cidfile(path: Option<&str>, id: &str) -> Result<()> {
    if let Some(p) = path {
        if std::path::Path::new(p).exists() {
            bail!("container ID file found, make sure the other container isn't running or delete {p}");
        }
        std::fs::write(p, id)
            .map_err(|e| anyhow!("failed to write the container ID to the file: {e}"))?;
    }
    Ok(())
}

pub async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    // Like docker, `create` records the streams a later `start -a` attaches (stdout/stderr).
    let req = args
        .opts
        .build(false)
        .map_err(|e| usage_error("create", &e))?;
    let id = create_container(client, &req, &args.opts.pull, args.opts.quiet)
        .await
        .map_err(|e| setup_error("create", format!("{e:#}"), 125))?;
    write_cidfile(args.opts.cidfile.as_deref(), &id).map_err(|e| setup_error("create", e, 125))?;
    println!("{id}");
    Ok(())
}

pub async fn run(client: &Client, args: RunArgs) -> Result<()> {
    let o = &args.opts;
    let req = o.build(args.detach).map_err(|e| usage_error("run", &e))?;
    let detach_keys = session::detach_keys(args.detach_keys.as_deref())?;
    let attach_stdin = req.body["AttachStdin"].as_bool().unwrap_or(false);
    if !args.detach && o.tty && attach_stdin && !tty::stdin_is_tty() {
        bail!("the input device is not a TTY");
    }
    let id = create_container(client, &req, &o.pull, o.quiet)
        .await
        .map_err(|e| setup_error("run", format!("{e:#}"), 125))?;
    write_cidfile(o.cidfile.as_deref(), &id).map_err(|e| setup_error("run", e, 125))?;
    let start_path = format!("/containers/{id}/start");

    if args.detach {
        if let Err(e) = client.post(&start_path, None).await {
            let code = start_error_code(&e.to_string());
            return Err(setup_error("run", e, code));
        }
        println!("{id}");
        return Ok(());
    }
    let (hijacked, wait) = attach_and_wait(client, &id, &req, &args).await?;

    let raw = if o.tty && attach_stdin {
        RawMode::enter()
    } else {
        None
    };
    let opts = SessionOpts {
        tty: o.tty,
        stdin: attach_stdin,
        detach_keys,
    };
    let pump = tokio::spawn(session::pump(hijacked, opts));

    if let Err(e) = client.post(&start_path, None).await {
        drop(raw);
        pump.abort();
        let code = start_error_code(&e.to_string());
        if o.rm {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                session::wait_status(wait),
            )
            .await;
        }
        return Err(setup_error("run", e, code));
    }
    let mut helpers = Vec::new();
    if o.tty && tty::stdout_is_tty() {
        helpers.push(session::spawn_resize(
            client.clone(),
            format!("/containers/{id}"),
        ));
    }
    if !o.tty && args.sig_proxy {
        helpers.push(session::spawn_sig_proxy(client.clone(), id.clone()));
    }

    let end = pump.await.map_err(|e| anyhow!("attach task failed: {e}"))?;
    drop(raw);
    match end {
        Ok(SessionEnd::Detached) => return Ok(()),
        Ok(SessionEnd::OutputClosed) => {}
        Err(e) => eprintln!("{e:#}"),
    }
    let status = session::wait_status(wait)
        .await
        .map_err(|e| StatusError::new(125, format!("Error waiting for container: {e:#}")))?;
    for h in helpers {
        h.abort();
    }
    if status != 0 {
        return Err(StatusError::code(status as i32).into());
    }
    Ok(())
}

/// Attaches to the created container and asks for its exit status, both before it starts so
/// no output and no exit is missed (`--rm` waits for the removal).
async fn attach_and_wait(
    client: &Client,
    id: &str,
    req: &CreateRequest,
    args: &RunArgs,
) -> Result<(Hijacked, Response)> {
    let flag = |k: &str| req.body[k].as_bool().unwrap_or(false);
    let path = session::attach_path(
        id,
        flag("AttachStdin"),
        flag("AttachStdout"),
        flag("AttachStderr"),
        args.detach_keys.as_deref(),
    );
    let hijacked = client
        .hijack(&path, None)
        .await
        .map_err(|e| setup_error("run", e, 125))?;
    let condition = if args.opts.rm { "removed" } else { "next-exit" };
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            Body::Empty,
            &[],
        )
        .await
        .map_err(|e| setup_error("run", e, 125))?
        .ok()
        .await
        .map_err(|e| setup_error("run", e, 125))?;
    Ok((hijacked, wait))
}

/// `berth start`
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Containers to start
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn start(client: &Client, args: StartArgs) -> Result<()> {
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        for c in &args.containers {
            match client
                .post(&format!("/containers/{}/start", seg(c)), None)
                .await
            {
                Ok(_) => println!("{c}"),
                Err(e) => {
                    eprintln!("{e:#}");
                    failed.push(c.clone());
                }
            }
        }
        if !failed.is_empty() {
            return Err(StatusError::new(
                1,
                format!("Error: failed to start containers: {}", failed.join(", ")),
            )
            .into());
        }
        return Ok(());
    }
    if args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let name = &args.containers[0];
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(name)))
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let has_tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = args.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if has_tty && stdin && !tty::stdin_is_tty() {
        bail!("the input device is not a TTY");
    }
    let detach_keys = session::detach_keys(args.detach_keys.as_deref())?;
    let hijacked = client
        .hijack(
            &session::attach_path(&id, stdin, true, true, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{id}/wait?condition=next-exit"),
            Body::Empty,
            &[],
        )
        .await?
        .ok()
        .await?;
    let raw = if has_tty && stdin {
        RawMode::enter()
    } else {
        None
    };
    let pump = tokio::spawn(session::pump(
        hijacked,
        SessionOpts {
            tty: has_tty,
            stdin,
            detach_keys,
        },
    ));
    if let Err(e) = client.post(&format!("/containers/{id}/start"), None).await {
        drop(raw);
        pump.abort();
        return Err(e);
    }
    let mut helpers = Vec::new();
    if has_tty && tty::stdout_is_tty() {
        helpers.push(session::spawn_resize(
            client.clone(),
            format!("/containers/{id}"),
        ));
    }
    if !has_tty {
        helpers.push(session::spawn_sig_proxy(client.clone(), id.clone()));
    }
    let end = pump.await.map_err(|e| anyhow!("attach task failed: {e}"))?;
    drop(raw);
    if let Ok(SessionEnd::Detached) = end {
        return Ok(());
    }
    if let Err(e) = end {
        eprintln!("{e:#}");
    }
    let status = session::wait_status(wait).await?;
    for h in helpers {
        h.abort();
    }
    if status != 0 {
        return Err(StatusError::code(status as i32).into());
    }
    Ok(())
}

/// `berth attach`
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn attach(client: &Client, args: AttachArgs) -> Result<()> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a paused container, unpause it first");
    }
    if info["State"]["Restarting"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a restarting container, wait until it is running");
    }
    let id = info["Id"].as_str().unwrap_or(&args.container).to_string();
    let has_tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if has_tty && stdin && !tty::stdin_is_tty() {
        bail!("the input device is not a TTY");
    }
    let detach_keys = session::detach_keys(args.detach_keys.as_deref())?;
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{id}/wait"),
            Body::Empty,
            &[],
        )
        .await?
        .ok()
        .await?;
    let hijacked = client
        .hijack(
            &session::attach_path(&id, stdin, true, true, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let raw = if has_tty && stdin {
        RawMode::enter()
    } else {
        None
    };
    let mut helpers = Vec::new();
    if has_tty && tty::stdout_is_tty() {
        helpers.push(session::spawn_resize_with(
            client.clone(),
            format!("/containers/{id}"),
            true,
        ));
    }
    if !has_tty && args.sig_proxy {
        helpers.push(session::spawn_sig_proxy(client.clone(), id.clone()));
    }
    let end = session::pump(
        hijacked,
        SessionOpts {
            tty: has_tty,
            stdin,
            detach_keys,
        },
    )
    .await;
    drop(raw);
    match end {
        Ok(SessionEnd::Detached) => return Err(StatusError::new(1, "read escape sequence").into()),
        Ok(SessionEnd::OutputClosed) => {}
        Err(e) => eprintln!("{e:#}"),
    }
    let status = session::wait_status(wait).await?;
    for h in helpers {
        h.abort();
    }
    if status != 0 {
        return Err(StatusError::code(status as i32).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_codes() {
        assert_eq!(
            start_error_code(
                "Error response from daemon: exec: \"nope\": executable file not found in $PATH"
            ),
            127
        );
        assert_eq!(start_error_code("stat /x: no such file or directory"), 127);
        assert_eq!(
            start_error_code("exec: \"/etc\": permission denied: unknown"),
            126
        );
        assert_eq!(start_error_code("exec format error"), 126);
        assert_eq!(start_error_code("cgroup setup failed"), 125);
    }
}
