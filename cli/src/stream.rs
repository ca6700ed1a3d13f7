//! Decoders for the two stream formats of the Engine API.
//!
//! ```text
//!  attach/exec/logs (no TTY):  [1|2|3][0 0 0][len u32 BE] payload ...  ──Demux──► (Stdout|Stderr, bytes)
//!  pull/push/load/events/...:  {"status":..}\n{"status":..}\n ...     ──JsonStream──► serde_json::Value
//! ```
//!
//! Both are incremental: feed whatever chunk the transport delivered, take out what is complete.
//! The frame decoder is `berth_common::stream::Demux`, shared with the daemon; this module
//! copies a framed stream to stdout/stderr and splits JSON streams.

use anyhow::{bail, Result};
use berth_common::stream::{Demux, StreamId};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Copies a multiplexed stream from `src` to `stdout`/`stderr` until EOF. A type-3 frame is a
/// daemon error and ends the copy with that message.
pub async fn demux_copy<R, O, E>(src: &mut R, stdout: &mut O, stderr: &mut E) -> Result<()>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut demux = Demux::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        demux.push(&buf[..n]);
        while let Some((kind, data)) = demux.next_frame()? {
            match kind {
                StreamId::Stdout | StreamId::Stdin => {
                    stdout.write_all(&data).await?;
                    stdout.flush().await?;
                }
                StreamId::Stderr => {
                    stderr.write_all(&data).await?;
                    stderr.flush().await?;
                }
                StreamId::SystemErr => {
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
