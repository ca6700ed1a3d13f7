//! Which compressed blob holds which layer (`layer_blobs`), and the garbage collection of
//! blobs nothing refers to.
//!
//! ```text
//!  layer_blobs  "sha256:<blob>" → BlobRecord { diff_id, media_type, size, sources }
//! ```
//! Blob records carry a format version (`format.rs`).
//! A layer blob is kept while a layer with its diff id exists (push sends it again unchanged,
//! so digests survive a pull/push round trip); an image config while its image exists. Blobs
//! pinned in the content store (those of a pull in progress) are kept until unpinned, and
//! partial downloads in `content/ingest` are dropped after a week unused.

use std::collections::HashSet;
use std::fs;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::service::ImageService;
use crate::image::store::format::{decode_row, versioned};
use crate::store::{MetaStore, Table};

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

impl ImageService {
    /// Records (or adds a source to) a compressed layer blob.
    pub(crate) fn record_blob(&self, blob: &Digest, rec: BlobRecord) -> Result<(), ImageError> {
        let meta = self.inner.records.meta();
        let key = blob.to_string();
        let mut rec = rec;
        if let Some(old) = get_blob(meta, &key)? {
            for s in old.sources {
                if !rec.sources.contains(&s) {
                    rec.sources.push(s);
                }
            }
        }
        meta.put(LAYER_BLOBS, &key, &versioned(&rec))?;
        Ok(())
    }

    /// A stored compressed blob holding the layer with diff id `diff`.
    pub(crate) fn blob_for_diff(
        &self,
        diff: &Digest,
    ) -> Result<Option<(Digest, BlobRecord)>, ImageError> {
        let rows = list_blobs(self.inner.records.meta())?;
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
        for (k, rec) in list_blobs(meta)? {
            let Ok(d) = Digest::parse(&k) else { continue };
            if live_diffs.contains(&rec.diff_id) && inner.content.exists(&d) {
                keep.insert(d);
            } else if !inner.content.is_pinned(&d) {
                meta.delete(LAYER_BLOBS, &k)?;
            }
        }
        let mut freed = 0;
        // Partial downloads nobody resumed for a week.
        if let Ok(rd) = fs::read_dir(inner.content.ingest_dir()) {
            for e in rd.flatten() {
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_INGEST);
                let active = Digest::from_hex(&e.file_name().to_string_lossy())
                    .is_ok_and(|d| inner.content.is_pinned(&d));
                if stale && !active {
                    freed += e.metadata().map_or(0, |m| m.len());
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        for d in inner.content.list()? {
            if keep.contains(&d) || inner.content.is_pinned(&d) {
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

/// The record of blob `key`, if any.
fn get_blob(meta: &MetaStore, key: &str) -> Result<Option<BlobRecord>, ImageError> {
    meta.get::<Value>(LAYER_BLOBS, key)?
        .map(|stored| decode_row(key, stored))
        .transpose()
}

/// Every blob record, by blob digest.
fn list_blobs(meta: &MetaStore) -> Result<Vec<(String, BlobRecord)>, ImageError> {
    meta.list::<Value>(LAYER_BLOBS)?
        .into_iter()
        .map(|(key, stored)| Ok((key.clone(), decode_row(&key, stored)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::archive::import::ImportPlan;
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
        let guard = svc.inner.content.pin(std::slice::from_ref(&pulling));

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
