//! Command line of `berth-shim`, written by berthd (not meant for people):
//!
//! ```text
//! berth-shim init --id ID --state DIR --root DIR --bundle DIR [--log FILE [--log-max-size BYTES --log-max-file N [--log-compress 1]]] [--runtime PATH] [--tty] [--stdin] [--stdin-once]
//! berth-shim exec --id ID --state DIR --root DIR --exec-id EID --process FILE [--runtime PATH] [--tty] [--stdin]
//! ```
//! `--runtime` absent means the built-in libcontainer runtime; otherwise the path of an OCI
//! runtime binary (runc, crun). No `--log`: output is not logged (log driver `none`); no
//! `--log-max-size`: the log file is never rotated.

use std::path::PathBuf;

use crate::logfile::Rotation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The container's init process: logs, attach, exit file, then runtime delete.
    Init {
        bundle: PathBuf,
        log: Option<PathBuf>,
        rotation: Option<Rotation>,
    },
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
    let (mut max_size, mut max_file, mut compress) = (None, None, false);
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
            "--log-max-size" => max_size = Some(number(a, &val()?)?),
            "--log-max-file" => max_file = Some(number(a, &val()?)?),
            "--log-compress" => compress = val()? == "1",
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
            rotation: rotation(log.is_some(), max_size, max_file, compress)?,
            log,
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

fn number(flag: &str, v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("{flag} {v:?}: expected a whole number"))
}

/// The rotation asked for, if any: a size of at least one byte and at least one file.
fn rotation(
    log: bool,
    max_size: Option<u64>,
    max_file: Option<u64>,
    compress: bool,
) -> Result<Option<Rotation>, String> {
    let Some(max_size) = max_size else {
        return Ok(None);
    };
    if !log {
        return Err("--log-max-size needs --log".into());
    }
    let max_files =
        u32::try_from(max_file.unwrap_or(1)).map_err(|_| "--log-max-file is too large")?;
    if max_size == 0 || max_files == 0 {
        return Err("--log-max-size and --log-max-file must be at least 1".into());
    }
    Ok(Some(Rotation {
        max_size,
        max_files,
        compress: compress && max_files > 1,
    }))
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
                log: Some("/l".into()),
                rotation: None,
            }
        );
        assert!(a.tty && a.stdin && !a.stdin_once);
        let e = parse(&v(
            "exec --id c1 --state /s --root /r --exec-id e1 --process /p --runtime /usr/sbin/runc",
        ))
        .expect("exec");
        assert_eq!(e.runtime, Some(PathBuf::from("/usr/sbin/runc")));
        assert!(parse(&v("init --id c1")).is_err());
        // Log driver none: no --log at all.
        let n = parse(&v("init --id c1 --state /s --root /r --bundle /b")).expect("none");
        assert!(matches!(
            n.mode,
            Mode::Init {
                log: None,
                rotation: None,
                ..
            }
        ));
        let r = parse(&v(
            "init --id c1 --state /s --root /r --bundle /b --log /l --log-max-size 100000 --log-max-file 3 --log-compress 1",
        ))
        .expect("rotation");
        assert!(matches!(
            r.mode,
            Mode::Init {
                rotation: Some(Rotation {
                    max_size: 100_000,
                    max_files: 3,
                    compress: true
                }),
                ..
            }
        ));
        assert!(parse(&v(
            "init --id c1 --state /s --root /r --bundle /b --log /l --log-max-size 1k"
        ))
        .is_err());
        assert!(parse(&v(
            "init --id c1 --state /s --root /r --bundle /b --log-max-size 10"
        ))
        .is_err());
        assert!(parse(&v("bogus --id c1")).is_err());
    }
}
