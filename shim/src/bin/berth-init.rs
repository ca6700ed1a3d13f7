//! berth-init: the minimal init that `run --init` puts at PID 1 of a container (mounted at
//! /sbin/docker-init, like Docker's tini). It starts the command, forwards the signals it gets
//! to it, reaps every orphan, and exits with the command's status (128+N if killed by N).
//! Linked statically by `scripts/build`, since it runs inside arbitrary images.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};
use std::ffi::CString;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("berth-init: usage: berth-init [--] COMMAND [ARG...]");
        std::process::exit(2);
    }
    let argv: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("berth-init: an argument contains a NUL byte");
            std::process::exit(2);
        }
    };
    // Block every signal we can; the child gets a clean signal state (nothing blocked or
    // ignored: Rust ignores SIGPIPE), we receive them synchronously.
    let all = SigSet::all();
    let _ = all.thread_block();
    // SAFETY: single-threaded; the child only resets its signal state and execs.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            berth_shim::signals::reset_to_default();
            let err = execvp(&argv[0], &argv).err();
            eprintln!(
                "berth-init: exec {}: {}",
                args[0],
                err.map(|e| e.desc()).unwrap_or("failed")
            );
            std::process::exit(if err == Some(nix::errno::Errno::ENOENT) {
                127
            } else {
                126
            });
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            std::process::exit(1);
        }
    };
    loop {
        match all.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(child) {
                    std::process::exit(code);
                }
            }
            Ok(sig) => {
                let _ = kill(child, sig);
            }
            Err(_) => {}
        }
    }
}

/// Reaps every exited child; returns the exit status once the main child is among them.
fn reap(main: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
