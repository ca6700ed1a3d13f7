//! What more than one Berth binary speaks, in one place: the `berth` CLI, `berthd` (through
//! `berth-api` and `berth-node`) and `berth-shim` all depend on this crate, and it depends on
//! nothing of theirs (serde only).
//!
//! ```text
//!  berth (cli) ──┐                      ┌── dockerignore: .dockerignore rules (context packing,
//!  berth-api ────┼──► berth-common ─────┤     and the daemon's context unpacking; COPY globs)
//!  berth-node ───┤                      ├── stream: Docker's 8-byte stdout/stderr framing
//!  berth-shim ───┘                      ├── percent: query and URL component encoding
//!                                       ├── shim_protocol: berthd ↔ berth-shim control.sock
//!                                       ├── errors: an error and its causes as one line
//!                                       └── models: API bodies both the CLI and the API read
//! ```
//!
//! Everything here is pure (no I/O) and tested without root.

pub mod dockerignore;
pub mod errors;
pub mod models;
pub mod pattern;
pub mod percent;
pub mod shim_protocol;
pub mod stream;
