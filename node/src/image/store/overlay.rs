//! Mounting a container's root file system: overlayfs over an image's layers.
//!
//! ```text
//!  target (merged) = upper (rw) ∪ lower[n-1] ∪ … ∪ lower[0]       lower given lowest first
//! ```
//! The new mount API (`fsopen` / `fsconfig("lowerdir+")` / `fsmount` / `move_mount`, Linux
//! 6.8+) passes each lower directory separately, so any number of layers fits. Older kernels
//! get the classic `mount(2)` with one option string, which must fit in a page (about 4 KiB,
//! i.e. a few dozen layers of long paths). Overlayfs needs at least one lower directory; an
//! image without layers gets an empty directory next to `work`.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::image::error::ImageError;

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const PAGE_LIMIT: usize = 4095;

/// Mounts an overlay of `lower` (lowest first) under the writable `upper` at `target`.
pub fn mount_rootfs(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), ImageError> {
    mount_rootfs_opts(lower, upper, work, target, false)
}

/// [`mount_rootfs`], optionally `volatile`: the overlay never syncs its upper directory, so
/// unmounting it does not wait for a journal commit (0.5–5 ms here). After a host crash such
/// an upper may be inconsistent and the kernel refuses to mount it again (it leaves
/// `work/work/incompat/volatile` behind until someone removes it): only for containers that
/// are removed when they stop (`--rm`), whose writable layer never outlives a run. The marker
/// a clean unmount leaves is removed here, so such a container can still be restarted.
/// Kernels without the option (before 5.10) mount without it.
pub fn mount_rootfs_opts(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<(), ImageError> {
    if volatile {
        let marker = work.join("work/incompat/volatile");
        match fs::remove_dir_all(&marker) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ImageError::io("remove", &marker)(e));
            }
            _ => {}
        }
    }
    let empty;
    let lower: Vec<&Path> = if lower.is_empty() {
        empty = work.with_file_name("empty-lower");
        fs::create_dir_all(&empty).map_err(ImageError::io("create", &empty))?;
        vec![empty.as_path()]
    } else {
        lower.iter().map(PathBuf::as_path).collect()
    };
    match mount_fsconfig(&lower, upper, work, target, volatile) {
        Ok(()) => Ok(()),
        Err(NewApi::Unsupported(why)) => {
            tracing::debug!(reason = %why, "overlay: new mount API unavailable, using mount(2)");
            if volatile {
                match mount_classic(&lower, upper, work, target, true) {
                    Err(ImageError::Mount { source, .. })
                        if source.raw_os_error() == Some(libc::EINVAL) =>
                    {
                        tracing::debug!("overlay: volatile refused, mounting without it");
                    }
                    other => return other,
                }
            }
            mount_classic(&lower, upper, work, target, false)
        }
        Err(NewApi::Failed(detail, source)) => Err(ImageError::Mount {
            target: target.to_owned(),
            detail,
            source,
        }),
    }
}

/// Unmounts a root file system mounted by [`mount_rootfs`] (lazily, so open files don't block).
/// A target that is not mounted, or does not exist, is already unmounted: that is not an error.
pub fn unmount_rootfs(target: &Path) -> Result<(), ImageError> {
    let mount_err = |source: io::Error| ImageError::Mount {
        target: target.to_owned(),
        detail: "unmount".into(),
        source,
    };
    let t = cpath(target).map_err(mount_err)?;
    // SAFETY: `t` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        _ => Err(mount_err(e)),
    }
}

enum NewApi {
    Unsupported(String),
    Failed(String, io::Error),
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Reads the messages the kernel left on an fs context, for error reports.
fn context_log(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: `fd` is an open fs context; `buf` is writable for its full length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(
            String::from_utf8_lossy(&buf[..n as usize])
                .trim()
                .to_owned(),
        );
    }
    out.join("; ")
}

fn set_string(fd: &OwnedFd, key: &str, value: &[u8]) -> io::Result<()> {
    let k = cstring(key)?;
    let v = CString::new(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open fs context; `k` and `v` are valid C strings outliving the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mount_fsconfig(
    lower: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<(), NewApi> {
    let fstype = cstring("overlay").map_err(|e| NewApi::Failed("fsopen".into(), e))?;
    // SAFETY: `fstype` is a valid C string; the returned fd is checked before use.
    let rc = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => NewApi::Unsupported(format!("fsopen: {e}")),
            _ => NewApi::Failed("fsopen overlay".into(), e),
        });
    }
    // SAFETY: `rc` is a fresh file descriptor returned by fsopen and owned by nobody else.
    let fs_fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let failed =
        |what: String, e: io::Error| NewApi::Failed(format!("{what}: {}", context_log(&fs_fd)), e);
    // Layers are stacked top first: each `lowerdir+` goes beneath the previous ones.
    for (i, l) in lower.iter().rev().enumerate() {
        if let Err(e) = set_string(&fs_fd, "lowerdir+", l.as_os_str().as_bytes()) {
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                return Err(NewApi::Unsupported(format!(
                    "lowerdir+: {e} ({})",
                    context_log(&fs_fd)
                )));
            }
            return Err(failed(format!("lowerdir+ {}", l.display()), e));
        }
    }
    set_string(&fs_fd, "upperdir", upper.as_os_str().as_bytes())
        .map_err(|e| failed(format!("upperdir {}", upper.display()), e))?;
    set_string(&fs_fd, "workdir", work.as_os_str().as_bytes())
        .map_err(|e| failed(format!("workdir {}", work.display()), e))?;
    // Layers are shared by many containers with different upper dirs.
    if let Err(e) = set_string(&fs_fd, "index", b"off") {
        tracing::debug!(error = %e, "overlay: index=off not supported");
    }
    if volatile {
        let k = cstring("volatile").map_err(|e| NewApi::Failed("volatile".into(), e))?;
        // SAFETY: `fs_fd` is an open fs context; `k` is a valid C string; a flag has no value.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs_fd.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                k.as_ptr(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "overlay: volatile not supported");
        }
    }
    // SAFETY: `fs_fd` is an open fs context; CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs_fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc != 0 {
        return Err(failed("create overlay".into(), io::Error::last_os_error()));
    }
    // SAFETY: `fs_fd` is a created fs context; the returned fd is checked before use.
    let rc = unsafe { libc::syscall(libc::SYS_fsmount, fs_fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if rc < 0 {
        return Err(failed("fsmount".into(), io::Error::last_os_error()));
    }
    // SAFETY: `rc` is a fresh mount fd returned by fsmount and owned by nobody else.
    let mnt_fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let t = cpath(target).map_err(|e| NewApi::Failed("target path".into(), e))?;
    let empty = cstring("").map_err(|e| NewApi::Failed("move_mount".into(), e))?;
    // SAFETY: `mnt_fd` is a detached mount; `empty` and `t` are valid C strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(NewApi::Failed(
            "move_mount".into(),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Escapes the characters the classic option parser treats specially.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The options string for `mount(2)`, or why it cannot be used.
pub(crate) fn classic_options(
    lower: &[&Path],
    upper: &Path,
    work: &Path,
) -> Result<String, String> {
    let lowers: Vec<String> = lower.iter().rev().map(|p| escape(p)).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},index=off",
        lowers.join(":"),
        escape(upper),
        escape(work)
    );
    if opts.len() > PAGE_LIMIT {
        return Err(format!(
            "{} layers need {} bytes of mount options, more than the {PAGE_LIMIT} this kernel accepts \
             (Linux 6.8+ lifts the limit)",
            lower.len(),
            opts.len()
        ));
    }
    Ok(opts)
}

pub(crate) fn mount_classic(
    lower: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<(), ImageError> {
    let err = |detail: String, source: io::Error| ImageError::Mount {
        target: target.to_owned(),
        detail,
        source,
    };
    let mut opts = classic_options(lower, upper, work)
        .map_err(|d| err(d, io::Error::from_raw_os_error(libc::E2BIG)))?;
    if volatile {
        opts.push_str(",volatile");
    }
    let t = cpath(target).map_err(|e| err("target path".into(), e))?;
    let o = cstring(&opts).map_err(|e| err("options".into(), e))?;
    let src = cstring("overlay").map_err(|e| err("source".into(), e))?;
    // SAFETY: every pointer is a valid C string that outlives the call; flags are 0.
    let rc = unsafe { libc::mount(src.as_ptr(), t.as_ptr(), src.as_ptr(), 0, o.as_ptr().cast()) };
    if rc != 0 {
        return Err(err(format!("mount -o {opts}"), io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmounts and removes everything when the test ends, passed or not.
    struct Cleanup {
        target: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = unmount_rootfs(&self.target);
        }
    }

    fn require_root() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "overlay tests need root");
    }

    /// Makes `n` layers with long paths; layer i holds `file-i` and an `all` file saying `i`.
    fn setup(n: usize) -> (Cleanup, Vec<PathBuf>, PathBuf, PathBuf) {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lower = Vec::new();
        for i in 0..n {
            let l = dir.path().join(format!("{i:064x}")).join("diff");
            fs::create_dir_all(&l).expect("mkdir");
            fs::write(l.join(format!("file-{i}")), i.to_string()).expect("write");
            fs::write(l.join("all"), i.to_string()).expect("write");
            lower.push(l);
        }
        let (upper, work, target) = (
            dir.path().join("up"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).expect("mkdir");
        }
        (
            Cleanup {
                target: target.clone(),
                _dir: dir,
            },
            lower,
            upper,
            work,
        )
    }

    fn check(lower: &[PathBuf], upper: &Path, target: &Path) {
        for i in 0..lower.len() {
            assert_eq!(
                fs::read_to_string(target.join(format!("file-{i}"))).expect("read"),
                i.to_string()
            );
        }
        if let Some(top) = lower.len().checked_sub(1) {
            assert_eq!(
                fs::read_to_string(target.join("all")).expect("read"),
                top.to_string(),
                "top layer wins"
            );
        }
        fs::write(target.join("new"), b"rw").expect("write through the overlay");
        assert_eq!(fs::read(upper.join("new")).expect("upper"), b"rw");
    }

    #[test]
    fn mounts_one_layer() {
        let (c, lower, upper, work) = setup(1);
        mount_rootfs(&lower, &upper, &work, &c.target).expect("mount");
        check(&lower, &upper, &c.target);
        unmount_rootfs(&c.target).expect("unmount");
        assert!(!c.target.join("file-0").exists());
        unmount_rootfs(&c.target).expect("unmounting twice is fine");
        unmount_rootfs(&c.target.join("missing")).expect("so is a missing target");
    }

    /// A volatile mount (as `--rm` containers get) can be mounted again after a clean
    /// unmount, through either mount API; the kernel's marker would otherwise refuse it.
    #[test]
    fn volatile_mounts_again_after_unmount() {
        let (c, lower, upper, work) = setup(2);
        for _ in 0..2 {
            mount_rootfs_opts(&lower, &upper, &work, &c.target, true).expect("mount volatile");
            check(&lower, &upper, &c.target);
            unmount_rootfs(&c.target).expect("unmount");
        }
        let refs: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
        if work.join("work/incompat/volatile").exists() {
            // What the kernel itself does with its marker still in place.
            assert!(mount_classic(&refs, &upper, &work, &c.target, true).is_err());
        }
        mount_rootfs_opts(&lower, &upper, &work, &c.target, true).expect("mount again");
        unmount_rootfs(&c.target).expect("unmount");
    }

    #[test]
    fn mounts_120_layers_past_the_option_page_limit() {
        let (c, lower, upper, work) = setup(120);
        let refs: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
        assert!(
            classic_options(&refs, &upper, &work).is_err(),
            "test must exceed the classic limit"
        );
        mount_rootfs(&lower, &upper, &work, &c.target).expect("mount");
        check(&lower, &upper, &c.target);
    }

    #[test]
    fn mounts_zero_layers_and_the_classic_path() {
        let (c, _, upper, work) = setup(0);
        mount_rootfs(&[], &upper, &work, &c.target).expect("mount");
        check(&[], &upper, &c.target);
        unmount_rootfs(&c.target).expect("unmount");

        let (c2, lower, upper2, work2) = setup(3);
        let refs: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
        mount_classic(&refs, &upper2, &work2, &c2.target, false).expect("classic mount");
        check(&lower, &upper2, &c2.target);
    }
}
