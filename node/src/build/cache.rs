//! The build cache: which image a step produced on top of which parent.
//!
//! ```text
//!  build_cache  sha256(parent id ␊ step key) → CacheEntry { image, created }
//! ```
//! The step key is the instruction as it will run: the expanded command and the build
//! arguments in effect for RUN, the checksums of the source files (contents, modes, link
//! targets — never mtimes) for COPY and ADD, the resulting config change for the rest. The
//! table lives in metadata.redb, so the cache survives daemon restarts. An entry whose image
//! has since been removed is ignored.
//!
//! `--cache-from` images change what counts as a hit, as in Docker's classic builder: a
//! cached image is only taken when it is (the start of) one of those images, and a step
//! missing here is taken from such an image when its chain so far matches the image's first
//! history entries and layers and the image's next history entry was made by the same
//! instruction (`created_by`). The image of that step is then restored from the image's
//! layer and history entry — how a CI job seeds its cache from a pulled image.

use std::sync::Arc;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{BuildError, Builder};
use crate::image::ImageChain;
use crate::store::{BatchOp, MetaStore, Table};

const BUILD_CACHE: Table = TableDefinition::new("build_cache");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    image: String,
    created: i64,
}

#[derive(Clone)]
pub struct BuildCache {
    meta: Arc<MetaStore>,
}

/// The cache key of a step on top of `parent` (`None` = scratch).
pub fn key(parent: Option<&str>, step: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.unwrap_or("scratch").as_bytes());
    h.update(b"\n");
    h.update(step.as_bytes());
    hex::encode(h.finalize())
}

/// Docker's `isValidParent`: `parent` (`None` = scratch) is the start of `img` — the same
/// history entries, the same first layers — and `img` has at least one step more.
pub fn is_valid_parent(img: &ImageChain, parent: Option<&ImageChain>) -> bool {
    if img.history.is_empty() {
        return false;
    }
    let Some(p) = parent.filter(|p| !p.history.is_empty() || !p.diff_ids.is_empty()) else {
        return true;
    };
    p.history.len() < img.history.len()
        && p.diff_ids.len() <= img.diff_ids.len()
        && img.history.starts_with(&p.history)
        && img.diff_ids.starts_with(&p.diff_ids)
}

/// Whether `img` is `of` or an image on the way to it.
pub fn in_chain_of(img: &ImageChain, of: &ImageChain) -> bool {
    img.id == of.id || is_valid_parent(of, Some(img))
}

/// The history entry of `target` that the next step on `parent` would make, if `parent` is
/// the start of `target` and that entry was made by the same instruction.
pub fn next_step(
    parent: Option<&ImageChain>,
    target: &ImageChain,
    created_by: &str,
) -> Option<usize> {
    if !is_valid_parent(target, parent) {
        return None;
    }
    let i = parent.map_or(0, |p| p.history.len());
    let made_by = target.history.get(i)?.get("created_by")?.as_str()?;
    (made_by == created_by).then_some(i)
}

impl BuildCache {
    pub fn new(meta: Arc<MetaStore>) -> Self {
        BuildCache { meta }
    }

    pub fn get(&self, key: &str) -> Result<Option<String>, BuildError> {
        let e: Option<CacheEntry> = self
            .meta
            .get(BUILD_CACHE, key)
            .map_err(|e| BuildError::Internal(format!("reading the build cache: {e}")))?;
        Ok(e.map(|e| e.image))
    }

    pub fn put(&self, key: &str, image: &str) -> Result<(), BuildError> {
        let e = CacheEntry {
            image: image.to_owned(),
            created: chrono::Utc::now().timestamp(),
        };
        self.meta
            .put(BUILD_CACHE, key, &e)
            .map_err(|e| BuildError::Internal(format!("writing the build cache: {e}")))
    }

    /// Removes every entry; returns the images they named, newest first.
    fn clear(&self) -> Result<Vec<String>, BuildError> {
        let all: Vec<(String, CacheEntry)> = self
            .meta
            .list(BUILD_CACHE)
            .map_err(|e| BuildError::Internal(format!("reading the build cache: {e}")))?;
        let ops = all
            .iter()
            .map(|(k, _)| BatchOp::Delete(BUILD_CACHE, k.clone()))
            .collect();
        self.meta
            .batch(ops)
            .map_err(|e| BuildError::Internal(format!("clearing the build cache: {e}")))?;
        let mut entries: Vec<CacheEntry> = all.into_iter().map(|(_, e)| e).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.created));
        Ok(entries.into_iter().map(|e| e.image).collect())
    }
}

impl Builder {
    /// `builder prune`: forgets every cached step and removes the images only the cache kept
    /// (untagged, unused). Returns the removed image ids and the bytes reclaimed.
    pub async fn prune_cache(&self) -> Result<(Vec<String>, u64), BuildError> {
        let cache = self.inner.cache.clone();
        let images = self.inner.images.clone();
        tokio::task::spawn_blocking(move || {
            let ids = cache.clear()?;
            let (mut deleted, mut reclaimed) = (Vec::new(), 0);
            // Children first, so parents become removable; a few passes settle chains.
            let mut pending = ids;
            for _ in 0..3 {
                let mut left = Vec::new();
                for id in pending {
                    match images.remove_untagged(&id)? {
                        Some(bytes) => {
                            reclaimed += bytes;
                            deleted.push(id);
                        }
                        None => left.push(id),
                    }
                }
                pending = left;
            }
            Ok((deleted, reclaimed))
        })
        .await
        .map_err(|e| BuildError::Internal(format!("prune task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_parent_and_step() {
        let a = key(Some("sha256:1"), "RUN x");
        assert_eq!(a, key(Some("sha256:1"), "RUN x"));
        assert_ne!(a, key(Some("sha256:2"), "RUN x"));
        assert_ne!(a, key(Some("sha256:1"), "RUN y"));
        assert_ne!(key(None, "RUN x"), a);
    }

    fn chain(id: &str, steps: &[(&str, Option<&str>)]) -> ImageChain {
        let mut c = ImageChain {
            id: id.into(),
            ..Default::default()
        };
        for (i, (by, layer)) in steps.iter().enumerate() {
            let mut h = serde_json::json!({ "created": format!("t{i}"), "created_by": by });
            match layer {
                Some(d) => c.diff_ids.push((*d).into()),
                None => h["empty_layer"] = true.into(),
            }
            c.history.push(h);
        }
        c
    }

    #[test]
    fn cache_from_chains() {
        let base = chain("b", &[("ADD rootfs", Some("d1")), ("CMD sh", None)]);
        let built = chain(
            "t",
            &[
                ("ADD rootfs", Some("d1")),
                ("CMD sh", None),
                ("ENV A=1", None),
                ("RUN make", Some("d2")),
            ],
        );
        assert!(is_valid_parent(&built, Some(&base)));
        assert!(is_valid_parent(&built, None), "scratch starts everything");
        assert!(!is_valid_parent(&base, Some(&built)));
        assert!(!is_valid_parent(&base, Some(&base)), "no step left");
        assert_eq!(next_step(Some(&base), &built, "ENV A=1"), Some(2));
        assert_eq!(next_step(Some(&base), &built, "ENV A=2"), None);
        assert_eq!(next_step(None, &built, "ADD rootfs"), Some(0));
        let mid = chain(
            "m",
            &[
                ("ADD rootfs", Some("d1")),
                ("CMD sh", None),
                ("ENV A=1", None),
            ],
        );
        assert_eq!(next_step(Some(&mid), &built, "RUN make"), Some(3));
        assert!(in_chain_of(&mid, &built) && in_chain_of(&built, &built));
        // Another base (same commands, other times or layers) is not the start of it.
        let mut other = base.clone();
        other.history[0]["created"] = "later".into();
        assert!(!is_valid_parent(&built, Some(&other)));
        let mut other = base.clone();
        other.diff_ids[0] = "d9".into();
        assert!(!is_valid_parent(&built, Some(&other)));
        assert!(!in_chain_of(&other, &built));
        assert_eq!(next_step(Some(&other), &built, "ENV A=1"), None);
    }

    #[test]
    fn entries_round_trip_and_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Arc::new(MetaStore::open(&dir.path().join("m.redb")).expect("open"));
        let c = BuildCache::new(meta.clone());
        c.put("k1", "sha256:a").expect("put");
        c.put("k2", "sha256:b").expect("put");
        assert_eq!(c.get("k1").expect("get").as_deref(), Some("sha256:a"));
        assert_eq!(c.get("nope").expect("get"), None);
        let again = BuildCache::new(meta);
        assert_eq!(again.get("k2").expect("get").as_deref(), Some("sha256:b"));
        assert_eq!(again.clear().expect("clear").len(), 2);
        assert_eq!(again.get("k1").expect("get"), None);
    }
}
