//! `ImageStore`: the narrow way the rest of the engine uses images.
//!
//! Containers, the builder and (planned) the cluster's task executor see only this trait:
//! find an image and its layers, mount a container's root file system over them, make child
//! images (commit, build steps), tag and drop them, and fetch one from a registry. Docker's
//! JSON views of images (`docker images`, `inspect`, `history`), `load`, `save`, `import`,
//! `push`, login and prune are the API edge's (`backend.rs`, `views.rs`) and stay off it.
//!
//! ```text
//!  container/ ─┐                         ┌─ store/     records, layers, blobs, overlay
//!  build/    ──┼─► dyn ImageStore ──► ImageService ─┼─ transfer/  registry pull (and push)
//!  cluster (planned) ─┘                  └─ archive/   load, save, import, pack
//! ```
//! `ImageService` is the one implementation; a peer image fetch between cluster nodes will be
//! one more transfer behind it, not a second store.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_api::models::ContainerConfig;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::{ImageService, ResolvedImage, UsersFn};
use crate::image::store::child::{ChildImage, ImageChain};
use crate::image::store::overlay;
use crate::image::transfer::registry::Registries;

/// The image store as the engine uses it. Methods that touch the disk block; call them from
/// blocking contexts (or `spawn_blocking`) as the callers do today.
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Finds an image by reference, full id, `sha256:` id or unique id prefix, with its
    /// config and its layer directories (lowest first).
    fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError>;

    /// Every image id in the store.
    fn image_ids(&self) -> Result<Vec<String>, ImageError>;

    /// The history and layers of an image (build cache and `--cache-from`).
    fn image_chain(&self, name: &str) -> Result<ImageChain, ImageError>;

    /// Registers a new image on top of `spec.parent`, with `layer` (a layer tar, plain or
    /// compressed) as its new top layer if given. Returns the new image id.
    fn create_child(
        &self,
        spec: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String, ImageError>;

    /// `--cache-from`: restores step `index` of `target` on top of `parent`.
    fn restore_step(
        &self,
        parent: Option<&ImageChain>,
        target: &ImageChain,
        index: usize,
        config: &ContainerConfig,
    ) -> Result<String, ImageError>;

    /// Points every reference in `tags` at image `id`.
    fn tag_all(&self, id: &str, tags: &[Reference]) -> Result<(), ImageError>;

    /// Removes an untagged image nothing uses; the bytes freed, or `None` when it stays.
    fn remove_untagged(&self, id: &str) -> Result<Option<u64>, ImageError>;

    /// Tells the store how to find the containers using an image (for `rmi` and prune).
    fn set_users(&self, f: UsersFn);

    /// Mounts a container's root file system: overlayfs of `lower` (lowest first) under
    /// `upper`; `volatile` skips syncs (for a container removed when it exits).
    fn mount_rootfs(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        volatile: bool,
    ) -> Result<(), ImageError>;

    /// Unmounts what [`mount_rootfs`](Self::mount_rootfs) mounted.
    fn unmount_rootfs(&self, target: &Path) -> Result<(), ImageError>;

    /// Pulls `name` (with `tag`, or every tag when neither names one) for `platform`; the
    /// stream carries Docker's progress messages, ending in an `error` one on failure.
    async fn pull(
        &self,
        name: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<Value>,
    ) -> Result<BoxStream<'static, Value>, ImageError>;

    /// The registry client (insecure registries, certificates) for other fetches over HTTP,
    /// such as a build's `ADD <url>`.
    fn registries(&self) -> &Registries;
}

#[async_trait]
impl ImageStore for ImageService {
    fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError> {
        ImageService::resolve(self, name)
    }

    fn image_ids(&self) -> Result<Vec<String>, ImageError> {
        ImageService::image_ids(self)
    }

    fn image_chain(&self, name: &str) -> Result<ImageChain, ImageError> {
        ImageService::image_chain(self, name)
    }

    fn create_child(
        &self,
        spec: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String, ImageError> {
        ImageService::create_child(self, spec, layer)
    }

    fn restore_step(
        &self,
        parent: Option<&ImageChain>,
        target: &ImageChain,
        index: usize,
        config: &ContainerConfig,
    ) -> Result<String, ImageError> {
        ImageService::restore_step(self, parent, target, index, config)
    }

    fn tag_all(&self, id: &str, tags: &[Reference]) -> Result<(), ImageError> {
        ImageService::tag_all(self, id, tags)
    }

    fn remove_untagged(&self, id: &str) -> Result<Option<u64>, ImageError> {
        ImageService::remove_untagged(self, id)
    }

    fn set_users(&self, f: UsersFn) {
        ImageService::set_users(self, f)
    }

    fn mount_rootfs(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        volatile: bool,
    ) -> Result<(), ImageError> {
        overlay::mount_rootfs_opts(lower, upper, work, target, volatile)
    }

    fn unmount_rootfs(&self, target: &Path) -> Result<(), ImageError> {
        overlay::unmount_rootfs(target)
    }

    async fn pull(
        &self,
        name: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<Value>,
    ) -> Result<BoxStream<'static, Value>, ImageError> {
        ImageService::pull(self, name, tag, platform, auth).await
    }

    fn registries(&self) -> &Registries {
        &self.inner.dist.registries
    }
}
