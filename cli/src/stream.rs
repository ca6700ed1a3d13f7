//! Decoders for the two stream formats of the Engine API.
//!
//! ```text
//!  attach/exec/logs (no TTY):  [1|2|3][0 0 0][len u32 BE] payload ...  ──Demuxer──► (Stdout|Stderr, bytes)
//!  pull/push/load/events/...:  {"status":..}\n{"status":..}\n ...     ──JsonStream──► serde_json::Value
//! ```
//!
//! Both are incremental: feed whatever chunk the transport delivered, take out what is complete.

use anyhow::{bail, Result};
use bytes::{Buf, Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    /// Daemon-side errors inside a log stream (type 3).
    SystemErr,
}

/// Splits the 8-byte-header multiplexed format into frames.
#[derive(Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one has arrived. An unknown stream byte is an error.
    pub fn next_frame(&mut self) -> Result<Option<(StreamKind, Bytes)>> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let kind = match self.buf[0] {
            0 => StreamKind::Stdin,
            1 => StreamKind::Stdout,
            2 => StreamKind::Stderr,
            3 => StreamKind::SystemErr,
            other => bail!("unrecognized stream: {other}"),
        };
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(8);
        Ok(Some((kind, self.buf.split_to(len).freeze())))
    }

    /// Bytes of an incomplete frame left over at end of stream.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Copies a multiplexed stream from `src` to `stdout`/`stderr` until EOF. A type-3 frame is a
/// daemon error and ends the copy with that message.
pub async fn demux_copy<R, O, E>(src: &mut R, stdout: &mut O, stderr: &mut E) -> Result<()>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut demux = Demuxer::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        demux.push(&buf[..n]);
        while let Some((kind, data)) = demux.next_frame()? {
            match kind {
                StreamKind::Stdout | StreamKind::Stdin => {
                    stdout.write_all(&data).await?;
                    stdout.flush().await?;
                }
                StreamKind::Stderr => {
                    stderr.write_all(&data).await?;
                    stderr.flush().await?;
                }
                StreamKind::SystemErr => {
                    bail!("{}", String::from_utf8_lossy(&data).trim_end());
                }
            }
        }
    }
}

/// Splits a stream of concatenated JSON values (newline-delimited or not).
#[derive(Default)]
pub struct JsonStream {
    buf: Vec<u8>,
}

impl JsonStream {
    pub fn new() -> JsonStream {
        JsonStream::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete value, `None` when more input is needed. Malformed JSON is an error.
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        let mut iter = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        match iter.next() {
            Some(Ok(v)) => {
                let used = iter.byte_offset();
                self.buf.drain(..used);
                Ok(Some(v))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => bail!("invalid JSON in stream: {e}"),
            None => {
                self.buf.clear();
                Ok(None)
            }
        }
    }

    /// The raw bytes of the next complete value (for order-preserving decoding), `None` when
    /// more input is needed.
    pub fn next_raw(&mut self) -> Result<Option<Vec<u8>>> {
        let mut iter =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde::de::IgnoredAny>();
        match iter.next() {
            Some(Ok(_)) => {
                let used = iter.byte_offset();
                let raw: Vec<u8> = self.buf.drain(..used).collect();
                let start = raw
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(raw.len());
                Ok(Some(raw[start..].to_vec()))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => bail!("invalid JSON in stream: {e}"),
            None => {
                self.buf.clear();
                Ok(None)
            }
        }
    }

    /// Whether only whitespace is left.
    pub fn is_empty(&self) -> bool {
        self.buf.iter().all(|b| b.is_ascii_whitespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_frames_split_across_chunks() {
        let mut d = Demuxer::new();
        let wire = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n\x02\x00\x00\x00\x00\x00\x00\x04err\n";
        d.push(&wire[..5]);
        assert_eq!(d.next_frame().expect("frame"), None);
        d.push(&wire[5..12]);
        assert_eq!(
            d.next_frame().expect("frame"),
            Some((StreamKind::Stdout, Bytes::from_static(b"hi\n")))
        );
        assert_eq!(d.next_frame().expect("frame"), None);
        d.push(&wire[12..]);
        assert_eq!(
            d.next_frame().expect("frame"),
            Some((StreamKind::Stderr, Bytes::from_static(b"err\n")))
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn demux_rejects_garbage() {
        let mut d = Demuxer::new();
        d.push(b"hello world, not framed");
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn demux_zero_length_frame() {
        let mut d = Demuxer::new();
        d.push(b"\x01\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            d.next_frame().expect("frame"),
            Some((StreamKind::Stdout, Bytes::new()))
        );
    }

    #[tokio::test]
    async fn demux_copy_routes_streams() {
        let wire: &[u8] = b"\x01\x00\x00\x00\x00\x00\x00\x03out\x02\x00\x00\x00\x00\x00\x00\x03err";
        let mut src = wire;
        let mut out = Vec::new();
        let mut err = Vec::new();
        demux_copy(&mut src, &mut out, &mut err)
            .await
            .expect("copy");
        assert_eq!(out, b"out");
        assert_eq!(err, b"err");
        let mut src: &[u8] = b"\x03\x00\x00\x00\x00\x00\x00\x04boom";
        let e = demux_copy(&mut src, &mut out, &mut err)
            .await
            .expect_err("system error");
        assert_eq!(e.to_string(), "boom");
    }

    #[test]
    fn json_stream_incremental() {
        let mut s = JsonStream::new();
        s.push(br#"{"status":"a"}"#);
        s.push(b"\n{\"stat");
        assert_eq!(
            s.next_value().expect("json"),
            Some(serde_json::json!({"status":"a"}))
        );
        assert_eq!(s.next_value().expect("json"), None);
        s.push(b"us\":\"b\"}{\"x\":1}\r\n");
        assert_eq!(
            s.next_value().expect("json"),
            Some(serde_json::json!({"status":"b"}))
        );
        assert_eq!(
            s.next_value().expect("json"),
            Some(serde_json::json!({"x":1}))
        );
        assert_eq!(s.next_value().expect("json"), None);
        assert!(s.is_empty());
        s.push(b"{oops}");
        assert!(s.next_value().is_err());
        let mut s = JsonStream::new();
        s.push(b" {\"b\":1,\"a\":2}\n{\"c\"");
        assert_eq!(
            s.next_raw().expect("raw"),
            Some(b"{\"b\":1,\"a\":2}".to_vec())
        );
        assert_eq!(s.next_raw().expect("raw"), None);
    }
}
