//! berth-runtime: Berth's built-in OCI runtime, youki's libcontainer behind a runc-shaped
//! command line, so `berth-shim` drives it exactly as it drives runc or crun:
//!
//! ```text
//! berth-runtime [--root DIR] [--log FILE] [--log-format json] create --bundle DIR [--pid-file F] [--console-socket S] ID
//! berth-runtime [--root DIR] [--log FILE] start ID
//! berth-runtime [--root DIR] [--log FILE] delete [--force] ID
//! berth-runtime [--root DIR] [--log FILE] exec --detach --process F [--pid-file F] [--tty] [--console-socket S] ID
//! ```
//! It is a separate, short-lived process because libcontainer clones its caller, marks it
//! non-dumpable and sets its oom score: none of that may touch the long-lived shim, which
//! stays small (it never maps this binary). The process's stdio is the container's; errors go
//! to `--log` as JSON lines (`{"level":"error","msg":...}`) like runc's.

mod devices;
mod tenant;
mod workload;

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_common::errors::cause_chain;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

struct Cmd {
    root: PathBuf,
    log: Option<PathBuf>,
    verb: String,
    id: String,
    bundle: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    process: Option<PathBuf>,
}

fn parse(argv: &[String]) -> Result<Cmd, String> {
    let mut c = Cmd {
        root: PathBuf::from("/run/berth/runtime"),
        log: None,
        verb: String::new(),
        id: String::new(),
        bundle: None,
        pid_file: None,
        console_socket: None,
        process: None,
    };
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--root" => c.root = PathBuf::from(val()?),
            "--log" => c.log = Some(PathBuf::from(val()?)),
            "--log-format" => {
                val()?;
            }
            "--bundle" | "-b" => c.bundle = Some(PathBuf::from(val()?)),
            "--pid-file" => c.pid_file = Some(PathBuf::from(val()?)),
            "--console-socket" => c.console_socket = Some(PathBuf::from(val()?)),
            "--process" | "-p" => c.process = Some(PathBuf::from(val()?)),
            "--force" | "-f" | "--detach" | "-d" | "--tty" | "-t" => {}
            s if s.starts_with('-') => return Err(format!("unknown flag {s:?}")),
            s if c.verb.is_empty() => c.verb = s.to_owned(),
            s if c.id.is_empty() => c.id = s.to_owned(),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    if c.verb.is_empty() || c.id.is_empty() {
        return Err(
            "usage: berth-runtime [--root DIR] [--log FILE] create|start|delete|exec ... ID".into(),
        );
    }
    Ok(c)
}

fn builder(c: &Cmd) -> Result<ContainerBuilder, String> {
    Ok(ContainerBuilder::new(c.id.clone(), SyscallType::Linux)
        .with_root_path(&c.root)
        .map_err(|e| format!("runtime root {}: {e}", c.root.display()))?
        .with_console_socket(c.console_socket.as_ref())
        .with_executor(workload::CleanExec::new()))
}

fn write_pid(c: &Cmd, pid: i32) -> Result<(), String> {
    if let Some(p) = &c.pid_file {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, pid.to_string())
            .map_err(|e| format!("write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, p).map_err(|e| format!("rename {}: {e}", p.display()))?;
    }
    Ok(())
}

fn load(c: &Cmd) -> Result<Container, String> {
    Container::load(c.root.join(&c.id)).map_err(|e| format!("load container {}: {e}", c.id))
}

fn run(c: &Cmd) -> Result<(), String> {
    match c.verb.as_str() {
        "create" => {
            let bundle = c.bundle.clone().ok_or("create needs --bundle")?;
            let ctr = builder(c)?
                .as_init(&bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(|e| format!("create container: {e}"))?;
            let pid = ctr.pid().ok_or("created container has no pid")?.as_raw();
            in_child(|| harden_cgroup_mounts(pid))?;
            restrict_devices_v2(&bundle)?;
            write_pid(c, pid)
        }
        "start" => load(c)?
            .start()
            .map_err(|e| format!("start container: {e}")),
        "delete" => load(c)?
            .delete(true)
            .map_err(|e| format!("delete container: {e}")),
        "exec" => {
            let process = c.process.as_deref().ok_or("exec needs --process")?;
            let req = tenant::ExecRequest {
                root: &c.root,
                id: &c.id,
                process,
                console_socket: c.console_socket.as_deref(),
            };
            let pid = tenant::exec(&req, workload::CleanExec::new())?;
            write_pid(c, pid)
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Runs `f` in a forked child: entering the container's mount namespace must not change
/// what this process sees (its pid file and log are host paths).
fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: this process is single-threaded; the child only runs `f`, reports through the
    // pipe and leaves with `_exit`.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = std::fs::File::from(w).write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut msg);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                _ => Err(if msg.is_empty() {
                    "helper process failed".into()
                } else {
                    msg
                }),
            }
        }
    }
}

/// libcontainer mounts the container's cgroup filesystem writable even when the spec says
/// `ro`, which would let a container raise its own limits. Before the container starts,
/// remount every cgroup mount inside its mount namespace read-only.
fn harden_cgroup_mounts(pid: i32) -> Result<(), String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("read /proc/{pid}/mountinfo: {e}"))?;
    let targets: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == "/sys/fs/cgroup" || p.starts_with("/sys/fs/cgroup/"))
        .map(|s| {
            s.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| format!("open mnt ns of {pid}: {e}"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("setns mnt: {e}"))?;
    // Deepest first, so a parent's remount can't hide a child.
    for t in targets.iter().rev() {
        use nix::mount::{mount, MsFlags};
        let flags = MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount(None::<&str>, t.as_str(), None::<&str>, flags, None::<&str>)
            .map_err(|e| format!("remount {t} read-only: {e}"))?;
    }
    Ok(())
}

/// On cgroup v2, enforces the spec's device rules with an eBPF program on the container's
/// cgroup (see devices.rs), before its process starts.
fn restrict_devices_v2(bundle: &Path) -> Result<(), String> {
    let root = Path::new("/sys/fs/cgroup");
    let v2 = nix::sys::statfs::statfs(root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if !v2 {
        return Ok(());
    }
    let path = bundle.join("config.json");
    let spec = read_json(&path).map_err(|e| cause_chain(&e))?;
    let Some(list) = spec["linux"]["resources"]["devices"].as_array() else {
        return Ok(());
    };
    let rules = devices::with_runtime_defaults(devices::parse_rules(&list.clone().into())?);
    let cgroup = spec["linux"]["cgroupsPath"]
        .as_str()
        .ok_or("the spec has no linux.cgroupsPath")?;
    devices::attach(&root.join(cgroup.trim_start_matches('/')), &rules)
}

/// Why a JSON file could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadJsonError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReadJsonError> {
    let bytes = std::fs::read(path).map_err(|source| ReadJsonError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ReadJsonError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn log_error(log: Option<&Path>, msg: &str) {
    let line = serde_json::json!({ "level": "error", "msg": msg }).to_string();
    match log.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(mut f) => {
            let _ = writeln!(f, "{line}");
        }
        None => eprintln!("berth-runtime: {msg}"),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&cmd) {
        log_error(cmd.log.as_deref(), &e);
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn runc_shaped_arguments() {
        let c = parse(&v(
            "--log /l --root /r create --bundle /b --pid-file /p --console-socket /s abc",
        ))
        .expect("create");
        assert_eq!((c.verb.as_str(), c.id.as_str()), ("create", "abc"));
        assert_eq!(c.bundle, Some(PathBuf::from("/b")));
        assert_eq!(c.console_socket, Some(PathBuf::from("/s")));
        let e = parse(&v(
            "--root /r exec --detach --pid-file /p --process /x --tty abc",
        ))
        .expect("exec");
        assert_eq!(e.process, Some(PathBuf::from("/x")));
        assert!(parse(&v("--root /r start")).is_err());
        assert!(parse(&v("--bogus x start abc")).is_err());
    }
}
