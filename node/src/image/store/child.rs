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

use crate::image::digest::{chain_id, Digest};
use crate::image::error::ImageError;
use crate::image::reference::{Reference, DEFAULT_TAG};
use crate::image::service::{ImageService, NewImage, PendingLayer};
use crate::image::store::config::{docker_config_value, host_arch, rfc3339_nano};

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
        let (mut base, mut chain) = self.parent_config(spec.parent.as_deref())?;
        let unpacked = match layer {
            Some(r) => Some(self.inner.layers.unpack(r)?),
            None => None,
        };
        let now = Utc::now();
        let created = rfc3339_nano(now);
        let obj = base.as_object_mut().ok_or_else(|| {
            ImageError::BadArchive("parent image config is not a JSON object".into())
        })?;
        fill_child_config(obj, spec, &created, unpacked.as_ref().map(|u| &u.diff_id));
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
            self.record_parent(&id.to_string(), parent)?;
        }
        for r in &registered {
            for (t, _) in &r.tags {
                self.event("tag", &r.id, &t.familiar());
            }
        }
        Ok(id.to_string())
    }

    /// The raw config of the parent image and the chain ids of its layers, lowest first
    /// (`scratch`: an empty config and no layers).
    fn parent_config(&self, parent: Option<&str>) -> Result<(Value, Vec<Digest>), ImageError> {
        let Some(p) = parent else {
            return Ok((json!({}), Vec::new()));
        };
        let rec = self.lookup(p)?;
        let raw: Value = serde_json::from_slice(&self.config_bytes(&rec)?)
            .map_err(|e| ImageError::BadArchive(format!("image config {p}: {e}")))?;
        let chain = rec
            .layers
            .iter()
            .map(|c| Digest::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((raw, chain))
    }

    /// Notes `parent` as the parent of the freshly registered image `id` (`Parent` in
    /// inspect; `docker images` without `-a` hides untagged parents).
    fn record_parent(&self, id: &str, parent: &str) -> Result<(), ImageError> {
        let _guard = self.lock();
        let mut batch = self.inner.records.batch();
        if let Some(rec) = batch.image(id)? {
            rec.parent = Some(parent.to_owned());
        }
        batch.commit()?;
        Ok(())
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

/// Turns the parent's config object into the child's: its own `Config`, author, comment,
/// container and creation time, the new layer's diff id (if any) on top of the rootfs, and
/// one more history entry.
fn fill_child_config(
    obj: &mut Map<String, Value>,
    spec: &ChildImage,
    created: &str,
    diff_id: Option<&Digest>,
) {
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
    if let Some(d) = diff_id {
        match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
            Some(ids) => ids.push(json!(d.to_string())),
            None => rootfs["diff_ids"] = json!([d.to_string()]),
        }
    }
    let h = history_entry(spec, created, diff_id.is_none());
    match obj.get_mut("history").and_then(Value::as_array_mut) {
        Some(hist) => hist.push(Value::Object(h)),
        None => {
            obj.insert("history".into(), json!([Value::Object(h)]));
        }
    }
}

/// The child's history entry; `empty_layer` when the step added no layer.
fn history_entry(spec: &ChildImage, created: &str, empty_layer: bool) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("created".into(), json!(created));
    h.insert("created_by".into(), json!(spec.created_by));
    if !spec.author.is_empty() {
        h.insert("author".into(), json!(spec.author));
    }
    if !spec.comment.is_empty() {
        h.insert("comment".into(), json!(spec.comment));
    }
    if empty_layer {
        h.insert("empty_layer".into(), json!(true));
    }
    h
}

/// An image as a chain of steps: what `--cache-from` compares builds against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageChain {
    pub id: String,
    /// The config's `history` entries, raw (compared whole, `created` included).
    pub history: Vec<Value>,
    /// `rootfs.diff_ids`, lowest first.
    pub diff_ids: Vec<String>,
    /// The layers' chain ids, lowest first.
    pub layers: Vec<String>,
    /// `architecture`, `os`, `author` of the config.
    pub architecture: String,
    pub os: String,
    pub author: String,
}

impl ImageChain {
    /// Whether history entry `i` adds no layer.
    pub fn empty_layer(&self, i: usize) -> bool {
        self.history
            .get(i)
            .and_then(|h| h.get("empty_layer"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

impl ImageService {
    /// The history and layers of an image.
    pub fn image_chain(&self, name: &str) -> Result<ImageChain, ImageError> {
        let rec = self.lookup(name)?;
        let raw: Value = serde_json::from_slice(&self.config_bytes(&rec)?)
            .map_err(|e| ImageError::BadArchive(format!("image config {}: {e}", rec.id)))?;
        let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(ImageChain {
            history: list(raw.get("history")),
            diff_ids: list(raw.pointer("/rootfs/diff_ids"))
                .iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect(),
            layers: rec.layers.clone(),
            architecture: text("architecture"),
            os: text("os"),
            author: text("author"),
            id: rec.id,
        })
    }

    /// `--cache-from`: the image of step `index` of `target` on top of `parent` (whose chain
    /// is `target`'s first `index` steps), with `config` as its `Config`, as Docker's builder
    /// restores one: the parent's history plus the target's entry, the parent's layers plus
    /// the target's layer of that step (already in the store). Returns the image id.
    pub fn restore_step(
        &self,
        parent: Option<&ImageChain>,
        target: &ImageChain,
        index: usize,
        config: &ContainerConfig,
    ) -> Result<String, ImageError> {
        let entry = target.history.get(index).cloned().ok_or_else(|| {
            ImageError::Internal(format!("{} has no history entry {index}", target.id))
        })?;
        let mut history = parent.map(|p| p.history.clone()).unwrap_or_default();
        let mut diff_ids = parent.map(|p| p.diff_ids.clone()).unwrap_or_default();
        let mut chain = parent
            .map(|p| p.layers.iter().map(|c| Digest::parse(c)).collect())
            .transpose()?
            .unwrap_or_else(Vec::new);
        if !target.empty_layer(index) {
            let n = diff_ids.len();
            let (Some(diff), Some(layer)) = (target.diff_ids.get(n), target.layers.get(n)) else {
                return Err(ImageError::Internal(format!(
                    "{} has no layer {n} for history entry {index}",
                    target.id
                )));
            };
            diff_ids.push(diff.clone());
            chain.push(Digest::parse(layer)?);
        }
        let created = entry.get("created").cloned().unwrap_or(Value::Null);
        history.push(entry);
        let mut obj = Map::new();
        obj.insert("architecture".into(), json!(target.architecture));
        obj.insert("os".into(), json!(target.os));
        set_or_remove(&mut obj, "author", &target.author);
        obj.insert("created".into(), created.clone());
        obj.insert("config".into(), docker_config_value(config));
        obj.insert(
            "docker_version".into(),
            json!(concat!("berth-", env!("CARGO_PKG_VERSION"))),
        );
        obj.insert("history".into(), Value::Array(history));
        obj.insert(
            "rootfs".into(),
            json!({ "type": "layers", "diff_ids": diff_ids }),
        );
        let config = serde_json::to_vec(&Value::Object(obj))
            .map_err(|e| ImageError::Internal(e.to_string()))?;
        let id = Digest::of_bytes(&config);
        if self.inner.records.get(&id.to_string())?.is_some() {
            return Ok(id.to_string());
        }
        let created = created
            .as_str()
            .and_then(crate::image::store::config::parse_time)
            .map_or(0, |t| t.timestamp());
        self.register(
            Vec::new(),
            &[NewImage {
                config,
                id: id.clone(),
                chain,
                tags: Vec::new(),
                created,
            }],
        )?;
        if let Some(p) = parent {
            let _guard = self.lock();
            let mut batch = self.inner.records.batch();
            if let Some(rec) = batch.image(&id.to_string())? {
                rec.parent = Some(p.id.clone());
            }
            batch.commit()?;
        }
        Ok(id.to_string())
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

    #[test]
    fn steps_restore_from_a_target_chain() {
        let t = service();
        let tar = file_tar(&[("a", b"1".as_slice())]);
        let base = ChildImage {
            created_by: "ADD a".into(),
            ..Default::default()
        };
        let b = t
            .svc
            .create_child(&base, Some(&mut &tar[..]))
            .expect("base");
        let env = ChildImage {
            parent: Some(b.clone()),
            created_by: "ENV X=1".into(),
            ..Default::default()
        };
        let e = t.svc.create_child(&env, None).expect("env");
        let tar2 = file_tar(&[("b", b"2".as_slice())]);
        let top = ChildImage {
            parent: Some(e.clone()),
            created_by: "COPY b".into(),
            ..Default::default()
        };
        let top = t.svc.create_child(&top, Some(&mut &tar2[..])).expect("top");
        let target = t.svc.image_chain(&top).expect("chain");
        assert_eq!((target.history.len(), target.diff_ids.len()), (3, 2));
        assert!(target.empty_layer(1) && !target.empty_layer(2));

        let parent = t.svc.image_chain(&b).expect("base chain");
        let cfg = ContainerConfig {
            env: vec!["X=1".into()],
            ..Default::default()
        };
        let r1 = t
            .svc
            .restore_step(Some(&parent), &target, 1, &cfg)
            .expect("restore env");
        let c1 = t.svc.image_chain(&r1).expect("r1");
        assert_eq!(c1.history[..], target.history[..2]);
        assert_eq!(c1.diff_ids, parent.diff_ids);
        assert_eq!(t.svc.resolve(&r1).expect("r1").config.env, vec!["X=1"]);
        let r2 = t
            .svc
            .restore_step(Some(&c1), &target, 2, &cfg)
            .expect("restore copy");
        let c2 = t.svc.image_chain(&r2).expect("r2");
        assert_eq!(c2.history, target.history);
        assert_eq!(
            (c2.diff_ids.clone(), c2.layers.clone()),
            (target.diff_ids.clone(), target.layers.clone())
        );
        assert_eq!(t.svc.resolve(&r2).expect("r2").layer_dirs.len(), 2);
        assert_eq!(
            t.svc
                .restore_step(Some(&c1), &target, 2, &cfg)
                .expect("again"),
            r2,
            "restoring twice gives the same image"
        );
    }
}
