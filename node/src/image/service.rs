//! [`ImageService`]: the engine-facing image store — lookups for the container code, and the
//! registration, tagging and events every image operation shares.
//!
//! All mutations (registering layers and images, tags, deletions) run under one lock, so a
//! layer cannot be deleted while another operation is registering an image on top of it.
//! Reads (resolve, list, inspect) take no lock: each record is read in one transaction.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use berth_api::models::ContainerConfig;
use chrono::Utc;

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::image::digest::{is_hex64, Digest};
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::store::config::{rfc3339_nano, ImageConfig};
use crate::image::store::content::ContentStore;
use crate::image::store::layers::LayerStore;
use crate::image::store::records::{ImageRecord, Records};
use crate::image::store::unpack::Unpacked;
use crate::image::transfer::distribution::Distribution;
use crate::store::MetaStore;

/// Returns the ids of the containers using an image (given as `sha256:<hex>`).
pub type UsersFn = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// What the container code needs to create a container from an image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<hex>`.
    pub id: String,
    /// The image's `Config`: defaults for Env, Cmd, Entrypoint, WorkingDir, User, …
    pub config: ContainerConfig,
    /// Each layer's diff directory, lowest first (empty for an image without layers).
    pub layer_dirs: Vec<PathBuf>,
    /// The name the user asked for, for events.
    pub name: String,
}

/// The image store of one daemon. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ImageService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub content: ContentStore,
    pub layers: LayerStore,
    pub records: Records,
    pub events: Events,
    pub tmp: PathBuf,
    pub dist: Arc<Distribution>,
    lock: Mutex<()>,
    users: RwLock<UsersFn>,
}

/// A layer unpacked by import or load, to be registered on top of `parent`.
pub(crate) struct PendingLayer {
    pub unpacked: Unpacked,
    pub parent: Option<Digest>,
}

/// An image about to be registered.
pub(crate) struct NewImage {
    pub config: Vec<u8>,
    pub id: Digest,
    pub chain: Vec<Digest>,
    pub tags: Vec<Reference>,
    pub created: i64,
}

/// A registered image and, per tag, the image the tag was taken from (if any).
pub(crate) struct Registered {
    pub id: String,
    pub tags: Vec<(Reference, Option<String>)>,
}

impl ImageService {
    /// Opens the store under the daemon's data root, clearing temporary files and any layer
    /// left unrecorded by a crash.
    pub fn new(
        cfg: &DaemonConfig,
        meta: Arc<MetaStore>,
        events: Events,
    ) -> Result<Self, ImageError> {
        let tmp = cfg.tmp_dir().join("images");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(ImageError::io("clear", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(ImageError::io("create", &tmp))?;
        let content = ContentStore::open(&cfg.content_dir(), &tmp)?;
        let layers = LayerStore::open(&cfg.overlay_dir(), &tmp)?;
        let records = Records::new(meta);
        let keep: HashSet<Digest> = records
            .all()?
            .iter()
            .flat_map(|r| r.layers.iter())
            .filter_map(|c| Digest::parse(c).ok())
            .collect();
        for orphan in layers.remove_unreferenced(&keep)? {
            tracing::warn!(layer = %orphan, "removed a layer no image refers to");
        }
        let users: UsersFn = Arc::new(|_: &str| Vec::new());
        let dist = Arc::new(Distribution::new(cfg, content.ingest_dir().to_owned()));
        let svc = ImageService {
            inner: Arc::new(Inner {
                content,
                layers,
                records,
                events,
                tmp,
                dist,
                lock: Mutex::new(()),
                users: RwLock::new(users),
            }),
        };
        svc.gc_blobs()?;
        Ok(svc)
    }

    /// Tells the store how to find the containers using an image (for `rmi` and prune).
    pub fn set_users(&self, f: UsersFn) {
        *self.inner.users.write().unwrap_or_else(|p| p.into_inner()) = f;
    }

    pub(crate) fn users_of(&self, id: &str) -> Vec<String> {
        let f = self
            .inner
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        f(id)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.inner.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds an image by reference, full id, `sha256:` id or unique id prefix.
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError> {
        let rec = self.lookup(name)?;
        let config = self.config_of(&rec)?;
        Ok(ResolvedImage {
            id: rec.id.clone(),
            config: config.container_config(),
            layer_dirs: self.layer_dirs(&rec)?,
            name: name.to_owned(),
        })
    }

    /// Every image id in the store.
    pub fn image_ids(&self) -> Result<Vec<String>, ImageError> {
        Ok(self
            .inner
            .records
            .all()?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    pub(crate) fn layer_dirs(&self, rec: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        rec.layers
            .iter()
            .map(|c| Ok(self.inner.layers.diff_dir(&Digest::parse(c)?)))
            .collect()
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let records = &self.inner.records;
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        if is_hex64(bare) {
            if let Some(r) = records.get(&format!("sha256:{bare}"))? {
                return Ok(r);
            }
        } else if !name.starts_with("sha256:") {
            if let Ok(r) = Reference::parse_tagged(name) {
                if let Some(id) = records.target(&r)? {
                    if let Some(rec) = records.get(&id)? {
                        return Ok(rec);
                    }
                }
            }
        }
        if !bare.is_empty()
            && bare.len() < 64
            && bare
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut hits = records
                .all()?
                .into_iter()
                .filter(|r| r.id["sha256:".len()..].starts_with(bare));
            if let (Some(one), None) = (hits.next(), hits.next()) {
                return Ok(one);
            }
        }
        Err(ImageError::NotFound(display_name(name)))
    }

    pub(crate) fn config_bytes(&self, rec: &ImageRecord) -> Result<Vec<u8>, ImageError> {
        self.inner.content.read(&Digest::parse(&rec.id)?)
    }

    pub(crate) fn config_of(&self, rec: &ImageRecord) -> Result<ImageConfig, ImageError> {
        ImageConfig::parse(&self.config_bytes(rec)?, &rec.id)
    }

    /// Publishes an image event; `name` becomes the `name` attribute.
    pub(crate) fn event(&self, action: &str, id: &str, name: &str) {
        let attrs = BTreeMap::from([("name".to_owned(), name.to_owned())]);
        self.inner.events.publish("image", action, id, attrs);
    }

    /// Registers layers and images in one step: layers renamed into place, config blobs
    /// written, records committed in one transaction. On failure whatever this call created
    /// is removed again, so nothing of it is visible.
    pub(crate) fn register(
        &self,
        layers: Vec<PendingLayer>,
        images: &[NewImage],
    ) -> Result<Vec<Registered>, ImageError> {
        let _guard = self.lock();
        let mut new_layers = Vec::new();
        let mut new_blobs = Vec::new();
        let res = self.register_locked(layers, images, &mut new_layers, &mut new_blobs);
        if res.is_err() {
            for chain in new_layers.iter().rev() {
                if let Err(e) = self.inner.layers.remove(chain) {
                    tracing::warn!(layer = %chain, error = %e, "rolling back a layer");
                }
            }
            for blob in &new_blobs {
                if let Err(e) = self.inner.content.delete(blob) {
                    tracing::warn!(blob = %blob, error = %e, "rolling back a blob");
                }
            }
        }
        res
    }

    fn register_locked(
        &self,
        layers: Vec<PendingLayer>,
        images: &[NewImage],
        new_layers: &mut Vec<Digest>,
        new_blobs: &mut Vec<Digest>,
    ) -> Result<Vec<Registered>, ImageError> {
        let inner = &self.inner;
        for p in layers {
            let (meta, new) = inner.layers.commit(p.unpacked, p.parent.as_ref())?;
            if new {
                new_layers.push(meta.chain_id);
            }
        }
        let now = rfc3339_nano(Utc::now());
        let mut batch = inner.records.batch();
        let mut out = Vec::new();
        for img in images {
            let mut size = 0;
            for c in &img.chain {
                size += inner.layers.must_get(c)?.size;
            }
            let (_, new) = inner.content.write_bytes(&img.config)?;
            if new {
                new_blobs.push(img.id.clone());
            }
            let id = img.id.to_string();
            batch.put_image(ImageRecord {
                id: id.clone(),
                layers: img.chain.iter().map(Digest::to_string).collect(),
                repo_tags: Vec::new(),
                repo_digests: Vec::new(),
                size,
                created: img.created,
                last_tag_time: None,
                parent: None,
            })?;
            let mut tags = Vec::new();
            for t in &img.tags {
                let displaced = batch.set_ref(t, &id, &now)?;
                tags.push((t.clone(), displaced));
            }
            out.push(Registered { id, tags });
        }
        batch.commit()?;
        Ok(out)
    }

    /// `POST /images/{name}/tag`.
    pub(crate) fn tag_image(
        &self,
        name: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<(), ImageError> {
        let mut r = Reference::parse(repo)?;
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            r = r.with_tag(t)?;
        }
        if r.digest().is_some() {
            return Err(ImageError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        if r.tag().is_none() {
            r = r.with_tag(crate::image::reference::DEFAULT_TAG)?;
        }
        let id = {
            let _guard = self.lock();
            let rec = self.lookup(name)?;
            let mut batch = self.inner.records.batch();
            batch.set_ref(&r, &rec.id, &rfc3339_nano(Utc::now()))?;
            batch.commit()?;
            rec.id
        };
        self.event("tag", &id, &r.familiar());
        Ok(())
    }
}

/// How a name is shown in "No such image" messages: `busybox:latest` for references.
pub(crate) fn display_name(name: &str) -> String {
    match Reference::parse_tagged(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_owned(),
    }
}

/// The first 12 hex digits of an id, with or without `sha256:`.
pub(crate) fn short_id(id: &str) -> &str {
    let bare = id.strip_prefix("sha256:").unwrap_or(id);
    &bare[..bare.len().min(12)]
}
