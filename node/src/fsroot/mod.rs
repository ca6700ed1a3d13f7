//! Paths inside a root that is not ours to trust — a container's root file system, a layer,
//! a volume, a build context — resolved so that they cannot leave that root and cannot be
//! raced out of it by whoever else writes there (a running container, an image's symlinks).
//!
//! ```text
//!  Root::open(host dir) ── O_PATH fd ──► resolve("/a/../b/link/c")
//!        openat2(root_fd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)     (Linux ≥ 5.6)
//!        or a walk one component at a time: openat(dir_fd, name, O_PATH|O_NOFOLLOW),
//!           symlinks read with readlinkat and resolved again from the root,
//!           `..` pops a stack of directory fds (never the kernel's `..`)
//!  ──► an fd inside the root; every further step is an `*at` call relative to an fd
//! ```
//! Invariants:
//! - a path string is never handed back to the kernel from the host's side: what leaves this
//!   module is a file descriptor (or a `/proc/self/fd/N` path to re-open that very inode);
//! - symlinks, absolute or relative, and `..` are interpreted as if the root were `/`; a
//!   symlink chain longer than 40 hops is an error (ELOOP), never a half-resolved path;
//! - magic links (`/proc/<pid>/fd/*`, ...) are never followed;
//! - a file renamed or swapped while we work may be missed or seen in its old place, but
//!   what is read or written is always inside the root.
//!
//! [`tree`] reads a tree through fds (for tars and copies), [`write`] creates entries
//! relative to directory fds (for extraction and copies).

pub mod tree;
pub mod write;

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// Symlinks followed in one resolution before giving up, as the kernel's limit.
const MAX_HOPS: usize = 40;

/// An error about a path inside a root; `path` is as seen from inside.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct RootError {
    pub op: &'static str,
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl RootError {
    pub fn new(
        op: &'static str,
        path: impl AsRef<Path>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        RootError {
            op,
            path: path.as_ref().display().to_string(),
            source: source.into(),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    pub fn is_not_found(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::NotFound
    }
}

/// Whether the last component of a path is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    Follow,
    NoFollow,
}

/// A directory treated as `/` for every path resolved through it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    host: PathBuf,
}

impl Root {
    /// Opens `host`, a directory named by a trusted host path (the daemon's own data root).
    pub fn open(host: &Path) -> Result<Root, RootError> {
        let fd = nix::fcntl::open(
            host,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RootError::new("open", host, e))?;
        Ok(Root {
            fd,
            host: host.to_owned(),
        })
    }

    /// A root at a directory already open (e.g. one resolved inside another root).
    pub fn from_fd(fd: OwnedFd, host: PathBuf) -> Root {
        Root { fd, host }
    }

    /// The host path the root was opened at (for messages and mount work only).
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` inside the root with `flags` (`O_NOFOLLOW` is honoured for the last
    /// component; `O_CREAT` creates it; `mode` applies to creation).
    pub fn open_at(&self, path: &str, flags: OFlag, mode: Mode) -> Result<OwnedFd, RootError> {
        let op = if flags.contains(OFlag::O_CREAT) {
            "create"
        } else {
            "open"
        };
        open_in_root(self.fd.as_fd(), path, flags, mode).map_err(|e| RootError::new(op, path, e))
    }

    /// An `O_PATH` fd of `path`.
    pub fn resolve(&self, path: &str, last: Last) -> Result<OwnedFd, RootError> {
        let mut flags = OFlag::O_PATH;
        if last == Last::NoFollow {
            flags |= OFlag::O_NOFOLLOW;
        }
        self.open_at(path, flags, Mode::empty())
    }

    /// An `O_PATH` fd of `path` (symlinks followed) only if resolving it never leaves the
    /// root: an absolute path, `..` above the root or an absolute symlink is `EXDEV` (the
    /// kernel's `RESOLVE_BENEATH`), where [`Root::resolve`] would clamp them to the root.
    /// Docker's rule for a volume's `Subpath`.
    pub fn resolve_beneath(&self, path: &str) -> Result<OwnedFd, RootError> {
        let err = |e: Errno| RootError::new("open", path, e);
        if path.starts_with('/') {
            return Err(err(Errno::EXDEV));
        }
        let rel = if path.is_empty() { "." } else { path };
        let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if openat2_available() {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            for _ in 0..16 {
                match nix::fcntl::openat2(self.fd.as_fd(), rel, how) {
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => break,
                    other => return other.map_err(err),
                }
            }
        }
        for _ in 0..16 {
            let (dir, name) = walk(self.fd.as_fd(), rel, true, true).map_err(err)?;
            let name = name.unwrap_or_else(|| OsString::from("."));
            match nix::fcntl::openat(
                &dir,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(fd) if is_symlink(&fd) => continue,
                other => return other.map_err(err),
            }
        }
        Err(err(Errno::ELOOP))
    }

    /// `lstat` (or `stat` with `Last::Follow`) of `path`.
    pub fn stat(&self, path: &str, last: Last) -> Result<FileStat, RootError> {
        let fd = self.resolve(path, last)?;
        nix::sys::stat::fstat(&fd).map_err(|e| RootError::new("stat", path, e))
    }

    /// Opens a regular file for reading (following a final symlink inside the root).
    pub fn open_file(&self, path: &str) -> Result<File, RootError> {
        let fd = self.open_at(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| RootError::new("stat", path, e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(RootError::new("open", path, Errno::EINVAL));
        }
        // O_NONBLOCK only kept a FIFO swapped in from blocking the open.
        let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| RootError::new("open", path, e))?;
        let fl = OFlag::from_bits_truncate(fl) & !OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(fl))
            .map_err(|e| RootError::new("open", path, e))?;
        Ok(File::from(fd))
    }

    /// An `O_PATH` fd of the directory `path` (following symlinks inside the root).
    pub fn dir(&self, path: &str) -> Result<OwnedFd, RootError> {
        self.open_at(path, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
    }

    /// The directory holding `path`'s last component (resolved, following symlinks) and
    /// that component's name. `path` must name something below the root (not `/`, `.`, `..`).
    pub fn parent(&self, path: &str) -> Result<(OwnedFd, OsString), RootError> {
        let (dir, name) = split_last(path).ok_or_else(|| {
            RootError::new(
                "resolve",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
            )
        })?;
        Ok((self.dir(&dir)?, name))
    }

    /// [`Root::parent`], creating missing directories on the way (see [`Root::mkdir_all`]).
    pub fn parent_create(
        &self,
        path: &str,
        perm: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(OwnedFd, OsString), RootError> {
        let (dir, name) = split_last(path).ok_or_else(|| {
            RootError::new(
                "resolve",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
            )
        })?;
        Ok((self.mkdir_all(&dir, perm, owner)?.0, name))
    }

    /// `mkdir -p` inside the root: walked one component at a time through fds, each missing
    /// directory made with `mkdirat` in its parent's fd (mode `perm`, owned by `owner` when
    /// given); symlinks on the way, dangling ones included, are followed inside the root (their
    /// missing targets are made, as Docker's resolution in scope does). Returns the
    /// directory's `O_PATH` fd and whether anything was made.
    pub fn mkdir_all(
        &self,
        path: &str,
        perm: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(OwnedFd, bool), RootError> {
        match self.dir(path) {
            Ok(fd) => return Ok((fd, false)),
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        walk_create(self.fd.as_fd(), path, perm, owner)
            .map_err(|e| RootError::new("create", path, e))
    }

    /// The host path at which the kernel finds the inode behind `fd` (a magic link): for
    /// handing a resolved directory to code that takes paths, such as a mount.
    pub fn proc_path(fd: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }
}

/// Applies `perm` (exactly, not masked by the umask) and `owner` to `dir/name`.
fn set_owner_mode(
    dir: &OwnedFd,
    name: &OsStr,
    perm: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), Errno> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchownat(
            &fd,
            "",
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )?;
    }
    // fchmod does not take O_PATH fds; the magic link re-opens exactly this inode.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &Root::proc_path(&fd),
        Mode::from_bits_truncate(perm),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// `("a/b", "c")` for `"a/b/c"`; `None` when the path has no last name (`/`, `..`).
fn split_last(path: &str) -> Option<(String, OsString)> {
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let (last, dir) = comps.split_last()?;
    if *last == ".." {
        return None;
    }
    Some((dir.join("/"), OsString::from(*last)))
}

/// 0: not probed yet, 1: openat2 works, 2: unavailable (ENOSYS, or forced off in tests).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

fn openat2_available() -> bool {
    OPENAT2.load(Ordering::Relaxed) != 2
}

#[cfg(test)]
pub(crate) fn force_fallback(on: bool) {
    OPENAT2.store(if on { 2 } else { 0 }, Ordering::Relaxed);
}

/// Opens `path` relative to `root` as if `root` were `/`.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let flags = flags | OFlag::O_CLOEXEC;
    if openat2_available() {
        let mut how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        if flags.contains(OFlag::O_CREAT) {
            how = how.mode(mode);
        }
        for _ in 0..16 {
            match nix::fcntl::openat2(root, rel, how) {
                // A rename somewhere in the file system raced a `..`: the kernel asks to retry.
                Err(Errno::EAGAIN) => continue,
                Err(Errno::ENOSYS) => {
                    OPENAT2.store(2, Ordering::Relaxed);
                    break;
                }
                other => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return other;
                }
            }
        }
    }
    let follow = !flags.contains(OFlag::O_NOFOLLOW);
    for _ in 0..16 {
        let (dir, name) = walk(root, rel, follow, false)?;
        let name = name.unwrap_or_else(|| OsString::from("."));
        let fd = nix::fcntl::openat(&dir, name.as_os_str(), flags | OFlag::O_NOFOLLOW, mode);
        match fd {
            // The last component became a symlink after the walk looked: walk again.
            Err(Errno::ELOOP) if follow => continue,
            Ok(fd) if follow && flags.contains(OFlag::O_PATH) && is_symlink(&fd) => continue,
            other => return other,
        }
    }
    Err(Errno::ELOOP)
}

fn is_symlink(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    p.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
}

/// The user-space resolution for kernels without `openat2`: returns the directory holding
/// the last component and that component's name (`None` when the path ends at a directory
/// already open, e.g. `a/..` or `/`). Intermediate symlinks, and the last one if `follow`,
/// are resolved inside the root; a missing last component is fine (for `O_CREAT`). With
/// `beneath`, `..` above the root and absolute symlinks are `EXDEV` instead.
fn walk(
    root: BorrowedFd<'_>,
    path: &str,
    follow: bool,
    beneath: bool,
) -> Result<(OwnedFd, Option<OsString>), Errno> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<OsString> = components(path.as_bytes()).collect();
    let mut hops = 0;
    let top = |stack: &Vec<OwnedFd>| -> Result<OwnedFd, Errno> {
        match stack.last() {
            Some(fd) => fd.try_clone().map_err(|_| Errno::EMFILE),
            None => root.try_clone_to_owned().map_err(|_| Errno::EMFILE),
        }
    };
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            if stack.pop().is_none() && beneath {
                return Err(Errno::EXDEV);
            }
            continue;
        }
        let last = todo.is_empty();
        let cur = top(&stack)?;
        if last && !follow {
            return Ok((cur, Some(c)));
        }
        let fd = match nix::fcntl::openat(
            &cur,
            c.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Err(Errno::ENOENT) if last => return Ok((cur, Some(c))),
            Err(e) => return Err(e),
            Ok(fd) => fd,
        };
        let st = nix::sys::stat::fstat(&fd)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Errno::ELOOP);
            }
            let target = nix::fcntl::readlinkat(&fd, "")?;
            let bytes = target.as_bytes();
            if bytes.first() == Some(&b'/') {
                if beneath {
                    return Err(Errno::EXDEV);
                }
                stack.clear();
            }
            for t in components(bytes).rev() {
                todo.push_front(t);
            }
            continue;
        }
        if last {
            return Ok((cur, Some(c)));
        }
        if kind != SFlag::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        stack.push(fd);
    }
    Ok((top(&stack)?, None))
}

/// [`walk`] for `mkdir -p`: every component is a directory, made when missing.
fn walk_create(
    root: BorrowedFd<'_>,
    path: &str,
    perm: u32,
    owner: Option<(u32, u32)>,
) -> Result<(OwnedFd, bool), Errno> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<OsString> = components(path.as_bytes()).collect();
    let mut hops = 0;
    let mut made = false;
    let top = |stack: &Vec<OwnedFd>| -> Result<OwnedFd, Errno> {
        match stack.last() {
            Some(fd) => fd.try_clone().map_err(|_| Errno::EMFILE),
            None => root.try_clone_to_owned().map_err(|_| Errno::EMFILE),
        }
    };
    let open = |cur: &OwnedFd, c: &OsStr| {
        nix::fcntl::openat(
            cur,
            c,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            stack.pop();
            continue;
        }
        let cur = top(&stack)?;
        let mut tries = 0;
        let fd = loop {
            match open(&cur, &c) {
                Err(Errno::ENOENT) if tries < 8 => {
                    tries += 1;
                    match nix::sys::stat::mkdirat(
                        &cur,
                        c.as_os_str(),
                        Mode::from_bits_truncate(perm),
                    ) {
                        Ok(()) => {
                            made = true;
                            set_owner_mode(&cur, &c, perm, owner)?;
                        }
                        // Made meanwhile: look again.
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                }
                other => break other?,
            }
        };
        let st = nix::sys::stat::fstat(&fd)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Errno::ELOOP);
            }
            let target = nix::fcntl::readlinkat(&fd, "")?;
            let bytes = target.as_bytes();
            if bytes.first() == Some(&b'/') {
                stack.clear();
            }
            for t in components(bytes).rev() {
                todo.push_front(t);
            }
            continue;
        }
        if kind != SFlag::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        stack.push(fd);
    }
    Ok((top(&stack)?, made))
}

#[cfg(test)]
mod tests;
