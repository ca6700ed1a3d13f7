//! The signal state a container process starts with: every disposition default, nothing
//! blocked, as dockerd's containers start.
//!
//! ```text
//! berthd ─► berth-shim (blocks SIGCHLD, Rust ignores SIGPIPE)
//!              └─ fork ─[reset]─ exec runtime ─ clone … ─[reset]─ exec container process
//! ```
//! An ignored signal and the signal mask survive `execve` (a handled one reverts to its
//! default), so whatever a parent set up leaks into the container unless someone undoes it
//! between the last fork and the exec. [`reset_to_default`] does that: in the shim before it
//! execs a runtime (runc and crun then start clean) and in `berth-runtime` right before it
//! execs the container's process (Rust's own SIGPIPE ignore happens at its start).

/// The kernel's highest signal number (`_NSIG` on Linux).
pub const MAX_SIGNAL: i32 = 64;

/// Sets every signal's disposition to `SIG_DFL` and unblocks every signal, for this thread
/// (the only one between `fork` and `exec`).
///
/// Async-signal-safe (two raw system calls per signal, no allocation), so it may run in a
/// forked child before `exec`. It uses the raw system calls rather than libc's wrappers, which
/// refuse the signals libc reserves for itself (32 and 33 on glibc): a parent may have ignored
/// those too. Signals that cannot be changed (SIGKILL, SIGSTOP) are skipped. Errors are
/// ignored: there is nothing better to do than to exec in the state the kernel allowed.
pub fn reset_to_default() {
    // The kernel's `struct sigaction` with every field zero is SIG_DFL, no flags, an empty
    // mask and no restorer, whatever the architecture's field order; 4 words covers every
    // layout.
    let default = [0u64; 4];
    for sig in 1..=MAX_SIGNAL {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (valid, large enough for the kernel's struct)
        // and writes nothing (null old action); the size argument is the kernel's sigset size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    let empty = 0u64;
    // SAFETY: rt_sigprocmask reads the 8-byte set `empty` and writes nothing (null old set).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// The ignored and blocked signal masks of a process, as `/proc/<pid>/status` shows them
/// (`SigIgn`, `SigBlk`): `None` when a line is missing or malformed.
pub fn ignored_and_blocked(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some((field("SigIgn:")?, field("SigBlk:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_masks() {
        let status = "Name:\tsh\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n\
                      SigBlk:\t0000000000010000\nSigIgn:\t0000000180001004\n";
        assert_eq!(ignored_and_blocked(status), Some((0x1_8000_1004, 0x1_0000)));
        assert_eq!(ignored_and_blocked("SigIgn:\tzz\nSigBlk:\t0\n"), None);
        assert_eq!(ignored_and_blocked("Name:\tsh\n"), None);
    }

    /// The masks `/proc/self/status` shows, read without allocating (safe after `fork` in a
    /// multi-threaded test binary).
    fn own_masks() -> (u64, u64) {
        let mut buf = [0u8; 4096];
        let n = std::fs::File::open("/proc/self/status")
            .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
            .unwrap_or(0);
        std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(ignored_and_blocked)
            .unwrap_or((u64::MAX, u64::MAX))
    }

    fn raw_sigaction(sig: i32, handler: u64) {
        let action = [handler, 0, 0, 0];
        // SAFETY: as in `reset_to_default`, with `handler` (SIG_DFL or SIG_IGN).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }

    fn raw_setmask(set: u64) {
        // SAFETY: as in `reset_to_default`, with `set` as the new mask.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &set as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }

    /// In a forked child (the test process keeps its state): ignore and block what the
    /// shim's containers used to start with, including glibc's reserved 32 and 33, reset,
    /// and read the kernel's view before and after.
    #[test]
    fn reset_clears_ignored_and_blocked_signals() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child makes system calls only (no allocation) and leaves with `_exit`.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                for sig in [libc::SIGPIPE, libc::SIGQUIT, 32, 33] {
                    raw_sigaction(sig, 1); // SIG_IGN
                }
                raw_setmask(1 << (libc::SIGCHLD - 1) | 1 << (libc::SIGUSR1 - 1));
                let before = own_masks();
                reset_to_default();
                let after = own_masks();
                let mut msg = [0u8; 32];
                for (i, v) in [before.0, before.1, after.0, after.1].iter().enumerate() {
                    msg[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
                }
                let _ = nix::unistd::write(&w, &msg);
                // SAFETY: ends the child without running the test harness's destructors.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(w);
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut out).expect("read");
                let _ = nix::sys::wait::waitpid(child, None);
                let v: Vec<u64> = out
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                assert_eq!(
                    v,
                    [0x1_8000_1004, 0x1_0200, 0, 0],
                    "SigIgn/SigBlk before, after"
                );
            }
        }
    }
}
