//! The placement tree: one level per placement preference, a heap at every branch.
//!
//! ```text
//!             root (heap of zones, keyed by tasks of the service in the zone)
//!            /          |           \
//!      zone=a        zone=b        (no zone label)       one level per preference
//!     (heap of      (heap of        (heap of
//!      nodes)        nodes)          nodes)               leaves: heap of nodes, keyed by
//!                                                         the strategy (spread / binpack)
//! ```
//!
//! Placing a task walks from the root down the minimum child at each level and pops the best
//! node of the leaf: O(levels × log width), no rescans. Only the chosen node's counters change,
//! so only its key and fit are recomputed; a node that no longer fits is not pushed back, and a
//! branch whose heap empties is dropped from its parent. Invariant: every branch in a heap has
//! at least one node that fits. Keys are unique (they end in a rank), so the order is total
//! and the result deterministic.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::filter::{fits, passes_static};
use crate::node::NodeInfo;
use crate::request::{Strategy, TaskRequest};

/// A heap entry; the smallest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// 1 when the service's tasks have been failing on this node (it goes last).
    penalty: u8,
    primary: u64,
    secondary: u64,
    /// Position among the eligible nodes sorted by preference values then node id: the tie
    /// breaker (lowest label value, then lowest node id).
    rank: u32,
    /// A node index (leaf) or a branch index (internal).
    child: u32,
}

struct Branch {
    heap: BinaryHeap<Reverse<Key>>,
    leaf: bool,
}

pub(crate) struct Tree {
    branches: Vec<Branch>,
}

impl Tree {
    /// Filters `nodes` for `req` (every filter, as they stand now) and builds the tree over
    /// the nodes that pass. Ranks follow node ids; when `nodes` is already sorted by id (as a
    /// store keyed by id hands them out) no sort is needed.
    pub(crate) fn build(nodes: &[NodeInfo], req: &TaskRequest) -> Tree {
        let mut eligible: Vec<usize> = (0..nodes.len())
            .filter(|&i| passes_static(&nodes[i], req) && fits(&nodes[i], req))
            .collect();
        if !eligible
            .windows(2)
            .all(|w| nodes[w[0]].id <= nodes[w[1]].id)
        {
            eligible.sort_unstable_by(|&a, &b| nodes[a].id.cmp(&nodes[b].id));
        }
        // (rank, node index), in rank order.
        let members: Vec<(u32, usize)> = eligible
            .iter()
            .enumerate()
            .map(|(r, &i)| (rank(r), i))
            .collect();
        let mut tree = Tree {
            branches: Vec::new(),
        };
        if !members.is_empty() {
            tree.build_branch(nodes, req, &members, 0);
        }
        tree
    }

    /// Builds the branch over `members` (nodes sharing the values of the first `level`
    /// preferences, in rank order); returns its index and the tasks of the service on it.
    fn build_branch(
        &mut self,
        nodes: &[NodeInfo],
        req: &TaskRequest,
        members: &[(u32, usize)],
        level: usize,
    ) -> (usize, u64) {
        let id = self.branches.len();
        if level == req.preferences.len() {
            let mut tasks = 0;
            let keys: Vec<Reverse<Key>> = members
                .iter()
                .map(|&(r, i)| {
                    let key = node_key(&nodes[i], req, r, i);
                    tasks += nodes[i].tasks_of(&req.service_id) as u64;
                    Reverse(key)
                })
                .collect();
            self.branches.push(Branch {
                heap: BinaryHeap::from(keys),
                leaf: true,
            });
            return (id, tasks);
        }
        self.branches.push(Branch {
            heap: BinaryHeap::new(),
            leaf: false,
        });
        // Missing labels (None) sort first and form their own group.
        let attribute = &req.preferences[level].attribute;
        let mut groups: BTreeMap<Option<&str>, Vec<(u32, usize)>> = BTreeMap::new();
        for &(r, i) in members {
            groups
                .entry(attribute.value_of(&nodes[i]))
                .or_default()
                .push((r, i));
        }
        let mut keys = Vec::with_capacity(groups.len());
        let mut total = 0;
        for (n, group) in groups.values().enumerate() {
            let (child, tasks) = self.build_branch(nodes, req, group, level + 1);
            total += tasks;
            keys.push(Reverse(Key {
                penalty: 0,
                primary: tasks,
                secondary: 0,
                rank: rank(n),
                child: rank(child),
            }));
        }
        self.branches[id].heap = BinaryHeap::from(keys);
        (id, total)
    }

    /// Places one task: picks a node, updates its counters, and returns its index; `None`
    /// when no node can take another task of `req`.
    pub(crate) fn place_one(&mut self, nodes: &mut [NodeInfo], req: &TaskRequest) -> Option<usize> {
        if self.branches.is_empty() {
            return None;
        }
        self.place_in(0, nodes, req)
    }

    fn place_in(
        &mut self,
        branch: usize,
        nodes: &mut [NodeInfo],
        req: &TaskRequest,
    ) -> Option<usize> {
        loop {
            let Reverse(mut key) = self.branches[branch].heap.pop()?;
            let child = key.child as usize;
            if self.branches[branch].leaf {
                let node = &mut nodes[child];
                commit(node, req);
                if fits(node, req) {
                    let key = node_key(node, req, key.rank, child);
                    self.branches[branch].heap.push(Reverse(key));
                }
                return Some(child);
            }
            let placed = self.place_in(child, nodes, req);
            if placed.is_some() {
                key.primary += 1;
            }
            if !self.branches[child].heap.is_empty() {
                self.branches[branch].heap.push(Reverse(key));
            }
            if placed.is_some() {
                return placed;
            }
        }
    }
}

fn rank(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 nodes")
}

/// The leaf key of a node for `req`'s strategy.
fn node_key(node: &NodeInfo, req: &TaskRequest, rank: u32, index: usize) -> Key {
    let penalty = u8::from(
        !node.failing_services.is_empty() && node.failing_services.contains(&req.service_id),
    );
    let (primary, secondary) = match req.strategy {
        Strategy::Spread => (
            node.tasks_of(&req.service_id) as u64,
            node.tasks_total as u64,
        ),
        Strategy::Binpack => (
            u64::MAX - utilisation_after(node, req),
            u64::MAX - node.tasks_total as u64,
        ),
    };
    Key {
        penalty,
        primary,
        secondary,
        rank,
        child: self::rank(index),
    }
}

/// Mean share of the node's CPU and memory reserved once one more task of `req` is on it, in
/// millionths; dimensions the node reports no capacity for are left out.
pub(crate) fn utilisation_after(node: &NodeInfo, req: &TaskRequest) -> u64 {
    let share = |reserved: i64, extra: i64, capacity: i64| -> Option<u64> {
        (capacity > 0).then(|| {
            let used = i128::from(reserved.max(0)) + i128::from(extra.max(0));
            u64::try_from(used * 1_000_000 / i128::from(capacity)).unwrap_or(u64::MAX / 4)
        })
    };
    let shares = [
        share(
            node.reserved_nano_cpus,
            req.reserve_nano_cpus,
            node.nano_cpus,
        ),
        share(node.reserved_memory, req.reserve_memory, node.memory_bytes),
    ];
    let (sum, n) = shares
        .iter()
        .flatten()
        .fold((0u64, 0u64), |(s, n), v| (s.saturating_add(*v), n + 1));
    sum.checked_div(n).unwrap_or(0)
}

/// Counts one more task of `req` on `node`.
pub(crate) fn commit(node: &mut NodeInfo, req: &TaskRequest) {
    node.tasks_total += 1;
    match node.service_tasks.get_mut(&req.service_id) {
        Some(n) => *n += 1,
        None => {
            node.service_tasks.insert(req.service_id.clone(), 1);
        }
    }
    node.reserved_nano_cpus = node
        .reserved_nano_cpus
        .saturating_add(req.reserve_nano_cpus.max(0));
    node.reserved_memory = node
        .reserved_memory
        .saturating_add(req.reserve_memory.max(0));
    node.host_ports.extend(req.host_ports.iter().copied());
}
