//! Docker's copy-up: a volume that is empty when a container mounts it gets the image's
//! content at the mount path, with ownership, modes, times, xattrs, symlinks, hard links and
//! special files preserved; the volume's root takes the owner and mode of the image's dir.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::VolumeError;

fn io(what: &'static str, path: &Path, source: std::io::Error) -> VolumeError {
    VolumeError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Whether `dir` has no entries (a missing dir counts as empty).
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none())
}

/// Copies the tree under `src` into the empty directory `dst`. A missing `src` or one that
/// is not a directory copies nothing.
pub fn copy_up(src: &Path, dst: &Path) -> Result<(), VolumeError> {
    let meta = match std::fs::symlink_metadata(src) {
        Ok(m) if m.is_dir() => m,
        _ => return Ok(()),
    };
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)?;
    set_attrs(src, dst, &meta)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), VolumeError> {
    for entry in std::fs::read_dir(src).map_err(|e| io("read", src, e))? {
        let entry = entry.map_err(|e| io("read", src, e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).map_err(|e| io("stat", &from, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(|e| io("create", &to, e))?;
            copy_dir(&from, &to, links)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|e| io("readlink", &from, e))?;
            std::os::unix::fs::symlink(&target, &to).map_err(|e| io("symlink", &to, e))?;
        } else if meta.nlink() > 1 && links.contains_key(&(meta.dev(), meta.ino())) {
            let first = &links[&(meta.dev(), meta.ino())];
            std::fs::hard_link(first, &to).map_err(|e| io("link", &to, e))?;
            continue;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(|e| io("copy", &from, e))?;
        } else {
            let path = cstr(&to)?;
            let dev = meta.rdev() as libc::dev_t;
            // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
            let rc = unsafe { libc::mknod(path.as_ptr(), meta.mode() as libc::mode_t, dev) };
            if rc != 0 {
                return Err(io("mknod", &to, std::io::Error::last_os_error()));
            }
        }
        if meta.nlink() > 1 && !ft.is_dir() {
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        set_attrs(&from, &to, &meta)?;
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<CString, VolumeError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        io(
            "encode",
            p,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"),
        )
    })
}

/// Owner, xattrs, mode and times of `src` onto `dst` (never following a symlink).
fn set_attrs(src: &Path, dst: &Path, meta: &std::fs::Metadata) -> Result<(), VolumeError> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| io("chown", dst, e))?;
    copy_xattrs(src, dst)?;
    let symlink = meta.file_type().is_symlink();
    if !symlink {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io("chmod", dst, e))?;
    }
    let atime = nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io("set times", dst, e.into()))
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<(), VolumeError> {
    let s = cstr(src)?;
    let d = cstr(dst)?;
    let mut names = vec![0u8; 4096];
    // SAFETY: `s` is NUL-terminated and `names` is a writable buffer of the given length.
    let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        // No xattrs, or a filesystem without them: nothing to carry over.
        return Ok(());
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        // SAFETY: both strings are NUL-terminated; `value` is writable for its length.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: both strings are NUL-terminated; `value` holds `len` initialised bytes.
        let rc = unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // Security labels of another LSM, or trusted.* without the capability: Docker
            // skips these too.
            if !matches!(err.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
                return Err(io("set xattr", dst, err));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_links_and_modes() {
        let d = tempfile::tempdir().expect("tmp");
        let src = d.path().join("src");
        let dst = d.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::create_dir(&dst).expect("mkdir");
        std::fs::write(src.join("sub/f"), "hello").expect("write");
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).expect("link");
        std::os::unix::fs::symlink("sub/f", src.join("sym")).expect("symlink");
        assert!(is_empty(&dst));
        copy_up(&src, &dst).expect("copy");
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/f")).expect("read"),
            "hello"
        );
        let m = std::fs::metadata(dst.join("sub/f")).expect("stat");
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_eq!(m.nlink(), 2, "the hard link stays a hard link");
        assert_eq!(
            std::fs::read_link(dst.join("sym")).expect("readlink"),
            Path::new("sub/f")
        );
        assert_eq!(std::fs::metadata(&dst).expect("stat").mode() & 0o777, 0o711);
        assert_eq!(
            std::fs::metadata(src.join("sub/f")).expect("stat").mtime(),
            m.mtime()
        );
    }

    #[test]
    fn missing_source_copies_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        copy_up(&d.path().join("nope"), d.path()).expect("copy");
        assert!(is_empty(d.path()));
    }
}
