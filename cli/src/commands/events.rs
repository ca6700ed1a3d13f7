//! `events`: the daemon's event stream, printed as docker prints it (or through `--format`).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{Client, Query};
use crate::commands::logs::api_time;
use crate::commands::system::s;
use crate::data::Data;
use crate::opts;
use crate::output::unescape;
use crate::template::Template;

/// `berth events`
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    pub until: Option<String>,
}

/// One event in docker's default layout:
/// `2026-11-27T22:19:20.115862415Z container die <id> (exitCode=137, image=busybox, name=s24)`.
pub fn event_line(e: &Value) -> String {
    let mut out = String::new();
    let nanos = e["timeNano"]
        .as_i64()
        .or_else(|| e["time"].as_i64().map(|t| t * 1_000_000_000));
    if let Some(n) = nanos {
        let t = chrono::DateTime::from_timestamp(
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000) as u32,
        )
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default();
        out.push_str(&t);
        out.push(' ');
    }
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().or(e["status"].as_str()).unwrap_or("");
    let id = e["Actor"]["ID"].as_str().or(e["id"].as_str()).unwrap_or("");
    out.push_str(&format!("{kind} {action} {id}"));
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let mut keys: Vec<&String> = attrs.keys().collect();
        keys.sort();
        let parts: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}={}", s(&attrs[*k])))
            .collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let mut q = Query::new();
    q.opt("since", api_time(&args.since)?)
        .opt("until", api_time(&args.until)?)
        .filters(&f);
    let mut resp = client.get(&q.to_path("/events")).await?;
    let tmpl = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(&unescape(f))?),
    };
    let mut dec = crate::stream::JsonStream::new();
    loop {
        // Ctrl-C ends the process the default way, as it does docker's.
        let Some(chunk) = resp.chunk().await? else {
            return Ok(());
        };
        dec.push(&chunk);
        while let Some(raw) = dec.next_raw()? {
            let line = match &tmpl {
                Some(t) => t.render_data(
                    &Data::parse(&raw).map_err(|e| anyhow::anyhow!("invalid event: {e}"))?,
                )?,
                None => event_line(
                    &serde_json::from_slice(&raw)
                        .map_err(|e| anyhow::anyhow!("invalid event: {e}"))?,
                ),
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "die", "Actor": {"ID": "3fc1", "Attributes": {"name": "s24", "exitCode": "137", "image": "busybox"}}, "timeNano": 1_795_818_000_132_805_609i64});
        let line = event_line(&e);
        assert!(
            line.ends_with(" container die 3fc1 (exitCode=137, image=busybox, name=s24)"),
            "{line}"
        );
        let stamp = line.split(' ').next().unwrap_or("");
        // `Z` in UTC, `+hh:mm` elsewhere; always nine fraction digits.
        assert!(stamp.len() == 30 || stamp.len() == 35, "{stamp}");
        assert!(stamp.contains(".132805609"), "{stamp}");
    }
}
