//! The layer store: unpacked layers under `overlay/<chain id hex>/`, named by chain id so a
//! layer shared by several images exists once.
//!
//! ```text
//!  overlay/<chain>/diff/           the layer's files, in overlayfs form (lowerdir)
//!  overlay/<chain>/tar-split.gz    recipe to stream the original tar again (save)
//!  overlay/<chain>/shadow/<n>      file contents the layer itself replaced (rare)
//!  overlay/<chain>/layer.json      LayerMeta (with a format version, `format.rs`); its
//!                                  presence marks a complete layer
//! ```
//! A layer is built in `tmp/images/layer-*` and renamed into place whole, so a crash never
//! leaves a half layer that looks registered. Removal renames the directory away first, for
//! the same reason. Which layers are in use is decided by the image records (`service.rs`);
//! the store itself keeps no reference counts.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::digest::{chain_id, Digest};
use crate::image::error::ImageError;
use crate::image::store::content::{sync_dir, write_atomic, RemoveOnDrop};
use crate::image::store::format::{decode, versioned};
use crate::image::store::tarsplit::Reassembler;
use crate::image::store::unpack::{unpack_layer, Unpacked};

pub const META_FILE: &str = "layer.json";

/// What `layer.json` records about a layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerMeta {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in the diff directory (what Docker calls the layer's size).
    pub size: u64,
    /// Size of the uncompressed layer tar.
    pub tar_size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shadows: BTreeMap<u64, String>,
}

#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl LayerStore {
    /// `root` is `<data-root>/overlay`; `tmp` must be on the same file system.
    pub fn open(root: &Path, tmp: &Path) -> Result<Self, ImageError> {
        fs::create_dir_all(root).map_err(ImageError::io("create", root))?;
        fs::create_dir_all(tmp).map_err(ImageError::io("create", tmp))?;
        Ok(LayerStore {
            root: root.to_owned(),
            tmp: tmp.to_owned(),
        })
    }

    pub fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("diff")
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.dir(chain).join(META_FILE).is_file()
    }

    pub fn get(&self, chain: &Digest) -> Result<Option<LayerMeta>, ImageError> {
        let path = self.dir(chain).join(META_FILE);
        let what = path.display().to_string();
        let corrupt = |source| ImageError::Corrupt {
            what: what.clone(),
            source,
        };
        match fs::read(&path) {
            Ok(b) => {
                let stored = serde_json::from_slice(&b).map_err(corrupt)?;
                decode(&what, stored, corrupt).map(Some)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("read", &path)(e)),
        }
    }

    pub fn must_get(&self, chain: &Digest) -> Result<LayerMeta, ImageError> {
        self.get(chain)?.ok_or_else(|| {
            ImageError::Internal(format!(
                "layer {chain} is missing from {}",
                self.root.display()
            ))
        })
    }

    /// Unpacks a layer tar (any supported compression) into a temporary directory.
    pub fn unpack(&self, input: impl Read) -> Result<Unpacked, ImageError> {
        unpack_layer(input, &self.tmp)
    }

    /// Registers an unpacked layer on top of `parent`. If the chain already exists the new copy
    /// is discarded and the existing one returned. Returns the layer and whether it is new.
    pub fn commit(
        &self,
        mut un: Unpacked,
        parent: Option<&Digest>,
    ) -> Result<(LayerMeta, bool), ImageError> {
        let chain = chain_id(parent, &un.diff_id);
        if let Some(existing) = self.get(&chain)? {
            return Ok((existing, false));
        }
        let meta = LayerMeta {
            chain_id: chain.clone(),
            diff_id: un.diff_id.clone(),
            parent: parent.cloned(),
            size: dir_size(&un.dir.join("diff"))?,
            tar_size: un.tar_size,
            shadows: un.shadows.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&versioned(&meta))
            .map_err(|e| ImageError::Internal(e.to_string()))?;
        write_atomic(&un.dir.join(META_FILE), &bytes)?;
        let dest = self.dir(&chain);
        match fs::rename(&un.dir, &dest) {
            Ok(()) => {
                un.disarm();
                sync_dir(&self.root)?;
                Ok((meta, true))
            }
            Err(e) if self.exists(&chain) => {
                tracing::debug!(layer = %chain, error = %e, "layer appeared concurrently; reusing it");
                Ok((self.must_get(&chain)?, false))
            }
            Err(e) => Err(ImageError::io("rename into", &dest)(e)),
        }
    }

    /// Removes a layer: renamed away first (atomic), then deleted.
    pub fn remove(&self, chain: &Digest) -> Result<(), ImageError> {
        let dir = self.dir(chain);
        let away = self.tmp.join(format!(
            "rm-{}-{:08x}",
            chain.short(),
            rand::random::<u32>()
        ));
        match fs::rename(&dir, &away) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ImageError::io("rename", &dir)(e)),
        }
        drop(RemoveOnDrop(Some(away)));
        Ok(())
    }

    /// Every registered layer's chain id.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(ImageError::io("read", &self.root))? {
            let e = e.map_err(ImageError::io("read", &self.root))?;
            let name = e.file_name();
            if let Ok(d) = Digest::from_hex(&name.to_string_lossy()) {
                if self.exists(&d) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Removes registered layers not in `keep` (after a crash between unpacking and recording).
    pub fn remove_unreferenced(&self, keep: &HashSet<Digest>) -> Result<Vec<Digest>, ImageError> {
        let mut removed = Vec::new();
        for chain in self.list()? {
            if !keep.contains(&chain) {
                self.remove(&chain)?;
                removed.push(chain);
            }
        }
        Ok(removed)
    }

    /// Streams the layer's original uncompressed tar.
    pub fn reassemble(&self, meta: &LayerMeta) -> Result<Reassembler, ImageError> {
        let dir = self.dir(&meta.chain_id);
        Reassembler::open(&dir, meta.shadows.clone())
            .map_err(ImageError::io("open tar-split of", &dir))
    }
}

/// Docker's layer size: the sizes of everything but directories, hard links counted once.
pub fn dir_size(root: &Path) -> Result<u64, ImageError> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).map_err(ImageError::io("read", &dir))? {
            let e = e.map_err(ImageError::io("read", &dir))?;
            let m = e.metadata().map_err(ImageError::io("stat", e.path()))?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testutil::file_tar;

    #[test]
    fn commit_reuses_an_existing_chain_and_remove_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("tmp");
        let store = LayerStore::open(&dir.path().join("overlay"), &tmp).expect("open");
        let tar = file_tar(&[("a", b"hello"), ("b", b"world!")]);

        let (meta, new) = store
            .commit(store.unpack(&tar[..]).expect("unpack"), None)
            .expect("commit");
        assert!(new);
        assert_eq!(meta.diff_id, Digest::of_bytes(&tar));
        assert_eq!(meta.chain_id, meta.diff_id);
        assert_eq!(meta.size, 11);
        assert_eq!(
            fs::read(store.diff_dir(&meta.chain_id).join("b")).expect("read"),
            b"world!"
        );

        let (again, new) = store
            .commit(store.unpack(&tar[..]).expect("unpack"), None)
            .expect("commit");
        assert!(!new);
        assert_eq!(again, meta);
        assert_eq!(
            fs::read_dir(&tmp).expect("tmp").count(),
            0,
            "the duplicate was not cleaned up"
        );

        let (upper, _) = store
            .commit(
                store.unpack(&tar[..]).expect("unpack"),
                Some(&meta.chain_id),
            )
            .expect("commit");
        assert_eq!(upper.parent.as_ref(), Some(&meta.chain_id));
        assert_ne!(upper.chain_id, meta.chain_id);
        assert_eq!(store.list().expect("list").len(), 2);

        let mut out = Vec::new();
        store
            .reassemble(&upper)
            .expect("open")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, tar);

        let keep: HashSet<Digest> = [meta.chain_id.clone()].into();
        assert_eq!(
            store.remove_unreferenced(&keep).expect("gc"),
            vec![upper.chain_id.clone()]
        );
        assert!(!store.dir(&upper.chain_id).exists());
        assert!(store.exists(&meta.chain_id));
    }
}
