//! Thin, checked wrappers over the few libc calls the image store needs that `std` lacks:
//! device nodes, extended attributes on links, and timestamps that do not follow symlinks.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `mknod(2)`; `mode` includes the file type bits (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`).
pub fn mknod(path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let p = cpath(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `p` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mknod(p.as_ptr(), mode as libc::mode_t, dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lsetxattr(2)`: sets an attribute on the path itself, not on a symlink's target.
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = cpath(path)?;
    let n = cstr(name)?;
    // SAFETY: `p` and `n` are valid NUL-terminated strings; `value` is a live slice whose
    // pointer and length are passed together.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lgetxattr(2)`; `None` when the attribute is not set.
#[cfg(test)]
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    getxattr_impl(path, name, false)
}

/// `getxattr(2)`; `None` when the attribute is not set. Follows a final symlink (or magic link: `/proc/self/fd/N` names the
/// inode an fd holds).
pub fn getxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    getxattr_impl(path, name, true)
}

fn getxattr_impl(path: &Path, name: &str, follow: bool) -> io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = cstr(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `p`, `n` are valid C strings; `buf` is writable for `buf.len()` bytes.
        let rc = unsafe {
            if follow {
                libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            } else {
                libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            }
        };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            _ => return Err(err),
        }
    }
}

/// `llistxattr(2)`: the names of the path's extended attributes.
#[cfg(test)]
pub fn llistxattr(path: &Path) -> io::Result<Vec<String>> {
    listxattr_impl(path, false)
}

/// `listxattr(2)`: follows a final symlink (or magic link).
pub fn listxattr(path: &Path) -> io::Result<Vec<String>> {
    listxattr_impl(path, true)
}

fn listxattr_impl(path: &Path, follow: bool) -> io::Result<Vec<String>> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `p` is a valid C string; `buf` is writable for `buf.len()` bytes.
        let rc = unsafe {
            if follow {
                libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            } else {
                libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            }
        };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            _ => return Err(err),
        }
    }
}

/// Sets atime and mtime without following a final symlink.
pub fn set_times(path: &Path, secs: i64, nsecs: i64) -> io::Result<()> {
    let p = cpath(path)?;
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nsecs as _,
    };
    let times = [ts, ts];
    // SAFETY: `p` is a valid C string and `times` is an array of two timespecs, as required.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_roundtrip_and_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").expect("write");
        lsetxattr(&f, "user.berth.test", b"v").expect("setxattr");
        assert_eq!(
            lgetxattr(&f, "user.berth.test").expect("get"),
            Some(b"v".to_vec())
        );
        assert_eq!(lgetxattr(&f, "user.berth.none").expect("get"), None);
        assert!(llistxattr(&f)
            .expect("list")
            .contains(&"user.berth.test".to_string()));
        set_times(&f, 1_000_000, 5).expect("times");
        let m = std::fs::metadata(&f).expect("stat");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(m.mtime(), 1_000_000);
        assert_eq!(m.mtime_nsec(), 5);
    }
}
