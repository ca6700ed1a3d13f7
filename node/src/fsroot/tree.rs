//! Reading a tree inside a root through file descriptors: every entry is opened with
//! `O_PATH | O_NOFOLLOW` relative to its parent's fd, so a directory swapped for a symlink
//! while the walk runs is seen as a symlink (and never followed to the host).
//!
//! ```text
//!  walk(top fd) ─► visit(Node{rel, stat, fd}) for top, then each child by name, depth first
//!  append_tree(tar, top fd, name) ─► tar entries (hard links stored once)
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::{Root, RootError};

/// The kind of an inode, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Kind {
    pub fn of(st: &FileStat) -> Kind {
        let t = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        match t {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            SFlag::S_IFCHR => Kind::Char,
            SFlag::S_IFBLK => Kind::Block,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }
}

/// One entry met by [`walk`].
pub struct Node<'a> {
    /// Path relative to the walk's top (`""` for the top itself).
    pub rel: &'a Path,
    pub stat: &'a FileStat,
    /// An `O_PATH` fd of the entry itself (a symlink is not followed).
    pub fd: &'a OwnedFd,
}

impl Node<'_> {
    pub fn kind(&self) -> Kind {
        Kind::of(self.stat)
    }

    /// Opens the regular file for reading: the very inode the walk met.
    pub fn open(&self) -> Result<File, RootError> {
        reopen(self.fd, OFlag::O_RDONLY).map_err(|e| RootError::new("open", self.rel, e))
    }

    /// A symlink's target.
    pub fn link_target(&self) -> Result<OsString, RootError> {
        nix::fcntl::readlinkat(self.fd, "").map_err(|e| RootError::new("readlink", self.rel, e))
    }
}

/// Re-opens the inode behind an `O_PATH` fd with `flags` (through its magic link, which
/// names exactly that inode whatever happened to its path since).
pub fn reopen(fd: &OwnedFd, flags: OFlag) -> io::Result<File> {
    let fd = nix::fcntl::open(
        &Root::proc_path(fd),
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// The names in a directory, sorted by bytes.
pub fn list(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = std::fs::read_dir(Root::proc_path(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Opens `name` in `dir` without following it.
pub fn open_child(dir: &OwnedFd, name: &std::ffi::OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Visits `top` and everything below it. `visit` returns whether to descend into a
/// directory. Entries that vanish while the walk runs are skipped.
pub fn walk(
    top: &OwnedFd,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<bool, RootError>,
) -> Result<(), RootError> {
    let st = nix::sys::stat::fstat(top).map_err(|e| RootError::new("stat", "/", e))?;
    walk_at(top, &st, &mut PathBuf::new(), visit)
}

fn walk_at(
    fd: &OwnedFd,
    st: &FileStat,
    rel: &mut PathBuf,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<bool, RootError>,
) -> Result<(), RootError> {
    let descend = visit(&Node { rel, stat: st, fd })?;
    if !descend || Kind::of(st) != Kind::Dir {
        return Ok(());
    }
    let names = list(fd).map_err(|e| RootError::new("read", &*rel, e))?;
    for name in names {
        rel.push(&name);
        let child = match open_child(fd, &name) {
            Ok(c) => c,
            Err(nix::errno::Errno::ENOENT) => {
                rel.pop();
                continue;
            }
            Err(e) => return Err(RootError::new("open", &*rel, e)),
        };
        let cst = nix::sys::stat::fstat(&child).map_err(|e| RootError::new("stat", &*rel, e))?;
        walk_at(&child, &cst, rel, visit)?;
        rel.pop();
    }
    Ok(())
}

/// Reads exactly `size` bytes from `inner`: a file that shrank is padded with zeros and one
/// that grew is cut, so a tar header's size is always honoured.
pub struct ExactReader<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> ExactReader<R> {
    pub fn new(inner: R, size: u64) -> Self {
        ExactReader {
            inner: inner.take(size),
            left: size,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// A tar header of kind `kind` with an inode's mode, owner and mtime.
pub fn header(kind: tar::EntryType, st: &FileStat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Appends the tree at `top` to a tar, the top named `name` and everything below it
/// `name/<rel>`. Sockets are skipped; files with several links are stored once, then linked.
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    top: &OwnedFd,
    name: &Path,
) -> Result<(), RootError> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(top, &mut |n| {
        let path = if n.rel.as_os_str().is_empty() {
            name.to_owned()
        } else {
            name.join(n.rel)
        };
        let werr = |e: io::Error| RootError::new("archive", n.rel, e);
        let st = n.stat;
        match n.kind() {
            Kind::Socket => {}
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, st);
                b.append_data(&mut h, &path, io::empty()).map_err(werr)?;
            }
            Kind::Symlink => {
                let mut h = header(tar::EntryType::Symlink, st);
                b.append_link(&mut h, &path, n.link_target()?)
                    .map_err(werr)?;
            }
            Kind::File => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = links.get(&key) {
                        let mut h = header(tar::EntryType::Link, st);
                        b.append_link(&mut h, &path, first).map_err(werr)?;
                        return Ok(true);
                    }
                    links.insert(key, path.clone());
                }
                let size = u64::try_from(st.st_size).unwrap_or(0);
                let mut h = header(tar::EntryType::Regular, st);
                h.set_size(size);
                let f = n.open()?;
                let data = ExactReader::new(f, size);
                b.append_data(&mut h, &path, data).map_err(werr)?;
            }
            k @ (Kind::Char | Kind::Block | Kind::Fifo) => {
                let kind = match k {
                    Kind::Char => tar::EntryType::Char,
                    Kind::Block => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(kind, st);
                h.set_device_major(libc::major(st.st_rdev)).map_err(werr)?;
                h.set_device_minor(libc::minor(st.st_rdev)).map_err(werr)?;
                b.append_data(&mut h, &path, io::empty()).map_err(werr)?;
            }
        }
        Ok(true)
    })
}
