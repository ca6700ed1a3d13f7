//! `FakeImageStore`: an in-memory [`ImageStore`] for unit tests of the code above the seam
//! (containers, the builder, the cluster's task executor) that need images but not their
//! bytes on disk.
//!
//! It keeps what the trait shows: image records (config, history, diff ids, chain ids),
//! references and the users callback. Layers are hashed, not unpacked: a layer's
//! diff id is the sha256 of the bytes given (the real store hashes the uncompressed stream,
//! so a compressed layer gets another id here), and `resolve` hands back layer directories under a
//! root that does not exist. Mounts are recorded, not made. `pull` finds images in a
//! "registry" filled with [`FakeImageStore::add_remote`], one tag at a time (the name's
//! own, else `latest`; never every tag). The conformance suite
//! (`conformance.rs`) runs the same assertions against this fake and against `ImageService`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use berth_api::models::ContainerConfig;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};

use crate::image::digest::{chain_id, is_hex64, Digest};
use crate::image::error::ImageError;
use crate::image::image_store::ImageStore;
use crate::image::reference::Reference;
use crate::image::service::{ResolvedImage, UsersFn};
use crate::image::store::child::{ChildImage, ImageChain};
use crate::image::transfer::registry::{Registries, RegistryConfig};

/// Where the fake says layers live; nothing is ever written there.
const FAKE_LAYER_ROOT: &str = "/nonexistent/berth-fake-image-store/overlay";

/// One image as the fake keeps it.
#[derive(Debug, Clone)]
struct FakeImage {
    config: ContainerConfig,
    chain: ImageChain,
}

#[derive(Default)]
struct State {
    images: BTreeMap<String, FakeImage>,
    refs: BTreeMap<Reference, String>,
    /// Bytes of each layer, by chain id (what `remove_untagged` reports freed).
    layer_sizes: BTreeMap<String, u64>,
    remote: BTreeMap<Reference, ChildImage>,
    mounts: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// Makes every `create_child` id unique, as the real store's `created` time does.
    serial: u64,
}

/// An in-memory image store for tests. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeImageStore {
    state: Arc<Mutex<State>>,
    users: Arc<Mutex<UsersFn>>,
    registries: Arc<Registries>,
}

impl Default for FakeImageStore {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeImageStore {
    pub fn new() -> Self {
        let no_users: UsersFn = Arc::new(|_| Vec::new());
        FakeImageStore {
            state: Arc::default(),
            users: Arc::new(Mutex::new(no_users)),
            registries: Arc::new(Registries::new(RegistryConfig::default())),
        }
    }

    /// Makes `reference` pullable: a pull registers `image` (built on scratch, no layer) and
    /// tags it `reference`.
    pub fn add_remote(&self, reference: &str, image: ChildImage) -> Result<(), ImageError> {
        let r = Reference::parse_tagged(reference)?;
        self.lock().remote.insert(r, image);
        Ok(())
    }

    /// The lower directories of the root file system mounted on `target`, if one is.
    pub fn mounted(&self, target: &Path) -> Option<Vec<PathBuf>> {
        self.lock().mounts.get(target).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn users_of(&self, id: &str) -> Vec<String> {
        let f = self.users.lock().unwrap_or_else(|p| p.into_inner()).clone();
        f(id)
    }
}

impl State {
    /// The real store's lookup order: full id, reference, then a unique id prefix.
    fn lookup(&self, name: &str) -> Result<(String, &FakeImage), ImageError> {
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        let found = if is_hex64(bare) {
            self.images.get_key_value(&format!("sha256:{bare}"))
        } else {
            None
        };
        let found = found.or_else(|| {
            if name.starts_with("sha256:") {
                return None;
            }
            let r = Reference::parse_tagged(name).ok()?;
            self.images.get_key_value(self.refs.get(&r)?)
        });
        let found = found.or_else(|| self.unique_prefix(bare));
        found
            .map(|(id, img)| (id.clone(), img))
            .ok_or_else(|| ImageError::NotFound(name.to_owned()))
    }

    fn unique_prefix(&self, bare: &str) -> Option<(&String, &FakeImage)> {
        let hexish = bare
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if bare.is_empty() || bare.len() >= 64 || !hexish {
            return None;
        }
        let mut hits = self
            .images
            .iter()
            .filter(|(id, _)| id["sha256:".len()..].starts_with(bare));
        match (hits.next(), hits.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// Records an image under the id its content hashes to; an existing one is kept.
    fn insert(&mut self, image: FakeImage, salt: Value) -> Result<String, ImageError> {
        let key = json!({
            "config": serde_json::to_value(&image.config)
                .map_err(|e| ImageError::Internal(format!("fake image config: {e}")))?,
            "history": image.chain.history,
            "diff_ids": image.chain.diff_ids,
            "salt": salt,
        });
        let id = Digest::of_bytes(key.to_string().as_bytes()).to_string();
        let mut image = image;
        image.chain.id = id.clone();
        self.images.entry(id.clone()).or_insert(image);
        Ok(id)
    }

    fn layers_in_use(&self) -> impl Iterator<Item = &String> {
        self.images.values().flat_map(|i| i.chain.layers.iter())
    }
}

fn history_entry(spec: &ChildImage, serial: u64, empty_layer: bool) -> Value {
    let mut h = json!({
        "created": format!("fake-{serial}"),
        "created_by": spec.created_by,
    });
    if !spec.author.is_empty() {
        h["author"] = json!(spec.author);
    }
    if !spec.comment.is_empty() {
        h["comment"] = json!(spec.comment);
    }
    if empty_layer {
        h["empty_layer"] = json!(true);
    }
    h
}

#[async_trait]
impl ImageStore for FakeImageStore {
    fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError> {
        let st = self.lock();
        let (id, img) = st.lookup(name)?;
        Ok(ResolvedImage {
            id,
            config: img.config.clone(),
            layer_dirs: img.chain.layers.iter().map(|c| layer_dir(c)).collect(),
            name: name.to_owned(),
        })
    }

    fn image_ids(&self) -> Result<Vec<String>, ImageError> {
        Ok(self.lock().images.keys().cloned().collect())
    }

    fn image_chain(&self, name: &str) -> Result<ImageChain, ImageError> {
        Ok(self.lock().lookup(name)?.1.chain.clone())
    }

    fn create_child(
        &self,
        spec: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String, ImageError> {
        let layer_bytes = match layer {
            Some(r) => {
                let mut buf = Vec::new();
                r.read_to_end(&mut buf)
                    .map_err(|e| ImageError::Internal(format!("reading layer: {e}")))?;
                Some(buf)
            }
            None => None,
        };
        let mut st = self.lock();
        let mut chain = match &spec.parent {
            Some(p) => st.lookup(p)?.1.chain.clone(),
            None => ImageChain {
                architecture: crate::image::store::config::host_arch().to_owned(),
                os: "linux".into(),
                ..Default::default()
            },
        };
        st.serial += 1;
        let serial = st.serial;
        chain.author = spec.author.clone();
        chain
            .history
            .push(history_entry(spec, serial, layer_bytes.is_none()));
        if let Some(bytes) = &layer_bytes {
            let diff = Digest::of_bytes(bytes);
            let parent = chain.layers.last().map(|c| Digest::parse(c)).transpose()?;
            let layer_id = chain_id(parent.as_ref(), &diff).to_string();
            st.layer_sizes.insert(layer_id.clone(), bytes.len() as u64);
            chain.diff_ids.push(diff.to_string());
            chain.layers.push(layer_id);
        }
        let image = FakeImage {
            config: spec.config.clone(),
            chain,
        };
        let id = st.insert(image, json!(serial))?;
        for t in &spec.tags {
            st.refs.insert(t.clone(), id.clone());
        }
        Ok(id)
    }

    fn restore_step(
        &self,
        parent: Option<&ImageChain>,
        target: &ImageChain,
        index: usize,
        config: &ContainerConfig,
    ) -> Result<String, ImageError> {
        let entry = target.history.get(index).cloned().ok_or_else(|| {
            ImageError::Internal(format!("{} has no history entry {index}", target.id))
        })?;
        let mut chain = parent.cloned().unwrap_or_default();
        chain.architecture = target.architecture.clone();
        chain.os = target.os.clone();
        chain.author = target.author.clone();
        if !target.empty_layer(index) {
            let n = chain.diff_ids.len();
            let (Some(diff), Some(layer)) = (target.diff_ids.get(n), target.layers.get(n)) else {
                return Err(ImageError::Internal(format!(
                    "{} has no layer {n} for history entry {index}",
                    target.id
                )));
            };
            chain.diff_ids.push(diff.clone());
            chain.layers.push(layer.clone());
        }
        chain.history.push(entry);
        let image = FakeImage {
            config: config.clone(),
            chain,
        };
        // No salt: the same step restored twice is the same image, as in the real store.
        self.lock().insert(image, Value::Null)
    }

    fn tag_all(&self, id: &str, tags: &[Reference]) -> Result<(), ImageError> {
        let mut st = self.lock();
        let id = st.lookup(id)?.0;
        for t in tags {
            st.refs.insert(t.clone(), id.clone());
        }
        Ok(())
    }

    fn remove_untagged(&self, id: &str) -> Result<Option<u64>, ImageError> {
        let tagged = {
            let st = self.lock();
            if !st.images.contains_key(id) {
                return Ok(None);
            }
            st.refs.values().any(|t| t == id)
        };
        if tagged || !self.users_of(id).is_empty() {
            return Ok(None);
        }
        let mut st = self.lock();
        let Some(img) = st.images.remove(id) else {
            return Ok(None);
        };
        let in_use: Vec<String> = st.layers_in_use().cloned().collect();
        let mut freed = 0;
        for c in img.chain.layers.iter().filter(|c| !in_use.contains(c)) {
            freed += st.layer_sizes.remove(c.as_str()).unwrap_or(0);
        }
        Ok(Some(freed))
    }

    fn set_users(&self, f: UsersFn) {
        *self.users.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    fn mount_rootfs(
        &self,
        lower: &[PathBuf],
        _upper: &Path,
        _work: &Path,
        target: &Path,
        _volatile: bool,
    ) -> Result<(), ImageError> {
        self.lock().mounts.insert(target.to_owned(), lower.to_vec());
        Ok(())
    }

    fn unmount_rootfs(&self, target: &Path) -> Result<(), ImageError> {
        self.lock().mounts.remove(target);
        Ok(())
    }

    async fn pull(
        &self,
        name: &str,
        tag: Option<&str>,
        _platform: Option<&str>,
        _auth: Option<Value>,
    ) -> Result<BoxStream<'static, Value>, ImageError> {
        let base = Reference::parse(name)?;
        let r = match tag {
            Some(t) => base.with_tag(t)?,
            None => Reference::parse_tagged(name)?,
        };
        let remote = self.lock().remote.get(&r).cloned();
        let messages = match remote {
            Some(mut spec) => {
                spec.tags = vec![r.clone()];
                self.create_child(&spec, None)?;
                vec![
                    json!({"status": format!("Pulling from {}", r.familiar_name())}),
                    json!({"status": format!("Status: Downloaded newer image for {}", r.familiar())}),
                ]
            }
            None => {
                let msg = format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login'",
                    r.familiar_name()
                );
                vec![json!({"errorDetail": {"message": msg}, "error": msg})]
            }
        };
        Ok(stream::iter(messages).boxed())
    }

    fn registries(&self) -> &Registries {
        &self.registries
    }
}

fn layer_dir(chain_id: &str) -> PathBuf {
    Path::new(FAKE_LAYER_ROOT)
        .join(chain_id.strip_prefix("sha256:").unwrap_or(chain_id))
        .join("diff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pull_registers_remote_images_and_reports_missing_ones() {
        let s = FakeImageStore::new();
        let remote = ChildImage {
            created_by: "remote".into(),
            ..Default::default()
        };
        s.add_remote("fake-remote:1", remote).expect("remote");
        let msgs: Vec<Value> = s
            .pull("fake-remote", Some("1"), None, None)
            .await
            .expect("pull")
            .collect()
            .await;
        let last = msgs.last().expect("messages");
        assert_eq!(
            last["status"],
            "Status: Downloaded newer image for fake-remote:1"
        );
        assert!(s.resolve("fake-remote:1").is_ok());
        let msgs: Vec<Value> = s
            .pull("fake-missing", None, None, None)
            .await
            .expect("pull")
            .collect()
            .await;
        assert!(msgs.last().expect("messages")["error"].is_string());
        assert!(s.resolve("fake-missing").is_err());
    }

    #[test]
    fn mounts_are_recorded_not_made() {
        let s = FakeImageStore::new();
        let target = Path::new("/nonexistent/merged");
        let lower = vec![layer_dir("sha256:aa")];
        s.mount_rootfs(&lower, Path::new("/u"), Path::new("/w"), target, false)
            .expect("mount");
        assert_eq!(s.mounted(target), Some(lower));
        s.unmount_rootfs(target).expect("unmount");
        assert_eq!(s.mounted(target), None);
    }
}
