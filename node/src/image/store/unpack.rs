//! Unpacking one layer tar (plain, gzip or zstd, told apart by magic) into a temporary layer
//! directory, in overlayfs form.
//!
//! ```text
//!  bytes ─► HashingReader (blob digest) ─► decompress ─► Recorder (diff id, tar-split) ─► tar
//!  tmp/images/layer-<rand>/ { diff/…, tar-split.gz, shadow/… }   renamed into place by layers.rs
//! ```
//! Invariants:
//! - nothing is written outside `diff/`: entry names are cleaned lexically (an escaping `..`
//!   is an error), parent directories are resolved inside the layer as if it were the root
//!   (a symlink `a -> /etc` makes `a/passwd` land in `diff/etc/passwd`), the final component
//!   is never followed, and hard links must point at something already in this layer;
//! - OCI whiteouts become overlayfs ones: `.wh.<name>` → a 0/0 character device `<name>`,
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory;
//! - a tar that ends without its end-of-archive block, or with a short file, is an error;
//! - on any error the temporary directory is removed (see [`Unpacked`]'s guard).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::image::digest::{Digest, HashingReader};
use crate::image::error::ImageError;
use crate::image::store::content::RemoveOnDrop;
use crate::image::store::sys;
use crate::image::store::tarsplit::{self, Recorder, RecorderHandle};

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_NAME: &[u8] = b".wh..wh..opq";

/// A layer unpacked into a temporary directory; removed on drop unless committed.
pub struct Unpacked {
    pub dir: PathBuf,
    pub diff_id: Digest,
    pub tar_size: u64,
    /// Digest and size of the bytes as received (compressed or not).
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub shadows: BTreeMap<u64, String>,
    guard: Option<RemoveOnDrop>,
}

impl Unpacked {
    /// Hands the directory over to the caller, who now owns its removal.
    pub fn disarm(&mut self) {
        if let Some(g) = self.guard.take() {
            g.disarm();
        }
    }
}

enum Compression {
    None,
    Gzip,
    Zstd,
}

fn detect(magic: &[u8]) -> Result<Compression, ImageError> {
    Ok(match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
            return Err(ImageError::BadArchive(
                "xz-compressed layers are not supported".into(),
            ))
        }
        [b'B', b'Z', b'h', ..] => {
            return Err(ImageError::BadArchive(
                "bzip2-compressed layers are not supported".into(),
            ))
        }
        _ => Compression::None,
    })
}

/// Unpacks the layer read from `input` into a new directory under `tmp_root`.
pub fn unpack_layer(input: impl Read, tmp_root: &Path) -> Result<Unpacked, ImageError> {
    let dir = tmp_root.join(format!("layer-{:016x}", rand::random::<u64>()));
    let guard = RemoveOnDrop(Some(dir.clone()));
    let diff = dir.join("diff");
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&diff)
        .map_err(ImageError::io("create", &diff))?;

    let mut blob = HashingReader::new(input);
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        let n = blob
            .read(&mut magic[got..])
            .map_err(ImageError::archive("reading layer"))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let kind = detect(&magic[..got])?;
    let (shadows, diff_id, tar_size) = {
        let prefixed = Cursor::new(&magic[..got]).chain(&mut blob);
        let decoded: Box<dyn Read + '_> = match kind {
            Compression::None => Box::new(prefixed),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(prefixed)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(prefixed)
                    .map_err(ImageError::archive("zstd layer"))?,
            ),
        };
        let recipe = dir.join(tarsplit::FILE_NAME);
        let (recorder, handle) =
            Recorder::new(decoded, &recipe).map_err(ImageError::io("create", &recipe))?;
        let mut un = Unpacker {
            diff: diff.clone(),
            shadow_dir: dir.join("shadow"),
            rec: handle.clone(),
            recorded: HashMap::new(),
            shadows: BTreeMap::new(),
            dir_times: Vec::new(),
        };
        let mut archive = tar::Archive::new(recorder);
        for entry in archive
            .entries()
            .map_err(ImageError::archive("reading layer tar"))?
        {
            let mut entry = entry.map_err(ImageError::archive("reading layer tar"))?;
            un.apply(&mut entry)?;
        }
        let mut recorder = archive.into_inner();
        if handle.position() > 0 && !handle.ended_with_zero_block() {
            return Err(ImageError::BadArchive(
                "unexpected end of layer tar (truncated?)".into(),
            ));
        }
        io::copy(&mut recorder, &mut io::sink()).map_err(ImageError::archive("reading layer"))?;
        drop(recorder);
        un.finish_dir_times()?;
        let Unpacker { shadows, rec, .. } = un;
        drop(rec);
        let (diff_id, tar_size) = handle.finish().map_err(ImageError::io("write", &recipe))?;
        (shadows, diff_id, tar_size)
    };
    let (blob_digest, blob_size) = blob
        .finish()
        .map_err(ImageError::archive("reading layer"))?;
    Ok(Unpacked {
        dir,
        diff_id,
        tar_size,
        blob_digest,
        blob_size,
        shadows,
        guard: Some(guard),
    })
}

/// Cleans a tar entry name into a relative path; `None` for the root itself.
pub fn clean_entry_path(raw: &Path) -> Result<Option<PathBuf>, ImageError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(ImageError::PathEscape {
                        entry: raw.display().to_string(),
                        reason: "climbs out of the layer",
                    });
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

struct Unpacker {
    diff: PathBuf,
    shadow_dir: PathBuf,
    rec: RecorderHandle,
    /// Regular files whose content the recipe points at, by path → recipe index.
    recorded: HashMap<PathBuf, u64>,
    shadows: BTreeMap<u64, String>,
    dir_times: Vec<(PathBuf, i64, i64)>,
}

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, ImageError> {
    let h = entry.header();
    // Like Go's archive/tar, an empty numeric field reads as 0.
    let mode = h.mode().unwrap_or(0) & 0o7777;
    let uid = h.uid().unwrap_or(0);
    let gid = h.gid().unwrap_or(0);
    let mut mtime = (h.mtime().unwrap_or(0) as i64, 0i64);
    let mut xattrs = Vec::new();
    if let Some(exts) = entry
        .pax_extensions()
        .map_err(ImageError::archive("reading pax header"))?
    {
        for ext in exts {
            let ext = ext.map_err(ImageError::archive("reading pax header"))?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
            } else if key == "mtime" {
                if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                    mtime = t;
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

fn parse_pax_time(v: &str) -> Option<(i64, i64)> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some((secs, if secs < 0 && nanos > 0 { -nanos } else { nanos }))
}

impl Unpacker {
    fn full(&self, rel: &Path) -> PathBuf {
        self.diff.join(rel)
    }

    /// Resolves a directory path inside the layer as if the layer were `/`, following
    /// symlinks there and creating what is missing.
    fn resolve_dir(&self, rel: &Path) -> Result<PathBuf, ImageError> {
        let mut todo: Vec<std::ffi::OsString> = rel.iter().rev().map(|c| c.to_owned()).collect();
        let mut cur = PathBuf::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            if c == "." || c == "/" || c.is_empty() {
                continue;
            }
            let cand = cur.join(&c);
            let full = self.full(&cand);
            match fs::symlink_metadata(&full) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&full)
                        .map_err(ImageError::io("create", &full))?;
                    cur = cand;
                }
                Err(e) => return Err(ImageError::io("stat", &full)(e)),
                Ok(m) if m.is_dir() => cur = cand,
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(ImageError::PathEscape {
                            entry: rel.display().to_string(),
                            reason: "has too many levels of symbolic links",
                        });
                    }
                    let target = fs::read_link(&full).map_err(ImageError::io("readlink", &full))?;
                    if target.is_absolute() {
                        cur = PathBuf::new();
                    }
                    todo.extend(target.iter().rev().map(|c| c.to_owned()));
                }
                Ok(_) => {
                    return Err(ImageError::BadArchive(format!(
                        "{}: {} is not a directory",
                        rel.display(),
                        cand.display()
                    )))
                }
            }
        }
        Ok(cur)
    }

    /// Moves recorded files at or under `rel` out of the way, so the recipe still finds them.
    fn shadow_under(&mut self, rel: &Path) -> Result<(), ImageError> {
        let hit: Vec<(PathBuf, u64)> = self
            .recorded
            .iter()
            .filter(|(p, _)| p.starts_with(rel))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, idx) in hit {
            fs::create_dir_all(&self.shadow_dir)
                .map_err(ImageError::io("create", &self.shadow_dir))?;
            let to = self.shadow_dir.join(idx.to_string());
            let from = self.full(&p);
            fs::rename(&from, &to).map_err(ImageError::io("rename", &from))?;
            self.recorded.remove(&p);
            self.shadows.insert(idx, format!("shadow/{idx}"));
        }
        Ok(())
    }

    /// Clears the way for a new entry at `rel`. Returns true if an existing directory was kept.
    fn prepare(&mut self, rel: &Path, keep_dir: bool) -> Result<bool, ImageError> {
        let full = self.full(rel);
        let m = match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(ImageError::io("stat", &full)(e)),
            Ok(m) => m,
        };
        if m.is_dir() && keep_dir {
            return Ok(true);
        }
        self.shadow_under(rel)?;
        let res = if m.is_dir() {
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        };
        match res {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("remove", &full)(e))
            }
            _ => Ok(false),
        }
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry
            .path()
            .map_err(ImageError::archive("reading entry name"))?
            .into_owned();
        let Some(rel) = clean_entry_path(&raw)? else {
            return Ok(());
        };
        let name = rel.file_name().unwrap_or_default().to_owned();
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let meta = read_meta(entry)?;
        if let Some(rest) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            let parent = self.resolve_dir(parent_rel)?;
            if name.as_bytes() == OPAQUE_NAME {
                let dir = self.full(&parent);
                sys::lsetxattr(&dir, OPAQUE_XATTR, b"y")
                    .map_err(ImageError::io("set opaque xattr on", &dir))?;
            } else if !rest.starts_with(WHITEOUT_PREFIX) && !rest.is_empty() {
                let t = parent.join(OsStr::from_bytes(rest));
                self.prepare(&t, false)?;
                let full = self.full(&t);
                sys::mknod(&full, libc::S_IFCHR, 0, 0)
                    .map_err(ImageError::io("create whiteout", &full))?;
                self.owner(&full, &meta)?;
            }
            return Ok(());
        }
        let parent = self.resolve_dir(parent_rel)?;
        let t = parent.join(&name);
        let full = self.full(&t);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if !self.prepare(&t, true)? {
                    DirBuilder::new()
                        .mode(0o700)
                        .create(&full)
                        .map_err(ImageError::io("create", &full))?;
                }
                self.owner_mode_xattrs(&full, &meta)?;
                self.dir_times.push((full, meta.mtime.0, meta.mtime.1));
            }
            kind @ (EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) => {
                self.prepare(&t, false)?;
                self.write_file(entry, &t, matches!(kind, EntryType::GNUSparse))?;
                self.owner_mode_xattrs(&full, &meta)?;
                self.times(&full, &meta)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(ImageError::archive("reading link name"))?
                    .ok_or_else(|| {
                        ImageError::BadArchive(format!("symlink {} has no target", raw.display()))
                    })?;
                self.prepare(&t, false)?;
                std::os::unix::fs::symlink(&target, &full)
                    .map_err(ImageError::io("symlink", &full))?;
                self.owner(&full, &meta)?;
                self.xattrs(&full, &meta);
                self.times(&full, &meta)?;
            }
            EntryType::Link => self.hard_link(entry, &raw, &t)?,
            kind @ (EntryType::Char | EntryType::Block | EntryType::Fifo) => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                self.prepare(&t, false)?;
                sys::mknod(&full, fmt | 0o600, major, minor)
                    .map_err(ImageError::io("mknod", &full))?;
                self.owner_mode_xattrs(&full, &meta)?;
                self.times(&full, &meta)?;
            }
            // Global pax headers and unknown kinds carry nothing to create.
            _ => {}
        }
        Ok(())
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        t: &Path,
        sparse: bool,
    ) -> Result<(), ImageError> {
        let full = self.full(t);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)
            .map_err(ImageError::io("create", &full))?;
        let size = entry.size();
        if !sparse {
            let idx = self
                .rec
                .begin_file(entry.raw_file_position(), size, t)
                .map_err(|e| ImageError::Internal(e.to_string()))?;
            self.recorded.insert(t.to_owned(), idx);
        }
        let mut buf = vec![0u8; 128 * 1024];
        let mut left = size;
        loop {
            let want = if sparse {
                buf.len()
            } else {
                buf.len().min(left as usize)
            };
            if want == 0 {
                break;
            }
            let n = entry
                .read(&mut buf[..want])
                .map_err(ImageError::archive("reading file data"))?;
            if n == 0 {
                if sparse {
                    break;
                }
                return Err(ImageError::BadArchive(format!(
                    "unexpected end of archive in {}",
                    t.display()
                )));
            }
            f.write_all(&buf[..n])
                .map_err(ImageError::io("write", &full))?;
            left = left.saturating_sub(n as u64);
        }
        Ok(())
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        raw: &Path,
        t: &Path,
    ) -> Result<(), ImageError> {
        let target_raw = entry
            .link_name()
            .map_err(ImageError::archive("reading link name"))?
            .ok_or_else(|| {
                ImageError::BadArchive(format!("hard link {} has no target", raw.display()))
            })?;
        let trel = clean_entry_path(&target_raw)?.ok_or_else(|| ImageError::PathEscape {
            entry: raw.display().to_string(),
            reason: "is a hard link to the layer root",
        })?;
        let tparent = self.resolve_dir(trel.parent().unwrap_or(Path::new("")))?;
        let tt = tparent.join(trel.file_name().unwrap_or_default());
        if tt == t {
            return Ok(());
        }
        let tfull = self.full(&tt);
        if fs::symlink_metadata(&tfull).is_err() {
            return Err(ImageError::BadArchive(format!(
                "hard link {} points at {}, which is not in this layer",
                raw.display(),
                target_raw.display()
            )));
        }
        self.prepare(t, false)?;
        let full = self.full(t);
        fs::hard_link(&tfull, &full).map_err(ImageError::io("link", &full))
    }

    fn owner(&self, full: &Path, m: &Meta) -> Result<(), ImageError> {
        let (uid, gid) = (u32::try_from(m.uid).ok(), u32::try_from(m.gid).ok());
        std::os::unix::fs::lchown(full, uid, gid).map_err(ImageError::io("chown", full))
    }

    fn xattrs(&self, full: &Path, m: &Meta) {
        for (name, value) in &m.xattrs {
            // The layer may not forge overlayfs' own attributes (redirects, opaque, metacopy).
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            if let Err(e) = sys::lsetxattr(full, name, value) {
                tracing::warn!(path = %full.display(), xattr = %name, error = %e, "layer xattr not applied");
            }
        }
    }

    fn owner_mode_xattrs(&self, full: &Path, m: &Meta) -> Result<(), ImageError> {
        self.owner(full, m)?;
        fs::set_permissions(full, fs::Permissions::from_mode(m.mode))
            .map_err(ImageError::io("chmod", full))?;
        self.xattrs(full, m);
        Ok(())
    }

    fn times(&self, full: &Path, m: &Meta) -> Result<(), ImageError> {
        sys::set_times(full, m.mtime.0, m.mtime.1).map_err(ImageError::io("set times on", full))
    }

    /// Directory times last, since creating entries inside a directory changes its mtime.
    fn finish_dir_times(&mut self) -> Result<(), ImageError> {
        for (p, s, ns) in self.dir_times.drain(..).rev() {
            if fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                sys::set_times(&p, s, ns).map_err(ImageError::io("set times on", &p))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    /// One raw tar entry; names and link targets are written verbatim (even `..`).
    struct E<'a> {
        name: &'a str,
        kind: EntryType,
        data: &'a [u8],
        link: &'a str,
        mode: u32,
    }

    fn e<'a>(name: &'a str, kind: EntryType) -> E<'a> {
        E {
            name,
            kind,
            data: b"",
            link: "",
            mode: 0o755,
        }
    }

    fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
        E {
            name,
            kind: EntryType::Regular,
            data,
            link: "",
            mode: 0o644,
        }
    }

    fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> E<'a> {
        E {
            name,
            kind,
            data: b"",
            link: target,
            mode: 0o777,
        }
    }

    fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for en in entries {
            let mut h = tar::Header::new_gnu();
            let gnu = h.as_gnu_mut().expect("gnu header");
            gnu.name[..en.name.len()].copy_from_slice(en.name.as_bytes());
            gnu.linkname[..en.link.len()].copy_from_slice(en.link.as_bytes());
            h.set_entry_type(en.kind);
            h.set_size(en.data.len() as u64);
            h.set_mode(en.mode);
            h.set_uid(1000);
            h.set_gid(1001);
            h.set_mtime(1_600_000_000);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(en.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn unpack(tar: &[u8]) -> (tempfile::TempDir, Result<Unpacked, ImageError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let res = unpack_layer(tar, dir.path());
        (dir, res)
    }

    fn replay(u: &Unpacked) -> Vec<u8> {
        let mut out = Vec::new();
        tarsplit::Reassembler::open(&u.dir, u.shadows.clone())
            .expect("open")
            .read_to_end(&mut out)
            .expect("read");
        out
    }

    #[test]
    fn files_links_devices_owners_and_times() {
        let tar = tar_of(&[
            e("etc/", EntryType::Directory),
            E {
                mode: 0o4755,
                ..file("bin/prog", b"#!binary")
            },
            link("bin/sh", EntryType::Symlink, "/bin/prog"),
            link("bin/prog2", EntryType::Link, "bin/prog"),
            e("dev/null", EntryType::Char),
            e("run/fifo", EntryType::Fifo),
            file("etc/motd", b"hello"),
        ]);
        let (_d, res) = unpack(&tar);
        let u = res.expect("unpack");
        let diff = u.dir.join("diff");
        assert_eq!(u.diff_id, Digest::of_bytes(&tar));
        assert_eq!(u.tar_size, tar.len() as u64);
        let prog = fs::metadata(diff.join("bin/prog")).expect("prog");
        assert_eq!(prog.mode() & 0o7777, 0o4755, "setuid survives chown");
        assert_eq!((prog.uid(), prog.gid()), (1000, 1001));
        assert_eq!(prog.mtime(), 1_600_000_000);
        assert_eq!(
            fs::read_link(diff.join("bin/sh")).expect("symlink"),
            Path::new("/bin/prog")
        );
        assert_eq!(
            fs::metadata(diff.join("bin/prog2")).expect("link").ino(),
            prog.ino()
        );
        assert!(fs::symlink_metadata(diff.join("dev/null"))
            .expect("dev")
            .file_type()
            .is_char_device());
        assert!(fs::symlink_metadata(diff.join("run/fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo());
        assert_eq!(
            fs::metadata(diff.join("etc")).expect("etc").mtime(),
            1_600_000_000,
            "dir times set last"
        );
        assert_eq!(replay(&u), tar, "tar-split replays the exact bytes");
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let tar = tar_of(&[
            e("a/", EntryType::Directory),
            file("a/.wh..wh..opq", b""),
            file("a/keep", b"k"),
            file(".wh.gone", b""),
            file("b/.wh.sub", b""),
            file(".wh..wh.plnk", b""),
        ]);
        let (_d, res) = unpack(&tar);
        let u = res.expect("unpack");
        let diff = u.dir.join("diff");
        assert_eq!(
            sys::lgetxattr(&diff.join("a"), OPAQUE_XATTR).expect("xattr"),
            Some(b"y".to_vec())
        );
        for w in ["gone", "b/sub"] {
            let m = fs::symlink_metadata(diff.join(w)).expect("whiteout");
            assert!(m.file_type().is_char_device(), "{w}");
            assert_eq!(m.rdev(), 0, "{w} is 0/0");
        }
        assert!(!diff.join(".wh.gone").exists());
        assert!(!diff.join(".wh..wh.plnk").exists() && !diff.join("plnk").exists());
        assert_eq!(replay(&u), tar, "whiteouts come back as .wh. entries");
    }

    #[test]
    fn nothing_escapes_the_layer() {
        let outside = tempfile::tempdir().expect("outside");
        let abs = outside.path().display().to_string();
        // Through an absolute symlink, and through a relative one that climbs too far.
        let tar = tar_of(&[
            link("evil", EntryType::Symlink, &abs),
            file("evil/pwned", b"x"),
            link("up", EntryType::Symlink, "../../../../.."),
            file("up/also", b"y"),
        ]);
        let (_d, res) = unpack(&tar);
        let u = res.expect("unpack stays inside");
        assert!(
            !outside.path().join("pwned").exists(),
            "wrote through an absolute symlink"
        );
        let diff = u.dir.join("diff");
        assert_eq!(
            fs::read(diff.join(abs.trim_start_matches('/')).join("pwned")).expect("inside"),
            b"x"
        );
        assert_eq!(
            fs::read(diff.join("also")).expect("clamped to the root"),
            b"y"
        );

        for bad in [
            tar_of(&[file("../escape", b"x")]),
            tar_of(&[file("a/../../escape", b"x")]),
            tar_of(&[link("h", EntryType::Link, "../../etc/passwd")]),
            tar_of(&[link("h", EntryType::Link, "missing")]),
        ] {
            let (d, res) = unpack(&bad);
            assert!(res.is_err());
            assert_eq!(
                fs::read_dir(d.path()).expect("tmp").count(),
                0,
                "temporary layer left behind"
            );
        }
    }

    #[test]
    fn replaced_files_keep_the_tar_exact() {
        let tar = tar_of(&[
            file("f", b"first"),
            link("hard", EntryType::Link, "f"),
            file("f", b"second!"),
            file("d/x", b"in dir"),
            file("d", b"dir replaced by file"),
        ]);
        let (_d, res) = unpack(&tar);
        let u = res.expect("unpack");
        let diff = u.dir.join("diff");
        assert_eq!(fs::read(diff.join("f")).expect("f"), b"second!");
        assert_eq!(
            fs::read(diff.join("hard")).expect("hard"),
            b"first",
            "the link keeps the old inode"
        );
        assert_eq!(
            fs::read(diff.join("d")).expect("d"),
            b"dir replaced by file"
        );
        assert_eq!(u.shadows.len(), 2);
        assert_eq!(replay(&u), tar);
    }

    #[test]
    fn compression_is_detected_and_truncation_rejected() {
        let tar = tar_of(&[file("a", &[7u8; 3000])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gz");
        let gz = gz.finish().expect("gz");
        let zst = zstd::stream::encode_all(&tar[..], 3).expect("zstd");
        for (what, blob) in [("gzip", &gz), ("zstd", &zst)] {
            let (_d, res) = unpack(blob);
            let u = res.expect(what);
            assert_eq!(u.diff_id, Digest::of_bytes(&tar), "{what}");
            assert_eq!(u.blob_digest, Digest::of_bytes(blob), "{what}");
        }
        for bad in [
            &tar[..tar.len() - 1024],
            &tar[..700],
            &gz[..gz.len() - 10],
            &b"not a tar"[..],
        ] {
            let (d, res) = unpack(bad);
            assert!(
                matches!(res, Err(ImageError::BadArchive(_))),
                "{:?}",
                res.err()
            );
            assert_eq!(fs::read_dir(d.path()).expect("tmp").count(), 0);
        }
    }

    #[test]
    fn entry_names_are_cleaned() {
        assert_eq!(
            clean_entry_path(Path::new("./a/./b/")).expect("ok"),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(
            clean_entry_path(Path::new("/abs/x")).expect("ok"),
            Some(PathBuf::from("abs/x"))
        );
        assert_eq!(
            clean_entry_path(Path::new("a/../b")).expect("ok"),
            Some(PathBuf::from("b"))
        );
        assert_eq!(clean_entry_path(Path::new("./")).expect("ok"), None);
        assert!(clean_entry_path(Path::new("../x")).is_err());
    }
}
