//! Docker's multiplexed stdout/stderr stream: the body of `attach`, `exec` and `logs` for a
//! container without a TTY, and what `berth-shim` sends berthd on an attach connection.
//!
//! ```text
//!  [stream: u8][0 0 0][payload length: u32 big-endian][payload] [stream]...
//!   0 stdin · 1 stdout · 2 stderr · 3 a daemon error inside a log stream
//! ```
//!
//! [`frame`] writes one frame; [`Demux`] takes back frames from chunks as they arrive.

use std::fmt;

/// Length of a frame's header.
pub const HEADER_LEN: usize = 8;

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamId {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// A daemon-side error inside a log stream.
    SystemErr = 3,
}

impl StreamId {
    pub fn from_u8(b: u8) -> Option<StreamId> {
        Some(match b {
            0 => StreamId::Stdin,
            1 => StreamId::Stdout,
            2 => StreamId::Stderr,
            3 => StreamId::SystemErr,
            _ => return None,
        })
    }
}

/// A frame header naming a stream that does not exist: the bytes are not a multiplexed
/// stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStream(pub u8);

impl fmt::Display for UnknownStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unrecognized stream: {}", self.0)
    }
}

impl std::error::Error for UnknownStream {}

/// The header of a frame of `len` bytes.
pub fn header(stream: StreamId, len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream as u8, 0, 0, 0, len[0], len[1], len[2], len[3]]
}

/// One frame: header and payload. Payloads longer than 4 GiB must be split by the caller.
pub fn frame(stream: StreamId, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&header(stream, payload.len()));
    f.extend_from_slice(payload);
    f
}

/// Incremental decoder: push chunks as they arrive, take out complete frames.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    start: usize,
}

impl Demux {
    pub fn new() -> Demux {
        Demux::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `None` until one has fully arrived. A header naming an
    /// unknown stream is an error as soon as the header is in.
    pub fn next_frame(&mut self) -> Result<Option<(StreamId, Vec<u8>)>, UnknownStream> {
        let b = &self.buf[self.start..];
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        let stream = StreamId::from_u8(b[0]).ok_or(UnknownStream(b[0]))?;
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b.len() - HEADER_LEN < len {
            return Ok(None);
        }
        let payload = b[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        Ok(Some((stream, payload)))
    }

    /// Bytes of an incomplete frame held back (at the end of a stream: a truncated frame).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_capture() {
        assert_eq!(
            frame(StreamId::Stdout, b"hi\n"),
            b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
        );
        assert_eq!(
            header(StreamId::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn demux_handles_split_frames() {
        let mut d = Demux::new();
        let mut all = frame(StreamId::Stderr, b"err");
        all.extend_from_slice(&frame(StreamId::Stdout, b"out"));
        d.push(&all[..5]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&all[5..]);
        assert_eq!(
            d.next_frame(),
            Ok(Some((StreamId::Stderr, b"err".to_vec())))
        );
        assert_eq!(
            d.next_frame(),
            Ok(Some((StreamId::Stdout, b"out".to_vec())))
        );
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn demux_frames_split_across_chunks() {
        let mut d = Demux::new();
        let wire = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n\x02\x00\x00\x00\x00\x00\x00\x04err\n";
        d.push(&wire[..5]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&wire[5..12]);
        assert_eq!(
            d.next_frame(),
            Ok(Some((StreamId::Stdout, b"hi\n".to_vec())))
        );
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&wire[12..]);
        assert_eq!(
            d.next_frame(),
            Ok(Some((StreamId::Stderr, b"err\n".to_vec())))
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn demux_rejects_garbage() {
        let mut d = Demux::new();
        d.push(b"hello world, not framed");
        assert_eq!(d.next_frame(), Err(UnknownStream(b'h')));
        assert_eq!(
            UnknownStream(b'h').to_string(),
            format!("unrecognized stream: {}", b'h')
        );
    }

    #[test]
    fn demux_zero_length_frame() {
        let mut d = Demux::new();
        d.push(b"\x01\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(d.next_frame(), Ok(Some((StreamId::Stdout, Vec::new()))));
    }

    #[test]
    fn demux_keeps_order_over_many_pushes() {
        let mut d = Demux::new();
        let mut seen = Vec::new();
        for i in 0..200u8 {
            let f = frame(StreamId::Stdout, &[i; 3]);
            d.push(&f[..4]);
            d.push(&f[4..]);
            while let Ok(Some((_, p))) = d.next_frame() {
                seen.push(p[0]);
            }
        }
        assert_eq!(seen, (0..200u8).collect::<Vec<_>>());
        assert_eq!(d.pending(), 0);
    }
}
