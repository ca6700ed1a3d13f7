//! berthd's side of the shim contract: spawn `berth-shim` detached, and talk to its
//! `control.sock` (one text line per request, in `berth_common::shim_protocol`, which the
//! shim's side uses too).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_common::shim_protocol::{Reply, Request, CONTROL_SOCKET, EXIT_FILE};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

pub use berth_common::shim_protocol::{AttachStreams, Exit};

use super::ContainerError;

pub struct Spawn<'a> {
    pub shim: &'a Path,
    /// `init` or `exec`
    pub mode: &'static str,
    pub id: &'a str,
    pub state: &'a Path,
    pub root: &'a Path,
    pub runtime: Option<&'a Path>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// init: ("--bundle", dir), ("--log", file); exec: ("--exec-id", id), ("--process", file)
    pub extra: Vec<(&'static str, String)>,
}

/// Starts a shim in its own session and waits for its `ok <pid>` line.
pub async fn spawn(s: Spawn<'_>) -> Result<i64, ContainerError> {
    let mut cmd = tokio::process::Command::new(s.shim);
    cmd.arg(s.mode)
        .arg("--id")
        .arg(s.id)
        .arg("--state")
        .arg(s.state)
        .arg("--root")
        .arg(s.root);
    for (k, v) in &s.extra {
        cmd.arg(k).arg(v);
    }
    if let Some(rt) = s.runtime {
        cmd.arg("--runtime").arg(rt);
    }
    if s.tty {
        cmd.arg("--tty");
    }
    if s.stdin {
        cmd.arg("--stdin");
    }
    if s.stdin_once {
        cmd.arg("--stdin-once");
    }
    std::fs::create_dir_all(s.state).map_err(|e| ContainerError::io("create", s.state, e))?;
    let err_path = s.state.join("shim.log");
    let err =
        std::fs::File::create(&err_path).map_err(|e| ContainerError::io("create", &err_path, e))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
    // The shim outlives berthd: its own session, and not killed when our handle drops.
    cmd.process_group(0).kill_on_drop(false);
    let mut child = cmd
        .spawn()
        .map_err(|e| ContainerError::io("spawn", s.shim, e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ContainerError::Runtime("shim has no stdout".into()))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| ContainerError::io("read from shim", s.shim, e))?;
    // Reap the shim whenever it exits, so it never lingers as a zombie of ours.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    parse_reply(line.trim())
}

fn parse_reply(line: &str) -> Result<i64, ContainerError> {
    match Reply::parse(line) {
        Some(Reply::Ok(pid)) => Ok(pid.parse().unwrap_or(0)),
        Some(Reply::Err(msg)) => Err(ContainerError::Runtime(msg)),
        _ if line.is_empty() => Err(ContainerError::Runtime(
            "shim exited without a reply".into(),
        )),
        _ => Err(ContainerError::Runtime(format!(
            "unexpected shim reply {line:?}"
        ))),
    }
}

pub fn socket(state: &Path) -> PathBuf {
    state.join(CONTROL_SOCKET)
}

pub async fn connect(state: &Path) -> Result<UnixStream, ContainerError> {
    let p = socket(state);
    UnixStream::connect(&p)
        .await
        .map_err(|e| ContainerError::io("connect to shim", &p, e))
}

/// Waits (up to 10 s) until the shim of a previous run of this container has exited. After
/// the process ends, the shim answers its waiters first and then deletes the runtime's state
/// (`berth-runtime delete`); a new run started before that finishes would meet "container
/// already exists". Its control socket refuses connections once it is gone.
pub async fn wait_gone(state: &Path) {
    let p = socket(state);
    for _ in 0..5000 {
        if std::os::unix::net::UnixStream::connect(&p).is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    tracing::warn!(socket = %p.display(), "the previous shim is still running after 10 s");
}

/// Sends one request and reads its one-line reply.
pub async fn request(state: &Path, req: Request) -> Result<(), ContainerError> {
    request_text(state, req).await.map(drop)
}

/// Like `request`, returning what the shim said after `ok` (the pid, for `start`).
pub async fn request_text(state: &Path, req: Request) -> Result<String, ContainerError> {
    let mut s = connect(state).await?;
    s.write_all(req.to_line().as_bytes())
        .await
        .map_err(|e| ContainerError::io("write to shim", socket(state), e))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .await
        .map_err(|e| ContainerError::io("read from shim", socket(state), e))?;
    match Reply::parse(&line) {
        Some(Reply::Ok(rest)) => Ok(rest),
        Some(Reply::Err(msg)) => Err(ContainerError::Runtime(msg)),
        _ => Err(ContainerError::Runtime(format!(
            "shim closed the connection during {:?}",
            req.to_line().trim_end()
        ))),
    }
}

/// Connects and sends `attach`, returning the connection before its acknowledgement.
pub async fn attach(state: &Path, streams: AttachStreams) -> Result<UnixStream, ContainerError> {
    let mut s = connect(state).await?;
    s.write_all(Request::Attach(streams).to_line().as_bytes())
        .await
        .map_err(|e| ContainerError::io("attach to shim", state, e))?;
    Ok(s)
}

/// A `wait` request already sent to a shim, its answer still to come.
pub struct Waiter(UnixStream);

/// Registers a waiter with the shim. Done before `start`, so the shim knows of it when the
/// process exits: a waiter that arrives later meets a shim busy deleting the runtime state
/// and hears of the exit only when that shim is gone (a few ms later).
pub async fn waiter(state: &Path) -> Result<Waiter, ContainerError> {
    let mut s = connect(state).await?;
    s.write_all(Request::Wait.to_line().as_bytes())
        .await
        .map_err(|e| ContainerError::io("write to shim", socket(state), e))?;
    Ok(Waiter(s))
}

impl Waiter {
    /// Waits for the process to exit. `None` if the shim went away without telling (killed);
    /// the caller then reads the exit file.
    pub async fn exit(self) -> Option<Exit> {
        let mut line = String::new();
        BufReader::new(self.0).read_line(&mut line).await.ok()?;
        match Reply::parse(&line)? {
            Reply::Exit(e) => Some(e),
            _ => None,
        }
    }
}

/// Waits for the process to exit (`Waiter::exit`), registering now.
pub async fn wait(state: &Path) -> Option<Exit> {
    waiter(state).await.ok()?.exit().await
}

/// The exit file the shim writes atomically: `CODE NANOS`.
pub fn read_exit_file(state: &Path) -> Option<Exit> {
    Exit::parse(&std::fs::read_to_string(state.join(EXIT_FILE)).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_exits_parse() {
        assert_eq!(parse_reply("ok 42").expect("ok"), 42);
        assert!(parse_reply("err boom").is_err_and(|e| e.to_string() == "boom"));
        assert!(parse_reply("").is_err());
        let e = Exit::parse("137 1700000000000000000").expect("exit");
        assert_eq!((e.code, e.at_nanos), (137, 1_700_000_000_000_000_000));
        assert!(Exit::parse("garbage").is_none());
    }
}
