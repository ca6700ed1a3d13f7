//! One network namespace per container, made in-process and pinned by a bind mount at
//! `<exec-root>/netns/<id>`, with `lo` up (libcontainer would leave it down). Bridge
//! networking (a later issue) adds its veth directly inside this namespace.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::ContainerError;

pub fn path(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("netns").join(id)
}

/// Creates the namespace on a short-lived thread (unshare affects only the calling thread).
pub fn create(target: &Path) -> Result<(), ContainerError> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("create", dir, e))?;
    }
    std::fs::File::create(target).map_err(|e| ContainerError::io("create", target, e))?;
    let t = target.to_owned();
    let res = std::thread::spawn(move || -> Result<(), ContainerError> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| ContainerError::Runtime(format!("unshare network namespace: {e}")))?;
        loopback_up()?;
        let src = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        mount(
            Some(src.as_str()),
            &t,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            ContainerError::Runtime(format!("pin network namespace at {}: {e}", t.display()))
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(ContainerError::Runtime(
            "network namespace thread panicked".into(),
        ))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(target);
    }
    res
}

fn loopback_up() -> Result<(), ContainerError> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ContainerError::Runtime(format!("socket for lo: {e}")))?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own for the call's duration.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(ContainerError::Runtime(format!(
                "get lo flags: {}",
                std::io::Error::last_os_error()
            )));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(ContainerError::Runtime(format!(
                "set lo up: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// Unpins and removes the namespace; tolerant of one that is already gone.
pub fn remove(target: &Path) {
    let _ = umount2(target, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(target);
}
