//! `logs`: renders the json-lines records that the shim writes (read across rotated files by
//! logfiles.rs), with tail, since/until and timestamps, and follows them while the container
//! runs. A container with log driver `none` has no log to read: 501, as from dockerd.

use std::collections::VecDeque;
use std::time::Duration;

use berth_api::backend::{ByteStream, LogOptions};
use berth_common::stream::{frame, StreamId};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::executor::{LogRecord, LogRequest, OutputStream};
use super::logconfig::LogSettings;
use super::logfiles::LogReader;
use super::{ContainerError, Containers};

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

pub(crate) struct Entry {
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
        Bytes::from(frame(e.stream, payload.as_bytes()))
    })
}

impl Entry {
    /// The record as the engine hands it out (executor logs).
    fn record(&self) -> LogRecord {
        LogRecord {
            stream: if self.stream == StreamId::Stderr {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            },
            time: self.time,
            line: self.log.clone(),
        }
    }
}

/// Whether a record passes a request's stream and time filters.
fn wanted(e: &Entry, req: &LogRequest) -> bool {
    let stream_ok = match e.stream {
        StreamId::Stderr => req.stderr,
        _ => req.stdout,
    };
    stream_ok
        && req.since.is_none_or(|s| e.time >= secs(s))
        && req.until.is_none_or(|u| e.time <= secs(u))
}

impl From<&LogOptions> for LogRequest {
    fn from(o: &LogOptions) -> Self {
        LogRequest {
            follow: o.follow,
            stdout: o.stdout,
            stderr: o.stderr,
            since: o.since,
            until: o.until,
            tail: o.tail,
        }
    }
}

impl Containers {
    /// `GET /containers/{id}/logs`: the records rendered as Docker streams them.
    pub async fn logs(&self, key: &str, opts: LogOptions) -> Result<ByteStream, ContainerError> {
        let tty = self.get(key)?.record().config.tty;
        let (tty, stream) =
            self.log_records(key, LogRequest::from(&opts), move |e| render(e, &opts, tty))?;
        Ok(ByteStream { tty, stream })
    }

    /// The container's log records, each mapped by `map` (`None` skips it), with `tail`
    /// applied to what `map` kept; followed while the container runs when asked. Also
    /// returns whether the container has a terminal.
    pub(crate) fn log_records<T: Send + 'static>(
        &self,
        key: &str,
        req: LogRequest,
        map: impl Fn(&Entry) -> Option<T> + Send + 'static,
    ) -> Result<(bool, futures_util::stream::BoxStream<'static, T>), ContainerError> {
        let c = self.get(key)?;
        let rec = c.record();
        let tty = rec.config.tty;
        let settings = LogSettings::from_config(&rec.host_config.log_config)
            .map_err(|e| ContainerError::Invalid(e.0))?;
        let Some(path) = self.paths(&c.id).log_file(&c.id, settings.driver) else {
            return Err(ContainerError::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        };
        let (tx, rx) = mpsc::channel::<T>(64);
        let mut watch = c.watch.subscribe();
        tokio::task::spawn_blocking(move || {
            let mut reader = LogReader::new(path, settings.max_files);
            // The backlog, with `tail` applied.
            let mut backlog: VecDeque<T> = VecDeque::new();
            reader.read_all(&mut |line| {
                if let Some(b) = parse(line).and_then(|e| map(&e)) {
                    backlog.push_back(b);
                    if req.tail.is_some_and(|t| backlog.len() > t) {
                        backlog.pop_front();
                    }
                }
                true
            });
            if req.tail == Some(0) {
                backlog.clear();
            }
            for b in backlog {
                if tx.blocking_send(b).is_err() {
                    return;
                }
            }
            if !req.follow {
                return;
            }
            // Follow: poll the files for new records until the container stops running.
            loop {
                let running = watch.borrow_and_update().running;
                let (go, n) = reader.poll(&mut |line| {
                    let Some(e) = parse(line) else {
                        return true;
                    };
                    if req.until.is_some_and(|u| e.time > secs(u)) {
                        return false;
                    }
                    match map(&e) {
                        Some(b) => tx.blocking_send(b).is_ok(),
                        None => true,
                    }
                });
                if !go || (!running && n == 0) || tx.is_closed() {
                    return;
                }
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Ok((tty, tokio_stream_from(rx)))
    }

    /// The executor's logs: records that pass the request's filters.
    pub(crate) fn filtered_log_records(
        &self,
        key: &str,
        req: LogRequest,
    ) -> Result<futures_util::stream::BoxStream<'static, LogRecord>, ContainerError> {
        let filter = req.clone();
        let (_, records) =
            self.log_records(key, req, move |e| wanted(e, &filter).then(|| e.record()))?;
        Ok(records)
    }
}

pub(crate) fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> futures_util::stream::BoxStream<'static, T> {
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
