//! `place()` against a naive reference: for every task, rescan every node and walk the
//! preference levels by hand. Pseudo-random clusters and requests (a fixed LCG, so failures
//! reproduce).

use std::collections::BTreeMap;

use crate::constraint::Constraint;
use crate::filter::{filter_reason, passes_static};
use crate::node::{Availability, NodeInfo, Protocol};
use crate::place;
use crate::request::{Preference, Strategy, TaskRequest};
use crate::tree::{commit, utilisation_after};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn cluster(rng: &mut Lcg, count: usize) -> Vec<NodeInfo> {
    (0..count)
        .map(|i| {
            let mut n = NodeInfo {
                id: format!("{:04}", rng.next(10_000)) + &i.to_string(),
                ready: rng.next(10) != 0,
                availability: [
                    Availability::Active,
                    Availability::Active,
                    Availability::Drain,
                ][rng.next(3) as usize],
                nano_cpus: (1 + rng.next(8) as i64) * 1_000_000_000,
                memory_bytes: (1 + rng.next(8) as i64) << 30,
                tasks_total: rng.next(5) as usize,
                ..NodeInfo::default()
            };
            if rng.next(4) != 0 {
                n.labels.insert("zone".into(), format!("z{}", rng.next(3)));
            }
            n.labels.insert("rack".into(), format!("r{}", rng.next(2)));
            if rng.next(3) == 0 {
                n.labels.insert("disk".into(), "hdd".into());
            }
            let existing = rng.next(3) as usize;
            if existing > 0 {
                n.service_tasks.insert("svc".into(), existing);
            }
            if rng.next(8) == 0 {
                n.host_ports.insert((Protocol::Tcp, 80));
            }
            n
        })
        .collect()
}

fn request(rng: &mut Lcg) -> TaskRequest {
    let mut r = TaskRequest {
        service_id: "svc".into(),
        reserve_nano_cpus: rng.next(3) as i64 * 500_000_000,
        reserve_memory: rng.next(3) as i64 * (256 << 20),
        max_replicas_per_node: rng.next(4),
        strategy: if rng.next(3) == 0 {
            Strategy::Binpack
        } else {
            Strategy::Spread
        },
        ..TaskRequest::default()
    };
    if rng.next(2) == 0 {
        r.constraints = vec![Constraint::parse("node.labels.disk!=hdd").expect("valid")];
    }
    if rng.next(6) == 0 {
        r.host_ports = vec![(Protocol::Tcp, 80)];
    }
    let prefs = ["spread=node.labels.zone", "spread=node.labels.rack"];
    r.preferences = prefs[..rng.next(3) as usize]
        .iter()
        .map(|p| Preference::parse(p).expect("valid"))
        .collect();
    r
}

/// One task, the slow way. `members`: the nodes eligible when the call began (branches count
/// the service's tasks over them).
fn naive_one(nodes: &mut [NodeInfo], req: &TaskRequest, members: &[usize]) -> Option<usize> {
    let mut group: Vec<usize> = members.to_vec();
    for pref in &req.preferences {
        let mut by_value: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
        for &i in &group {
            let v = pref.attribute.value_of(&nodes[i]).map(str::to_owned);
            by_value.entry(v).or_default().push(i);
        }
        group = by_value
            .into_values()
            .filter(|g| g.iter().any(|&i| filter_reason(&nodes[i], req).is_none()))
            .min_by_key(|g| {
                g.iter()
                    .map(|&i| nodes[i].tasks_of(&req.service_id))
                    .sum::<usize>()
            })?;
    }
    let best = group
        .into_iter()
        .filter(|&i| filter_reason(&nodes[i], req).is_none())
        .min_by(|&a, &b| {
            leaf_order(&nodes[a], req)
                .cmp(&leaf_order(&nodes[b], req))
                .then(nodes[a].id.cmp(&nodes[b].id))
        })?;
    commit(&mut nodes[best], req);
    Some(best)
}

fn leaf_order(n: &NodeInfo, req: &TaskRequest) -> (bool, i128, i128) {
    let penalty = n.failing_services.contains(&req.service_id);
    match req.strategy {
        Strategy::Spread => (
            penalty,
            n.tasks_of(&req.service_id) as i128,
            n.tasks_total as i128,
        ),
        Strategy::Binpack => (
            penalty,
            -i128::from(utilisation_after(n, req)),
            -(n.tasks_total as i128),
        ),
    }
}

#[test]
fn place_agrees_with_a_naive_rescan() {
    let mut rng = Lcg(42);
    for round in 0..300 {
        let size = 1 + rng.next(25) as usize;
        let nodes = cluster(&mut rng, size);
        let req = request(&mut rng);
        let count = rng.next(40) as usize;
        let mut fast = nodes.clone();
        let placement = place(&mut fast, &req, count);
        let mut slow = nodes.clone();
        let members: Vec<usize> = (0..slow.len())
            .filter(|&i| passes_static(&slow[i], &req) && filter_reason(&slow[i], &req).is_none())
            .collect();
        let mut expected = Vec::new();
        while expected.len() < count {
            match naive_one(&mut slow, &req, &members) {
                Some(i) => expected.push(i),
                None => break,
            }
        }
        assert_eq!(placement.assigned, expected, "round {round}: {req:?}");
        assert_eq!(placement.unplaced, count - expected.len(), "round {round}");
        assert_eq!(fast, slow, "round {round}: counters");
    }
}
