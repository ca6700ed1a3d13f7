//! Invariant: losing the leader loses neither the cluster nor its writes. After a kill -9 of
//! the leader's berthd another manager leads within seconds, a write through a surviving
//! manager is acknowledged, and the old leader, restarted, rejoins as a follower of the new
//! leader and sees that write.

use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

#[test]
fn a_killed_leader_is_replaced_and_rejoins_as_a_follower() {
    let c = Cluster::new(3);
    swarm::form(&c, 3, 0);
    let leader = swarm::leader(c.host(0)).expect("a leader");
    let old = c.by_hostname(&leader).expect("leader is one of ours");
    let old_id = swarm::node_id(old);
    let survivors: Vec<&Host> = c
        .hosts()
        .iter()
        .filter(|h| h.hostname() != leader)
        .collect();

    old.kill9();
    let t = Instant::now();
    let mut new_leader = None;
    let elected = eventually(Duration::from_secs(30), || {
        let views: Vec<Option<String>> = survivors.iter().map(|s| swarm::leader(s)).collect();
        new_leader = views[0]
            .clone()
            .filter(|l| *l != leader && views[1] == views[0]);
        new_leader.is_some()
    });
    let took = t.elapsed();
    assert!(
        elected,
        "no new leader after 30 s: {:?}",
        swarm::node_ls(survivors[0])
    );
    let new_leader = new_leader.expect("elected");
    eprintln!("leader {leader} killed; {new_leader} leads after {took:?}");

    // The survivors see the old leader as unreachable, and still take writes.
    let down = eventually(Duration::from_secs(30), || {
        swarm::node_ls(survivors[0]).is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.id == old_id && r.manager_status == "Unreachable")
        })
    });
    assert!(
        down,
        "old leader not Unreachable: {:?}",
        swarm::node_ls(survivors[0])
    );
    let follower = survivors
        .iter()
        .find(|s| s.hostname() != new_leader)
        .expect("follower");
    follower.docker_ok(&[
        "node",
        "update",
        "--label-add",
        "failover=survived",
        &old_id,
    ]);
    let on_leader = swarm::labels(c.by_hostname(&new_leader).expect("host"), &old_id);
    assert_eq!(
        on_leader
            .expect("inspect")
            .get("failover")
            .map(String::as_str),
        Some("survived")
    );

    old.start();
    let t = Instant::now();
    let rejoined = eventually(Duration::from_secs(60), || {
        swarm::converged(old, 3, 3)
            && swarm::leader(old).as_deref() == Some(new_leader.as_str())
            && swarm::labels(old, &old_id)
                .is_ok_and(|l| l.get("failover").map(String::as_str) == Some("survived"))
    });
    assert!(
        rejoined,
        "old leader did not rejoin: {:?}",
        swarm::node_ls(old)
    );
    eprintln!("old leader rejoined as a follower after {:?}", t.elapsed());
}
