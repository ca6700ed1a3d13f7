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
use std::collections::BinaryHeap;

use crate::filter::fits;
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

/// An eligible node with its preference values, before grouping.
struct Candidate<'n> {
    path: Vec<Option<&'n str>>,
    id: &'n str,
    index: usize,
}

impl Tree {
    /// Builds the tree over `eligible` (indices of nodes that pass every filter now).
    pub(crate) fn build(nodes: &[NodeInfo], req: &TaskRequest, eligible: &[usize]) -> Tree {
        let mut candidates: Vec<Candidate<'_>> = eligible
            .iter()
            .map(|&index| {
                let node = &nodes[index];
                Candidate {
                    path: req
                        .preferences
                        .iter()
                        .map(|p| p.attribute.value_of(node))
                        .collect(),
                    id: &node.id,
                    index,
                }
            })
            .collect();
        // Missing labels (None) sort first and form their own group.
        candidates.sort_unstable_by(|a, b| a.path.cmp(&b.path).then_with(|| a.id.cmp(b.id)));
        let mut tree = Tree {
            branches: Vec::new(),
        };
        tree.build_branch(nodes, req, &candidates, 0, 0);
        tree
    }

    /// Builds the branch over `group` (candidates sharing their first `level` values), whose
    /// first element has position `offset` in the sorted list; returns its index.
    fn build_branch(
        &mut self,
        nodes: &[NodeInfo],
        req: &TaskRequest,
        group: &[Candidate<'_>],
        level: usize,
        offset: usize,
    ) -> usize {
        let id = self.branches.len();
        let leaf = level == req.preferences.len();
        self.branches.push(Branch {
            heap: BinaryHeap::with_capacity(if leaf { group.len() } else { 4 }),
            leaf,
        });
        if leaf {
            for (i, c) in group.iter().enumerate() {
                let key = node_key(&nodes[c.index], req, rank(offset + i), c.index);
                self.branches[id].heap.push(Reverse(key));
            }
            return id;
        }
        let mut start = 0;
        let mut runs = 0;
        while start < group.len() {
            let value = group[start].path[level];
            let len = group[start..]
                .iter()
                .take_while(|c| c.path[level] == value)
                .count();
            let run = &group[start..start + len];
            let child = self.build_branch(nodes, req, run, level + 1, offset + start);
            let tasks: usize = run
                .iter()
                .map(|c| nodes[c.index].tasks_of(&req.service_id))
                .sum();
            self.branches[id].heap.push(Reverse(Key {
                penalty: 0,
                primary: tasks as u64,
                secondary: 0,
                rank: rank(runs),
                child: rank(child),
            }));
            runs += 1;
            start += len;
        }
        id
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
    let penalty = u8::from(node.failing_services.contains(&req.service_id));
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
