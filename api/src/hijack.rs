//! `Upgrade: tcp` hijacking for attach and exec start: answer `101 UPGRADED` and hand the raw
//! connection to the engine.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;

use crate::backend::AttachHandle;
use crate::version::ApiVersion;

/// Answers 101 and runs the handle's `serve` on the upgraded connection.
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
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => (handle.serve)(Box::pin(TokioIo::new(upgraded))).await,
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
