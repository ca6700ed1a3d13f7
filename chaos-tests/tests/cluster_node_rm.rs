//! Invariant: a removed node stays removed. A manager must be demoted before it can be
//! removed (even with --force); once demoted and removed (and a worker removed), neither
//! gets back in with its old state after its berthd restarts: no manager lists it and it
//! cannot act as a member. Leaving and joining afresh gives it a new identity.

use std::time::Duration;

use berth_chaos_tests::{consistently, eventually, swarm, Cluster};

#[test]
fn removed_nodes_cannot_come_back_with_their_old_state() {
    let c = Cluster::new(4);
    swarm::form(&c, 3, 1);
    let (m1, m2, m3, w) = (c.host(0), c.host(1), c.host(2), c.host(3));
    let (m3_id, w_id) = (swarm::node_id(m3), swarm::node_id(w));

    for args in [
        &["node", "rm", &m3_id][..],
        &["node", "rm", "--force", &m3_id][..],
    ] {
        let o = m1.docker(args);
        assert!(!o.status.success(), "docker {args:?} removed a manager");
        let err = swarm::stderr(&o);
        assert!(err.to_lowercase().contains("demote"), "{err}");
    }
    assert!(swarm::converged(m1, 4, 3), "{:?}", swarm::node_ls(m1));

    m1.docker_ok(&["node", "demote", &m3_id]);
    let demoted = eventually(Duration::from_secs(30), || {
        swarm::converged(m1, 4, 2) && swarm::local_state(m3).1 == "false"
    });
    assert!(demoted, "{:?}", swarm::node_ls(m1));
    m1.docker_ok(&["node", "rm", "--force", &m3_id]);
    m1.docker_ok(&["node", "rm", "--force", &w_id]);
    let gone = |rows: Vec<swarm::NodeRow>| {
        rows.len() == 2 && rows.iter().all(|r| r.id != m3_id && r.id != w_id)
    };
    let removed = eventually(Duration::from_secs(30), || {
        [m1, m2].iter().all(|m| swarm::node_ls(m).is_ok_and(gone))
    });
    assert!(removed, "{:?}", swarm::node_ls(m2));

    for h in [m3, w] {
        h.kill9();
        h.start();
    }
    let stays_out = consistently(Duration::from_secs(10), || {
        [m1, m2].iter().all(|m| swarm::node_ls(m).is_ok_and(gone))
    });
    assert!(
        stays_out,
        "a removed node came back: {:?}",
        swarm::node_ls(m1)
    );
    for h in [m3, w] {
        assert!(
            !h.docker(&["node", "ls"]).status.success(),
            "{} acts as a manager",
            h.hostname()
        );
    }

    let token = swarm::join_token(m1, "worker");
    for (h, old_id) in [(m3, &m3_id), (w, &w_id)] {
        h.docker_ok(&["swarm", "leave", "--force"]);
        swarm::join_ok(h, &token, m1);
        assert_ne!(
            &swarm::node_id(h),
            old_id,
            "{} rejoined with its old identity",
            h.hostname()
        );
    }
    let back = eventually(Duration::from_secs(30), || swarm::converged(m1, 4, 2));
    assert!(back, "{:?}", swarm::node_ls(m1));
}
