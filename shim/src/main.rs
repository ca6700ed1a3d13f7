//! berth-shim: the small, single-threaded process that owns one container (or one exec).
//!
//! ```text
//! berthd ──spawn──► berth-shim ──runtime create──► container init
//!    │  "ok <pid>" on stdout      │ parent (subreaper) of init, holds its stdio
//!    └──► control.sock ◄──────────┘ start | attach | wait | kill | resize | close-stdin
//!                                  output ─► log file (json lines, rotated) + attached clients
//!                                  exit    ─► exit file (atomic) + waiters, runtime delete
//! ```
//! No async runtime, no threads: one poll(2) loop. It keeps running when berthd dies; berthd
//! reconnects to `control.sock` when it comes back. See docs/architecture.md, "The shim
//! contract".

mod args;
mod control;
mod logfile;
mod runtime;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use args::{Args, Mode};
use berth_common::shim_protocol::{Reply, CONTROL_SOCKET};
use berth_common::stream::StreamId;
use runtime::{ChildIo, Runtime};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            reply(&Reply::Err(format!("bad arguments: {e}")));
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        reply(&Reply::Err(e));
        std::process::exit(1);
    }
}

/// Tells berthd (reading our stdout) how setup went, then detaches stdout.
fn reply(msg: &Reply) {
    let mut out = std::io::stdout();
    let _ = out.write_all(msg.to_line().as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto our own stdout descriptor; `null` stays valid for the call.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn run(args: Args) -> Result<(), String> {
    // SAFETY: prctl with integer arguments only; makes orphaned descendants (the container's
    // init, once the runtime's intermediate processes exit) our children.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "set child subreaper: {}",
            std::io::Error::last_os_error()
        ));
    }
    std::fs::create_dir_all(&args.state)
        .map_err(|e| format!("create {}: {e}", args.state.display()))?;
    std::fs::create_dir_all(&args.root)
        .map_err(|e| format!("create {}: {e}", args.root.display()))?;
    let runtime = Runtime::from_arg(args.runtime.clone());

    let sock_path = args.state.join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&sock_path);
    let listener =
        UnixListener::bind(&sock_path).map_err(|e| format!("bind {}: {e}", sock_path.display()))?;

    let mut loop_ = control::Loop::new(&args, listener)?;
    match &args.mode {
        Mode::Init {
            bundle,
            log,
            rotation,
        } => {
            if let Some(log) = log {
                let file = logfile::LogFile::open(log, rotation.clone())
                    .map_err(|e| format!("open log {}: {e}", log.display()))?;
                loop_.log = Some(file);
            }
            let (io, console) = setup_io(&args, &mut loop_)?;
            let pid = runtime.create(&args.id, &args.root, bundle, io)?;
            finish_console(console, &mut loop_)?;
            loop_.set_pid(pid);
            // Informational (berthd records the pid itself): no fsync on the start path.
            let pid_path = args.state.join("init.pid");
            std::fs::write(&pid_path, pid.to_string())
                .map_err(|e| format!("write {}: {e}", pid_path.display()))?;
            reply(&Reply::Ok(pid.to_string()));
        }
        Mode::Exec { .. } => reply(&Reply::Ok("0".to_owned())),
    }
    loop_.run(&runtime, |l| start_process(&args, &runtime, l))
}

/// What `start` does: start the created init, or create and run the exec'd process.
fn start_process(args: &Args, runtime: &Runtime, l: &mut control::Loop) -> Result<(), String> {
    match &args.mode {
        Mode::Init { .. } => runtime.start(&args.id, &args.root),
        Mode::Exec { process, .. } => {
            let (io, console) = setup_io(args, l)?;
            let pid = runtime.exec(&args.id, &args.root, process, io)?;
            finish_console(console, l)?;
            l.set_pid(pid);
            Ok(())
        }
    }
}

/// Makes the process's stdio: pipes, or a console socket the runtime sends a pty master on.
fn setup_io(args: &Args, l: &mut control::Loop) -> Result<(ChildIo, Option<UnixListener>), String> {
    if args.tty {
        let path = args.state.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(|e| format!("bind {}: {e}", path.display()))?;
        let io = ChildIo {
            stdin: None,
            stdout: None,
            stderr: None,
            console_socket: Some(path),
        };
        return Ok((io, Some(listener)));
    }
    let stdin = if args.stdin {
        let (r, w) = pipe()?;
        l.set_stdin(w);
        Some(r)
    } else {
        None
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    l.add_output(out_r, StreamId::Stdout);
    l.add_output(err_r, StreamId::Stderr);
    Ok((
        ChildIo {
            stdin,
            stdout: Some(out_w),
            stderr: Some(err_w),
            console_socket: None,
        },
        None,
    ))
}

fn finish_console(console: Option<UnixListener>, l: &mut control::Loop) -> Result<(), String> {
    if let Some(listener) = console {
        let master = runtime::receive_pty(&listener)?;
        let dup = nix::unistd::dup(&master).map_err(|e| format!("dup pty: {e}"))?;
        l.set_pty(master, dup);
        if let Some(addr) = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_owned()))
        {
            let _ = std::fs::remove_file(addr);
        }
    }
    Ok(())
}

/// Writes `data` to `path` through a temp file and rename, so readers see all or nothing;
/// not fsynced (the caller syncs when durability matters).
pub fn write_file_renamed(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename {}: {e}", path.display()))
}

/// Wraps a raw descriptor we own.
///
/// # Safety
/// `fd` must be open and owned by nothing else.
pub unsafe fn owned(fd: i32) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
