//! `logs`: reads the json-lines log file that the shim writes, with tail, since/until and
//! timestamps, and follows it while the container runs.

use std::io::{BufRead, Seek, SeekFrom};
use std::time::Duration;

use berth_api::backend::{ByteStream, LogOptions};
use berth_api::stream::{frame, StreamId};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{ContainerError, Containers};

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

struct Entry {
    stream: StreamId,
    time: chrono::DateTime<chrono::Utc>,
    raw_time: String,
    log: String,
}

fn parse(line: &str) -> Option<Entry> {
    let l: Line = serde_json::from_str(line).ok()?;
    let time = chrono::DateTime::parse_from_rfc3339(&l.time)
        .ok()?
        .with_timezone(&chrono::Utc);
    let stream = if l.stream == "stderr" {
        StreamId::Stderr
    } else {
        StreamId::Stdout
    };
    Some(Entry {
        stream,
        time,
        raw_time: l.time,
        log: l.log,
    })
}

fn secs(t: f64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos((t * 1e9) as i64)
}

/// Renders one record as the client receives it.
fn render(e: &Entry, opts: &LogOptions, tty: bool) -> Option<Bytes> {
    if (e.stream == StreamId::Stdout && !opts.stdout)
        || (e.stream == StreamId::Stderr && !opts.stderr)
    {
        return None;
    }
    if opts.since.is_some_and(|s| e.time < secs(s)) || opts.until.is_some_and(|u| e.time > secs(u))
    {
        return None;
    }
    let payload = if opts.timestamps {
        format!("{} {}", e.raw_time, e.log)
    } else {
        e.log.clone()
    };
    Some(if tty {
        Bytes::from(payload)
    } else {
        frame(e.stream, payload.as_bytes())
    })
}

impl Containers {
    pub async fn logs(&self, key: &str, opts: LogOptions) -> Result<ByteStream, ContainerError> {
        let c = self.get(key)?;
        let rec = c.record();
        let tty = rec.config.tty;
        let path = self.paths(&c.id).log(&c.id);
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut watch = c.watch.subscribe();
        tokio::task::spawn_blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(_) if !opts.follow => return,
                Err(_) => match wait_for_file(&path) {
                    Some(f) => f,
                    None => return,
                },
            };
            let mut reader = std::io::BufReader::new(file);
            // The backlog, with `tail` applied.
            let mut backlog: std::collections::VecDeque<Bytes> = std::collections::VecDeque::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    if let Some(b) = parse(line.trim_end()).and_then(|e| render(&e, &opts, tty)) {
                        backlog.push_back(b);
                        if opts.tail.is_some_and(|t| backlog.len() > t) {
                            backlog.pop_front();
                        }
                    }
                    line.clear();
                } else {
                    break;
                }
            }
            if opts.tail == Some(0) {
                backlog.clear();
            }
            for b in backlog {
                if tx.blocking_send(b).is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            // Follow: poll the file for new records until the container stops running.
            let mut pos = reader.stream_position().unwrap_or(0) - line.len() as u64;
            let mut reader = reader.into_inner();
            let mut pending = String::new();
            loop {
                let running = watch.borrow_and_update().running;
                let _ = reader.seek(SeekFrom::Start(pos));
                let mut buf = String::new();
                let n = std::io::Read::read_to_string(&mut reader, &mut buf).unwrap_or(0);
                pos += n as u64;
                pending.push_str(&buf);
                while let Some(i) = pending.find('\n') {
                    let l: String = pending.drain(..=i).collect();
                    if let Some(e) = parse(l.trim_end()) {
                        if opts.until.is_some_and(|u| e.time > secs(u)) {
                            return;
                        }
                        if let Some(b) = render(&e, &opts, tty) {
                            if tx.blocking_send(b).is_err() {
                                return;
                            }
                        }
                    }
                }
                if !running && n == 0 {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let stream = tokio_stream_from(rx);
        Ok(ByteStream { tty, stream })
    }
}

fn wait_for_file(path: &std::path::Path) -> Option<std::fs::File> {
    for _ in 0..200 {
        if let Ok(f) = std::fs::File::open(path) {
            return Some(f);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub(crate) fn tokio_stream_from(
    mut rx: mpsc::Receiver<Bytes>,
) -> futures_util::stream::BoxStream<'static, Bytes> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_framed_with_filters() {
        let e = parse(r#"{"log":"hi\n","stream":"stderr","time":"2026-11-27T10:00:00.5Z"}"#)
            .expect("parse");
        let all = LogOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        assert_eq!(
            &render(&e, &all, false).expect("shown")[..],
            b"\x02\x00\x00\x00\x00\x00\x00\x03hi\n"
        );
        assert_eq!(&render(&e, &all, true).expect("raw")[..], b"hi\n");
        let only_out = LogOptions {
            stdout: true,
            ..Default::default()
        };
        assert!(render(&e, &only_out, false).is_none());
        let ts = LogOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            &render(&e, &ts, true).expect("ts")[..],
            b"2026-11-27T10:00:00.5Z hi\n"
        );
        let later = LogOptions {
            stdout: true,
            stderr: true,
            since: Some(1.9e9),
            ..Default::default()
        };
        assert!(render(&e, &later, false).is_none());
    }
}
