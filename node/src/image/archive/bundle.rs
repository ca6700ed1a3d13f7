//! The outer tar of `docker load`, spread into a temporary directory so its parts can be read
//! in any order (a docker-archive names its layers in `manifest.json`, which comes last).
//!
//! Only regular files and directories are written; symlinks and hard links (newer `docker save`
//! makes `<id>/layer.tar` a link into `blobs/`) are kept as a table and resolved inside the
//! bundle when a file is opened, so nothing in the archive can point outside it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::image::error::ImageError;
use crate::image::store::content::RemoveOnDrop;
use crate::image::store::unpack::clean_entry_path;

const MAX_JSON: u64 = 64 << 20;

/// Counts bytes and trailing zero bytes, to tell a finished tar from a truncated one.
struct EndCheck<R> {
    inner: R,
    pos: u64,
    zero_tail: u64,
}

impl<R: Read> Read for EndCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match buf[..n].iter().rposition(|b| *b != 0) {
            None => self.zero_tail += n as u64,
            Some(i) => self.zero_tail = (n - i - 1) as u64,
        }
        self.pos += n as u64;
        Ok(n)
    }
}

pub struct Bundle {
    dir: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
    _guard: RemoveOnDrop,
}

impl Bundle {
    /// Reads the whole archive into `dir` (created, and removed when the bundle is dropped).
    pub fn extract(input: impl Read, dir: PathBuf) -> Result<Self, ImageError> {
        let guard = RemoveOnDrop(Some(dir.clone()));
        fs::create_dir_all(&dir).map_err(ImageError::io("create", &dir))?;
        let mut links = HashMap::new();
        let mut archive = tar::Archive::new(EndCheck {
            inner: input,
            pos: 0,
            zero_tail: 0,
        });
        let bad = || ImageError::archive("reading image archive");
        let mut last_end = 0u64;
        for entry in archive.entries().map_err(bad())? {
            let mut entry = entry.map_err(bad())?;
            last_end = (entry.raw_file_position() + entry.size()).div_ceil(512) * 512;
            let raw = entry.path().map_err(bad())?.into_owned();
            let Some(rel) = clean_entry_path(&raw)? else {
                continue;
            };
            let full = dir.join(&rel);
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    fs::create_dir_all(&full).map_err(ImageError::io("create", &full))?
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(parent) = full.parent() {
                        fs::create_dir_all(parent).map_err(ImageError::io("create", parent))?;
                    }
                    let _ = fs::remove_file(&full);
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&full)
                        .map_err(ImageError::io("create", &full))?;
                    let size = entry.size();
                    copy_exact(&mut entry, &mut f, size, &rel, &full)?;
                    links.remove(&rel);
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(bad())?
                        .unwrap_or_default()
                        .into_owned();
                    let base = if target.is_absolute() {
                        PathBuf::new()
                    } else {
                        rel.parent().unwrap_or(Path::new("")).to_owned()
                    };
                    let resolved = clean_entry_path(&base.join(&target))?.unwrap_or_default();
                    links.insert(rel, resolved);
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(bad())?
                        .unwrap_or_default()
                        .into_owned();
                    links.insert(rel, clean_entry_path(&target)?.unwrap_or_default());
                }
                _ => {}
            }
        }
        let mut counted = archive.into_inner();
        if counted.pos == 0 || counted.pos < last_end + 512 || counted.zero_tail < 512 {
            return Err(ImageError::BadArchive(
                "unexpected end of image archive (truncated?)".into(),
            ));
        }
        io::copy(&mut counted, &mut io::sink()).map_err(bad())?;
        Ok(Bundle {
            dir,
            links,
            _guard: guard,
        })
    }

    /// The bundle path a name refers to, links followed.
    fn resolve(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut rel = clean_entry_path(Path::new(name))?.unwrap_or_default();
        for _ in 0..16 {
            match self.links.get(&rel) {
                Some(t) => rel = t.clone(),
                None => return Ok(rel),
            }
        }
        Err(ImageError::BadArchive(format!(
            "{name}: too many levels of links"
        )))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.resolve(name)
            .is_ok_and(|rel| self.dir.join(rel).is_file())
    }

    /// Opens a file of the archive; a missing file is a bad archive.
    pub fn open(&self, name: &str) -> Result<File, ImageError> {
        let rel = self.resolve(name)?;
        let full = self.dir.join(&rel);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => File::open(&full).map_err(ImageError::io("open", &full)),
            _ => Err(ImageError::BadArchive(format!(
                "{name} is missing from the archive"
            ))),
        }
    }

    /// Reads a (small) JSON document of the archive.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        self.open(name)?
            .take(MAX_JSON)
            .read_to_end(&mut out)
            .map_err(ImageError::io("read", self.dir.join(name)))?;
        Ok(out)
    }
}

fn copy_exact(
    from: &mut impl Read,
    to: &mut File,
    size: u64,
    name: &Path,
    path: &Path,
) -> Result<(), ImageError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = from
            .read(&mut buf[..want])
            .map_err(ImageError::archive("reading image archive"))?;
        if n == 0 {
            return Err(ImageError::BadArchive(format!(
                "unexpected end of image archive in {}",
                name.display()
            )));
        }
        to.write_all(&buf[..n])
            .map_err(ImageError::io("write", path))?;
        left -= n as u64;
    }
    Ok(())
}
