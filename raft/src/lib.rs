//! The cluster control plane: a Raft-replicated store of the swarm's objects among managers,
//! the cluster's CA and join tokens, the cluster port (gRPC over mutual TLS), and this host's
//! membership (init, join, leave, heartbeats, role changes).
//!
//! ```text
//!  engine (node crate) ──► swarm::Swarm ──► manager::Manager ──► openraft ──► storage (redb)
//!                              │                 │  └─ network ──► other managers' service
//!                              └── session ──────┴──► rpc (Cluster.Call) ──► a manager
//! ```
//! The engine reaches the cluster only through [`swarm::Swarm`] and the [`manager::Manager`] it
//! hands out; this crate never imports the engine.

pub mod ca;
mod dispatcher;
pub mod error;
pub mod ingress;
pub mod logs;
pub mod manager;
pub mod netalloc;
pub mod network;
pub mod networks;
pub mod objects;
pub mod orchestrator;
pub mod peer;
pub mod rotation;
pub mod rpc;
mod service;
pub mod state;
pub mod storage;
pub mod swarm;
pub mod tasks;
pub mod tunnels;
pub mod types;

pub use error::{ClusterError, ClusterResult};

/// The default cluster port (Docker's).
pub const DEFAULT_PORT: u16 = 2377;
