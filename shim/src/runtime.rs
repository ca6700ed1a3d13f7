//! The two ways the shim drives a container: youki's libcontainer, linked in, or an OCI runtime
//! binary (runc, crun) by path. Both run the same bundle.
//!
//! libcontainer clones its caller and changes process-wide state (dumpable flag, oom score), so
//! every libcontainer call happens in a forked child of the shim; the shim's own process stays
//! small and never runs libcontainer code.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// The container side of the process's stdio: pipe ends, or a console socket for a TTY.
pub struct ChildIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
}

pub enum Runtime {
    Builtin,
    Binary(PathBuf),
}

impl Runtime {
    pub fn from_arg(path: Option<PathBuf>) -> Self {
        match path {
            None => Runtime::Builtin,
            Some(p) => Runtime::Binary(p),
        }
    }

    /// Creates the container (its init waits for `start`) and returns the init's host pid.
    pub fn create(&self, id: &str, root: &Path, bundle: &Path, io: ChildIo) -> Result<i32, String> {
        match self {
            Runtime::Builtin => in_child(|| {
                use libcontainer::container::builder::ContainerBuilder;
                use libcontainer::syscall::syscall::SyscallType;
                let mut b = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
                    .with_root_path(root)
                    .map_err(|e| format!("runtime root {}: {e}", root.display()))?
                    .with_console_socket(io.console_socket.as_ref());
                if let Some(fd) = io.stdin {
                    b = b.with_stdin(fd);
                }
                if let Some(fd) = io.stdout {
                    b = b.with_stdout(fd);
                }
                if let Some(fd) = io.stderr {
                    b = b.with_stderr(fd);
                }
                let c = b
                    .as_init(bundle)
                    .with_systemd(false)
                    .with_detach(true)
                    .build()
                    .map_err(|e| format!("create container: {e}"))?;
                let pid = c.pid().ok_or("created container has no pid")?.as_raw();
                harden_cgroup_mounts(pid)?;
                Ok(pid)
            }),
            Runtime::Binary(bin) => {
                let pid_file = root.join(format!("{id}.pid"));
                let mut cmd = Command::new(bin);
                let log = root.join(format!("{id}.log"));
                cmd.arg("--log")
                    .arg(&log)
                    .arg("--root")
                    .arg(root)
                    .arg("create")
                    .arg("--bundle")
                    .arg(bundle);
                cmd.arg("--pid-file").arg(&pid_file);
                if let Some(cs) = &io.console_socket {
                    cmd.arg("--console-socket").arg(cs);
                }
                cmd.arg(id);
                cmd.stdin(io.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
                cmd.stdout(io.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
                cmd.stderr(io.stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
                run_logged(cmd, bin, &log)?;
                read_pid(&pid_file)
            }
        }
    }

    pub fn start(&self, id: &str, root: &Path) -> Result<(), String> {
        match self {
            Runtime::Builtin => in_child(|| {
                let mut c = load(id, root)?;
                c.start().map_err(|e| format!("start container: {e}"))?;
                Ok(0)
            })
            .map(|_| ()),
            Runtime::Binary(bin) => {
                let mut cmd = Command::new(bin);
                cmd.arg("--root").arg(root).arg("start").arg(id);
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
                run_binary(cmd, bin)
            }
        }
    }

    /// Removes the runtime's state (and cgroup) of an exited container.
    pub fn delete(&self, id: &str, root: &Path) -> Result<(), String> {
        match self {
            Runtime::Builtin => in_child(|| {
                let mut c = load(id, root)?;
                c.delete(true)
                    .map_err(|e| format!("delete container: {e}"))?;
                Ok(0)
            })
            .map(|_| ()),
            Runtime::Binary(bin) => {
                let mut cmd = Command::new(bin);
                cmd.arg("--root")
                    .arg(root)
                    .arg("delete")
                    .arg("--force")
                    .arg(id);
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
                run_binary(cmd, bin)
            }
        }
    }

    /// Starts `process` (an OCI process JSON) inside the running container; returns its pid.
    pub fn exec(&self, id: &str, root: &Path, process: &Path, io: ChildIo) -> Result<i32, String> {
        match self {
            Runtime::Builtin => in_child(|| {
                use libcontainer::container::builder::ContainerBuilder;
                use libcontainer::syscall::syscall::SyscallType;
                let mut b = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
                    .with_root_path(root)
                    .map_err(|e| format!("runtime root {}: {e}", root.display()))?
                    .with_console_socket(io.console_socket.as_ref());
                if let Some(fd) = io.stdin {
                    b = b.with_stdin(fd);
                }
                if let Some(fd) = io.stdout {
                    b = b.with_stdout(fd);
                }
                if let Some(fd) = io.stderr {
                    b = b.with_stderr(fd);
                }
                let pid = b
                    .as_tenant()
                    .with_detach(true)
                    .with_process(Some(process))
                    .build()
                    .map_err(|e| format!("exec in container: {e}"))?;
                Ok(pid.as_raw())
            }),
            Runtime::Binary(bin) => {
                let pid_file = process.with_extension("pid");
                let log = process.with_extension("log");
                let mut cmd = Command::new(bin);
                cmd.arg("--log")
                    .arg(&log)
                    .arg("--root")
                    .arg(root)
                    .arg("exec")
                    .arg("--detach");
                cmd.arg("--pid-file")
                    .arg(&pid_file)
                    .arg("--process")
                    .arg(process);
                if let Some(cs) = &io.console_socket {
                    cmd.arg("--tty").arg("--console-socket").arg(cs);
                }
                cmd.arg(id);
                cmd.stdin(io.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
                cmd.stdout(io.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
                cmd.stderr(io.stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
                run_logged(cmd, bin, &log)?;
                read_pid(&pid_file)
            }
        }
    }
}

fn load(id: &str, root: &Path) -> Result<libcontainer::container::Container, String> {
    libcontainer::container::Container::load(root.join(id))
        .map_err(|e| format!("load container state: {e}"))
}

/// Runs `f` in a forked child and returns its result through a pipe. The shim is
/// single-threaded, so forking is safe, and whatever libcontainer does to its caller
/// (cloning it, marking it non-dumpable, writing its oom score) happens to the child.
fn in_child(f: impl FnOnce() -> Result<i32, String>) -> Result<i32, String> {
    // Close-on-exec, and read up to the newline rather than to EOF: the runtime's clones
    // inherit the write end until they exec.
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the shim is single-threaded, so the child has a consistent copy of memory; it
    // reports through the pipe and leaves with `_exit`, never returning into the parent's code.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(r);
            let msg = match f() {
                Ok(v) => format!("ok {v}\n"),
                Err(e) => format!("err {}\n", e.replace('\n', " ")),
            };
            let mut w = std::fs::File::from(w);
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: `_exit` ends the child without running the parent's destructors or atexit hooks.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut out = Vec::new();
            let mut f = std::fs::File::from(r);
            let mut b = [0u8; 1];
            while let Ok(1) = f.read(&mut b) {
                if b[0] == b'\n' {
                    break;
                }
                out.push(b[0]);
            }
            let _ = waitpid(child, None);
            let out = String::from_utf8_lossy(&out).into_owned();
            match out.split_once(' ') {
                Some(("ok", v)) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad child reply {out:?}")),
                Some(("err", e)) => Err(e.to_owned()),
                _ => Err(format!("runtime helper died without a reply ({out:?})")),
            }
        }
    }
}

fn run_binary(mut cmd: Command, bin: &Path) -> Result<(), String> {
    let err_path = std::env::temp_dir().join(format!("berth-shim-{}.err", std::process::id()));
    if let Ok(f) = std::fs::File::create(&err_path) {
        cmd.stderr(f);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status}): {}",
            bin.display(),
            err.trim()
        ))
    }
}

/// Runs a runtime command whose stderr belongs to the container; its errors are read from
/// the runtime's `--log` file (JSON lines with a `msg` field).
fn run_logged(mut cmd: Command, bin: &Path, log: &Path) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let msg = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .last()
        .unwrap_or_else(|| text.trim().to_owned());
    Err(format!("{} failed ({status}): {msg}", bin.display()))
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    s.trim()
        .parse()
        .map_err(|_| format!("bad pid in {}: {s:?}", path.display()))
}

/// libcontainer mounts the container's cgroup filesystem writable even when the spec says `ro`,
/// which would let a container raise its own limits. Before the container starts, remount
/// every cgroup mount inside its mount namespace read-only.
fn harden_cgroup_mounts(pid: i32) -> Result<(), String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("read /proc/{pid}/mountinfo: {e}"))?;
    let targets: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == "/sys/fs/cgroup" || p.starts_with("/sys/fs/cgroup/"))
        .map(unescape_mountinfo)
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

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Receives the pty master that the runtime sends over the console socket.
pub fn receive_pty(listener: &UnixListener) -> Result<OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener
        .accept()
        .map_err(|e| format!("accept console socket: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receive pty master: {e}"))?;
    for c in msg
        .cmsgs()
        .map_err(|e| format!("receive pty master: {e}"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err("console socket message carried no descriptor".into())
}

/// Reaps whatever child exits next without blocking; returns (pid, exit code as Docker reports it).
pub fn reap() -> Option<(i32, i32)> {
    match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(pid, code)) => Some((pid.as_raw(), code)),
        Ok(WaitStatus::Signaled(pid, sig, _)) => Some((pid.as_raw(), 128 + sig as i32)),
        Ok(WaitStatus::StillAlive) | Err(_) => None,
        Ok(_) => Some((-1, 0)),
    }
}
