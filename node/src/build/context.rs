//! The build context: the uploaded tar (plain or gzip) unpacked into a private temporary
//! directory, with `.dockerignore` applied, and the Dockerfile read from it.
//!
//! Entries that would land outside the directory are refused by `tar`'s `unpack_in`; files
//! are owned by root whatever the tar says, as Docker's COPY makes them unless `--chown`.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use berth_common::dockerignore::{clean, IgnoreRules};

use super::BuildError;

/// An unpacked context; the directory is removed on drop.
#[derive(Debug)]
pub struct Context {
    pub dir: PathBuf,
    pub dockerfile: String,
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.dir.display(), error = %e, "removing a build context");
            }
        }
    }
}

/// Unpacks `body` into `dir` (created here) and reads the Dockerfile at `dockerfile`.
pub fn unpack(body: impl Read, dir: &Path, dockerfile: &str) -> Result<Context, BuildError> {
    fs::create_dir_all(dir).map_err(BuildError::io("create", dir))?;
    let ctx = Context {
        dir: dir.to_owned(),
        dockerfile: String::new(),
    };
    let mut r = BufReader::with_capacity(256 * 1024, body);
    let head = r
        .fill_buf()
        .map_err(|e| BuildError::Invalid(format!("reading the build context: {e}")))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut ar = tar::Archive::new(PadAtEof {
        inner: input,
        pos: 0,
        pad: None,
    });
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(false);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| BuildError::Invalid(format!("invalid build context tar: {e}")))?;
    for e in entries {
        let mut e =
            e.map_err(|e| BuildError::Invalid(format!("invalid build context tar: {e}")))?;
        e.unpack_in(dir)
            .map_err(|err| BuildError::Invalid(format!("unpacking the build context: {err}")))?;
    }
    let mut ctx = ctx;
    ctx.dockerfile = read_dockerfile(dir, dockerfile)?;
    let ignore = read_in(dir, ".dockerignore").unwrap_or_default();
    let rules = IgnoreRules::parse(&ignore).map_err(|e| BuildError::Invalid(e.to_string()))?;
    if !rules.is_empty() {
        prune(dir, "", &rules)?;
    }
    Ok(ctx)
}

/// Ends a tar stream that stops right after its last entry's data, as the docker CLI's
/// `build -f-` sends it: the missing padding and end-of-archive blocks are supplied as zeros.
/// (A dropped connection is a read error, not an end of stream, so this hides no truncation.)
struct PadAtEof<R> {
    inner: R,
    pos: u64,
    pad: Option<u64>,
}

impl<R: Read> Read for PadAtEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                return Ok(n);
            }
            let partial = self.pos % 512;
            self.pad = Some(if partial == 0 {
                1024
            } else {
                512 - partial + 1024
            });
        }
        let left = self.pad.as_mut().expect("set above");
        let n = (*left).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

fn read_dockerfile(dir: &Path, name: &str) -> Result<String, BuildError> {
    let rel = clean(name);
    let not_found = || BuildError::NotFound(format!("Cannot locate specified Dockerfile: {name}"));
    if rel.is_empty() || name.split('/').any(|s| s == "..") {
        return Err(not_found());
    }
    match read_in(dir, &rel) {
        Some(s) => Ok(s),
        None if crate::fsroot::Root::open(dir)
            .and_then(|r| r.open_file(&rel))
            .is_ok() =>
        {
            Err(BuildError::Invalid(format!(
                "the Dockerfile {name} is not UTF-8 text"
            )))
        }
        None => Err(not_found()),
    }
}

/// A text file of the context, its symlinks followed inside the context only (a Dockerfile
/// linked to a host file must not be read).
fn read_in(dir: &Path, rel: &str) -> Option<String> {
    let mut f = crate::fsroot::Root::open(dir).ok()?.open_file(rel).ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut f, &mut s).ok()?;
    Some(s)
}

/// Deletes what `.dockerignore` excludes; an excluded directory goes only if no exception
/// could bring something inside it back.
fn prune(root: &Path, rel: &str, rules: &IgnoreRules) -> Result<(), BuildError> {
    let dir = root.join(rel);
    for e in fs::read_dir(&dir).map_err(BuildError::io("read", &dir))? {
        let e = e.map_err(BuildError::io("read", &dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = e.path();
        let is_dir = e
            .file_type()
            .map_err(BuildError::io("stat", &path))?
            .is_dir();
        let excluded = rules.excluded(&child);
        if is_dir {
            if excluded && !rules.may_include_below(&child) {
                fs::remove_dir_all(&path).map_err(BuildError::io("remove", &path))?;
            } else {
                prune(root, &child, rules)?;
                if excluded && fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()) {
                    fs::remove_dir(&path).map_err(BuildError::io("remove", &path))?;
                }
            }
        } else if excluded {
            fs::remove_file(&path).map_err(BuildError::io("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testutil::file_tar;

    #[test]
    fn unpacks_plain_and_gzip_and_applies_dockerignore() {
        let tar = file_tar(&[
            ("Dockerfile", b"FROM scratch\n".as_slice()),
            (".dockerignore", b"*.log\nsecret\n!keep.log\n"),
            ("a.log", b"x"),
            ("keep.log", b"k"),
            ("secret/key", b"s"),
            ("src/main.c", b"int"),
        ]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let ctx = unpack(&tar[..], &tmp.path().join("c1"), "Dockerfile").expect("plain");
        assert_eq!(ctx.dockerfile, "FROM scratch\n");
        assert!(!ctx.dir.join("a.log").exists());
        assert!(ctx.dir.join("keep.log").exists());
        assert!(!ctx.dir.join("secret").exists());
        assert!(ctx.dir.join("src/main.c").exists());
        let dir = ctx.dir.clone();
        drop(ctx);
        assert!(!dir.exists(), "the context is removed on drop");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gz");
        let gz = gz.finish().expect("gz");
        let ctx = unpack(&gz[..], &tmp.path().join("c2"), "./Dockerfile").expect("gzip");
        assert!(ctx.dir.join("src/main.c").exists());

        let err = unpack(&tar[..], &tmp.path().join("c3"), "Nope").expect_err("missing");
        assert_eq!(err.to_string(), "Cannot locate specified Dockerfile: Nope");
        assert!(unpack(&b"junk"[..], &tmp.path().join("c4"), "Dockerfile").is_err());

        // The CLI's `-f-` stream: no padding after the last entry, no end blocks.
        let short = &tar[..512 * 3 + 13];
        let ctx = unpack(short, &tmp.path().join("c5"), "Dockerfile").expect("unpadded");
        assert_eq!(ctx.dockerfile, "FROM scratch\n");
    }
}
