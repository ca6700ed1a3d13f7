//! What the scheduler knows about a node: its identity and labels (for constraints and
//! preferences), its state (for the ready filter), its capacity and what is already reserved
//! on it (for the resource filter and binpack), and the tasks and host ports it already has.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// A node's role in the cluster (`node.role` in constraints: `manager` or `worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    Manager,
    #[default]
    Worker,
}

impl Role {
    /// The name Docker uses in constraints and in `node ls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

/// `node update --availability`: only `Active` nodes take new tasks. `Pause` keeps its tasks,
/// `Drain` has them moved away (by the orchestrator; the scheduler only refuses new ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Availability {
    #[default]
    Active,
    Pause,
    Drain,
}

impl Availability {
    /// The name Docker uses (`active`, `pause`, `drain`).
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

/// The protocol of a host-mode published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// One node as the scheduler sees it. The caller builds these from the store; [`crate::place`]
/// updates the counters of the nodes it places tasks on (`tasks_total`, `service_tasks`,
/// `reserved_*`, `host_ports`), so successive calls on the same slice see earlier placements.
///
/// `Default` gives a ready, active worker with no capacity, labels or tasks; fill in the rest
/// with struct-update syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    pub role: Role,
    /// `node.platform.os`, e.g. `linux`. Empty means unknown: any platform matches.
    pub os: String,
    /// `node.platform.arch` as the node reports it (`x86_64`, `aarch64`, ...). Compared
    /// after normalisation: `amd64` == `x86_64`, `arm64` == `aarch64`. Empty means unknown.
    pub arch: String,
    /// `node.labels.*` (set with `node update --label-add`).
    pub labels: BTreeMap<String, String>,
    /// `engine.labels.*` (the daemon's own `--label`s).
    pub engine_labels: BTreeMap<String, String>,
    /// The node's status is ready (it heartbeats). A down node takes no tasks.
    pub ready: bool,
    pub availability: Availability,
    /// Capacity, in billionths of a CPU and in bytes.
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// The sum of the reservations of the tasks already on the node.
    pub reserved_nano_cpus: i64,
    pub reserved_memory: i64,
    /// Active tasks on the node, of all services.
    pub tasks_total: usize,
    /// Active tasks on the node per service id.
    pub service_tasks: HashMap<String, usize>,
    /// Host-mode published ports in use on the node.
    pub host_ports: HashSet<(Protocol, u16)>,
    /// Services whose tasks failed on this node repeatedly of late (Swarm: 5 failures in
    /// 5 minutes). For those services this node comes after every other suitable node; it is
    /// not excluded. Extension to the lead's interface; empty by default.
    pub failing_services: HashSet<String>,
}

impl Default for NodeInfo {
    fn default() -> Self {
        NodeInfo {
            id: String::new(),
            hostname: String::new(),
            role: Role::Worker,
            os: String::new(),
            arch: String::new(),
            labels: BTreeMap::new(),
            engine_labels: BTreeMap::new(),
            ready: true,
            availability: Availability::Active,
            nano_cpus: 0,
            memory_bytes: 0,
            reserved_nano_cpus: 0,
            reserved_memory: 0,
            tasks_total: 0,
            service_tasks: HashMap::new(),
            host_ports: HashSet::new(),
            failing_services: HashSet::new(),
        }
    }
}

impl NodeInfo {
    /// Active tasks of `service_id` on this node.
    pub fn tasks_of(&self, service_id: &str) -> usize {
        self.service_tasks.get(service_id).copied().unwrap_or(0)
    }

    /// CPU not yet reserved, in billionths of a CPU.
    pub fn available_nano_cpus(&self) -> i64 {
        self.nano_cpus.saturating_sub(self.reserved_nano_cpus)
    }

    /// Memory not yet reserved, in bytes.
    pub fn available_memory(&self) -> i64 {
        self.memory_bytes.saturating_sub(self.reserved_memory)
    }
}

/// The canonical name of a CPU architecture, so that the names the kernel (`uname -m`) and Go
/// (`GOARCH`, image indexes) use compare equal: `x86_64`/`amd64` → `amd64`,
/// `aarch64`/`arm64` → `arm64`, `i386`/`i686` → `386`, `armv7l`/`armhf` → `arm`. Anything
/// else is lowercased.
pub fn normalize_arch(arch: &str) -> Cow<'_, str> {
    let lower = arch.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "x86_64" | "x86-64" | "amd64" => "amd64",
        "aarch64" | "arm64" | "armv8" | "armv8l" => "arm64",
        "i386" | "i486" | "i586" | "i686" | "386" => "386",
        "armv7l" | "armv7" | "armhf" | "armv6l" | "arm" => "arm",
        _ => {
            return if lower == arch {
                Cow::Borrowed(arch)
            } else {
                Cow::Owned(lower)
            }
        }
    };
    Cow::Borrowed(canonical)
}

/// Whether two architecture names mean the same architecture (see [`normalize_arch`]).
pub fn same_arch(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || normalize_arch(a) == normalize_arch(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_normalise_between_kernel_and_go_names() {
        assert!(same_arch("x86_64", "amd64"));
        assert!(same_arch("AMD64", "x86_64"));
        assert!(same_arch("aarch64", "arm64"));
        assert!(same_arch("armv7l", "arm"));
        assert!(!same_arch("x86_64", "arm64"));
        assert!(!same_arch("riscv64", "amd64"));
        assert!(same_arch("riscv64", "RISCV64"));
    }

    #[test]
    fn available_resources_subtract_reservations() {
        let n = NodeInfo {
            nano_cpus: 4_000_000_000,
            memory_bytes: 1 << 30,
            reserved_nano_cpus: 1_500_000_000,
            reserved_memory: 1 << 29,
            ..NodeInfo::default()
        };
        assert_eq!(n.available_nano_cpus(), 2_500_000_000);
        assert_eq!(n.available_memory(), 1 << 29);
        assert_eq!(n.tasks_of("svc"), 0);
    }
}
