//! `Upgrade: tcp` hijacking for attach and exec start: answer `101 UPGRADED` and hand the raw
//! connection to the engine.
//!
//! ```text
//!  handler ─► 101 head written and flushed by hyper ─► client reads the head
//!          ─► (unix socket: kernel says the client has read it) ─► engine's serve writes stream
//! ```
//! No stream byte may share a read with the head: the Docker SDK for Python parses the head
//! with a buffered reader (http.client) and then reads the stream from the raw socket, so
//! bytes that arrived with the head stay in that buffer and are lost to it. On a unix socket
//! the kernel tells how much of what we sent the peer has not read yet (`SIOCOUTQ`), so the
//! stream starts exactly when the head has been consumed. TLS connections are not probed:
//! the kernel cannot see what the client's TLS layer has read.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::serve::IncomingStream;
use hyper_util::rt::TokioIo;

use crate::backend::AttachHandle;
use crate::version::ApiVersion;

/// How long the stream waits for a client that does not read the head (then it starts
/// anyway: the bytes are not lost to a client that reads everything from one buffer).
const HEAD_READ_LIMIT: Duration = Duration::from_secs(2);
/// Checks this early are back to back (a client blocked in `read` takes microseconds); later
/// ones a millisecond apart.
const SPIN: Duration = Duration::from_micros(200);

/// The descriptor of a unix-socket client connection, recorded at accept
/// (`into_make_service_with_connect_info::<UnixClient>`).
#[derive(Debug, Clone, Copy)]
pub struct UnixClient(RawFd);

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for UnixClient {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        use std::os::fd::AsRawFd;
        UnixClient(stream.io().as_raw_fd())
    }
}

/// Bytes we sent on a unix socket that its peer has not read yet.
fn unread_by_peer(fd: RawFd) -> std::io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is the client's socket, kept open by the upgraded connection our caller
    // holds; SIOCOUTQ (= TIOCOUTQ) writes one int to the pointer, which points at `n`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Waits until the client has read everything sent so far (the head), or the limit passes.
async fn until_read_by_client(fd: RawFd) -> Duration {
    let start = Instant::now();
    loop {
        match unread_by_peer(fd) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let waited = start.elapsed();
        if waited >= HEAD_READ_LIMIT {
            tracing::debug!("hijacked client did not read the 101 head; streaming anyway");
            break;
        }
        if waited < SPIN {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    start.elapsed()
}

/// Answers 101 and runs the handle's `serve` on the upgraded connection once the client has
/// read the head.
pub fn upgrade(req: &mut Request, handle: AttachHandle) -> Response {
    let version = req
        .extensions()
        .get::<ApiVersion>()
        .copied()
        .unwrap_or_else(ApiVersion::max);
    let content_type = if !handle.tty && version >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let unix = req
        .extensions()
        .get::<ConnectInfo<UnixClient>>()
        .map(|c| c.0 .0);
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        // Resolves after hyper has written and flushed the 101 head.
        match on_upgrade.await {
            Ok(upgraded) => {
                if let Some(fd) = unix {
                    let waited = until_read_by_client(fd).await;
                    tracing::trace!(?waited, "hijacked client read the head");
                }
                (handle.serve)(Box::pin(TokioIo::new(upgraded))).await
            }
            Err(e) => tracing::debug!(error = %e, "hijack upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap_or_default()
}

/// Whether the client asked for a hijack.
pub fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}
