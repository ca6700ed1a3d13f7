//! COPY and ADD (and WORKDIR's directory): files put into a staging overlay on top of the
//! parent image, whose upper dir becomes the step's layer.
//!
//! ```text
//!  tmp/build-stage-<n>/{diff,work,merged}   overlay(parent layers, diff) mounted at merged
//!  sources (context dir, or another image mounted the same way) ─► merged/<dest>
//! ```
//! Paths inside a root are resolved with symlinks followed *inside* that root, so neither a
//! symlink in the context nor one in the image can point a copy at the host. Everything is
//! blocking file-system work; callers run it on a blocking thread.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ignore::{glob, has_glob, match_segments};
use super::BuildError;
use crate::image::{mount_rootfs, unmount_rootfs};

/// An overlay mounted on some layers, with its own upper dir; unmounted and removed on drop.
pub struct Staging {
    dir: PathBuf,
    mounted: bool,
}

impl Staging {
    pub fn mount(dir: PathBuf, lowers: &[PathBuf]) -> Result<Staging, BuildError> {
        let mut s = Staging {
            dir,
            mounted: false,
        };
        for d in [s.upper(), s.dir.join("work"), s.merged()] {
            fs::create_dir_all(&d).map_err(BuildError::io("create", &d))?;
        }
        mount_rootfs(lowers, &s.upper(), &s.dir.join("work"), &s.merged())?;
        s.mounted = true;
        Ok(s)
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// Unmounts, leaving the upper dir readable for packing.
    pub fn unmount(&mut self) -> Result<(), BuildError> {
        if self.mounted {
            unmount_rootfs(&self.merged())?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!(path = %self.dir.display(), error = %e, "unmounting a build staging dir");
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(path = %self.dir.display(), error = %e, "removing a build staging dir");
        }
    }
}

/// Cleans a path relative to a root; `None` if `..` would climb above it.
pub fn clean_inside(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

/// Resolves `path` under `root`, following symlinks (the last one too if `follow_last`) as
/// if `root` were `/`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut todo: VecDeque<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(cur.join("/")).join(&part);
        if (follow_last || !todo.is_empty()) && hops < 40 {
            if let Ok(target) = fs::read_link(&candidate) {
                hops += 1;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur.clear();
                }
                let mut next: VecDeque<String> = t
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                next.extend(todo);
                todo = next;
                continue;
            }
        }
        cur.push(part);
    }
    root.join(cur.join("/"))
}

/// The source paths a COPY/ADD names under `root` (globs expanded, sorted).
pub fn resolve_sources(
    root: &Path,
    patterns: &[String],
    in_context: bool,
) -> Result<Vec<PathBuf>, BuildError> {
    let mut out = Vec::new();
    for pat in patterns {
        let Some(rel) = clean_inside(pat.trim_start_matches('/')) else {
            return Err(BuildError::Invalid(format!(
                "forbidden path outside the build context: {pat}"
            )));
        };
        if has_glob(&rel) {
            let segs: Vec<String> = rel.split('/').map(str::to_owned).collect();
            let mut hits = Vec::new();
            walk_matches(root, "", &segs, &mut hits)?;
            if hits.is_empty() {
                return Err(BuildError::NotFound(format!(
                    "COPY failed: no source files were specified (no match for {pat})"
                )));
            }
            hits.sort();
            out.extend(hits);
            continue;
        }
        let p = resolve_in_root(root, &rel, true);
        if fs::symlink_metadata(&p).is_err() {
            let where_ = if in_context {
                "in build context or excluded by .dockerignore"
            } else {
                "in the source image"
            };
            return Err(BuildError::NotFound(format!(
                "COPY failed: file not found {where_}: stat {rel}: file does not exist"
            )));
        }
        out.push(p);
    }
    Ok(out)
}

fn walk_matches(
    root: &Path,
    rel: &str,
    pat: &[String],
    hits: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let depth = if rel.is_empty() {
        0
    } else {
        rel.split('/').count()
    };
    if depth >= pat.len() {
        return Ok(());
    }
    let dir = root.join(rel);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in rd {
        let e = e.map_err(BuildError::io("read", &dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !glob(&pat[depth], &name) {
            continue;
        }
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let segs: Vec<&str> = child.split('/').collect();
        if match_segments(pat, &segs) {
            hits.push(root.join(&child));
        } else if e
            .file_type()
            .map_err(BuildError::io("stat", e.path()))?
            .is_dir()
        {
            walk_matches(root, &child, pat, hits)?;
        }
    }
    Ok(())
}

/// A checksum of sources by content: names, types, permission bits, link targets and file
/// bytes — never times — so touching a file does not invalidate the cache.
pub fn checksum(sources: &[PathBuf]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(b"source\0");
        h.update(s.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b""));
        hash_tree(s, "", &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_tree(path: &Path, rel: &str, h: &mut Sha256) -> Result<(), BuildError> {
    let m = fs::symlink_metadata(path).map_err(BuildError::io("stat", path))?;
    h.update(rel.as_bytes());
    h.update(format!("\0{:o}\0", m.mode() & 0o177777).as_bytes());
    if m.file_type().is_symlink() {
        let t = fs::read_link(path).map_err(BuildError::io("readlink", path))?;
        h.update(t.as_os_str().as_encoded_bytes());
    } else if m.is_file() {
        let mut f = fs::File::open(path).map_err(BuildError::io("open", path))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(BuildError::io("read", path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .map_err(BuildError::io("read", path))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let r = format!("{rel}/{}", n.to_string_lossy());
            hash_tree(&path.join(&n), &r, h)?;
        }
    }
    h.update(b"\n");
    Ok(())
}

/// Ownership and mode applied to what is copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

/// Parses `--chmod=0755`.
pub fn parse_chmod(s: &str) -> Result<u32, BuildError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            BuildError::Invalid(format!(
                "invalid chmod parameter {s:?}: use an octal mode such as 0755"
            ))
        })
}

/// Creates `dir` and missing parents (0755, owned per `attrs`).
fn mkdir_all(dir: &Path, attrs: &Attrs) -> Result<(), BuildError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        mkdir_all(p, attrs)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(BuildError::io("create", dir)(e)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(BuildError::io("chmod", dir))?;
    std::os::unix::fs::lchown(dir, Some(attrs.uid), Some(attrs.gid))
        .map_err(BuildError::io("chown", dir))
}

/// `mkdir -p` of an absolute path inside `root` (WORKDIR); returns whether anything was made.
pub fn make_dir_in_root(root: &Path, path: &str) -> Result<bool, BuildError> {
    let p = resolve_in_root(root, path, true);
    if p.is_dir() {
        return Ok(false);
    }
    mkdir_all(&p, &Attrs::default())?;
    Ok(true)
}

/// Copies `src` (file, symlink or directory) to `dst`, replacing non-directories there.
fn copy_entry(src: &Path, dst: &Path, attrs: &Attrs) -> Result<(), BuildError> {
    let m = fs::symlink_metadata(src).map_err(BuildError::io("stat", src))?;
    let ft = m.file_type();
    if ft.is_dir() {
        if let Ok(existing) = fs::symlink_metadata(dst) {
            if !existing.is_dir() {
                fs::remove_file(dst).map_err(BuildError::io("replace", dst))?;
            }
        }
        if !dst.is_dir() {
            fs::create_dir(dst).map_err(BuildError::io("create", dst))?;
        }
        let mode = attrs.chmod.unwrap_or(m.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
            .map_err(BuildError::io("chmod", dst))?;
        std::os::unix::fs::lchown(dst, Some(attrs.uid), Some(attrs.gid))
            .map_err(BuildError::io("chown", dst))?;
        for e in fs::read_dir(src).map_err(BuildError::io("read", src))? {
            let e = e.map_err(BuildError::io("read", src))?;
            copy_entry(&e.path(), &dst.join(e.file_name()), attrs)?;
        }
        return Ok(());
    }
    if let Ok(existing) = fs::symlink_metadata(dst) {
        if existing.is_dir() {
            fs::remove_dir_all(dst).map_err(BuildError::io("replace", dst))?;
        } else {
            fs::remove_file(dst).map_err(BuildError::io("replace", dst))?;
        }
    }
    if ft.is_symlink() {
        let t = fs::read_link(src).map_err(BuildError::io("readlink", src))?;
        std::os::unix::fs::symlink(&t, dst).map_err(BuildError::io("symlink", dst))?;
    } else if ft.is_file() {
        fs::copy(src, dst).map_err(BuildError::io("copy to", dst))?;
        let mode = attrs.chmod.unwrap_or(m.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
            .map_err(BuildError::io("chmod", dst))?;
    } else {
        return Ok(());
    }
    std::os::unix::fs::lchown(dst, Some(attrs.uid), Some(attrs.gid))
        .map_err(BuildError::io("chown", dst))
}

/// What one COPY/ADD puts where.
pub struct CopyPlan<'a> {
    /// The destination as an absolute path in the image (workdir applied).
    pub dest: String,
    pub sources: &'a [PathBuf],
    pub attrs: Attrs,
    /// ADD: extract local tar archives instead of copying them.
    pub extract: bool,
    /// ADD <url>: (file name, bytes) downloaded beforehand.
    pub downloads: Vec<(Option<String>, Vec<u8>)>,
}

/// Performs a COPY/ADD into the mounted `rootfs`.
pub fn copy_into(rootfs: &Path, plan: &CopyPlan<'_>) -> Result<(), BuildError> {
    let dir_dest = plan.dest.ends_with('/');
    let dest = resolve_in_root(rootfs, &plan.dest, true);
    let many = plan.sources.len() + plan.downloads.len() > 1;
    if many && !dir_dest && !dest.is_dir() {
        return Err(BuildError::Invalid(
            "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
        ));
    }
    for src in plan.sources {
        let m = fs::symlink_metadata(src).map_err(BuildError::io("stat", src))?;
        if m.is_dir() {
            mkdir_all(&dest, &plan.attrs)?;
            for e in fs::read_dir(src).map_err(BuildError::io("read", src))? {
                let e = e.map_err(BuildError::io("read", src))?;
                copy_entry(&e.path(), &dest.join(e.file_name()), &plan.attrs)?;
            }
            continue;
        }
        if plan.extract && m.is_file() {
            if let Some(kind) = archive_kind(src)? {
                mkdir_all(&dest, &plan.attrs)?;
                extract(src, kind, &dest)?;
                continue;
            }
        }
        let name = src.file_name().unwrap_or_default();
        let target = if dir_dest || dest.is_dir() {
            mkdir_all(&dest, &plan.attrs)?;
            dest.join(name)
        } else {
            if let Some(p) = dest.parent() {
                mkdir_all(p, &plan.attrs)?;
            }
            dest.clone()
        };
        copy_entry(src, &target, &plan.attrs)?;
    }
    for (name, bytes) in &plan.downloads {
        let target = if dir_dest || dest.is_dir() {
            mkdir_all(&dest, &plan.attrs)?;
            let n = name.as_deref().ok_or_else(|| {
                BuildError::Invalid(
                    "cannot determine a file name from the URL; give a destination file name"
                        .into(),
                )
            })?;
            dest.join(n)
        } else {
            if let Some(p) = dest.parent() {
                mkdir_all(p, &plan.attrs)?;
            }
            dest.clone()
        };
        if target.is_dir() {
            fs::remove_dir_all(&target).map_err(BuildError::io("replace", &target))?;
        }
        fs::write(&target, bytes).map_err(BuildError::io("write", &target))?;
        let mode = plan.attrs.chmod.unwrap_or(0o600);
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .map_err(BuildError::io("chmod", &target))?;
        std::os::unix::fs::lchown(&target, Some(plan.attrs.uid), Some(plan.attrs.gid))
            .map_err(BuildError::io("chown", &target))?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Archive {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// The compression a file's first bytes announce, as Docker's `DetectCompression` sniffs it
/// (magic bytes, never the file name); anything else is read as a plain tar.
fn compression(head: &[u8]) -> Archive {
    match head {
        [0x1f, 0x8b, 0x08, ..] => Archive::Gzip,
        [b'B', b'Z', b'h', ..] => Archive::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Archive::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Archive::Zstd,
        _ => Archive::Tar,
    }
}

/// Whether a file is a tar archive ADD unpacks (plain, or gzip, bzip2, xz or zstd
/// compressed). A compressed file that does not hold a tar is copied as it is.
fn archive_kind(p: &Path) -> Result<Option<Archive>, BuildError> {
    let mut head = [0u8; 6];
    let mut f = fs::File::open(p).map_err(BuildError::io("open", p))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(BuildError::io("read", p))? {
            0 => break,
            got => n += got,
        }
    }
    let kind = compression(&head[..n]);
    // Look for the ustar magic in the (decompressed) first header.
    let mut r = open_archive(p, kind)?;
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        match r.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    Ok((got == 512 && &block[257..262] == b"ustar").then_some(kind))
}

fn open_archive(p: &Path, kind: Archive) -> Result<Box<dyn Read>, BuildError> {
    let f = BufReader::new(fs::File::open(p).map_err(BuildError::io("open", p))?);
    Ok(match kind {
        Archive::Tar => Box::new(f),
        Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Archive::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(f)),
        Archive::Xz => Box::new(lzma_rust2::XzReader::new(f, true)),
        Archive::Zstd => {
            Box::new(zstd::Decoder::with_buffer(f).map_err(BuildError::io("open", p))?)
        }
    })
}

fn extract(src: &Path, kind: Archive, dest: &Path) -> Result<(), BuildError> {
    let mut ar = tar::Archive::new(open_archive(src, kind)?);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let bad = |e: std::io::Error| {
        let name = src
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        BuildError::Invalid(format!("extracting {name}: {e}{cause}"))
    };
    for e in ar.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        e.unpack_in(dest).map_err(bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_and_resolving_stay_inside() {
        assert_eq!(clean_inside("a/./b/../c"), Some("a/c".into()));
        assert_eq!(clean_inside("../x"), None);
        assert_eq!(clean_inside("a/../../x"), None);
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        fs::create_dir_all(r.join("real/dir")).expect("mkdir");
        std::os::unix::fs::symlink("/real", r.join("abs")).expect("link");
        std::os::unix::fs::symlink("../../../../etc", r.join("up")).expect("link");
        assert_eq!(resolve_in_root(r, "/abs/dir", true), r.join("real/dir"));
        assert_eq!(resolve_in_root(r, "up/passwd", true), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "abs", false), r.join("abs"));
    }

    #[test]
    fn sources_globs_and_checksums() {
        let ctx = tempfile::tempdir().expect("tempdir");
        let c = ctx.path();
        fs::create_dir_all(c.join("src/sub")).expect("mkdir");
        fs::write(c.join("a.txt"), "a").expect("write");
        fs::write(c.join("b.txt"), "b").expect("write");
        fs::write(c.join("src/sub/x.rs"), "x").expect("write");
        let s = resolve_sources(c, &["*.txt".into()], true).expect("glob");
        assert_eq!(s, vec![c.join("a.txt"), c.join("b.txt")]);
        let s = resolve_sources(c, &["src/*/x.rs".into()], true).expect("glob");
        assert_eq!(s, vec![c.join("src/sub/x.rs")]);
        assert!(resolve_sources(c, &["nope".into()], true).is_err());
        assert!(resolve_sources(c, &["*.none".into()], true).is_err());
        let e = resolve_sources(c, &["../etc/passwd".into()], true).expect_err("escape");
        assert!(e.to_string().contains("outside the build context"), "{e}");

        let before = checksum(&[c.join("src")]).expect("sum");
        let f = fs::File::options()
            .write(true)
            .open(c.join("src/sub/x.rs"))
            .expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("touch");
        assert_eq!(
            before,
            checksum(&[c.join("src")]).expect("sum"),
            "mtime is not content"
        );
        fs::write(c.join("src/sub/x.rs"), "y").expect("write");
        assert_ne!(before, checksum(&[c.join("src")]).expect("sum"));
    }

    #[test]
    fn copies_files_dirs_and_archives() {
        let ctx = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        let c = ctx.path();
        fs::create_dir_all(c.join("dir/in")).expect("mkdir");
        fs::write(c.join("dir/in/f"), "f").expect("write");
        fs::write(c.join("one"), "1").expect("write");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "inner/t.txt", &b"tt"[..])
            .expect("append");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &b.into_inner().expect("tar")).expect("gz");
        fs::write(c.join("a.tar.gz"), gz.finish().expect("gz")).expect("write");

        let srcs = vec![c.join("dir")];
        let plan = CopyPlan {
            dest: "/app/".into(),
            sources: &srcs,
            attrs: Attrs {
                uid: 0,
                gid: 0,
                chmod: Some(0o700),
            },
            extract: false,
            downloads: Vec::new(),
        };
        copy_into(root.path(), &plan).expect("copy dir");
        let f = root.path().join("app/in/f");
        assert_eq!(fs::read_to_string(&f).expect("read"), "f");
        assert_eq!(fs::metadata(&f).expect("stat").mode() & 0o777, 0o700);

        let srcs = vec![c.join("one"), c.join("a.tar.gz")];
        let mut plan = CopyPlan {
            sources: &srcs,
            dest: "/x".into(),
            ..plan
        };
        assert!(
            copy_into(root.path(), &plan).is_err(),
            "several sources need a dir dest"
        );
        plan.dest = "/x/".into();
        plan.extract = true;
        copy_into(root.path(), &plan).expect("add");
        assert_eq!(
            fs::read_to_string(root.path().join("x/one")).expect("one"),
            "1"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("x/inner/t.txt")).expect("t"),
            "tt"
        );
        assert!(!root.path().join("x/a.tar.gz").exists());
    }

    fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, body).expect("append");
        b.into_inner().expect("tar")
    }

    #[test]
    fn compression_is_sniffed_from_magic_bytes() {
        assert_eq!(compression(&[0x1f, 0x8b, 0x08, 0]), Archive::Gzip);
        assert_eq!(compression(b"BZh91AY"), Archive::Bzip2);
        assert_eq!(compression(b"\xfd7zXZ\x00"), Archive::Xz);
        assert_eq!(compression(&[0x28, 0xb5, 0x2f, 0xfd]), Archive::Zstd);
        assert_eq!(compression(b"BZ"), Archive::Tar, "too short to be bzip2");
        assert_eq!(compression(b"\xfd7zXZ"), Archive::Tar, "too short to be xz");
        assert_eq!(compression(b""), Archive::Tar);
    }

    #[test]
    fn add_extracts_every_compression_and_copies_compressed_non_tars() {
        use std::io::Write;
        let ctx = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        let c = ctx.path();
        let bz = |data: &[u8]| {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).expect("bz");
            e.finish().expect("bz")
        };
        let xz = |data: &[u8]| {
            let mut e =
                lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1))
                    .expect("xz");
            e.write_all(data).expect("xz");
            e.finish().expect("xz")
        };
        let zst = |data: &[u8]| zstd::encode_all(data, 1).expect("zstd");
        // Names say nothing: the content decides.
        fs::write(c.join("one.bin"), bz(&tar_of("from-bz", b"b"))).expect("write");
        fs::write(c.join("two.bin"), xz(&tar_of("from-xz", b"x"))).expect("write");
        fs::write(c.join("three"), zst(&tar_of("from-zst", b"z"))).expect("write");
        fs::write(c.join("four.tar"), tar_of("from-tar", b"t")).expect("write");
        fs::write(c.join("notar.bz2"), bz(b"just text")).expect("write");
        fs::write(c.join("notar.xz"), xz(b"just text")).expect("write");
        let srcs: Vec<PathBuf> = [
            "one.bin",
            "two.bin",
            "three",
            "four.tar",
            "notar.bz2",
            "notar.xz",
        ]
        .iter()
        .map(|n| c.join(n))
        .collect();
        let plan = CopyPlan {
            dest: "/out/".into(),
            sources: &srcs,
            attrs: Attrs {
                uid: 0,
                gid: 0,
                chmod: None,
            },
            extract: true,
            downloads: Vec::new(),
        };
        copy_into(root.path(), &plan).expect("add");
        let out = root.path().join("out");
        for (f, want) in [
            ("from-bz", "b"),
            ("from-xz", "x"),
            ("from-zst", "z"),
            ("from-tar", "t"),
        ] {
            assert_eq!(fs::read_to_string(out.join(f)).expect(f), want);
        }
        for n in ["one.bin", "two.bin", "three", "four.tar"] {
            assert!(!out.join(n).exists(), "{n} was extracted, not copied");
        }
        assert_eq!(
            fs::read(out.join("notar.bz2")).expect("bz2"),
            bz(b"just text")
        );
        assert_eq!(
            fs::read(out.join("notar.xz")).expect("xz"),
            xz(b"just text")
        );
    }
}
