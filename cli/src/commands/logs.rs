//! `logs`: `GET /containers/{id}/json` (is it a TTY?) then `GET /containers/{id}/logs`, raw or
//! demultiplexed to stdout/stderr, until the stream ends (`-f` follows until the container stops
//! or Ctrl-C).

use anyhow::Result;
use clap::Args;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::client::{seg, Client, Query, Response};
use crate::opts;
use crate::tty::{Std, StdSink};
use berth_common::stream::{Demux, StreamId};

/// `berth logs`
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "until")]
    pub until: Option<String>,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `--since/--until` converted for the API, relative to now.
pub fn api_time(v: &Option<String>) -> Result<Option<String>> {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    match v {
        None => Ok(None),
        Some(s) => opts::parse_timestamp(s, now)
            .map(Some)
            .map_err(anyhow::Error::msg),
    }
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<()> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = Query::new();
    q.flag("details", args.details).flag("follow", args.follow);
    q.opt("since", api_time(&args.since)?);
    q.add("stderr", "1")
        .add("stdout", "1")
        .add("tail", &args.tail);
    q.flag("timestamps", args.timestamps);
    q.opt("until", api_time(&args.until)?);
    let resp = client
        .get(&q.to_path(&format!("/containers/{}/logs", seg(&args.container))))
        .await?;
    copy_output(resp, tty).await
}

/// Copies a log/attach-style response to stdout/stderr: raw when `tty`, demultiplexed otherwise.
pub async fn copy_output(mut resp: Response, tty: bool) -> Result<()> {
    let mut out = StdSink(Std::Out);
    let mut err = StdSink(Std::Err);
    let mut demux = Demux::new();
    while let Some(chunk) = resp.chunk().await? {
        if tty {
            out.write_all(&chunk).await?;
            continue;
        }
        demux.push(&chunk);
        while let Some((kind, data)) = demux.next_frame()? {
            match kind {
                StreamId::Stderr => err.write_all(&data).await?,
                StreamId::SystemErr => {
                    anyhow::bail!("{}", String::from_utf8_lossy(&data).trim_end())
                }
                _ => out.write_all(&data).await?,
            }
        }
    }
    Ok(())
}
