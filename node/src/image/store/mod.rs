//! What the image store keeps on this host, and the rules for changing it: content-addressed
//! blobs, unpacked layers with their byte-exact tar recipes, image records, the image config
//! and manifest model, new child images, deletion, and the overlay mounts of containers' root
//! file systems.
//!
//! ```text
//!  content.rs   content/blobs/sha256/<hex>, content/ingest/<hex>    blobs, pinned while pulled
//!  blobs.rs     layer_blobs table: compressed blob → layer; blob garbage collection
//!  layers.rs    overlay/<chain id>/diff + tar-split.gz              (unpack.rs, tarsplit.rs, sys.rs)
//!  records.rs   metadata.redb: images, image_refs                    (one redb transaction a change)
//!  format.rs    the format version of image, blob and layer records
//!  config.rs · manifest.rs     the image config blob; distribution manifests and indexes
//!  child.rs · changes.rs       new images over a parent (commit, build); `--change` lines
//!  delete.rs                   rmi and image prune
//!  overlay.rs                  mount_rootfs / unmount_rootfs of a container
//! ```
//! Nothing here talks to a registry or reads an archive: `transfer/` and `archive/` call in.
//! `tarsplit.rs` lives here rather than in `archive/` because the layer store writes the recipe
//! while it unpacks and replays it when a layer is read back; `archive/save.rs` only reads it
//! through [`layers::LayerStore::reassemble`].

pub(crate) mod blobs;
pub(crate) mod changes;
pub(crate) mod child;
pub(crate) mod config;
pub(crate) mod content;
pub(crate) mod delete;
pub(crate) mod format;
pub(crate) mod layers;
pub(crate) mod manifest;
pub(crate) mod overlay;
pub(crate) mod records;
pub(crate) mod sys;
pub(crate) mod tarsplit;
pub(crate) mod unpack;
