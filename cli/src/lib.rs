//! `berth`, the command-line client of the Docker Engine API that `berthd` serves (and that
//! any Docker-compatible daemon serves): the same commands, flags, tables and exit codes as the
//! `docker` CLI.
//!
//! ```text
//!  argv ──clap──► commands::dispatch ──► commands/<area>.rs ──► client (HTTP/1.1, hijack)
//!                                              │                    │
//!                     opts (flag values)  ◄────┤                    ▼
//!                     output/template/format ◄─┘            stream (frames, JSON lines)
//!                                                                 progress (pull/push bars)
//! ```
//!
//! Failures become exit codes in one place ([`main_entry`]): a [`error::StatusError`] exits
//! with its code (125 for `run` setup failures, the container's status for `run`/`start -a`/
//! `exec`), anything else prints and exits 1. Flag parse errors exit 125 like docker's.

pub mod client;
pub mod commands;
pub mod data;
pub mod error;
pub mod format;
pub mod opts;
pub mod output;
pub mod progress;
pub mod reference;
pub mod stream;
pub mod tabwriter;
pub mod template;
pub mod tty;
pub mod usage;

use clap::Parser;

use crate::client::{Client, DEFAULT_HOST};
use crate::commands::Cli;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main_entry() -> i32 {
    // Die quietly on a closed pipe (`berth logs x | head`), as Go programs do.
    // SAFETY: resetting a signal disposition to its default has no memory-safety impact.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args_os: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv: Vec<String> = args_os
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(&args_os) {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return 0;
            }
            let (text, code) = usage::render_clap_error(&e, &argv);
            eprintln!("{text}");
            return code;
        }
    };
    if cli.version {
        println!("Berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        println!("{}", Cli::command().render_help());
        return 0;
    };
    let host = cli
        .host
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let client = match Client::new(&host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(commands::dispatch(&client, command));
    // Helper threads (stdin readers) may be blocked in read(2): do not wait for them.
    runtime.shutdown_background();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(e) => {
            let (message, code) = error::report(&e);
            if !message.is_empty() {
                eprintln!("{message}");
            }
            code
        }
    }
}
