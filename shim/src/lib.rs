//! What the shim's binaries share with each other and with `berth-runtime`: the process
//! state a container process must start with (see [`signals`]).
//!
//! The binaries themselves (`berth-shim`, `berth-init`) keep their modules private; this
//! library holds only what more than one binary needs.

pub mod signals;
