//! The image store of berthd: content-addressed blobs, unpacked layers, image records, the
//! overlay root file systems of containers, registry transfers, image archives, and the
//! Docker image API on top.
//!
//! ```text
//!  ImageBackend (backend.rs, views.rs)        the API edge: Docker JSON in and out
//!  container/, build/ ──► dyn ImageStore (image_store.rs)    the engine's narrow seam
//!            │                    │
//!            ▼                    ▼
//!  ImageService (service.rs): resolve, register, tag, the store lock
//!    ├─ transfer/  registry client, pull, push, login, progress, download limits
//!    ├─ archive/   load, save, import, pack (directory → layer tar)
//!    └─ store/     content/blobs/sha256/<hex>            (content.rs; layer_blobs: blobs.rs)
//!                  overlay/<chain id>/diff + tar-split    (layers.rs, unpack.rs, tarsplit.rs)
//!                  metadata.redb: images, image_refs      (records.rs)
//!                  config and manifest model, child images, delete, overlay mounts
//!  reference.rs · digest.rs · error.rs                    below everything else
//! ```
//! `transfer/` and `archive/` call into `store/`, never the other way.
//!
//! Invariants:
//! - an image id is the sha256 of its config blob; a layer directory is named by its chain id
//!   and exists whole or not at all (built in `tmp/images`, renamed into place);
//! - records change only in single redb transactions; an image is visible only once its
//!   layers and config blob are in place, and its layers go only after its record is gone;
//! - failed imports and loads leave nothing behind; what a crash leaves (temporary files,
//!   unrecorded layers) is removed when the service starts;
//! - saved layers are byte-identical to the loaded ones, so ids survive save and load.

mod archive;
mod backend;
pub mod digest;
mod error;
mod image_store;
pub mod reference;
mod service;
pub(crate) mod store;
pub(crate) mod transfer;
mod views;

#[cfg(test)]
mod conformance;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) mod testutil;

pub use archive::pack::pack_layer;
pub use error::ImageError;
pub use image_store::ImageStore;
pub use service::{ImageService, ResolvedImage, UsersFn};
pub use store::changes::apply_changes;
pub use store::child::{parse_tag, ChildImage, ImageChain};
pub use store::config::host_arch;
pub use store::layers::dir_size;
pub use store::overlay::{mount_rootfs, unmount_rootfs};
pub use transfer::registry::{login_host, Registries, RegistryConfig};
