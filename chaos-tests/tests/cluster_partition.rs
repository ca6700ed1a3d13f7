//! Invariant: only a majority commits. With the leader cut off from the other two managers,
//! a write through it is not acknowledged, while the majority elects a leader and commits;
//! after the partition heals every manager converges on the majority's state, and the
//! unacknowledged write appears nowhere.

use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

fn side(h: &Host, node: &str) -> Option<String> {
    swarm::labels(h, node).ok()?.get("side").cloned()
}

#[test]
fn a_minority_cannot_commit_and_converges_after_heal() {
    let c = Cluster::new(3);
    swarm::form(&c, 3, 0);
    let leader = swarm::leader(c.host(0)).expect("a leader");
    let minority = c.by_hostname(&leader).expect("leader host");
    let majority: Vec<&Host> = c
        .hosts()
        .iter()
        .filter(|h| h.hostname() != leader)
        .collect();
    let target = swarm::node_id(majority[0]);

    c.partition(&[minority], &majority);
    let t = Instant::now();
    let o = minority.docker_timeout(
        &["node", "update", "--label-add", "side=minority", &target],
        Duration::from_secs(30),
    );
    assert!(
        !o.status.success(),
        "the isolated {leader} acknowledged a write"
    );
    eprintln!(
        "minority write refused after {:?}: {}",
        t.elapsed(),
        swarm::stderr(&o)
    );

    let t = Instant::now();
    let committed = eventually(Duration::from_secs(60), || {
        let args = ["node", "update", "--label-add", "side=majority", &target];
        majority[0]
            .docker_timeout(&args, Duration::from_secs(10))
            .status
            .success()
    });
    assert!(
        committed,
        "the majority could not commit: {:?}",
        swarm::node_ls(majority[0])
    );
    eprintln!("majority committed after {:?}", t.elapsed());
    let new_leader = swarm::leader(majority[1]).expect("majority has a leader");
    assert_ne!(new_leader, leader);

    c.heal();
    let t = Instant::now();
    let converged = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| {
            swarm::converged(h, 3, 3)
                && swarm::leader(h).as_deref() == Some(new_leader.as_str())
                && side(h, &target).as_deref() == Some("majority")
        })
    });
    let sides: Vec<_> = c.hosts().iter().map(|h| side(h, &target)).collect();
    assert!(converged, "managers did not converge: {sides:?}");
    eprintln!("converged {:?} after heal", t.elapsed());
}
