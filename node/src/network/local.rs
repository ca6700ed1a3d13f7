//! The `host` and `null` drivers: one network each (`host`, `none`), made at start. A
//! container on `host` uses the daemon's namespace and one on `none` an empty one of its
//! own; the container manager decides that from the network mode, so neither driver makes
//! anything, and neither takes endpoints from `network connect`.

use super::driver::NetworkDriver;

/// `--network host`: the host's own network stack.
pub struct HostDriver;

impl NetworkDriver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }
    fn singleton(&self) -> bool {
        true
    }
}

/// `--network none`: a namespace with only a loopback interface.
pub struct NullDriver;

impl NetworkDriver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
    }
    fn singleton(&self) -> bool {
        true
    }
}
