//! Stream encodings of the Docker API: the 8-byte multiplexed stdout/stderr framing, and
//! newline-delimited JSON progress streams.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;

/// Stream ids of the multiplexed framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamId {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    SystemErr = 3,
}

impl StreamId {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => StreamId::Stdin,
            1 => StreamId::Stdout,
            2 => StreamId::Stderr,
            3 => StreamId::SystemErr,
            _ => return None,
        })
    }
}

/// One frame: `[stream, 0, 0, 0, len:u32be] payload`.
pub fn frame(stream: StreamId, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u8(stream as u8);
    b.put_bytes(0, 3);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

/// Incremental decoder of multiplexed frames.
#[derive(Default)]
pub struct Demux {
    buf: BytesMut,
}

impl Demux {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// The next complete frame, if buffered.
    pub fn next_frame(&mut self) -> Option<(StreamId, Bytes)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let id = StreamId::from_u8(self.buf[0]).unwrap_or(StreamId::Stdout);
        let mut f = self.buf.split_to(8 + len);
        Some((id, f.split_off(8).freeze()))
    }
}

/// A 200 response streaming one JSON object per line, each flushed as produced.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_capture() {
        assert_eq!(
            &frame(StreamId::Stdout, b"hi\n")[..],
            b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        );
    }

    #[test]
    fn demux_handles_split_frames() {
        let mut d = Demux::default();
        let mut all = frame(StreamId::Stderr, b"err").to_vec();
        all.extend_from_slice(&frame(StreamId::Stdout, b"out"));
        d.push(&all[..5]);
        assert!(d.next_frame().is_none());
        d.push(&all[5..]);
        assert_eq!(
            d.next_frame(),
            Some((StreamId::Stderr, Bytes::from_static(b"err")))
        );
        assert_eq!(
            d.next_frame(),
            Some((StreamId::Stdout, Bytes::from_static(b"out")))
        );
        assert!(d.next_frame().is_none());
    }
}
