//! Invariant: no acknowledged write is lost. After labels are acknowledged through every
//! manager, every berthd is killed with SIGKILL at once and restarted; the cluster comes
//! back (one leader, every node Ready) and every acknowledged label is there on every
//! manager.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, swarm, Cluster};

const WRITES: usize = 12;

#[test]
fn acknowledged_writes_survive_a_kill_of_every_daemon() {
    let c = Cluster::new(4);
    swarm::form(&c, 3, 1);
    let managers = &c.hosts()[..3];
    let ids: Vec<String> = c.hosts().iter().map(swarm::node_id).collect();

    let mut acked: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for i in 0..WRITES {
        let (node, k, v) = (&ids[i % ids.len()], format!("k{i}"), format!("v{i}"));
        let label = format!("{k}={v}");
        managers[i % 3].docker_ok(&["node", "update", "--label-add", &label, node]);
        acked.entry(node).or_default().insert(k, v);
    }

    for h in c.hosts() {
        h.kill9();
    }
    let t = Instant::now();
    for h in c.hosts() {
        h.launch();
    }
    for h in c.hosts() {
        h.wait_ready();
    }
    let back = eventually(Duration::from_secs(90), || {
        managers.iter().all(|m| swarm::converged(m, 4, 3))
    });
    assert!(
        back,
        "the cluster did not come back: {:?}",
        swarm::node_ls(&managers[0])
    );
    eprintln!(
        "cluster back {:?} after restarting every berthd",
        t.elapsed()
    );

    // A manager that had not yet received the last writes before the kill gets them from
    // the new leader's first replication round: reads on it converge, nothing is lost.
    for m in managers {
        let all_there = eventually(Duration::from_secs(10), || {
            acked
                .iter()
                .all(|(node, labels)| swarm::labels(m, node).ok().as_ref() == Some(labels))
        });
        for (node, labels) in &acked {
            assert!(
                all_there,
                "on {}: {node} has {:?}, acknowledged {labels:?}",
                m.hostname(),
                swarm::labels(m, node)
            );
        }
    }
    managers[1].docker_ok(&["node", "update", "--label-add", "after=restart", &ids[0]]);
}
