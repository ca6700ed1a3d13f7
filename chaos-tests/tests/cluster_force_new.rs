//! Invariant: after losing the quorum (2 of 3 managers gone for good), `swarm init
//! --force-new-cluster` on the survivor restarts the cluster from its state: the survivor
//! leads, writes commit again, and what was written before is still there.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster};

#[test]
fn force_new_cluster_recovers_from_losing_two_of_three_managers() {
    let c = Cluster::new(4);
    swarm::form(&c, 3, 1);
    let (m1, m2, m3, w) = (c.host(0), c.host(1), c.host(2), c.host(3));
    let me = swarm::node_id(m1);
    m1.docker_ok(&["node", "update", "--label-add", "before=loss", &me]);

    m2.kill9();
    m3.kill9();
    // Without a quorum nothing commits.
    let o = m1.docker(&["node", "update", "--label-add", "during=loss", &me]);
    assert!(!o.status.success(), "a write committed without a quorum");

    let ip = m1.ip().to_string();
    m1.docker_ok(&[
        "swarm",
        "init",
        "--force-new-cluster",
        "--advertise-addr",
        &ip,
    ]);
    let leads = eventually(Duration::from_secs(20), || {
        swarm::leader(m1).as_deref() == Some(m1.hostname())
    });
    assert!(leads, "{}", m1.log_tail());
    m1.docker_ok(&["node", "update", "--label-add", "after=recovery", &me]);
    let labels = swarm::labels(m1, &me).expect("labels");
    assert_eq!(labels.get("before").map(String::as_str), Some("loss"));
    assert_eq!(labels.get("after").map(String::as_str), Some("recovery"));
    assert!(!labels.contains_key("during"), "{labels:?}");

    // The worker is still a member and reports to the survivor.
    let wid = swarm::node_id(w);
    let ready = eventually(Duration::from_secs(20), || {
        swarm::node_ls(m1)
            .unwrap_or_default()
            .iter()
            .any(|r| r.id == wid && r.status == "Ready")
    });
    assert!(ready, "{:?}", swarm::node_ls(m1));
    // A former manager that comes back is a worker of the re-formed cluster, not a rival
    // Raft member.
    m2.start();
    let m2id = swarm::node_id(m2);
    let back = eventually(Duration::from_secs(20), || {
        swarm::node_ls(m1)
            .unwrap_or_default()
            .iter()
            .any(|r| r.id == m2id && r.status == "Ready" && !r.is_manager())
            && swarm::local_state(m2).1 == "false"
    });
    assert!(back, "{:?}\n{}", swarm::node_ls(m1), m2.log_tail());
    m1.docker_ok(&["node", "update", "--label-add", "still=leader", &me]);
    assert_eq!(swarm::leader(m1).as_deref(), Some(m1.hostname()));
    // And it can be made a manager again.
    m1.docker_ok(&["node", "promote", &m2id]);
    let promoted = eventually(Duration::from_secs(30), || {
        swarm::node_ls(m1)
            .unwrap_or_default()
            .iter()
            .any(|r| r.id == m2id && r.manager_status == "Reachable")
            && swarm::local_state(m2).1 == "true"
    });
    assert!(promoted, "{:?}\n{}", swarm::node_ls(m1), m2.log_tail());
}
