//! Display of JSON-message streams (pull, push, load, import, build), like docker's
//! `jsonmessage`: on a terminal each layer ID owns a line that is rewritten in place with ANSI
//! cursor moves; otherwise progress updates are dropped and only status lines are printed.
//! An `error`/`errorDetail` message ends the stream with that message as the error.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::client::Response;
use crate::format::human_size;
use crate::stream::JsonStream;

/// Renders messages one by one.
pub struct ProgressDisplay<'a> {
    out: &'a mut dyn Write,
    tty: bool,
    width: u16,
    ids: HashMap<String, usize>,
}

impl<'a> ProgressDisplay<'a> {
    pub fn new(out: &'a mut dyn Write, tty: bool, width: u16) -> ProgressDisplay<'a> {
        ProgressDisplay {
            out,
            tty,
            width,
            ids: HashMap::new(),
        }
    }

    /// Shows one message; returns the stream's error if the message carries one.
    pub fn show(&mut self, msg: &Value) -> Result<()> {
        if let Some(err) = message_error(msg) {
            return Err(anyhow!(err));
        }
        if msg.get("aux").is_some() {
            return Ok(());
        }
        let id = msg["id"].as_str().unwrap_or("");
        let has_progress = msg.get("progressDetail").is_some_and(|p| !p.is_null())
            || msg["progress"].as_str().is_some_and(|p| !p.is_empty());
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.get(id) {
                Some(l) => *l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.to_string(), l);
                    if self.tty {
                        let _ = writeln!(self.out);
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.tty && diff > 0 {
                let _ = write!(self.out, "\x1b[{diff}A");
            }
        } else {
            self.ids.clear();
        }
        self.display(msg, has_progress)?;
        if !id.is_empty() && self.tty && diff > 0 {
            let _ = write!(self.out, "\x1b[{diff}B");
        }
        let _ = self.out.flush();
        Ok(())
    }

    fn display(&mut self, msg: &Value, has_progress: bool) -> Result<()> {
        let progress = if has_progress {
            progress_string(msg, self.width)
        } else {
            String::new()
        };
        let stream = msg["stream"].as_str().unwrap_or("");
        let mut endl = "";
        if self.tty && stream.is_empty() && has_progress {
            let _ = write!(self.out, "\x1b[2K\r");
            endl = "\r";
        } else if has_progress && !progress.is_empty() {
            // Progress bars are only drawn on a terminal.
            return Ok(());
        }
        if let Some(id) = msg["id"].as_str().filter(|s| !s.is_empty()) {
            let _ = write!(self.out, "{id}: ");
        }
        if let Some(from) = msg["from"].as_str().filter(|s| !s.is_empty()) {
            let _ = write!(self.out, "(from {from}) ");
        }
        let status = msg["status"].as_str().unwrap_or("");
        if has_progress && self.tty {
            let _ = write!(self.out, "{status} {progress}{endl}");
        } else if !stream.is_empty() {
            let _ = write!(self.out, "{stream}{endl}");
        } else {
            let _ = writeln!(self.out, "{status}{endl}");
        }
        Ok(())
    }
}

/// The error text of a message with `errorDetail`/`error`.
pub fn message_error(msg: &Value) -> Option<String> {
    if let Some(m) = msg["errorDetail"]["message"].as_str() {
        return Some(m.to_string());
    }
    msg["error"].as_str().map(str::to_string)
}

/// A progress bar like docker's: `[=====>    ]  1.2MB/4.5MB` (the bar only on wide terminals).
pub fn progress_string(msg: &Value, width: u16) -> String {
    let detail = &msg["progressDetail"];
    let current = detail["current"].as_i64().unwrap_or(0);
    let total = detail["total"].as_i64().unwrap_or(0);
    if current <= 0 && total <= 0 {
        return msg["progress"].as_str().unwrap_or("").to_string();
    }
    if total <= 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let bar = if width > 110 {
        format!(
            "[{}>{}] ",
            "=".repeat(percentage),
            " ".repeat(50 - percentage)
        )
    } else {
        String::new()
    };
    let numbers = if current > total {
        format!("{:>8}", human_size(current as f64))
    } else {
        format!(
            "{:>8}/{}",
            human_size(current as f64),
            human_size(total as f64)
        )
    };
    format!("{bar}{numbers}")
}

/// Reads a JSON-message response to its end, showing each message; `aux` receives `aux` objects.
pub async fn display_response(
    resp: &mut Response,
    out: &mut dyn Write,
    tty: bool,
    mut aux: impl FnMut(&Value),
) -> Result<()> {
    let width = crate::tty::width();
    let mut display = ProgressDisplay::new(out, tty, width);
    let mut decoder = JsonStream::new();
    while let Some(chunk) = resp.chunk().await? {
        decoder.push(&chunk);
        while let Some(msg) = decoder.next_value()? {
            if let Some(a) = msg.get("aux") {
                aux(a);
            }
            display.show(&msg)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(tty: bool, msgs: &[Value]) -> (String, Result<()>) {
        let mut out = Vec::new();
        let mut res = Ok(());
        {
            let mut d = ProgressDisplay::new(&mut out, tty, 80);
            for m in msgs {
                res = d.show(m);
                if res.is_err() {
                    break;
                }
            }
        }
        (String::from_utf8_lossy(&out).to_string(), res)
    }

    #[test]
    fn plain_output_skips_progress() {
        let msgs = [
            json!({"status": "Pulling from bb", "id": "1"}),
            json!({"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "progress": "[>  ]", "id": "8dcdbeca1b91"}),
            json!({"status": "Pull complete", "progressDetail": {}, "id": "8dcdbeca1b91"}),
            json!({"status": "Digest: sha256:abc"}),
        ];
        let (out, res) = run(false, &msgs);
        assert!(res.is_ok());
        assert_eq!(
            out,
            "1: Pulling from bb\n8dcdbeca1b91: Pull complete\nDigest: sha256:abc\n"
        );
    }

    #[test]
    fn terminal_rewrites_lines() {
        let msgs = [
            json!({"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "id": "aaa"}),
            json!({"status": "Downloading", "progressDetail": {"current": 1000, "total": 1000}, "id": "aaa"}),
        ];
        let (out, _) = run(true, &msgs);
        assert_eq!(
            out,
            "\n\x1b[1A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[1B\x1b[1A\x1b[2K\raaa: Downloading      1kB/1kB\r\x1b[1B"
        );
    }

    #[test]
    fn stream_and_errors() {
        let (out, res) = run(
            false,
            &[json!({"stream": "Loaded image: busybox:latest\n"})],
        );
        assert_eq!(out, "Loaded image: busybox:latest\n");
        assert!(res.is_ok());
        let (_, res) = run(
            false,
            &[json!({"errorDetail": {"message": "boom"}, "error": "boom"})],
        );
        assert_eq!(res.expect_err("error").to_string(), "boom");
    }

    #[test]
    fn bar_on_wide_terminals() {
        let m = json!({"progressDetail": {"current": 50, "total": 100}});
        let s = progress_string(&m, 120);
        assert!(
            s.starts_with("[=========================>                         ] "),
            "{s}"
        );
        assert_eq!(progress_string(&m, 80), "     50B/100B");
    }
}
