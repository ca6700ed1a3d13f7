//! The overlay network data plane of cluster mode, driven by committed cluster state rather
//! than gossip or flood-and-learn.
//!
//! On each node, every swarm network that has an endpoint there gets a Linux bridge and a
//! VXLAN device enslaved to it (the network's VNI, UDP 4789, `local` = the node's data-path
//! address, learning off, ARP proxy on). Containers join the bridge with a veth (MTU 1450 on
//! the container side). Every remote endpoint is programmed explicitly: an FDB entry (its MAC
//! → its node's address) and a neighbour entry (its IP → its MAC) on the VXLAN device, so ARP
//! is answered locally and nothing is flooded.
//!
//! ```text
//!  cluster state (dispatcher: networks, endpoints, node addresses)
//!        │ desired: Vec<Plane>            observed: Observed (links, FDB, neighbours)
//!        └────────────► plan::plan(desired, observed) ──► Vec<Step> ──► executor (netlink)
//!                          pure, tested without root
//!  services ─► lb::render(VIPs → backends) ──► nft table in each container namespace
//! ```
//! Encrypted overlays ([`wireguard`]) are the same planes with tunnel addresses as the VXLAN
//! endpoints and a smaller MTU: their frames go through this node's WireGuard tunnels.
//!
//! The reconciler is level-triggered: it compares what should be with what is and emits the
//! steps between them, so a restart, a device someone deleted, a stale FDB entry after churn
//! or a missed update all converge on the next pass. This crate has no dependency on the
//! engine; the engine's `NetworkDriver` for `overlay` calls into it.

pub mod lb;
pub mod model;
pub mod netlink;
pub mod plan;
pub mod wireguard;

pub use model::{Fdb, Observed, ObservedLink, Peer, Plane};
pub use plan::{plan, Step};
