//! Creating entries inside a root through directory fds: tar extraction (`cp` into a
//! container, ADD of a local archive) and tree copies (COPY, volume copy-up).
//!
//! Each entry's parent is resolved (and made) inside the root; the entry itself is created
//! with `mkdirat`/`openat(O_CREAT|O_EXCL|O_NOFOLLOW)`/`symlinkat`/`linkat`/`mknodat` in that
//! parent's fd, and its owner, mode and times are set without following it. A hard link's
//! target is resolved inside the root too, so a tar cannot link a host file in.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::tree::{self, Kind};
use super::{Root, RootError};

/// What to create.
pub enum Entry<'a> {
    Dir,
    File(&'a mut dyn Read),
    Symlink(&'a OsStr),
    /// A hard link to another path inside the root (as seen from inside).
    Link(&'a str),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl Entry<'_> {
    fn is_dir(&self) -> bool {
        matches!(self, Entry::Dir)
    }
}

/// Attributes of an entry to create.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    /// Permission bits (with setuid, setgid, sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds; `None` leaves the creation time.
    pub mtime: Option<(i64, i64)>,
    pub atime: Option<(i64, i64)>,
}

/// How entries are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Chown entries to their `Meta` owner (otherwise they stay the daemon's, root).
    pub chown: bool,
    /// Refuse to replace a directory with a non-directory or the reverse (`cp`'s
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Mode and owner of parent directories made on the way.
    pub parent_mode: u32,
    pub parent_owner: Option<(u32, u32)>,
    /// Tree copies carry extended attributes of files and directories over.
    pub xattrs: bool,
}

/// Writes entries under one directory of a root; directory times are set at [`finish`]
/// (their children would change them).
///
/// [`finish`]: Writer::finish
pub struct Writer<'r> {
    root: &'r Root,
    base: String,
    opts: Options,
    dir_times: Vec<(String, Meta)>,
}

/// `None` if `rel` climbs above its start with `..`; otherwise the cleaned path.
pub fn clean_rel(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

impl<'r> Writer<'r> {
    /// Entries are named relative to `base`, a directory inside `root` (as seen from inside).
    pub fn new(root: &'r Root, base: &str, opts: Options) -> Writer<'r> {
        Writer {
            root,
            base: base.trim_end_matches('/').to_owned(),
            opts,
            dir_times: Vec::new(),
        }
    }

    fn inside(&self, rel: &Path) -> String {
        format!("{}/{}", self.base, rel.display())
    }

    /// Creates `rel` (relative to the base, no escaping `..`), replacing what is there
    /// unless both are directories.
    pub fn create(&mut self, rel: &Path, entry: Entry<'_>, meta: &Meta) -> Result<(), RootError> {
        let clean = clean_rel(rel).ok_or_else(|| {
            RootError::new(
                "extract",
                rel,
                io::Error::new(io::ErrorKind::InvalidInput, "path escapes the destination"),
            )
        })?;
        let path = self.inside(&clean);
        if clean.as_os_str().is_empty() {
            return self.create_base(path, &entry, meta);
        }
        let (dir, name) =
            self.root
                .parent_create(&path, self.opts.parent_mode, self.opts.parent_owner)?;
        let name = name.as_os_str();
        if self.keep_or_remove(&dir, name, &path, entry.is_dir(), meta)? {
            return Ok(());
        }
        self.make(&dir, name, path, entry, meta)
    }

    /// The base itself: only a directory's attributes can apply.
    fn create_base(
        &mut self,
        path: String,
        entry: &Entry<'_>,
        meta: &Meta,
    ) -> Result<(), RootError> {
        if entry.is_dir() {
            let (dir, _) = self.root.mkdir_all(&path, self.opts.parent_mode, None)?;
            self.attrs_fd(&dir, &path, meta, true)?;
            self.dir_times.push((path, *meta));
        }
        Ok(())
    }

    /// Deals with what is already at `name` in `dir`: a directory where a directory goes is
    /// kept and given the new attributes (true); anything else is removed, unless it would
    /// replace a directory with a non-directory or the reverse under
    /// `no_overwrite_dir_non_dir` (an error).
    fn keep_or_remove(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &str,
        want_dir: bool,
        meta: &Meta,
    ) -> Result<bool, RootError> {
        let Some(existing) = lstat_at(dir, name) else {
            return Ok(false);
        };
        let is_dir = Kind::of(&existing) == Kind::Dir;
        if is_dir && want_dir {
            self.attrs_at(dir, name, path, meta, true)?;
            self.dir_times.push((path.to_owned(), *meta));
            return Ok(true);
        }
        if self.opts.no_overwrite_dir_non_dir && is_dir != want_dir {
            let what = if want_dir {
                "directory"
            } else {
                "non-directory"
            };
            return Err(RootError::new(
                "extract",
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot overwrite {} with a {what}", kind_name(is_dir)),
                ),
            ));
        }
        remove_at(dir, name).map_err(|e| RootError::new("replace", path, e))?;
        Ok(false)
    }

    /// Makes the new entry `name` in `dir` (nothing is there) and sets its attributes.
    fn make(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        path: String,
        entry: Entry<'_>,
        meta: &Meta,
    ) -> Result<(), RootError> {
        let (kind, major, minor) = match entry {
            Entry::Dir => {
                nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                    .map_err(errno("create", &path))?;
                self.attrs_at(dir, name, &path, meta, true)?;
                self.dir_times.push((path, *meta));
                return Ok(());
            }
            Entry::File(data) => return self.make_file(dir, name, &path, data, meta),
            Entry::Symlink(target) => return self.make_symlink(dir, name, &path, target, meta),
            Entry::Link(target) => {
                let (tdir, tname) = self.root.parent(target)?;
                nix::unistd::linkat(&tdir, tname.as_os_str(), dir, name, AtFlags::empty())
                    .map_err(errno("link", &path))?;
                return Ok(());
            }
            Entry::Char(major, minor) => (SFlag::S_IFCHR, major, minor),
            Entry::Block(major, minor) => (SFlag::S_IFBLK, major, minor),
            Entry::Fifo => (SFlag::S_IFIFO, 0, 0),
        };
        mknod(dir, name, kind, major, minor).map_err(errno("mknod", &path))?;
        self.attrs_at(dir, name, &path, meta, false)?;
        set_times_at(dir, name, meta).map_err(errno("set times of", &path))
    }

    /// A regular file with `data` as its content.
    fn make_file(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &str,
        data: &mut dyn Read,
        meta: &Meta,
    ) -> Result<(), RootError> {
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(errno("create", path))?;
        let mut f = std::fs::File::from(fd);
        io::copy(data, &mut f).map_err(|e| RootError::new("write", path, e))?;
        let fd = OwnedFd::from(f);
        self.attrs_fd(&fd, path, meta, false)?;
        set_times_fd(&fd, meta).map_err(errno("set times of", path))
    }

    /// A symbolic link to `target` (owner set on the link itself; no mode, as on Linux).
    fn make_symlink(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &str,
        target: &OsStr,
        meta: &Meta,
    ) -> Result<(), RootError> {
        nix::unistd::symlinkat(target, dir, name).map_err(errno("symlink", path))?;
        if self.opts.chown {
            nix::unistd::fchownat(
                dir,
                name,
                Some(meta.uid.into()),
                Some(meta.gid.into()),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(errno("chown", path))?;
        }
        set_times_at(dir, name, meta).map_err(errno("set times of", path))
    }

    fn attrs_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &str,
        meta: &Meta,
        is_dir: bool,
    ) -> Result<(), RootError> {
        let fd = tree::open_child(dir, name).map_err(|e| RootError::new("open", path, e))?;
        self.attrs_fd(&fd, path, meta, is_dir)
    }

    /// Owner, then mode (a chown clears setuid bits), on an fd of the entry itself.
    fn attrs_fd(
        &self,
        fd: &OwnedFd,
        path: &str,
        meta: &Meta,
        _is_dir: bool,
    ) -> Result<(), RootError> {
        if self.opts.chown {
            nix::unistd::fchownat(
                fd,
                "",
                Some(meta.uid.into()),
                Some(meta.gid.into()),
                AtFlags::AT_EMPTY_PATH,
            )
            .map_err(|e| RootError::new("chown", path, e))?;
        }
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &Root::proc_path(fd),
            Mode::from_bits_truncate(meta.mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| RootError::new("chmod", path, e))
    }

    /// Sets the times of the directories written, deepest first.
    pub fn finish(mut self) -> Result<(), RootError> {
        self.dir_times.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (path, meta) in &self.dir_times {
            if meta.mtime.is_none() {
                continue;
            }
            if let Ok(fd) = self.root.resolve(path, super::Last::NoFollow) {
                set_times_fd(&fd, meta).map_err(|e| RootError::new("set times of", path, e))?;
            }
        }
        Ok(())
    }
}

/// Turns an errno of `op` on `path` into the root's error.
fn errno<'p>(op: &'static str, path: &'p str) -> impl FnOnce(Errno) -> RootError + 'p {
    move |e| RootError::new(op, path, e)
}

fn kind_name(is_dir: bool) -> &'static str {
    if is_dir {
        "directory"
    } else {
        "non-directory"
    }
}

fn lstat_at(dir: &OwnedFd, name: &OsStr) -> Option<nix::sys::stat::FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
}

fn mknod(dir: &OwnedFd, name: &OsStr, kind: SFlag, major: u32, minor: u32) -> Result<(), Errno> {
    nix::sys::stat::mknodat(
        dir,
        name,
        kind,
        Mode::from_bits_truncate(0o600),
        libc::makedev(major, minor),
    )
}

fn times(meta: &Meta) -> Option<(TimeSpec, TimeSpec)> {
    let (ms, mn) = meta.mtime?;
    let (as_, an) = meta.atime.unwrap_or((ms, mn));
    Some((TimeSpec::new(as_, an), TimeSpec::new(ms, mn)))
}

fn set_times_at(dir: &OwnedFd, name: &OsStr, meta: &Meta) -> Result<(), Errno> {
    let Some((a, m)) = times(meta) else {
        return Ok(());
    };
    nix::sys::stat::utimensat(
        dir,
        name,
        &a,
        &m,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

/// Times of the inode behind an fd (O_PATH included), without following it.
fn set_times_fd(fd: &OwnedFd, meta: &Meta) -> Result<(), Errno> {
    let Some((a, m)) = times(meta) else {
        return Ok(());
    };
    let ts = [*a.as_ref(), *m.as_ref()];
    let empty = c"";
    // SAFETY: `fd` is an open descriptor, `empty` a valid C string, `ts` two timespecs;
    // AT_EMPTY_PATH makes the call act on `fd` itself.
    let rc = unsafe {
        libc::utimensat(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            empty.as_ptr(),
            ts.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

/// Removes `name` in `dir`: a file or link, or a directory tree (walked through fds).
pub fn remove_at(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let child = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<OsString> = tree::list(&child)
        .map_err(|e| e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO))?;
    for n in names {
        remove_at(&child, &n)?;
    }
    nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir)
}

/// Extracts a tar stream into `base` inside `root`. Entry names and hard-link targets are
/// relative to `base` and may not climb above it.
pub fn extract_tar(
    root: &Root,
    base: &str,
    input: impl Read,
    opts: Options,
) -> Result<(), RootError> {
    let mut w = Writer::new(root, base, opts);
    let mut ar = tar::Archive::new(input);
    let bad = |e: io::Error| RootError::new("read tar", base, e);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let h = entry.header();
        let rel = entry.path().map_err(bad)?.into_owned();
        let meta = Meta {
            mode: h.mode().map_err(bad)? & 0o7777,
            uid: h.uid().map_err(bad)? as u32,
            gid: h.gid().map_err(bad)? as u32,
            mtime: Some((h.mtime().map_err(bad)? as i64, 0)),
            atime: None,
        };
        let kind = h.entry_type();
        let dev = || -> Result<(u32, u32), RootError> {
            Ok((
                h.device_major().map_err(bad)?.unwrap_or(0),
                h.device_minor().map_err(bad)?.unwrap_or(0),
            ))
        };
        use tar::EntryType as T;
        let link = || -> Result<PathBuf, RootError> {
            Ok(entry
                .link_name()
                .map_err(bad)?
                .map(|l| l.into_owned())
                .unwrap_or_default())
        };
        match kind {
            T::Directory => w.create(&rel, Entry::Dir, &meta)?,
            T::Symlink => {
                let target = link()?;
                w.create(&rel, Entry::Symlink(target.as_os_str()), &meta)?
            }
            T::Link => {
                let target = link()?;
                let clean = clean_rel(&target).ok_or_else(|| {
                    RootError::new(
                        "link",
                        &rel,
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "link target escapes the destination",
                        ),
                    )
                })?;
                let inside = format!("{}/{}", base.trim_end_matches('/'), clean.display());
                w.create(&rel, Entry::Link(&inside), &meta)?
            }
            T::Char => {
                let (a, b) = dev()?;
                w.create(&rel, Entry::Char(a, b), &meta)?
            }
            T::Block => {
                let (a, b) = dev()?;
                w.create(&rel, Entry::Block(a, b), &meta)?
            }
            T::Fifo => w.create(&rel, Entry::Fifo, &meta)?,
            T::Regular | T::Continuous => w.create(&rel, Entry::File(&mut entry), &meta)?,
            // PAX/GNU records are consumed by the tar reader; anything else is skipped.
            _ => {}
        }
    }
    w.finish()
}

/// Copies the tree at `src` (an fd from any root) to `rel` under the writer's base; the
/// top is created as `rel` itself. `meta_of` gives the attributes each entry gets (from its
/// stat). Files linked several times in the source are linked in the copy too.
pub fn copy_tree(
    w: &mut Writer<'_>,
    src: &OwnedFd,
    rel: &Path,
    meta_of: &dyn Fn(&nix::sys::stat::FileStat) -> Meta,
) -> Result<(), RootError> {
    let mut links: std::collections::HashMap<(u64, u64), String> = Default::default();
    tree::walk(src, &mut |n| {
        let dst = rel.join(n.rel);
        let meta = meta_of(n.stat);
        match n.kind() {
            Kind::Dir => w.create(&dst, Entry::Dir, &meta)?,
            Kind::Symlink => {
                let t = n.link_target()?;
                w.create(&dst, Entry::Symlink(&t), &meta)?
            }
            Kind::File => {
                let key = (n.stat.st_dev, n.stat.st_ino);
                if n.stat.st_nlink > 1 {
                    if let Some(first) = links.get(&key) {
                        let first = first.clone();
                        w.create(&dst, Entry::Link(&first), &meta)?;
                        return Ok(true);
                    }
                }
                let mut f = n.open()?;
                w.create(&dst, Entry::File(&mut f), &meta)?;
                if n.stat.st_nlink > 1 {
                    let inside = clean_rel(&dst).unwrap_or_default();
                    links.insert(key, w.inside(&inside));
                }
            }
            Kind::Char => {
                let d = n.stat.st_rdev;
                w.create(&dst, Entry::Char(libc::major(d), libc::minor(d)), &meta)?
            }
            Kind::Block => {
                let d = n.stat.st_rdev;
                w.create(&dst, Entry::Block(libc::major(d), libc::minor(d)), &meta)?
            }
            Kind::Fifo => w.create(&dst, Entry::Fifo, &meta)?,
            Kind::Socket => {}
        }
        if w.opts.xattrs && matches!(n.kind(), Kind::Dir | Kind::File) {
            let inside = w.inside(&clean_rel(&dst).unwrap_or_default());
            let to = w.root.resolve(&inside, super::Last::NoFollow)?;
            copy_xattrs(n.fd, &to).map_err(|e| RootError::new("copy xattrs to", &inside, e))?;
        }
        Ok(true)
    })
}

/// Extended attributes of one inode onto another (both named by fds, files or directories).
/// Attributes the destination refuses (another LSM's labels, `trusted.*` without the
/// capability) are skipped, as Docker skips them.
fn copy_xattrs(from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
    use std::ffi::CString;
    let (src, dst) = (Root::proc_path(from), Root::proc_path(to));
    let cs = CString::new(src.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let cd = CString::new(dst.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let mut names = vec![0u8; 4096];
    // SAFETY: `cs` is NUL-terminated; `names` is writable for its length.
    let n = unsafe { libc::listxattr(cs.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Ok(());
    }
    names.truncate(n as usize);
    let mut value = vec![0u8; 65536];
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        // SAFETY: both strings are NUL-terminated; `value` is writable for its length.
        let len = unsafe {
            libc::getxattr(
                cs.as_ptr(),
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
            libc::setxattr(
                cd.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Attributes that reproduce an inode's own.
pub fn meta_of_stat(st: &nix::sys::stat::FileStat) -> Meta {
    Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: Some((st.st_mtime, st.st_mtime_nsec)),
        atime: Some((st.st_atime, st.st_atime_nsec)),
    }
}
