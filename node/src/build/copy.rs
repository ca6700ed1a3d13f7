//! COPY and ADD (and WORKDIR's directory): files put into a staging overlay on top of the
//! parent image, whose upper dir becomes the step's layer.
//!
//! ```text
//!  tmp/build-stage-<n>/{diff,work,merged}   overlay(parent layers, diff) mounted at merged
//!  sources (context dir, or another image mounted the same way) ─► merged/<dest>
//! ```
//! Every path inside the context, a source image or the staging root is resolved through
//! [`crate::fsroot`] (symlinks followed *inside* that root, never a half-resolved path handed
//! to the kernel), and what is copied is read and written through file descriptors, so
//! neither a symlink in the context nor one in an image can point a copy at the host.
//! Everything is blocking file-system work; callers run it on a blocking thread.

use std::fs;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use berth_common::pattern::{glob, has_glob, match_segments};
use sha2::{Digest as _, Sha256};

use super::BuildError;
use crate::fsroot::tree::{self, Kind};
use crate::fsroot::write::{self as fswrite, Entry, Meta, Writer};
use crate::fsroot::{Last, Root, RootError};
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

impl From<RootError> for BuildError {
    fn from(e: RootError) -> Self {
        BuildError::Io {
            what: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// One COPY/ADD source: a path inside its root (the context or a source image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    /// Named exactly (its symlinks followed) rather than matched by a glob (copied as is).
    pub follow: bool,
}

impl Source {
    fn last(&self) -> Last {
        if self.follow {
            Last::Follow
        } else {
            Last::NoFollow
        }
    }

    fn open(&self, root: &Root) -> Result<std::os::fd::OwnedFd, BuildError> {
        Ok(root.resolve(&self.path, self.last())?)
    }
}

/// The sources a COPY/ADD names in `root` (globs expanded, sorted).
pub fn resolve_sources(
    root: &Root,
    patterns: &[String],
    in_context: bool,
) -> Result<Vec<Source>, BuildError> {
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
            out.extend(hits.into_iter().map(|path| Source {
                path,
                follow: false,
            }));
            continue;
        }
        match root.stat(&rel, Last::Follow) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libc::ELOOP) => {
                return Err(BuildError::Invalid(format!(
                    "COPY failed: too many levels of symbolic links: {rel}"
                )))
            }
            Err(_) => {
                let where_ = if in_context {
                    "in build context or excluded by .dockerignore"
                } else {
                    "in the source image"
                };
                return Err(BuildError::NotFound(format!(
                    "COPY failed: file not found {where_}: stat {rel}: file does not exist"
                )));
            }
        }
        out.push(Source {
            path: rel,
            follow: true,
        });
    }
    Ok(out)
}

fn walk_matches(
    root: &Root,
    rel: &str,
    pat: &[String],
    hits: &mut Vec<String>,
) -> Result<(), BuildError> {
    let depth = if rel.is_empty() {
        0
    } else {
        rel.split('/').count()
    };
    if depth >= pat.len() {
        return Ok(());
    }
    let Ok(dir) = root.dir(rel) else {
        return Ok(());
    };
    let names = tree::list(&dir).map_err(BuildError::io("read", rel))?;
    for name in names {
        let name = name.to_string_lossy().into_owned();
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
            hits.push(child);
        } else if root
            .stat(&child, Last::NoFollow)
            .is_ok_and(|st| Kind::of(&st) == Kind::Dir)
        {
            walk_matches(root, &child, pat, hits)?;
        }
    }
    Ok(())
}

/// The name a source is copied under: the last component of what it resolved to.
fn source_name(fd: &std::os::fd::OwnedFd, src: &Source) -> std::ffi::OsString {
    fs::read_link(Root::proc_path(fd))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()))
        .or_else(|| Path::new(&src.path).file_name().map(|n| n.to_owned()))
        .unwrap_or_default()
}

/// A checksum of sources by content: names, types, permission bits, link targets and file
/// bytes — never times — so touching a file does not invalidate the cache.
pub fn checksum(root: &Root, sources: &[Source]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for s in sources {
        let fd = s.open(root)?;
        h.update(b"source\0");
        h.update(source_name(&fd, s).as_encoded_bytes());
        tree::walk(&fd, &mut |n| {
            if !n.rel.as_os_str().is_empty() {
                h.update(b"/");
            }
            h.update(n.rel.as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}\0", n.stat.st_mode & 0o177777).as_bytes());
            match n.kind() {
                Kind::Symlink => h.update(n.link_target()?.as_encoded_bytes()),
                Kind::File => {
                    let mut f = n.open()?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let k = f
                            .read(&mut buf)
                            .map_err(|e| RootError::new("read", n.rel, e))?;
                        if k == 0 {
                            break;
                        }
                        h.update(&buf[..k]);
                    }
                }
                _ => {}
            }
            h.update(b"\n");
            Ok(true)
        })?;
    }
    Ok(hex::encode(h.finalize()))
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

/// `mkdir -p` of an absolute path inside `root` (WORKDIR); returns whether anything was made.
pub fn make_dir_in_root(root: &Root, path: &str) -> Result<bool, BuildError> {
    match root.mkdir_all(path, 0o755, Some((0, 0))) {
        Ok((_, made)) => Ok(made),
        Err(e) if e.errno() == Some(libc::ENOTDIR) => Err(BuildError::Invalid(format!(
            "failed to create WORKDIR {path}: not a directory"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// What one COPY/ADD puts where.
pub struct CopyPlan<'a> {
    /// The destination as an absolute path in the image (workdir applied).
    pub dest: String,
    pub sources: &'a [Source],
    pub attrs: Attrs,
    /// ADD: extract local tar archives instead of copying them.
    pub extract: bool,
    /// ADD <url>: (file name, bytes) downloaded beforehand.
    pub downloads: Vec<(Option<String>, Vec<u8>)>,
}

fn writer<'r>(root: &'r Root, attrs: &Attrs) -> Writer<'r> {
    Writer::new(
        root,
        "/",
        fswrite::Options {
            chown: true,
            no_overwrite_dir_non_dir: false,
            parent_mode: 0o755,
            parent_owner: Some((attrs.uid, attrs.gid)),
            xattrs: false,
        },
    )
}

/// Performs a COPY/ADD from `src_root` (the context or a source image) into `rootfs`.
pub fn copy_into(rootfs: &Root, src_root: &Root, plan: &CopyPlan<'_>) -> Result<(), BuildError> {
    let dir_dest = plan.dest.ends_with('/');
    let dest = plan.dest.trim_end_matches('/').to_owned();
    let dest_rel = PathBuf::from(dest.trim_start_matches('/'));
    let dest_is_dir = || {
        rootfs
            .stat(&dest, Last::Follow)
            .is_ok_and(|st| Kind::of(&st) == Kind::Dir)
    };
    let many = plan.sources.len() + plan.downloads.len() > 1;
    if many && !dir_dest && !dest_is_dir() {
        return Err(BuildError::Invalid(
            "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
        ));
    }
    let attrs = plan.attrs;
    let meta_of = move |st: &nix::sys::stat::FileStat| Meta {
        mode: attrs.chmod.unwrap_or(st.st_mode & 0o7777),
        uid: attrs.uid,
        gid: attrs.gid,
        mtime: Some((st.st_mtime, st.st_mtime_nsec)),
        atime: None,
    };
    let mut w = writer(rootfs, &plan.attrs);
    let mkdir_dest = || rootfs.mkdir_all(&dest, 0o755, Some((attrs.uid, attrs.gid)));
    for src in plan.sources {
        let fd = src.open(src_root)?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| RootError::new("stat", &src.path, e))?;
        let kind = Kind::of(&st);
        if kind == Kind::Dir {
            // The directory's contents, not the directory itself.
            mkdir_dest()?;
            for name in tree::list(&fd).map_err(BuildError::io("read", &src.path))? {
                let child = tree::open_child(&fd, &name)
                    .map_err(|e| RootError::new("open", Path::new(&src.path).join(&name), e))?;
                fswrite::copy_tree(&mut w, &child, &dest_rel.join(&name), &meta_of)?;
            }
            continue;
        }
        if plan.extract && kind == Kind::File {
            let mut f = tree::reopen(&fd, nix::fcntl::OFlag::O_RDONLY)
                .map_err(BuildError::io("open", &src.path))?;
            if let Some(kind) = archive_kind(&mut f, &src.path)? {
                mkdir_dest()?;
                extract(f, kind, &src.path, rootfs, &dest)?;
                continue;
            }
        }
        let name = source_name(&fd, src);
        let target = if dir_dest || dest_is_dir() {
            dest_rel.join(&name)
        } else {
            dest_rel.clone()
        };
        fswrite::copy_tree(&mut w, &fd, &target, &meta_of)?;
    }
    for (name, bytes) in &plan.downloads {
        let target = if dir_dest || dest_is_dir() {
            let n = name.as_deref().ok_or_else(|| {
                BuildError::Invalid(
                    "cannot determine a file name from the URL; give a destination file name"
                        .into(),
                )
            })?;
            dest_rel.join(n)
        } else {
            dest_rel.clone()
        };
        let meta = Meta {
            mode: plan.attrs.chmod.unwrap_or(0o600),
            uid: plan.attrs.uid,
            gid: plan.attrs.gid,
            mtime: None,
            atime: None,
        };
        w.create(&target, Entry::File(&mut &bytes[..]), &meta)?;
    }
    w.finish()?;
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
/// compressed). A compressed file that does not hold a tar is copied as it is. Leaves the
/// file at its start.
fn archive_kind(f: &mut fs::File, name: &str) -> Result<Option<Archive>, BuildError> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match f
            .read(&mut head[n..])
            .map_err(BuildError::io("read", name))?
        {
            0 => break,
            got => n += got,
        }
    }
    let kind = compression(&head[..n]);
    f.rewind().map_err(BuildError::io("read", name))?;
    // Look for the ustar magic in the (decompressed) first header.
    let mut r = open_archive(
        f.try_clone().map_err(BuildError::io("open", name))?,
        kind,
        name,
    )?;
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        match r.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    drop(r);
    f.rewind().map_err(BuildError::io("read", name))?;
    Ok((got == 512 && &block[257..262] == b"ustar").then_some(kind))
}

fn open_archive(f: fs::File, kind: Archive, name: &str) -> Result<Box<dyn Read>, BuildError> {
    let f = BufReader::new(f);
    Ok(match kind {
        Archive::Tar => Box::new(f),
        Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Archive::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(f)),
        Archive::Xz => Box::new(lzma_rust2::XzReader::new(f, true)),
        Archive::Zstd => {
            Box::new(zstd::Decoder::with_buffer(f).map_err(BuildError::io("open", name))?)
        }
    })
}

/// Unpacks an archive into `dest` inside `rootfs` (owners and modes from the archive).
fn extract(
    f: fs::File,
    kind: Archive,
    src: &str,
    rootfs: &Root,
    dest: &str,
) -> Result<(), BuildError> {
    let input = open_archive(f, kind, src)?;
    let opts = fswrite::Options {
        chown: true,
        no_overwrite_dir_non_dir: false,
        parent_mode: 0o755,
        parent_owner: None,
        xattrs: false,
    };
    fswrite::extract_tar(rootfs, dest, input, opts).map_err(|e| {
        let name = Path::new(src)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        BuildError::Invalid(format!("extracting {name}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn cleaning_and_resolving_stay_inside() {
        assert_eq!(clean_inside("a/./b/../c"), Some("a/c".into()));
        assert_eq!(clean_inside("../x"), None);
        assert_eq!(clean_inside("a/../../x"), None);
    }

    fn src(p: &str, follow: bool) -> Source {
        Source {
            path: p.into(),
            follow,
        }
    }

    #[test]
    fn sources_globs_and_checksums() {
        let ctx = tempfile::tempdir().expect("tempdir");
        let c = ctx.path();
        fs::create_dir_all(c.join("src/sub")).expect("mkdir");
        fs::write(c.join("a.txt"), "a").expect("write");
        fs::write(c.join("b.txt"), "b").expect("write");
        fs::write(c.join("src/sub/x.rs"), "x").expect("write");
        let r = Root::open(c).expect("root");
        let s = resolve_sources(&r, &["*.txt".into()], true).expect("glob");
        assert_eq!(s, vec![src("a.txt", false), src("b.txt", false)]);
        let s = resolve_sources(&r, &["src/*/x.rs".into()], true).expect("glob");
        assert_eq!(s, vec![src("src/sub/x.rs", false)]);
        assert!(resolve_sources(&r, &["nope".into()], true).is_err());
        assert!(resolve_sources(&r, &["*.none".into()], true).is_err());
        let e = resolve_sources(&r, &["../etc/passwd".into()], true).expect_err("escape");
        assert!(e.to_string().contains("outside the build context"), "{e}");
        // 41 hops through `dot`, then a link to the host: an error, never the host's file.
        std::os::unix::fs::symlink(".", c.join("dot")).expect("link");
        std::os::unix::fs::symlink("/etc", c.join("evil")).expect("link");
        let deep = format!("{}evil/hostname", "dot/".repeat(41));
        assert!(resolve_sources(&r, &[deep], true).is_err());

        let srcs = [src("src", true)];
        let before = checksum(&r, &srcs).expect("sum");
        let f = fs::File::options()
            .write(true)
            .open(c.join("src/sub/x.rs"))
            .expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("touch");
        assert_eq!(
            before,
            checksum(&r, &srcs).expect("sum"),
            "mtime is not content"
        );
        fs::write(c.join("src/sub/x.rs"), "y").expect("write");
        assert_ne!(before, checksum(&r, &srcs).expect("sum"));
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

        let (cr, rr) = (
            Root::open(c).expect("root"),
            Root::open(root.path()).expect("root"),
        );
        let srcs = vec![src("dir", true)];
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
        copy_into(&rr, &cr, &plan).expect("copy dir");
        let f = root.path().join("app/in/f");
        assert_eq!(fs::read_to_string(&f).expect("read"), "f");
        assert_eq!(fs::metadata(&f).expect("stat").mode() & 0o777, 0o700);

        let srcs = vec![src("one", true), src("a.tar.gz", true)];
        let mut plan = CopyPlan {
            sources: &srcs,
            dest: "/x".into(),
            ..plan
        };
        assert!(
            copy_into(&rr, &cr, &plan).is_err(),
            "several sources need a dir dest"
        );
        plan.dest = "/x/".into();
        plan.extract = true;
        copy_into(&rr, &cr, &plan).expect("add");
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
        let srcs: Vec<Source> = [
            "one.bin",
            "two.bin",
            "three",
            "four.tar",
            "notar.bz2",
            "notar.xz",
        ]
        .iter()
        .map(|n| src(n, true))
        .collect();
        let (cr, rr) = (
            Root::open(c).expect("root"),
            Root::open(root.path()).expect("root"),
        );
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
        copy_into(&rr, &cr, &plan).expect("add");
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
