//! Command line of `berth-shim`, written by berthd (not meant for people):
//!
//! ```text
//! berth-shim init --id ID --state DIR --root DIR --bundle DIR --log FILE [--runtime PATH] [--tty] [--stdin] [--stdin-once]
//! berth-shim exec --id ID --state DIR --root DIR --exec-id EID --process FILE [--runtime PATH] [--tty] [--stdin]
//! ```
//! `--runtime` absent means the built-in libcontainer runtime; otherwise the path of an OCI
//! runtime binary (runc, crun).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The container's init process: logs, attach, exit file, then runtime delete.
    Init { bundle: PathBuf, log: PathBuf },
    /// One exec'd process inside a running container.
    Exec { exec_id: String, process: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub id: String,
    pub state: PathBuf,
    /// The runtime's own state root (libcontainer / runc `--root`), shared by init and execs.
    pub root: PathBuf,
    pub runtime: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
}

pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mode = argv.first().ok_or("missing mode (init|exec)")?.clone();
    let mut id = None;
    let mut state = None;
    let mut root = None;
    let mut bundle = None;
    let mut log = None;
    let mut runtime = None;
    let mut exec_id = None;
    let mut process = None;
    let (mut tty, mut stdin, mut stdin_once) = (false, false, false);
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--id" => id = Some(val()?),
            "--state" => state = Some(PathBuf::from(val()?)),
            "--root" => root = Some(PathBuf::from(val()?)),
            "--bundle" => bundle = Some(PathBuf::from(val()?)),
            "--log" => log = Some(PathBuf::from(val()?)),
            "--runtime" => runtime = Some(PathBuf::from(val()?)),
            "--exec-id" => exec_id = Some(val()?),
            "--process" => process = Some(PathBuf::from(val()?)),
            "--tty" => tty = true,
            "--stdin" => stdin = true,
            "--stdin-once" => stdin_once = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mode = match mode.as_str() {
        "init" => Mode::Init {
            bundle: bundle.ok_or("--bundle is required")?,
            log: log.ok_or("--log is required")?,
        },
        "exec" => Mode::Exec {
            exec_id: exec_id.ok_or("--exec-id is required")?,
            process: process.ok_or("--process is required")?,
        },
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(Args {
        mode,
        id: id.ok_or("--id is required")?,
        state: state.ok_or("--state is required")?,
        root: root.ok_or("--root is required")?,
        runtime,
        tty,
        stdin,
        stdin_once,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn init_and_exec_parse() {
        let a = parse(&v(
            "init --id c1 --state /s --root /r --bundle /b --log /l --tty --stdin",
        ))
        .expect("init");
        assert_eq!(
            a.mode,
            Mode::Init {
                bundle: "/b".into(),
                log: "/l".into()
            }
        );
        assert!(a.tty && a.stdin && !a.stdin_once);
        let e = parse(&v(
            "exec --id c1 --state /s --root /r --exec-id e1 --process /p --runtime /usr/sbin/runc",
        ))
        .expect("exec");
        assert_eq!(e.runtime, Some(PathBuf::from("/usr/sbin/runc")));
        assert!(parse(&v("init --id c1")).is_err());
        assert!(parse(&v("bogus --id c1")).is_err());
    }
}
