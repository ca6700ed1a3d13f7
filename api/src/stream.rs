//! Streaming response bodies: newline-delimited JSON progress streams and raw byte streams.
//! (The 8-byte multiplexed stdout/stderr framing is `berth_common::stream`, shared with the
//! CLI and the shim.)

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;

/// How much of a refused upload is read before the error is sent, as Go's HTTP server does
/// for Docker: the client then reads the error instead of failing on a broken pipe.
pub const DRAIN_LIMIT: usize = 64 << 20;

/// Reads and drops what is left of a request body, up to [`DRAIN_LIMIT`].
pub async fn drain(mut body: crate::backend::BodyStream) {
    let mut seen = 0;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// A 200 response streaming one JSON object per line, each flushed as produced.
pub fn json_lines(stream: BoxStream<'static, Value>) -> Response {
    let body = stream.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A 200 response streaming raw bytes with the given content type.
pub fn bytes(content_type: &'static str, stream: BoxStream<'static, Bytes>) -> Response {
    let body = stream.map(Ok::<_, std::io::Error>);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(body),
    )
        .into_response()
}
