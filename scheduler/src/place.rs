//! `place()`: choose nodes for `count` new tasks of one service.

use crate::filter::explain;
use crate::node::NodeInfo;
use crate::request::TaskRequest;
use crate::tree::Tree;

/// The outcome of [`place`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Node indices (into the slice given to `place`), one per placed task, in order.
    pub assigned: Vec<usize>,
    /// Tasks no node could take.
    pub unplaced: usize,
    /// When `unplaced > 0`: Docker's "no suitable node (...)" explanation, computed after
    /// the placements of this call.
    pub reason: Option<String>,
}

/// Chooses a node for each of `count` new tasks of `req`, and counts each task on its node
/// (`tasks_total`, `service_tasks`, `reserved_*`, `host_ports`), so a later call on the same
/// slice sees these placements.
///
/// Every node is filtered once for what cannot change (ready, availability, constraints,
/// platform); resources, host ports and max replicas are checked again on a node each time a
/// task lands on it. Among suitable nodes, placement preferences come first (tasks evened out
/// across the values of the first preference, nodes without the label a group of their own,
/// then the next preference within each group), then the strategy (see
/// [`crate::Strategy`]). Deterministic: the same nodes and request give the same placement.
/// Cost: O(nodes) filtering and heap building (plus O(nodes · log nodes) to sort by id when
/// `nodes` is not already in id order: pass them sorted to skip it), then
/// O(preferences · log nodes) per task.
pub fn place(nodes: &mut [NodeInfo], req: &TaskRequest, count: usize) -> Placement {
    if count == 0 {
        return Placement::default();
    }
    let mut tree = Tree::build(nodes, req);
    let mut assigned = Vec::with_capacity(count);
    while assigned.len() < count {
        match tree.place_one(nodes, req) {
            Some(index) => assigned.push(index),
            None => break,
        }
    }
    let unplaced = count - assigned.len();
    let reason = (unplaced > 0).then(|| explain(nodes, req));
    Placement {
        assigned,
        unplaced,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::constraint::Constraint;
    use crate::node::{Availability, Protocol, Role};
    use crate::request::{Platform, Preference, Strategy};

    const CPU: i64 = 1_000_000_000;
    const GIB: i64 = 1 << 30;

    fn node(id: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            hostname: format!("host-{id}"),
            os: "linux".into(),
            arch: "x86_64".into(),
            nano_cpus: 4 * CPU,
            memory_bytes: 8 * GIB,
            ..NodeInfo::default()
        }
    }

    fn labelled(id: &str, key: &str, value: &str) -> NodeInfo {
        let mut n = node(id);
        n.labels.insert(key.into(), value.into());
        n
    }

    fn req(service: &str) -> TaskRequest {
        TaskRequest {
            service_id: service.into(),
            ..TaskRequest::default()
        }
    }

    /// Tasks of `service` per node id.
    fn per_node(nodes: &[NodeInfo], service: &str) -> BTreeMap<String, usize> {
        nodes
            .iter()
            .map(|n| (n.id.clone(), n.tasks_of(service)))
            .collect()
    }

    fn counts(nodes: &[NodeInfo], service: &str) -> Vec<usize> {
        per_node(nodes, service).into_values().collect()
    }

    #[test]
    fn six_replicas_on_three_nodes_land_two_each() {
        let mut nodes = vec![node("c"), node("a"), node("b")];
        let p = place(&mut nodes, &req("web"), 6);
        assert_eq!(p.assigned.len(), 6);
        assert_eq!(p.unplaced, 0);
        assert_eq!(p.reason, None);
        assert_eq!(counts(&nodes, "web"), vec![2, 2, 2]);
        // Round robin in node-id order: a, b, c, a, b, c.
        assert_eq!(p.assigned, vec![1, 2, 0, 1, 2, 0]);
        assert!(nodes.iter().all(|n| n.tasks_total == 2));
    }

    #[test]
    fn spread_fills_the_emptiest_nodes_and_breaks_ties_by_total_tasks() {
        let mut nodes = vec![node("a"), node("b"), node("c")];
        nodes[0].service_tasks.insert("web".into(), 3);
        nodes[0].tasks_total = 3;
        nodes[1].tasks_total = 5; // other services' tasks
        let p = place(&mut nodes, &req("web"), 4);
        // c (0 of web, 0 total) then b (0 of web, 5 total), then c again, then b: both reach 2.
        assert_eq!(p.assigned, vec![2, 1, 2, 1]);
        assert_eq!(counts(&nodes, "web"), vec![3, 2, 2]);
        let p = place(&mut nodes, &req("web"), 3);
        assert_eq!(p.assigned.len(), 3);
        // Everyone at 3 of web: c (2, fewest in total), b, then a wins the tie on id.
        assert_eq!(counts(&nodes, "web"), vec![4, 3, 3]);
    }

    #[test]
    fn successive_calls_see_earlier_placements() {
        let mut nodes = vec![node("a"), node("b"), node("c")];
        for _ in 0..5 {
            let p = place(&mut nodes, &req("web"), 1);
            assert_eq!(p.assigned.len(), 1);
        }
        assert_eq!(counts(&nodes, "web"), vec![2, 2, 1]);
        // Another service evens out on total tasks: c first.
        let p = place(&mut nodes, &req("db"), 1);
        assert_eq!(p.assigned, vec![2]);
    }

    #[test]
    fn down_paused_and_drained_nodes_take_nothing() {
        let mut nodes = vec![node("a"), node("b"), node("c"), node("d")];
        nodes[0].ready = false;
        nodes[1].availability = Availability::Pause;
        nodes[2].availability = Availability::Drain;
        let p = place(&mut nodes, &req("web"), 5);
        assert_eq!(p.assigned, vec![3; 5]);
        assert_eq!(counts(&nodes, "web"), vec![0, 0, 0, 5]);

        nodes[3].ready = false;
        let p = place(&mut nodes, &req("web"), 2);
        assert!(p.assigned.is_empty());
        assert_eq!(p.unplaced, 2);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (4 nodes not available for new tasks)")
        );
    }

    #[test]
    fn constraints_with_labels_and_not_equal() {
        let mut nodes = vec![
            labelled("a", "zone", "east"),
            labelled("b", "zone", "west"),
            labelled("c", "zone", "east"),
            node("m"),
        ];
        nodes[3].role = Role::Manager;
        nodes[3].labels.insert("zone".into(), "east".into());
        let mut r = req("web");
        r.constraints = Constraint::parse_all(&["node.labels.zone==east", "node.role!=manager"])
            .expect("valid");
        let p = place(&mut nodes, &r, 4);
        assert_eq!(p.assigned, vec![0, 2, 0, 2]);

        let mut r = req("api");
        r.constraints = vec![Constraint::parse("node.labels.zone!=east").expect("valid")];
        let p = place(&mut nodes, &r, 2);
        assert_eq!(p.assigned, vec![1, 1]);

        let mut r = req("gpu");
        r.constraints = vec![Constraint::parse("engine.labels.gpu==true").expect("valid")];
        let p = place(&mut nodes, &r, 1);
        assert_eq!(p.unplaced, 1);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (scheduling constraints not satisfied on 4 nodes)")
        );
    }

    #[test]
    fn platforms_filter_nodes() {
        let mut nodes = vec![node("a"), node("b")];
        nodes[1].arch = "aarch64".into();
        let mut r = req("web");
        r.platforms = vec![Platform {
            os: "linux".into(),
            arch: "arm64".into(),
        }];
        let p = place(&mut nodes, &r, 2);
        assert_eq!(p.assigned, vec![1, 1]);
        r.platforms = vec![Platform {
            os: "windows".into(),
            arch: String::new(),
        }];
        let p = place(&mut nodes, &r, 1);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (unsupported platform on 2 nodes)")
        );
    }

    #[test]
    fn preferences_even_out_across_zones_of_unequal_size() {
        // Zone a has one node, zone b three: each zone gets half the tasks.
        let mut nodes = vec![
            labelled("n1", "zone", "a"),
            labelled("n2", "zone", "b"),
            labelled("n3", "zone", "b"),
            labelled("n4", "zone", "b"),
        ];
        let mut r = req("web");
        r.preferences = vec![Preference::parse("spread=node.labels.zone").expect("valid")];
        let p = place(&mut nodes, &r, 8);
        assert_eq!(p.unplaced, 0);
        assert_eq!(counts(&nodes, "web"), vec![4, 2, 1, 1]);
        // Without the preference it would be 2 each.
        let p = place(&mut nodes, &req("plain"), 8);
        assert_eq!(p.unplaced, 0);
        assert_eq!(counts(&nodes, "plain"), vec![2, 2, 2, 2]);
    }

    #[test]
    fn nodes_without_the_label_form_their_own_group() {
        let mut nodes = vec![
            labelled("n1", "zone", "a"),
            labelled("n2", "zone", "a"),
            labelled("n3", "zone", "b"),
            node("n4"),
            node("n5"),
        ];
        let mut r = req("web");
        r.preferences = vec![Preference::parse("spread=node.labels.zone").expect("valid")];
        let p = place(&mut nodes, &r, 6);
        assert_eq!(p.unplaced, 0);
        // Three groups (a, b, none), two tasks each.
        assert_eq!(counts(&nodes, "web"), vec![1, 1, 2, 1, 1]);
    }

    #[test]
    fn nested_preferences_spread_within_each_branch() {
        let mut nodes = Vec::new();
        for (id, zone, rack) in [
            ("n1", "a", "r1"),
            ("n2", "a", "r1"),
            ("n3", "a", "r2"),
            ("n4", "b", "r3"),
        ] {
            let mut n = labelled(id, "zone", zone);
            n.labels.insert("rack".into(), rack.into());
            nodes.push(n);
        }
        let mut r = req("web");
        r.preferences = vec![
            Preference::parse("spread=node.labels.zone").expect("valid"),
            Preference::parse("spread=node.labels.rack").expect("valid"),
        ];
        let p = place(&mut nodes, &r, 8);
        assert_eq!(p.unplaced, 0);
        // zone a: 4 tasks, split 2 (rack r1: 1+1) and 2 (rack r2); zone b: 4.
        assert_eq!(counts(&nodes, "web"), vec![1, 1, 2, 4]);
    }

    #[test]
    fn preferences_count_existing_tasks_and_skip_full_branches() {
        let mut nodes = vec![
            labelled("n1", "zone", "a"),
            labelled("n2", "zone", "b"),
            labelled("n3", "zone", "c"),
        ];
        nodes[0].service_tasks.insert("web".into(), 3);
        nodes[2].memory_bytes = GIB; // zone c fits one task
        let mut r = req("web");
        r.reserve_memory = GIB;
        r.preferences = vec![Preference::parse("spread=node.labels.zone").expect("valid")];
        let p = place(&mut nodes, &r, 5);
        assert_eq!(p.unplaced, 0);
        // b and c catch up with a's 3; c is full after one, so b takes two more, then a and
        // b tie at 3 and a wins on its rank (lowest label value).
        assert_eq!(p.assigned, vec![1, 2, 1, 1, 0]);
        assert_eq!(counts(&nodes, "web"), vec![4, 3, 1]);
    }

    #[test]
    fn max_replicas_per_node() {
        let mut nodes = vec![node("a"), node("b")];
        let mut r = req("web");
        r.max_replicas_per_node = 2;
        let p = place(&mut nodes, &r, 5);
        assert_eq!(p.assigned.len(), 4);
        assert_eq!(p.unplaced, 1);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (max replicas per node limit exceed)")
        );
        assert_eq!(counts(&nodes, "web"), vec![2, 2]);
    }

    #[test]
    fn resource_exhaustion_places_what_fits_and_says_why() {
        let mut nodes = vec![node("a"), node("b"), labelled("c", "zone", "x")];
        let mut r = req("web");
        r.reserve_nano_cpus = 3 * CPU / 2; // 1.5 of 4 CPUs: two per node
        r.reserve_memory = GIB;
        r.constraints = vec![Constraint::parse("node.labels.zone!=x").expect("valid")];
        let p = place(&mut nodes, &r, 6);
        assert_eq!(p.assigned.len(), 4);
        assert_eq!(p.unplaced, 2);
        assert_eq!(
            p.reason.as_deref(),
            Some(
                "no suitable node (insufficient resources on 2 nodes; \
                 scheduling constraints not satisfied on 1 node)"
            )
        );
        assert_eq!(nodes[0].reserved_nano_cpus, 3 * CPU);
        assert_eq!(nodes[0].reserved_memory, 2 * GIB);
        let why = crate::filter_reason(&nodes[0], &r).expect("full");
        assert_eq!(
            why.to_string(),
            "insufficient resources: the task reserves 1.5 CPUs and 1.00 GiB of memory, \
             the node has 1 CPUs and 6.00 GiB left"
        );
    }

    #[test]
    fn host_ports_allow_one_task_per_node() {
        let mut nodes = vec![node("a"), node("b"), node("c")];
        nodes[2].host_ports.insert((Protocol::Tcp, 8080));
        let mut r = req("web");
        r.host_ports = vec![(Protocol::Tcp, 8080)];
        let p = place(&mut nodes, &r, 3);
        assert_eq!(p.assigned, vec![0, 1]);
        assert_eq!(p.unplaced, 1);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (host-mode port already in use on 3 nodes)")
        );
        assert!(nodes[0].host_ports.contains(&(Protocol::Tcp, 8080)));
        // Another protocol on the same number is free.
        let mut r = req("dns");
        r.host_ports = vec![(Protocol::Udp, 8080)];
        assert_eq!(place(&mut nodes, &r, 3).assigned.len(), 3);
    }

    #[test]
    fn binpack_fills_one_node_before_the_next() {
        let mut nodes = vec![node("a"), node("b"), node("c")];
        nodes[1].reserved_nano_cpus = CPU; // b is already the busiest
        nodes[1].tasks_total = 1;
        let mut r = req("batch");
        r.strategy = Strategy::Binpack;
        r.reserve_nano_cpus = CPU;
        r.reserve_memory = GIB;
        let p = place(&mut nodes, &r, 5);
        // b fits 3 more CPUs, then a (tie with c broken by id) takes the rest.
        assert_eq!(p.assigned, vec![1, 1, 1, 0, 0]);
        assert_eq!(counts(&nodes, "batch"), vec![2, 3, 0]);
    }

    #[test]
    fn binpack_without_reservations_packs_by_task_count() {
        let mut nodes = vec![node("a"), node("b")];
        nodes[1].tasks_total = 2;
        let mut r = req("batch");
        r.strategy = Strategy::Binpack;
        r.max_replicas_per_node = 3;
        let p = place(&mut nodes, &r, 4);
        assert_eq!(p.assigned, vec![1, 1, 1, 0]);
    }

    #[test]
    fn failing_nodes_come_last() {
        let mut nodes = vec![node("a"), node("b")];
        nodes[0].failing_services.insert("web".into());
        let p = place(&mut nodes, &req("web"), 3);
        assert_eq!(p.assigned, vec![1, 1, 1]);
        let p = place(&mut nodes, &req("other"), 1);
        assert_eq!(p.assigned, vec![0], "only for that service");
    }

    #[test]
    fn placement_is_deterministic_whatever_the_input_order() {
        let make = |order: &[usize]| -> Vec<NodeInfo> {
            order
                .iter()
                .map(|&i| {
                    let zone = ["a", "b", "c"][i % 3];
                    let mut n = labelled(&format!("node-{i:02}"), "zone", zone);
                    n.tasks_total = i % 4;
                    n
                })
                .collect()
        };
        let forward: Vec<usize> = (0..20).collect();
        let backward: Vec<usize> = (0..20).rev().collect();
        let mut r = req("web");
        r.preferences = vec![Preference::parse("spread=node.labels.zone").expect("valid")];
        let mut a = make(&forward);
        let mut b = make(&backward);
        let pa = place(&mut a, &r, 37);
        let pb = place(&mut b, &r, 37);
        let ids = |nodes: &[NodeInfo], p: &Placement| -> Vec<String> {
            p.assigned.iter().map(|&i| nodes[i].id.clone()).collect()
        };
        assert_eq!(ids(&a, &pa), ids(&b, &pb));
        assert_eq!(per_node(&a, "web"), per_node(&b, "web"));
        // And again from scratch: the same answer.
        let mut c = make(&forward);
        assert_eq!(place(&mut c, &r, 37), pa);
    }

    #[test]
    fn zero_tasks_and_no_nodes() {
        let mut nodes = vec![node("a")];
        assert_eq!(place(&mut nodes, &req("web"), 0), Placement::default());
        let p = place(&mut [], &req("web"), 2);
        assert_eq!(p.unplaced, 2);
        assert_eq!(
            p.reason.as_deref(),
            Some("no suitable node (the cluster has no nodes)")
        );
    }
}
