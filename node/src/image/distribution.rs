//! What pulls and pushes share: the registry client, the download and upload limits, one lock
//! per blob being fetched, the record of which compressed blob holds which layer, and the
//! garbage collection of blobs nothing refers to.
//!
//! ```text
//!  content/blobs/sha256/<hex>   compressed layer blobs and image configs
//!  content/ingest/<hex>         a layer blob being downloaded (kept across restarts: resumed)
//!  layer_blobs  "sha256:<blob>" → BlobRecord { diff_id, media_type, size, sources }
//! ```
//! Partial downloads are kept for resuming, and dropped after a week unused.
//! A layer blob is kept while a layer with its diff id exists (push sends it again unchanged,
//! so digests survive a pull/push round trip); an image config while its image exists. Blobs
//! of a pull in progress are protected by an active count until the pull has registered.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::registry::{Registries, RegistryConfig};
use super::service::ImageService;
use crate::config::DaemonConfig;
use crate::store::Table;

pub const LAYER_BLOBS: Table = TableDefinition::new("layer_blobs");

const STALE_INGEST: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A compressed layer blob in the content store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlobRecord {
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
    /// `host/repository` names the blob is known to exist in (for cross-repository mounts).
    #[serde(default)]
    pub sources: Vec<String>,
}

pub struct Distribution {
    pub registries: Registries,
    pub max_downloads: usize,
    pub max_uploads: usize,
    pub ingest: PathBuf,
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    active: Mutex<HashMap<Digest, usize>>,
}

impl Distribution {
    pub fn new(cfg: &DaemonConfig) -> Result<Self, ImageError> {
        let ingest = cfg.content_dir().join("ingest");
        fs::create_dir_all(&ingest).map_err(ImageError::io("create", &ingest))?;
        Ok(Distribution {
            registries: Registries::new(RegistryConfig {
                insecure: cfg.insecure_registries.clone(),
                certs_dir: cfg.registry_certs_dir.clone(),
            }),
            max_downloads: cfg.max_concurrent_downloads.max(1),
            max_uploads: cfg.max_concurrent_uploads.max(1),
            ingest,
            locks: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        })
    }

    /// The lock a fetch of `blob` holds, so two pulls never download the same blob at once.
    pub fn blob_lock(&self, blob: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(blob.clone()).or_default().clone()
    }

    /// Protects blobs from garbage collection until the guard drops.
    pub fn activate(self: &Arc<Self>, blobs: &[Digest]) -> ActiveGuard {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        for b in blobs {
            *active.entry(b.clone()).or_default() += 1;
        }
        ActiveGuard {
            dist: self.clone(),
            blobs: blobs.to_vec(),
        }
    }

    fn is_active(&self, blob: &Digest) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(blob)
    }
}

pub struct ActiveGuard {
    dist: Arc<Distribution>,
    blobs: Vec<Digest>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut active = self.dist.active.lock().unwrap_or_else(|p| p.into_inner());
        for b in &self.blobs {
            if let Some(n) = active.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    active.remove(b);
                }
            }
        }
    }
}

impl ImageService {
    /// Records (or adds a source to) a compressed layer blob.
    pub(crate) fn record_blob(&self, blob: &Digest, rec: BlobRecord) -> Result<(), ImageError> {
        let meta = self.inner.records.meta();
        let key = blob.to_string();
        let mut rec = rec;
        if let Some(old) = meta.get::<BlobRecord>(LAYER_BLOBS, &key)? {
            for s in old.sources {
                if !rec.sources.contains(&s) {
                    rec.sources.push(s);
                }
            }
        }
        meta.put(LAYER_BLOBS, &key, &rec)?;
        Ok(())
    }

    /// A stored compressed blob holding the layer with diff id `diff`.
    pub(crate) fn blob_for_diff(
        &self,
        diff: &Digest,
    ) -> Result<Option<(Digest, BlobRecord)>, ImageError> {
        let rows = self.inner.records.meta().list::<BlobRecord>(LAYER_BLOBS)?;
        for (k, rec) in rows {
            if rec.diff_id != *diff {
                continue;
            }
            if let Ok(d) = Digest::parse(&k) {
                if self.inner.content.exists(&d) {
                    return Ok(Some((d, rec)));
                }
            }
        }
        Ok(None)
    }

    /// Removes blobs no image needs: configs of deleted images, layer blobs whose layer is
    /// gone. Returns how many bytes were freed.
    pub(crate) fn gc_blobs(&self) -> Result<u64, ImageError> {
        let _guard = self.lock();
        let inner = &self.inner;
        let mut keep: HashSet<Digest> = HashSet::new();
        let mut live_diffs: HashSet<Digest> = HashSet::new();
        for rec in inner.records.all()? {
            if let Ok(id) = Digest::parse(&rec.id) {
                keep.insert(id);
            }
            for c in &rec.layers {
                if let Some(meta) = inner.layers.get(&Digest::parse(c)?)? {
                    live_diffs.insert(meta.diff_id);
                }
            }
        }
        let meta = inner.records.meta();
        for (k, rec) in meta.list::<BlobRecord>(LAYER_BLOBS)? {
            let Ok(d) = Digest::parse(&k) else { continue };
            if live_diffs.contains(&rec.diff_id) && inner.content.exists(&d) {
                keep.insert(d);
            } else if !self.inner.dist.is_active(&d) {
                meta.delete(LAYER_BLOBS, &k)?;
            }
        }
        let mut freed = 0;
        // Partial downloads nobody resumed for a week.
        if let Ok(rd) = fs::read_dir(&self.inner.dist.ingest) {
            for e in rd.flatten() {
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_INGEST);
                let active = Digest::from_hex(&e.file_name().to_string_lossy())
                    .is_ok_and(|d| self.inner.dist.is_active(&d));
                if stale && !active {
                    freed += e.metadata().map_or(0, |m| m.len());
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        for d in inner.content.list()? {
            if keep.contains(&d) || self.inner.dist.is_active(&d) {
                continue;
            }
            let size = fs::metadata(inner.content.path(&d)).map_or(0, |m| m.len());
            inner.content.delete(&d)?;
            tracing::debug!(blob = %d, "removed an unreferenced blob");
            freed += size;
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::import::ImportPlan;
    use crate::image::testutil::{file_tar, service};
    use berth_api::backend::ImportOptions;

    #[test]
    fn gc_keeps_configs_and_blobs_of_live_layers_only() {
        let t = service();
        let svc = &t.svc;
        let opts = ImportOptions {
            repo: Some("gc:1".into()),
            ..Default::default()
        };
        let tar = file_tar(&[("f", b"data".as_slice())]);
        let id = svc
            .import_image(ImportPlan::new(&opts).expect("plan"), &mut &tar[..])
            .expect("import");
        let diff = Digest::of_bytes(&tar);
        let content = &svc.inner.content;
        let (junk, _) = content.write_bytes(b"junk").expect("junk");
        let (layer_blob, _) = content.write_bytes(b"compressed layer").expect("blob");
        let rec = BlobRecord {
            diff_id: diff.clone(),
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            size: 16,
            sources: vec!["r/a".into()],
        };
        svc.record_blob(&layer_blob, rec.clone()).expect("record");
        svc.record_blob(
            &layer_blob,
            BlobRecord {
                sources: vec!["r/b".into()],
                ..rec
            },
        )
        .expect("record again");
        let (pulling, _) = content.write_bytes(b"being pulled").expect("active");
        let guard = svc.inner.dist.activate(std::slice::from_ref(&pulling));

        svc.gc_blobs().expect("gc");
        assert!(!content.exists(&junk), "an unreferenced blob survived");
        assert!(
            content.exists(&Digest::parse(&id).expect("id")),
            "config removed"
        );
        assert!(
            content.exists(&pulling),
            "a blob of a running pull was removed"
        );
        let (found, r) = svc
            .blob_for_diff(&diff)
            .expect("lookup")
            .expect("layer blob");
        assert_eq!(found, layer_blob);
        assert_eq!(r.sources, vec!["r/b".to_owned(), "r/a".to_owned()]);

        drop(guard);
        svc.remove_image("gc:1", false).expect("rmi");
        svc.gc_blobs().expect("gc");
        assert!(
            !content.exists(&layer_blob),
            "the layer's blob outlived the layer"
        );
        assert!(!content.exists(&pulling));
        assert!(svc.blob_for_diff(&diff).expect("lookup").is_none());
        assert!(content.list().expect("list").is_empty());
    }
}
