//! The filters: whether a node may take one more task of a request, and if not, why.
//!
//! Checked in this order; a node is reported under the first it fails:
//!
//! ```text
//!  static (once per place() call)            dynamic (again after each task lands on the node)
//!  ready ─► availability ─► constraints ─►   resources ─► host ports ─► max replicas per node
//!  platform
//! ```
//!
//! Swarm's filters are the same, bar order (it checks resources before constraints); checking
//! what cannot change first gives the more useful reason and lets `place()` evaluate the
//! static part once per node.

use std::collections::BTreeMap;
use std::fmt;

use crate::node::{Availability, NodeInfo, Protocol};
use crate::request::{Platform, TaskRequest};

/// Why a node cannot take (another) task of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterFailure {
    /// node is down
    NotReady,
    /// node availability is {availability} (pause and drain take no new tasks)
    Unavailable { availability: Availability },
    /// constraint {constraint} is not satisfied
    Constraint { constraint: String },
    /// node platform {os}/{arch} matches none of the task's platforms
    Platform {
        os: String,
        arch: String,
        wanted: Vec<Platform>,
    },
    /// insufficient resources: the task reserves more CPU or memory than is left
    Resources {
        reserve_nano_cpus: i64,
        available_nano_cpus: i64,
        reserve_memory: i64,
        available_memory: i64,
    },
    /// host-mode port {port}/{protocol} already in use
    HostPort { protocol: Protocol, port: u16 },
    /// the node already runs {max} tasks of the service (--replicas-max-per-node)
    MaxReplicas { max: u64 },
}

/// The filter a [`FilterFailure`] belongs to; a placement's reason counts nodes per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterKind {
    /// not ready, or not active
    Availability,
    Constraints,
    Platform,
    Resources,
    HostPort,
    MaxReplicas,
}

impl FilterFailure {
    pub fn kind(&self) -> FilterKind {
        match self {
            FilterFailure::NotReady | FilterFailure::Unavailable { .. } => FilterKind::Availability,
            FilterFailure::Constraint { .. } => FilterKind::Constraints,
            FilterFailure::Platform { .. } => FilterKind::Platform,
            FilterFailure::Resources { .. } => FilterKind::Resources,
            FilterFailure::HostPort { .. } => FilterKind::HostPort,
            FilterFailure::MaxReplicas { .. } => FilterKind::MaxReplicas,
        }
    }
}

impl FilterKind {
    /// Docker's phrase for `nodes` nodes failing this filter, as in "no suitable node
    /// (scheduling constraints not satisfied on 3 nodes)".
    pub fn explain(self, nodes: usize) -> String {
        let on = if nodes == 1 {
            "1 node".to_owned()
        } else {
            format!("{nodes} nodes")
        };
        match self {
            FilterKind::Availability => format!("{on} not available for new tasks"),
            FilterKind::Constraints => format!("scheduling constraints not satisfied on {on}"),
            FilterKind::Platform => format!("unsupported platform on {on}"),
            FilterKind::Resources => format!("insufficient resources on {on}"),
            FilterKind::HostPort => format!("host-mode port already in use on {on}"),
            FilterKind::MaxReplicas => "max replicas per node limit exceed".to_owned(),
        }
    }
}

impl fmt::Display for FilterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterFailure::NotReady => f.write_str("node is down"),
            FilterFailure::Unavailable { availability } => write!(
                f,
                "node availability is {} (only active nodes take new tasks)",
                availability.as_str()
            ),
            FilterFailure::Constraint { constraint } => {
                write!(f, "constraint {constraint} is not satisfied")
            }
            FilterFailure::Platform { os, arch, wanted } => {
                let wanted: Vec<String> = wanted.iter().map(Platform::to_string).collect();
                write!(
                    f,
                    "node platform {os}/{arch} matches none of the task's platforms ({})",
                    wanted.join(", ")
                )
            }
            FilterFailure::Resources {
                reserve_nano_cpus,
                available_nano_cpus,
                reserve_memory,
                available_memory,
            } => write!(
                f,
                "insufficient resources: the task reserves {} CPUs and {} of memory, \
                 the node has {} CPUs and {} left",
                cpus(*reserve_nano_cpus),
                bytes(*reserve_memory),
                cpus(*available_nano_cpus),
                bytes(*available_memory)
            ),
            FilterFailure::HostPort { protocol, port } => {
                write!(f, "host-mode port {port}/{protocol} already in use")
            }
            FilterFailure::MaxReplicas { max } => write!(
                f,
                "the node already runs {max} tasks of the service (max replicas per node)"
            ),
        }
    }
}

fn cpus(nano: i64) -> String {
    let s = format!("{:.3}", nano as f64 / 1e9);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn bytes(b: i64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b.unsigned_abs() >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (MIB * 1024.0))
    } else {
        format!("{:.1} MiB", b as f64 / MIB)
    }
}

/// Why `node` cannot take one more task of `req`, or `None` when it can. For task status
/// messages ("no suitable node" details) and for the constraint enforcer; it checks the node
/// as it is now, including the tasks already counted on it.
pub fn filter_reason(node: &NodeInfo, req: &TaskRequest) -> Option<FilterFailure> {
    static_reason(node, req).or_else(|| dynamic_reason(node, req))
}

/// The part of [`filter_reason`] that placing tasks cannot change.
pub(crate) fn static_reason(node: &NodeInfo, req: &TaskRequest) -> Option<FilterFailure> {
    if !node.ready {
        return Some(FilterFailure::NotReady);
    }
    if node.availability != Availability::Active {
        return Some(FilterFailure::Unavailable {
            availability: node.availability,
        });
    }
    if let Some(c) = req.constraints.iter().find(|c| !c.matches(node)) {
        return Some(FilterFailure::Constraint {
            constraint: c.to_string(),
        });
    }
    if !platform_ok(node, req) {
        return Some(FilterFailure::Platform {
            os: node.os.clone(),
            arch: node.arch.clone(),
            wanted: req.platforms.clone(),
        });
    }
    None
}

/// The part of [`filter_reason`] that changes as tasks land on the node.
pub(crate) fn dynamic_reason(node: &NodeInfo, req: &TaskRequest) -> Option<FilterFailure> {
    if !resources_ok(node, req) {
        return Some(FilterFailure::Resources {
            reserve_nano_cpus: req.reserve_nano_cpus,
            available_nano_cpus: node.available_nano_cpus(),
            reserve_memory: req.reserve_memory,
            available_memory: node.available_memory(),
        });
    }
    if let Some(&(protocol, port)) = req.host_ports.iter().find(|p| node.host_ports.contains(p)) {
        return Some(FilterFailure::HostPort { protocol, port });
    }
    if !replicas_ok(node, req) {
        return Some(FilterFailure::MaxReplicas {
            max: req.max_replicas_per_node,
        });
    }
    None
}

/// [`static_reason`]`.is_none()`, without building the failure.
pub(crate) fn passes_static(node: &NodeInfo, req: &TaskRequest) -> bool {
    node.ready
        && node.availability == Availability::Active
        && req.constraints.iter().all(|c| c.matches(node))
        && platform_ok(node, req)
}

/// [`dynamic_reason`]`.is_none()`, without building the failure.
pub(crate) fn fits(node: &NodeInfo, req: &TaskRequest) -> bool {
    resources_ok(node, req)
        && req.host_ports.iter().all(|p| !node.host_ports.contains(p))
        && replicas_ok(node, req)
}

fn platform_ok(node: &NodeInfo, req: &TaskRequest) -> bool {
    req.platforms.is_empty() || req.platforms.iter().any(|p| p.matches(node))
}

fn resources_ok(node: &NodeInfo, req: &TaskRequest) -> bool {
    (req.reserve_nano_cpus <= 0 || req.reserve_nano_cpus <= node.available_nano_cpus())
        && (req.reserve_memory <= 0 || req.reserve_memory <= node.available_memory())
}

fn replicas_ok(node: &NodeInfo, req: &TaskRequest) -> bool {
    req.max_replicas_per_node == 0
        || (node.tasks_of(&req.service_id) as u64) < req.max_replicas_per_node
}

/// Docker's "no suitable node (...)" for a request none of `nodes` can take: each node
/// counted under the first filter it fails, the most common reason first.
pub fn explain(nodes: &[NodeInfo], req: &TaskRequest) -> String {
    let mut counts: BTreeMap<FilterKind, usize> = BTreeMap::new();
    for node in nodes {
        if let Some(failure) = filter_reason(node, req) {
            *counts.entry(failure.kind()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return if nodes.is_empty() {
            "no suitable node (the cluster has no nodes)".to_owned()
        } else {
            "no suitable node".to_owned()
        };
    }
    let mut counts: Vec<(FilterKind, usize)> = counts.into_iter().collect();
    // Stable: equal counts keep the filter order.
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let parts: Vec<String> = counts.iter().map(|(k, n)| k.explain(*n)).collect();
    format!("no suitable node ({})", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraint::Constraint;

    fn req() -> TaskRequest {
        TaskRequest {
            service_id: "web".into(),
            ..TaskRequest::default()
        }
    }

    #[test]
    fn reports_the_first_failing_filter() {
        let down = NodeInfo {
            ready: false,
            availability: Availability::Drain,
            ..NodeInfo::default()
        };
        assert_eq!(filter_reason(&down, &req()), Some(FilterFailure::NotReady));
        let drained = NodeInfo {
            availability: Availability::Drain,
            ..NodeInfo::default()
        };
        assert_eq!(
            filter_reason(&drained, &req()).map(|f| f.to_string()),
            Some("node availability is drain (only active nodes take new tasks)".into())
        );
        let mut r = req();
        r.constraints = vec![Constraint::parse("node.role==manager").expect("valid")];
        r.reserve_memory = 1;
        assert_eq!(
            filter_reason(&NodeInfo::default(), &r),
            Some(FilterFailure::Constraint {
                constraint: "node.role==manager".into()
            })
        );
    }

    #[test]
    fn resources_ports_and_replicas_are_checked_against_what_is_left() {
        let node = NodeInfo {
            nano_cpus: 2_000_000_000,
            reserved_nano_cpus: 1_500_000_000,
            memory_bytes: 1 << 30,
            host_ports: [(Protocol::Tcp, 80)].into(),
            service_tasks: [("web".to_owned(), 2)].into(),
            ..NodeInfo::default()
        };
        let mut r = req();
        r.reserve_nano_cpus = 500_000_000;
        assert_eq!(filter_reason(&node, &r), None);
        r.reserve_nano_cpus = 600_000_000;
        let failure = filter_reason(&node, &r).expect("too much CPU");
        assert_eq!(failure.kind(), FilterKind::Resources);
        assert_eq!(
            failure.to_string(),
            "insufficient resources: the task reserves 0.6 CPUs and 0.0 MiB of memory, \
             the node has 0.5 CPUs and 1.00 GiB left"
        );
        r.reserve_nano_cpus = 0;
        r.host_ports = vec![(Protocol::Udp, 80)];
        assert_eq!(filter_reason(&node, &r), None, "udp/80 is free");
        r.host_ports.push((Protocol::Tcp, 80));
        assert_eq!(
            filter_reason(&node, &r).map(|f| f.to_string()),
            Some("host-mode port 80/tcp already in use".into())
        );
        r.host_ports.clear();
        r.max_replicas_per_node = 2;
        assert_eq!(
            filter_reason(&node, &r),
            Some(FilterFailure::MaxReplicas { max: 2 })
        );
        r.max_replicas_per_node = 3;
        assert_eq!(filter_reason(&node, &r), None);
    }

    #[test]
    fn explains_like_docker_most_common_reason_first() {
        let mut r = req();
        r.constraints = vec![Constraint::parse("node.labels.zone==a").expect("valid")];
        r.reserve_memory = 1 << 30;
        let zone_a = |mem| NodeInfo {
            labels: [("zone".to_owned(), "a".to_owned())].into(),
            memory_bytes: mem,
            ..NodeInfo::default()
        };
        let nodes = vec![
            NodeInfo::default(),
            NodeInfo::default(),
            NodeInfo::default(),
            zone_a(1 << 20),
            NodeInfo {
                ready: false,
                ..NodeInfo::default()
            },
        ];
        assert_eq!(
            explain(&nodes, &r),
            "no suitable node (scheduling constraints not satisfied on 3 nodes; \
             1 node not available for new tasks; insufficient resources on 1 node)"
        );
        assert_eq!(
            explain(&[], &r),
            "no suitable node (the cluster has no nodes)"
        );
    }
}
