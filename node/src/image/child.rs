//! New images on top of existing ones: what `commit` and every step of a Dockerfile build
//! register.
//!
//! ```text
//!  parent config blob (kept: history, rootfs) ─┐
//!  new layer tar (optional) ─► LayerStore::unpack ─► chain_id(parent top, diff id)
//!  Config / author / comment / created_by ─────┴─► new config blob ─► register (one step)
//! ```
//! A step that only changes the config (ENV, CMD, ...) adds no layer: its history entry says
//! `empty_layer`, as Docker's does.

use std::io::Read;

use berth_api::models::ContainerConfig;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::config::{docker_config_value, host_arch, rfc3339_nano};
use super::digest::{chain_id, Digest};
use super::error::ImageError;
use super::reference::{Reference, DEFAULT_TAG};
use super::service::{ImageService, NewImage, PendingLayer};

/// What a new image on top of `parent` says about itself.
#[derive(Debug, Clone, Default)]
pub struct ChildImage {
    /// The parent image's id; `None` builds on `scratch`.
    pub parent: Option<String>,
    /// The image's `Config` (defaults for containers).
    pub config: ContainerConfig,
    /// The container it was committed from, if any.
    pub container: Option<String>,
    pub author: String,
    pub comment: String,
    /// The history line (`/bin/sh -c #(nop)  CMD ["sh"]`).
    pub created_by: String,
    /// References to point at the new image.
    pub tags: Vec<Reference>,
}

/// Parses a tag given to commit or build (`name`, `name:tag`); digests are refused.
pub fn parse_tag(s: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse(s)?;
    if r.digest().is_some() {
        return Err(ImageError::InvalidArgument(format!(
            "refusing to create a tag with a digest reference: {s}"
        )));
    }
    if r.tag().is_none() {
        return r.with_tag(DEFAULT_TAG);
    }
    Ok(r)
}

impl ImageService {
    /// Registers a new image on top of `spec.parent`, with `layer` (an uncompressed or
    /// compressed layer tar) as its new top layer if given. Returns the new image id.
    pub fn create_child(
        &self,
        spec: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String, ImageError> {
        let (mut base, mut chain) = match &spec.parent {
            Some(p) => {
                let rec = self.lookup(p)?;
                let raw: Value = serde_json::from_slice(&self.config_bytes(&rec)?)
                    .map_err(|e| ImageError::BadArchive(format!("image config {p}: {e}")))?;
                let chain = rec
                    .layers
                    .iter()
                    .map(|c| Digest::parse(c))
                    .collect::<Result<Vec<_>, _>>()?;
                (raw, chain)
            }
            None => (json!({}), Vec::new()),
        };
        let unpacked = match layer {
            Some(r) => Some(self.inner.layers.unpack(r)?),
            None => None,
        };
        let now = Utc::now();
        let created = rfc3339_nano(now);
        let obj = base.as_object_mut().ok_or_else(|| {
            ImageError::BadArchive("parent image config is not a JSON object".into())
        })?;
        obj.entry("architecture")
            .or_insert_with(|| json!(host_arch()));
        obj.insert("os".into(), json!("linux"));
        obj.insert("created".into(), json!(created));
        obj.insert("config".into(), docker_config_value(&spec.config));
        let mut cc = spec.config.clone();
        cc.cmd = vec!["/bin/sh".into(), "-c".into(), spec.created_by.clone()];
        obj.insert("container_config".into(), docker_config_value(&cc));
        obj.insert(
            "docker_version".into(),
            json!(concat!("berth-", env!("CARGO_PKG_VERSION"))),
        );
        set_or_remove(obj, "author", &spec.author);
        set_or_remove(obj, "comment", &spec.comment);
        set_or_remove(obj, "container", spec.container.as_deref().unwrap_or(""));
        let rootfs = obj
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        if let Some(u) = &unpacked {
            match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
                Some(ids) => ids.push(json!(u.diff_id.to_string())),
                None => rootfs["diff_ids"] = json!([u.diff_id.to_string()]),
            }
        }
        let mut h = Map::new();
        h.insert("created".into(), json!(created));
        h.insert("created_by".into(), json!(spec.created_by));
        if !spec.author.is_empty() {
            h.insert("author".into(), json!(spec.author));
        }
        if !spec.comment.is_empty() {
            h.insert("comment".into(), json!(spec.comment));
        }
        if unpacked.is_none() {
            h.insert("empty_layer".into(), json!(true));
        }
        match obj.get_mut("history").and_then(Value::as_array_mut) {
            Some(hist) => hist.push(Value::Object(h)),
            None => {
                obj.insert("history".into(), json!([Value::Object(h)]));
            }
        }
        let mut layers = Vec::new();
        if let Some(u) = unpacked {
            let parent = chain.last().cloned();
            chain.push(chain_id(parent.as_ref(), &u.diff_id));
            layers.push(PendingLayer {
                unpacked: u,
                parent,
            });
        }
        let config = serde_json::to_vec(&base).map_err(|e| ImageError::Internal(e.to_string()))?;
        let id = Digest::of_bytes(&config);
        let image = NewImage {
            config,
            id: id.clone(),
            chain,
            tags: spec.tags.clone(),
            created: now.timestamp(),
        };
        let registered = self.register(layers, &[image])?;
        if let Some(parent) = &spec.parent {
            let _guard = self.lock();
            let mut batch = self.inner.records.batch();
            if let Some(rec) = batch.image(&id.to_string())? {
                rec.parent = Some(parent.clone());
            }
            batch.commit()?;
        }
        for r in &registered {
            for (t, _) in &r.tags {
                self.event("tag", &r.id, &t.familiar());
            }
        }
        Ok(id.to_string())
    }

    /// Points `tags` at an existing image (a build whose last step came from the cache).
    /// A tag that already names the image is left alone (no write, no event), so a fully
    /// cached rebuild touches nothing.
    pub fn tag_all(&self, id: &str, tags: &[Reference]) -> Result<(), ImageError> {
        for t in tags {
            if self.inner.records.target(t)?.as_deref() == Some(id) {
                continue;
            }
            self.tag_image(id, &t.name(), t.tag())?;
        }
        Ok(())
    }
}

impl ImageService {
    /// Removes an untagged image nothing uses (a build cache entry); returns the bytes of
    /// layers that went with it, or `None` when the image is tagged, in use or gone.
    pub fn remove_untagged(&self, id: &str) -> Result<Option<u64>, ImageError> {
        let Some(rec) = self.inner.records.get(id)? else {
            return Ok(None);
        };
        if !rec.repo_tags.is_empty()
            || !rec.repo_digests.is_empty()
            || !self.users_of(id).is_empty()
        {
            return Ok(None);
        }
        let mut layers = Vec::new();
        for c in &rec.layers {
            let d = Digest::parse(c)?;
            if let Some(m) = self.inner.layers.get(&d)? {
                layers.push((d, m.size));
            }
        }
        if self.remove_image(id, false).is_err() {
            return Ok(None);
        }
        Ok(Some(
            layers
                .iter()
                .filter(|(d, _)| !self.inner.layers.exists(d))
                .map(|(_, s)| s)
                .sum(),
        ))
    }
}

fn set_or_remove(obj: &mut Map<String, Value>, key: &str, v: &str) {
    if v.is_empty() {
        obj.remove(key);
    } else {
        obj.insert(key.into(), json!(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testutil::{file_tar, service};

    #[test]
    fn children_stack_layers_and_history() {
        let t = service();
        let base = ChildImage {
            created_by: "ADD file".into(),
            ..Default::default()
        };
        let tar = file_tar(&[("a", b"1".as_slice())]);
        let id1 = t
            .svc
            .create_child(&base, Some(&mut &tar[..]))
            .expect("first");
        let cfg = ContainerConfig {
            env: vec!["A=b".into()],
            ..Default::default()
        };
        let meta = ChildImage {
            parent: Some(id1.clone()),
            config: cfg,
            created_by: "ENV A=b".into(),
            tags: vec![parse_tag("child").expect("tag")],
            ..Default::default()
        };
        let id2 = t.svc.create_child(&meta, None).expect("second");
        let img = t.svc.resolve("child:latest").expect("tagged");
        assert_eq!(img.id, id2);
        assert_eq!(img.layer_dirs.len(), 1, "config-only step adds no layer");
        assert_eq!(img.config.env, vec!["A=b"]);
        let tar2 = file_tar(&[("b", b"2".as_slice())]);
        let id3 = t
            .svc
            .create_child(
                &ChildImage {
                    parent: Some(id2),
                    author: "me".into(),
                    created_by: "COPY b".into(),
                    ..Default::default()
                },
                Some(&mut &tar2[..]),
            )
            .expect("third");
        let img = t.svc.resolve(&id3).expect("third");
        assert_eq!(img.layer_dirs.len(), 2);
        assert_eq!(img.config.env, Vec::<String>::new());
        let hist = t.svc.image_history(&id3).expect("history");
        assert_eq!(hist.as_array().expect("list").len(), 3, "{hist}");
        let inspect = t.svc.inspect_image(&id3).expect("inspect");
        assert_eq!(inspect["Author"], "me");
        assert!(parse_tag(&format!("x@sha256:{}", "a".repeat(64))).is_err());
        assert!(parse_tag("UPPER").is_err());
    }
}
