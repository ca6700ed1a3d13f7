//! Moving images between this host and somewhere else over the network: the OCI Distribution
//! client, `pull`, `push`, login and remote manifest lookups, and Docker's progress stream.
//!
//! ```text
//!  pull.rs ─┐                        ┌─► store (content, layers, records, blobs)
//!  push.rs ─┼─► distribution.rs ─────┤   registry sessions, download/upload limits,
//!  remote.rs┘   registry/            └   one lock per blob being fetched
//!  progress.rs  {"status","progressDetail","id"} messages for the docker CLI
//! ```
//! Every transfer ends in the store (`ImageService::register`) or reads from it; nothing in
//! `store/` imports this module. The cluster's peer image fetch will be one more transfer.

pub(crate) mod distribution;
pub(crate) mod progress;
pub(crate) mod pull;
pub(crate) mod push;
pub mod registry;
pub(crate) mod remote;
