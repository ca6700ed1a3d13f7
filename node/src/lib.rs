//! berth-node: the per-host engine behind `berthd`.
//!
//! ```text
//!  api::Backends ──► Engine ─┬─ image::ImageService   content store, layers, overlay rootfs
//!                            ├─ container::Containers lifecycle, state, logs, attach, exec
//!                            │      └─ runtime::shim  spawns and talks to berth-shim
//!                            ├─ events::Events        the /events bus
//!                            └─ store::MetaStore      metadata.redb (refs, images, containers)
//! ```

pub mod config;
pub mod events;
pub mod image;
pub mod store;
