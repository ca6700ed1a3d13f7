//! berth-node: the per-host engine behind `berthd`.
//!
//! ```text
//!  api::Backends ──► engine::Engine ─┬─ image::ImageService   content store, layers, overlay rootfs
//!                                    ├─ container::Containers lifecycle, state, logs, attach, exec
//!                                    │      └─ container::shim  spawns and talks to berth-shim
//!                                    ├─ volume::Volumes       named volumes, local driver, copy-up
//!                                    ├─ build::Builder        Dockerfile builds, commit
//!                                    ├─ system::System        info, version, events, df
//!                                    ├─ events::Events        the /events bus
//!                                    ├─ store::MetaStore      metadata.redb (refs, images, containers)
//!                                    └─ cluster::ClusterBackend  swarm membership (crate berth-raft)
//! ```

#![recursion_limit = "256"]

pub mod build;
pub mod cluster;
pub mod config;
pub mod container;
pub mod engine;
pub mod events;
pub mod fsroot;
pub mod image;
pub mod listen;
pub mod network;
pub mod store;
pub mod system;
pub mod volume;
