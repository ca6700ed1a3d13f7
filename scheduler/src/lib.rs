//! Task placement for cluster mode: which nodes get a service's new tasks. Pure functions over
//! plain values — no I/O, no clock, no randomness — called by the orchestrators in the raft
//! and node crates, which build a [`NodeInfo`] per node from the store and a [`TaskRequest`]
//! per service, and write the resulting assignments back.
//!
//! ```text
//!  nodes ─► filters (filter.rs) ─► placement tree (tree.rs) ─► Placement { assigned, unplaced,
//!           ready, availability,    one level per preference,              reason }
//!           constraints, platform,  leaves ordered by strategy:
//!           resources, host ports,  spread (Swarm) or binpack (Nomad)
//!           max replicas per node
//! ```
//!
//! Behaviour follows Docker Swarm's documented scheduler: only ready, active nodes take new
//! tasks; constraints (`node.labels.zone==a`, [`Constraint::parse`]) and platforms must match;
//! reservations must fit what is left; host-mode ports must be free; at most
//! `max_replicas_per_node` tasks of the service per node. Spread picks the node with the
//! fewest tasks of the service, then the fewest tasks in all, then the lowest node id;
//! placement preferences even tasks out across label values first. Binpack (not in Swarm) picks
//! the most utilised node that still fits. When tasks cannot all be placed, the reason is
//! Docker's "no suitable node (...)" text.
//!
//! Invariant: [`place`] counts every task it places on its node, so the counters in the
//! slice always include the placements made so far; the result depends only on the inputs.
//! This crate depends on no other crate, Berth's or not.

mod constraint;
mod filter;
mod node;
mod place;
mod request;
mod tree;

#[cfg(test)]
mod reference_tests;

pub use constraint::{Attribute, Constraint, ConstraintError, Operator};
pub use filter::{explain, filter_reason, FilterFailure, FilterKind};
pub use node::{normalize_arch, same_arch, Availability, NodeInfo, Protocol, Role};
pub use place::{place, Placement};
pub use request::{Platform, Preference, PreferenceError, Strategy, TaskRequest};
