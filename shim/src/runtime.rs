//! How the shim drives a container: an OCI runtime binary with runc's command line, either
//! the built-in `berth-runtime` (youki's libcontainer) or runc/crun by path. All run the same
//! bundle. libcontainer clones its caller and changes process-wide state (dumpable flag, oom
//! score), which is why it runs in its own short-lived process and never in the shim.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::wait::{waitpid, WaitStatus};

/// The container side of the process's stdio: pipe ends, or a console socket for a TTY.
pub struct ChildIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
}

/// An OCI runtime binary with runc's command line: `berth-runtime` (built in, libcontainer)
/// beside this shim, or runc/crun given by path.
pub struct Runtime {
    bin: PathBuf,
}

impl Runtime {
    /// `None`: the built-in `berth-runtime` from the shim's own directory.
    pub fn from_arg(path: Option<PathBuf>) -> Self {
        let bin = path.unwrap_or_else(|| {
            std::env::current_exe()
                .map(|p| p.with_file_name("berth-runtime"))
                .unwrap_or_else(|_| PathBuf::from("berth-runtime"))
        });
        Runtime { bin }
    }

    /// Creates the container (its init waits for `start`) and returns the init's host pid.
    pub fn create(&self, id: &str, root: &Path, bundle: &Path, io: ChildIo) -> Result<i32, String> {
        let bin = &self.bin;
        let pid_file = root.join(format!("{id}.pid"));
        let log = root.join(format!("{id}.log"));
        let mut cmd = runtime_command(bin);
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
        give_stdio(&mut cmd, io);
        run_logged(cmd, bin, &log)?;
        read_pid(&pid_file)
    }

    pub fn start(&self, id: &str, root: &Path) -> Result<(), String> {
        let mut cmd = runtime_command(&self.bin);
        cmd.arg("--root").arg(root).arg("start").arg(id);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        run_binary(cmd, &self.bin)
    }

    /// Removes the runtime's state (and cgroup) of an exited container.
    pub fn delete(&self, id: &str, root: &Path) -> Result<(), String> {
        let mut cmd = runtime_command(&self.bin);
        cmd.arg("--root")
            .arg(root)
            .arg("delete")
            .arg("--force")
            .arg(id);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        run_binary(cmd, &self.bin)
    }

    /// Starts `process` (an OCI process JSON) inside the running container; returns its pid.
    pub fn exec(&self, id: &str, root: &Path, process: &Path, io: ChildIo) -> Result<i32, String> {
        let bin = &self.bin;
        let pid_file = process.with_extension("pid");
        let log = process.with_extension("log");
        let mut cmd = runtime_command(bin);
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
        give_stdio(&mut cmd, io);
        run_logged(cmd, bin, &log)?;
        read_pid(&pid_file)
    }
}

/// A command that runs the runtime binary in a clean signal state: the shim blocks SIGCHLD
/// (it reads it from a signalfd) and, as a Rust program, ignores SIGPIPE; both would
/// otherwise pass through runc or crun into the container (see berth_shim::signals).
fn runtime_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    // SAFETY: the closure runs between fork and exec and only calls `reset_to_default`,
    // which is async-signal-safe (raw system calls, no allocation, no locks).
    unsafe {
        cmd.pre_exec(|| {
            berth_shim::signals::reset_to_default();
            Ok(())
        })
    };
    cmd
}

/// The runtime's stdio is the process's: container init and exec'd processes inherit it.
fn give_stdio(cmd: &mut Command, io: ChildIo) {
    cmd.stdin(io.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
    cmd.stdout(io.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
    cmd.stderr(io.stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
}

fn run_binary(mut cmd: Command, bin: &Path) -> Result<(), String> {
    // The runtime's stderr goes to a file unlinked at once (a pipe could be held open by
    // what the runtime starts): nothing is left behind even if the shim is killed meanwhile.
    let err_path = std::env::temp_dir().join(format!("berth-shim-{}.err", std::process::id()));
    let err_file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&err_path)
        .ok();
    let _ = std::fs::remove_file(&err_path);
    if let Some(f) = err_file.as_ref().and_then(|f| f.try_clone().ok()) {
        cmd.stderr(f);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    let err = err_file.map(read_from_start).unwrap_or_default();
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

/// All of `f`, from its first byte (the child moved the shared offset).
fn read_from_start(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut s = String::new();
    if f.seek(SeekFrom::Start(0)).is_ok() {
        let _ = f.read_to_string(&mut s);
    }
    s
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
        .next_back()
        .unwrap_or_else(|| text.trim().to_owned());
    let msg = if msg.is_empty() {
        format!("no error message in {}", log.display())
    } else {
        msg
    };
    Err(format!("{} failed ({status}): {msg}", bin.display()))
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    s.trim()
        .parse()
        .map_err(|_| format!("bad pid in {}: {s:?}", path.display()))
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
