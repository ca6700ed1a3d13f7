//! The attached half of `run`, `start -a`, `attach` and `exec`: pumping a hijacked connection
//! to the local terminal, keeping the remote TTY size in step, and forwarding signals.
//!
//! ```text
//!   stdin thread ──► [detach-key filter] ──► socket write half ──(EOF: shutdown(WR))
//!   socket read half ──► raw bytes (TTY) | demux 8-byte frames ──► stdout / stderr
//! ```
//! The session ends when the output reaches EOF, or when the detach keys are typed.

use anyhow::Result;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use crate::client::{seg, Client, Hijacked, Query};
use crate::error::StatusError;
use crate::stream::demux_copy;
use crate::tty::{self, EscapeFilter, Std, StdSink};

/// How to run a session.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    /// The remote side has a TTY: output is raw, not framed.
    pub tty: bool,
    /// Copy local stdin to the connection.
    pub stdin: bool,
    /// Detach sequence watched for on stdin (TTY sessions only); empty for none.
    pub detach_keys: Vec<u8>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    OutputClosed,
    Detached,
}

/// The default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses `--detach-keys` (or the default), failing with exit status 1 like docker.
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    let spec = spec.unwrap_or(DEFAULT_DETACH_KEYS);
    tty::parse_detach_keys(spec).map_err(|e| {
        StatusError::new(1, format!("Invalid detach keys ({spec}) provided: {e}")).into()
    })
}

/// Runs the session until the output ends or the user detaches.
pub async fn pump(h: Hijacked, opts: SessionOpts) -> Result<SessionEnd> {
    let Hijacked {
        mut reader,
        mut writer,
    } = h;
    let tty_mode = opts.tty;
    let output = async move {
        let mut out = StdSink(Std::Out);
        if tty_mode {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).await?;
            }
        } else {
            let mut err = StdSink(Std::Err);
            demux_copy(&mut reader, &mut out, &mut err).await?;
        }
        Ok::<SessionEnd, anyhow::Error>(SessionEnd::OutputClosed)
    };
    let input = async move {
        if !opts.stdin {
            // Keep the write half open (dropping it would half-close the socket).
            std::future::pending::<()>().await;
        }
        let mut rx = tty::stdin_pump();
        let keys = if opts.tty {
            opts.detach_keys.clone()
        } else {
            Vec::new()
        };
        let mut filter = EscapeFilter::new(keys);
        while let Some(chunk) = rx.recv().await {
            let (forward, detached) = filter.feed(&chunk);
            if !forward.is_empty() && writer.write_all(&forward).await.is_err() {
                break;
            }
            if detached {
                return Ok::<SessionEnd, anyhow::Error>(SessionEnd::Detached);
            }
        }
        let _ = writer.shutdown().await;
        // Stdin is done; the session lasts until the output ends.
        std::future::pending::<()>().await;
        Ok(SessionEnd::OutputClosed)
    };
    tokio::select! {
        r = output => r,
        r = input => r,
    }
}

/// Sends the local terminal size to `base` (`/containers/{id}` or `/exec/{id}`) now and on
/// every SIGWINCH.
pub fn spawn_resize(client: Client, base: String) -> JoinHandle<()> {
    spawn_resize_with(client, base, false)
}

/// Like [`spawn_resize`]; with `nudge`, first sets a size one larger so that a program that is
/// already running redraws (used when attaching to a running container, as docker does).
pub fn spawn_resize_with(client: Client, base: String, nudge: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        if nudge {
            if let Some((h, w)) = tty::size(libc::STDOUT_FILENO) {
                let path = Query::new()
                    .add("h", (h + 1).to_string())
                    .add("w", (w + 1).to_string())
                    .to_path(&format!("{base}/resize"));
                let _ = client.post(&path, None).await;
            }
        }
        resize_once(&client, &base).await;
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            resize_once(&client, &base).await;
        }
    })
}

async fn resize_once(client: &Client, base: &str) {
    if let Some((h, w)) = tty::size(libc::STDOUT_FILENO) {
        let path = Query::new()
            .add("h", h.to_string())
            .add("w", w.to_string())
            .to_path(&format!("{base}/resize"));
        let _ = client.post(&path, None).await;
    }
}

/// Forwards the signals a user sends to the CLI to the container (`--sig-proxy`).
pub fn spawn_sig_proxy(client: Client, id: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let kinds = [
            (libc::SIGINT, SignalKind::interrupt()),
            (libc::SIGTERM, SignalKind::terminate()),
            (libc::SIGHUP, SignalKind::hangup()),
            (libc::SIGQUIT, SignalKind::quit()),
            (libc::SIGUSR1, SignalKind::user_defined1()),
            (libc::SIGUSR2, SignalKind::user_defined2()),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::channel::<i32>(8);
        for (num, kind) in kinds {
            let Ok(mut s) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(num).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(num) = rx.recv().await {
            let path = Query::new()
                .add("signal", num.to_string())
                .to_path(&format!("/containers/{}/kill", seg(&id)));
            let _ = client.post(&path, None).await;
        }
    })
}

/// The `attach` query for a container.
pub fn attach_path(
    id: &str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Option<&str>,
) -> String {
    let mut q = Query::new();
    q.flag("stderr", stderr)
        .flag("stdin", stdin)
        .flag("stdout", stdout)
        .add("stream", "1");
    q.opt("detachKeys", detach_keys);
    q.to_path(&format!("/containers/{}/attach", seg(id)))
}

/// Reads a wait response body: the exit status, or the wait's error.
pub async fn wait_status(resp: crate::client::Response) -> Result<i64> {
    let v: Value = resp.json().await?;
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        anyhow::bail!("{msg}");
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_queries() {
        assert_eq!(
            attach_path("abc", false, true, true, None),
            "/containers/abc/attach?stderr=1&stdout=1&stream=1"
        );
        assert_eq!(
            attach_path("abc", true, true, true, Some("ctrl-x")),
            "/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1&detachKeys=ctrl-x"
        );
    }

    #[test]
    fn default_detach_keys() {
        assert_eq!(detach_keys(None).expect("keys"), vec![16, 17]);
        assert!(detach_keys(Some("bogus-key")).is_err());
    }
}
