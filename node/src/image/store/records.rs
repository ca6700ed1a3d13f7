//! Image records in the metadata store, and the batches that change them atomically.
//!
//! ```text
//!  images      "sha256:<id>"                        → ImageRecord
//!  image_refs  "docker.io/library/busybox:latest"   → "sha256:<id>"
//! ```
//! Every change that touches several rows (tag moves, untag, delete, a whole load) is one
//! [`RecordBatch`], committed as one redb transaction. `repo_tags` and `repo_digests` in a
//! record mirror `image_refs` and are kept sorted by full reference, as Docker lists them.
//! Image records carry a format version (`format.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::store::format::{decode_row, versioned};
use crate::store::{BatchOp, MetaStore, Table};

pub const IMAGES: Table = TableDefinition::new("images");
pub const IMAGE_REFS: Table = TableDefinition::new("image_refs");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// Chain ids of the layers, lowest first.
    pub layers: Vec<String>,
    /// Full tagged references (`docker.io/library/busybox:latest`), sorted.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// Full digested references, sorted.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Sum of the layers' sizes.
    pub size: u64,
    /// The config's `created`, in unix seconds (for sorting and filters).
    #[serde(default)]
    pub created: i64,
    /// RFC 3339 time of the last tag, if ever tagged.
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// The image this one was built on (commit, build steps); intermediate build images are
    /// hidden from `docker images` unless `-a`, as Docker does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Read access to the records.
#[derive(Clone)]
pub struct Records {
    meta: Arc<MetaStore>,
}

impl Records {
    pub fn new(meta: Arc<MetaStore>) -> Self {
        Records { meta }
    }

    pub fn meta(&self) -> &Arc<MetaStore> {
        &self.meta
    }

    pub fn get(&self, id: &str) -> Result<Option<ImageRecord>, ImageError> {
        self.meta
            .get::<Value>(IMAGES, id)?
            .map(|stored| decode_row(id, stored))
            .transpose()
    }

    pub fn all(&self) -> Result<Vec<ImageRecord>, ImageError> {
        self.meta
            .list::<Value>(IMAGES)?
            .into_iter()
            .map(|(key, stored)| decode_row(&key, stored))
            .collect()
    }

    /// The image a full reference points at.
    pub fn target(&self, r: &Reference) -> Result<Option<String>, ImageError> {
        Ok(self.meta.get(IMAGE_REFS, &r.to_string())?)
    }

    pub fn batch(&self) -> RecordBatch<'_> {
        RecordBatch {
            records: self,
            images: BTreeMap::new(),
            refs: BTreeMap::new(),
        }
    }
}

/// Pending changes; nothing is visible until [`commit`](RecordBatch::commit).
pub struct RecordBatch<'a> {
    records: &'a Records,
    /// id → new state (`None` = delete).
    images: BTreeMap<String, Option<ImageRecord>>,
    /// full ref → new target (`None` = delete).
    refs: BTreeMap<String, Option<String>>,
}

impl RecordBatch<'_> {
    /// The record as this batch would leave it.
    pub fn image(&mut self, id: &str) -> Result<Option<&mut ImageRecord>, ImageError> {
        if !self.images.contains_key(id) {
            let current = self.records.get(id)?;
            self.images.insert(id.to_owned(), current);
        }
        Ok(self.images.get_mut(id).and_then(|r| r.as_mut()))
    }

    fn target(&self, r: &str) -> Result<Option<String>, ImageError> {
        match self.refs.get(r) {
            Some(t) => Ok(t.clone()),
            None => Ok(self.records.meta.get(IMAGE_REFS, r)?),
        }
    }

    /// Adds or replaces an image record, keeping the references it already had.
    pub fn put_image(&mut self, mut rec: ImageRecord) -> Result<(), ImageError> {
        if let Some(existing) = self.image(&rec.id)? {
            rec.repo_tags = existing.repo_tags.clone();
            rec.repo_digests = existing.repo_digests.clone();
            rec.last_tag_time = existing.last_tag_time.clone();
        }
        self.images.insert(rec.id.clone(), Some(rec));
        Ok(())
    }

    pub fn delete_image(&mut self, id: &str) {
        self.images.insert(id.to_owned(), None);
    }

    /// Points `r` at image `id`, moving it off any other image. Returns the image it was
    /// taken from, if any.
    pub fn set_ref(
        &mut self,
        r: &Reference,
        id: &str,
        now: &str,
    ) -> Result<Option<String>, ImageError> {
        let key = r.to_string();
        let old = self.target(&key)?;
        if let Some(old_id) = old.as_deref().filter(|o| *o != id) {
            if let Some(rec) = self.image(old_id)? {
                remove_from(rec, &key);
            }
        }
        let rec = self
            .image(id)?
            .ok_or_else(|| ImageError::Internal(format!("tagging unknown image {id}")))?;
        let list = if r.digest().is_some() {
            &mut rec.repo_digests
        } else {
            &mut rec.repo_tags
        };
        if !list.contains(&key) {
            list.push(key.clone());
            list.sort();
        }
        if r.digest().is_none() {
            rec.last_tag_time = Some(now.to_owned());
        }
        self.refs.insert(key, Some(id.to_owned()));
        Ok(old.filter(|o| o != id))
    }

    /// Removes a reference from the store and from its image's record.
    pub fn remove_ref(&mut self, full: &str) -> Result<(), ImageError> {
        if let Some(id) = self.target(full)? {
            if let Some(rec) = self.image(&id)? {
                remove_from(rec, full);
            }
        }
        self.refs.insert(full.to_owned(), None);
        Ok(())
    }

    /// Writes everything in one transaction.
    pub fn commit(self) -> Result<(), ImageError> {
        let mut ops = Vec::new();
        for (id, rec) in self.images {
            ops.push(match rec {
                Some(r) => BatchOp::put(IMAGES, &id, &versioned(&r))?,
                None => BatchOp::Delete(IMAGES, id),
            });
        }
        for (r, target) in self.refs {
            ops.push(match target {
                Some(t) => BatchOp::put(IMAGE_REFS, &r, &t)?,
                None => BatchOp::Delete(IMAGE_REFS, r),
            });
        }
        self.records.meta.batch(ops)?;
        Ok(())
    }
}

fn remove_from(rec: &mut ImageRecord, full: &str) {
    rec.repo_tags.retain(|t| t != full);
    rec.repo_digests.retain(|t| t != full);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            layers: vec![],
            repo_tags: vec![],
            repo_digests: vec![],
            size: 1,
            created: 0,
            last_tag_time: None,
            parent: None,
        }
    }

    #[test]
    fn records_written_before_versions_read_back_and_are_rewritten_with_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(MetaStore::open(&dir.path().join("m.redb")).expect("open"));
        let records = Records::new(meta.clone());
        let mut old = rec("sha256:a");
        old.repo_tags = vec!["docker.io/library/busybox:latest".into()];
        old.last_tag_time = Some("t1".into());
        old.parent = Some("sha256:p".into());
        // What berthd wrote before versions: the record's own fields.
        meta.put(IMAGES, "sha256:a", &old).expect("put v0");

        assert_eq!(records.get("sha256:a").expect("get"), Some(old.clone()));
        assert_eq!(records.all().expect("all"), vec![old.clone()]);

        let mut b = records.batch();
        b.put_image(old.clone()).expect("put");
        b.commit().expect("commit");
        let stored: Value = meta.get(IMAGES, "sha256:a").expect("raw").expect("row");
        assert_eq!(
            stored["version"],
            crate::image::store::format::METADATA_VERSION
        );
        assert_eq!(records.get("sha256:a").expect("get"), Some(old));
    }

    #[test]
    fn tag_moves_between_images_in_one_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(MetaStore::open(&dir.path().join("m.redb")).expect("open"));
        let records = Records::new(meta);
        let bb = Reference::parse_tagged("busybox").expect("ref");
        let tiny = Reference::parse_tagged("tiny").expect("ref");

        let mut b = records.batch();
        b.put_image(rec("sha256:a")).expect("put");
        b.put_image(rec("sha256:b")).expect("put");
        assert_eq!(b.set_ref(&bb, "sha256:a", "t1").expect("tag"), None);
        b.set_ref(&tiny, "sha256:a", "t1").expect("tag");
        b.commit().expect("commit");
        let a = records.get("sha256:a").expect("get").expect("a");
        assert_eq!(a.repo_tags, vec![bb.to_string(), tiny.to_string()]);
        assert_eq!(a.last_tag_time.as_deref(), Some("t1"));

        let mut b = records.batch();
        assert_eq!(
            b.set_ref(&bb, "sha256:b", "t2").expect("tag").as_deref(),
            Some("sha256:a")
        );
        b.commit().expect("commit");
        assert_eq!(
            records.get("sha256:a").expect("get").expect("a").repo_tags,
            vec![tiny.to_string()]
        );
        assert_eq!(
            records.get("sha256:b").expect("get").expect("b").repo_tags,
            vec![bb.to_string()]
        );
        assert_eq!(
            records.target(&bb).expect("target").as_deref(),
            Some("sha256:b")
        );

        let mut b = records.batch();
        b.remove_ref(&tiny.to_string()).expect("untag");
        b.delete_image("sha256:a");
        b.commit().expect("commit");
        assert_eq!(records.get("sha256:a").expect("get"), None);
        assert_eq!(records.target(&tiny).expect("target"), None);
        assert_eq!(records.all().expect("all").len(), 1);
    }
}
