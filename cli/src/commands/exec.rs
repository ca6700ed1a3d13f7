//! `exec`: `GET /containers/{id}/json` → `POST /containers/{id}/exec` → hijacked
//! `POST /exec/{id}/start` → `GET /exec/{id}/json`, exiting with the exec's `ExitCode`.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::client::{seg, Client};
use crate::commands::session::{self, SessionEnd, SessionOpts};
use crate::error::StatusError;
use crate::opts;
use crate::tty::{self, RawMode};

/// `berth exec`
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// The container, then the command and its arguments
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2.., trailing_var_arg = true)]
    pub args: Vec<String>,
}

impl ExecArgs {
    /// The `POST /containers/{id}/exec` body.
    pub fn body(&self) -> Result<Value> {
        let mut env = Vec::new();
        for file in &self.env_file {
            let content = std::fs::read_to_string(file).map_err(|e| anyhow!("open {file}: {e}"))?;
            env.extend(
                opts::parse_env_file(&content, |k| std::env::var(k).ok())
                    .map_err(|e| anyhow!(e))?,
            );
        }
        for e in &self.env {
            env.push(opts::resolve_env(e).map_err(|err| anyhow!(err))?);
        }
        let attach = !self.detach;
        let mut body = json!({
            "User": self.user.clone().unwrap_or_default(),
            "Privileged": self.privileged,
            "Tty": self.tty,
            "AttachStdin": self.interactive && attach,
            "AttachStdout": attach,
            "AttachStderr": attach,
            "Detach": self.detach,
            "Env": if env.is_empty() { Value::Null } else { json!(env) },
            "WorkingDir": self.workdir.clone().unwrap_or_default(),
            "Cmd": self.args[1..].to_vec(),
        });
        if let Some(k) = &self.detach_keys {
            body["DetachKeys"] = json!(k);
        }
        Ok(body)
    }
}

pub async fn exec(client: &Client, args: ExecArgs) -> Result<()> {
    let container = &args.args[0];
    let detach_keys = session::detach_keys(args.detach_keys.as_deref())?;
    let body = args.body()?;
    // The CLI looks the container up first (the daemon answers 404 for unknown names).
    let _: Value = client
        .get_json(&format!("/containers/{}/json", seg(container)))
        .await?;
    if args.tty && args.interactive && !args.detach && !tty::stdin_is_tty() {
        bail!("the input device is not a TTY");
    }
    let created: Value = client
        .post_json(&format!("/containers/{}/exec", seg(container)), Some(&body))
        .await?;
    let exec_id = created["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("daemon returned no exec ID"))?
        .to_string();
    let start_path = format!("/exec/{exec_id}/start");

    if args.detach {
        client
            .post(&start_path, Some(&json!({"Detach": true, "Tty": args.tty})))
            .await?;
        return Ok(());
    }
    let hijacked = client
        .hijack(
            &start_path,
            Some(&json!({"Detach": false, "Tty": args.tty})),
        )
        .await?;
    let stdin = args.interactive;
    let raw = if args.tty && stdin {
        RawMode::enter()
    } else {
        None
    };
    let resize = (args.tty && tty::stdout_is_tty())
        .then(|| session::spawn_resize(client.clone(), format!("/exec/{exec_id}")));
    let end = session::pump(
        hijacked,
        SessionOpts {
            tty: args.tty,
            stdin,
            detach_keys,
        },
    )
    .await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    match end {
        Ok(SessionEnd::Detached) => return Ok(()),
        Ok(SessionEnd::OutputClosed) => {}
        Err(e) => eprintln!("{e:#}"),
    }
    let inspect: Value = client.get_json(&format!("/exec/{exec_id}/json")).await?;
    let code = inspect["ExitCode"].as_i64().unwrap_or(0);
    if code != 0 {
        return Err(StatusError::code(code as i32).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ExecArgs,
    }

    #[test]
    fn exec_body_like_docker() {
        let w = Wrap::try_parse_from([
            "exec", "-it", "-e", "A=1", "-u", "nobody", "web", "sh", "-c", "exit 4",
        ])
        .expect("parse");
        let b = w.args.body().expect("body");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "exit 4"]));
        assert_eq!(b["Tty"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["User"], "nobody");
        let w = Wrap::try_parse_from(["exec", "-d", "web", "touch", "/x"]).expect("parse");
        let b = w.args.body().expect("body");
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["Detach"], true);
        assert!(Wrap::try_parse_from(["exec", "web"]).is_err());
    }
}
