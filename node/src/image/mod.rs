//! The image store of berthd: content-addressed blobs, unpacked layers, image records, the
//! overlay root file systems of containers, and the Docker image API on top.
//!
//! ```text
//!  ImageBackend (backend.rs) ── import.rs · load.rs · save.rs · delete.rs · views.rs
//!            │                       │            │
//!            ▼                       ▼            ▼
//!  ImageService (service.rs) ─┬─ ContentStore  content/blobs/sha256/<hex>     (content.rs)
//!    resolve / tag / register ├─ LayerStore    overlay/<chain id>/diff         (layers.rs,
//!                             │                 + tar-split recipe             unpack.rs, tarsplit.rs)
//!                             └─ Records       metadata.redb: images, image_refs (records.rs)
//!  pull.rs · push.rs ── registry/ (OCI Distribution client) · manifest.rs · progress.rs
//!            └─ distribution.rs: download limits, per-blob locks, layer_blobs table, blob GC
//!  containers ──► resolve(name) → ResolvedImage { id, config, layer_dirs }
//!             ──► mount_rootfs(layer_dirs, upper, work, target)               (overlay.rs)
//!  commit/export ──► pack_layer(dir, writer): overlay form → layer tar        (pack.rs)
//!  commit/build  ──► create_child(parent, config, layer tar) → new image      (child.rs)
//! ```
//! Invariants:
//! - an image id is the sha256 of its config blob; a layer directory is named by its chain id
//!   and exists whole or not at all (built in `tmp/images`, renamed into place);
//! - records change only in single redb transactions; an image is visible only once its
//!   layers and config blob are in place, and its layers go only after its record is gone;
//! - failed imports and loads leave nothing behind; what a crash leaves (temporary files,
//!   unrecorded layers) is removed when the service starts;
//! - saved layers are byte-identical to the loaded ones, so ids survive save and load.

mod backend;
mod bundle;
mod changes;
mod child;
pub mod config;
mod content;
mod delete;
pub mod digest;
mod distribution;
mod error;
mod import;
pub mod layers;
mod load;
pub mod manifest;
pub mod overlay;
pub mod pack;
mod progress;
mod pull;
mod push;
mod records;
pub mod reference;
pub mod registry;
mod remote;
mod save;
mod service;
mod sys;
mod tarsplit;
mod unpack;
mod views;

#[cfg(test)]
pub(crate) mod testutil;

pub use changes::apply_changes;
pub use child::{parse_tag, ChildImage, ImageChain};
pub use error::{full_message, ImageError};
pub use overlay::{mount_rootfs, unmount_rootfs};
pub use service::{ImageService, ResolvedImage, UsersFn};
