//! The content store: immutable blobs under `content/blobs/sha256/<hex>`, named by the sha256
//! of their bytes.
//!
//! ```text
//!  reader ─► HashingReader ─► tmp/images/blob-<rand> ─fsync─► verify digest ─rename─► blobs/sha256/<hex>
//! ```
//! A blob is either absent or complete: it is written to a temporary file, synced, checked
//! against the expected digest while streaming, and only then renamed into place. Image config
//! blobs live here (their digest is the image id).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::image::digest::{Digest, HashingReader};
use crate::image::error::ImageError;

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
    tmp: PathBuf,
    pins: Arc<Mutex<HashMap<Digest, usize>>>,
}

/// Keeps blobs from garbage collection until it drops (see [`ContentStore::pin`]).
pub struct PinGuard {
    pins: Arc<Mutex<HashMap<Digest, usize>>>,
    blobs: Vec<Digest>,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        for b in &self.blobs {
            if let Some(n) = pins.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(b);
                }
            }
        }
    }
}

impl ContentStore {
    /// `content_dir` is `<data-root>/content`; `tmp` must be on the same file system.
    pub fn open(content_dir: &Path, tmp: &Path) -> Result<Self, ImageError> {
        let blobs = content_dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(ImageError::io("create", &blobs))?;
        let ingest = content_dir.join("ingest");
        fs::create_dir_all(&ingest).map_err(ImageError::io("create", &ingest))?;
        fs::create_dir_all(tmp).map_err(ImageError::io("create", tmp))?;
        Ok(ContentStore {
            blobs,
            ingest,
            tmp: tmp.to_owned(),
            pins: Arc::default(),
        })
    }

    /// `content/ingest`: where partial downloads wait to be resumed.
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Protects blobs (those of a pull in progress) from garbage collection until the guard
    /// drops.
    pub fn pin(&self, blobs: &[Digest]) -> PinGuard {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        for b in blobs {
            *pins.entry(b.clone()).or_default() += 1;
        }
        PinGuard {
            pins: self.pins.clone(),
            blobs: blobs.to_vec(),
        }
    }

    pub fn is_pinned(&self, blob: &Digest) -> bool {
        self.pins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(blob)
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Streams `reader` into the store. With `expected`, a different digest is an error and
    /// nothing is stored. Returns the digest, the size, and whether the blob is new.
    pub fn ingest(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64, bool), ImageError> {
        let tmp_path = self
            .tmp
            .join(format!("blob-{:016x}", rand::random::<u64>()));
        let guard = RemoveOnDrop(Some(tmp_path.clone()));
        let mut file = File::create(&tmp_path).map_err(ImageError::io("create", &tmp_path))?;
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, &mut file).map_err(ImageError::archive("reading blob"))?;
        file.sync_all()
            .map_err(ImageError::io("fsync", &tmp_path))?;
        drop(file);
        let (digest, size) = hashing
            .finish()
            .map_err(ImageError::archive("reading blob"))?;
        if let Some(want) = expected {
            if *want != digest {
                return Err(ImageError::DigestMismatch {
                    what: "blob".into(),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let dest = self.path(&digest);
        if dest.is_file() {
            return Ok((digest, size, false));
        }
        fs::rename(&tmp_path, &dest).map_err(ImageError::io("rename into", &dest))?;
        guard.disarm();
        sync_dir(&self.blobs)?;
        Ok((digest, size, true))
    }

    /// Stores a small blob held in memory; returns its digest and whether it is new.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<(Digest, bool), ImageError> {
        let digest = Digest::of_bytes(bytes);
        if self.exists(&digest) {
            return Ok((digest, false));
        }
        let (d, _, new) = self.ingest(bytes, Some(&digest))?;
        Ok((d, new))
    }

    /// Reads a whole blob and checks its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(digest.to_string()))
            }
            Err(e) => return Err(ImageError::io("read", &path)(e)),
        };
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(ImageError::DigestMismatch {
                what: path.display().to_string(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(ImageError::io("read", &self.blobs))? {
            let e = e.map_err(ImageError::io("read", &self.blobs))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Moves a verified, synced file (on the same file system) into the store as `digest`.
    pub fn adopt(&self, file: &Path, digest: &Digest) -> Result<(), ImageError> {
        let dest = self.path(digest);
        fs::rename(file, &dest).map_err(ImageError::io("rename into", &dest))?;
        sync_dir(&self.blobs)
    }

    /// Removes a blob; an absent blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<(), ImageError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("remove", &path)(e)),
        }
    }
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io("fsync", dir))
}

/// Removes a temporary file or directory unless disarmed.
pub struct RemoveOnDrop(pub Option<PathBuf>);

impl RemoveOnDrop {
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let res = match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&p),
                Ok(_) => fs::remove_file(&p),
                Err(_) => Ok(()),
            };
            if let Err(e) = res {
                tracing::warn!(path = %p.display(), error = %e, "removing temporary image data");
            }
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let tmp = path.with_extension(format!("tmp-{:08x}", rand::random::<u32>()));
    let guard = RemoveOnDrop(Some(tmp.clone()));
    let mut f = File::create(&tmp).map_err(ImageError::io("create", &tmp))?;
    f.write_all(bytes).map_err(ImageError::io("write", &tmp))?;
    f.sync_all().map_err(ImageError::io("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(ImageError::io("rename into", path))?;
    guard.disarm();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_verifies_and_leaves_nothing_on_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cs =
            ContentStore::open(&dir.path().join("content"), &dir.path().join("tmp")).expect("open");
        let (d, new) = cs.write_bytes(b"{}").expect("write");
        assert!(new);
        assert_eq!(cs.read(&d).expect("read"), b"{}");
        assert!(!cs.write_bytes(b"{}").expect("again").1);

        let wrong = Digest::of_bytes(b"other");
        let err = cs
            .ingest(&b"payload"[..], Some(&wrong))
            .expect_err("mismatch");
        assert!(matches!(err, ImageError::DigestMismatch { .. }));
        assert!(!cs.exists(&Digest::of_bytes(b"payload")));
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").count(),
            0,
            "temp file left behind"
        );

        cs.delete(&d).expect("delete");
        assert!(!cs.exists(&d));
        assert!(matches!(cs.read(&d), Err(ImageError::NotFound(_))));
    }
}
