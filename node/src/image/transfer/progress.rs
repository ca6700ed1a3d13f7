//! Docker's JSON progress messages, as `docker pull/push` stream them and the docker CLI draws
//! them: `{"status","progressDetail":{"current","total"},"progress":"[==>  ] 1.2MB/3.4MB","id"}`.
//!
//! [`Progress`] is the sending half a pull or push writes to; [`Progress::bytes`] throttles
//! per-layer byte counts to a few messages a second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

const EVERY: Duration = Duration::from_millis(150);

/// The sending side of a progress stream. Sending never fails: once the client is gone the
/// operation still finishes (what it stored stays consistent), its messages are dropped.
pub struct Progress {
    tx: mpsc::UnboundedSender<Value>,
    last: Mutex<HashMap<String, Instant>>,
}

impl Progress {
    pub fn new() -> (Progress, mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Progress {
                tx,
                last: Mutex::new(HashMap::new()),
            },
            rx,
        )
    }

    pub fn send(&self, v: Value) {
        let _ = self.tx.send(v);
    }

    /// `{"status": …}`.
    pub fn status(&self, status: &str) {
        self.send(json!({ "status": status }));
    }

    /// `{"status": …, "progressDetail": {}, "id": …}`.
    pub fn layer(&self, id: &str, status: &str) {
        self.send(json!({ "status": status, "progressDetail": {}, "id": id }));
    }

    /// A byte count for a layer, at most every 150 ms (the last one always goes out).
    pub fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let key = format!("{id}/{status}");
            let done = total > 0 && current >= total;
            if let Some(t) = last.get(&key) {
                if !done && now.duration_since(*t) < EVERY {
                    return;
                }
            }
            last.insert(key, now);
        }
        self.send(json!({
            "status": status,
            "progressDetail": { "current": current, "total": total },
            "progress": bar(current, total),
            "id": id,
        }));
    }

    /// `{"errorDetail": {"message"}, "error"}`: how a failure after the stream started is told.
    pub fn error(&self, message: &str) {
        self.send(json!({ "errorDetail": { "message": message }, "error": message }));
    }
}

/// Docker's progress text: a 50-column bar and `current/total` in decimal units.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    if current > total {
        format!("{bar}{:>8}", human_size(current))
    } else {
        format!("{bar}{:>8}/{}", human_size(current), human_size(total))
    }
}

/// Sizes as Docker's `units.HumanSize`: four significant digits, decimal units.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", four_digits(size), UNITS[unit])
}

/// Go's `%.4g` for 0 ≤ x < 1000: four significant digits, trailing zeros dropped.
fn four_digits(x: f64) -> String {
    let int_digits = if x < 1.0 {
        1
    } else {
        (x.log10().floor() as i32 + 1).max(1)
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_match_docker_captures() {
        assert_eq!(human_size(39936), "39.94kB");
        assert_eq!(human_size(1982368), "1.982MB");
        assert_eq!(human_size(662528), "662.5kB");
        assert_eq!(human_size(527), "527B");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(
            bar(39936, 1982368),
            "[=>                                                 ]  39.94kB/1.982MB"
        );
        assert_eq!(
            bar(1996800, 1982368),
            "[==================================================>]  1.997MB"
        );
        assert_eq!(bar(5, 0), "      5B");
    }

    #[tokio::test]
    async fn byte_messages_are_throttled_but_the_last_goes_out() {
        let (p, mut rx) = Progress::new();
        p.bytes("abc", "Downloading", 1, 100);
        p.bytes("abc", "Downloading", 2, 100);
        p.bytes("abc", "Downloading", 100, 100);
        drop(p);
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v["progressDetail"]["current"].as_u64().expect("current"));
        }
        assert_eq!(got, vec![1, 100]);
    }
}
