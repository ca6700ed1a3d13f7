//! Invariant: only the current join token of a role lets a node in. A wrong token is
//! refused and leaves the node outside any cluster; after `join-token --rotate worker` the
//! old worker token is refused and the new one works, while the manager token is unchanged;
//! a node that is already a member cannot join again.

use berth_chaos_tests::{swarm, Cluster, Host};

/// The same token with its secret (the last part) changed, character by character.
fn tampered(token: &str) -> String {
    let (head, secret) = token.rsplit_once('-').expect("SWMTKN-1-<digest>-<secret>");
    let shifted: String = secret
        .chars()
        .map(|c| match c {
            '9' => 'a',
            'z' => '0',
            c => char::from_u32(c as u32 + 1).unwrap_or('0'),
        })
        .collect();
    format!("{head}-{shifted}")
}

fn assert_refused(h: &Host, token: &str, manager: &Host) {
    let o = swarm::join(h, token, manager);
    let err = swarm::stderr(&o);
    assert!(
        !o.status.success(),
        "{} joined with token {token}",
        h.hostname()
    );
    assert!(
        err.to_lowercase().contains("token"),
        "error does not mention the token: {err}"
    );
    assert_eq!(
        swarm::local_state(h).0,
        "inactive",
        "a refused join left state behind"
    );
}

#[test]
fn only_the_current_token_lets_a_node_in() {
    let c = Cluster::new(3);
    let (m, w, m2) = (c.host(0), c.host(1), c.host(2));
    swarm::init(m);
    let worker_token = swarm::join_token(m, "worker");
    let manager_token = swarm::join_token(m, "manager");
    assert!(worker_token.starts_with("SWMTKN-1-"), "{worker_token}");
    assert_ne!(worker_token, manager_token);

    assert_refused(w, &tampered(&worker_token), m);
    assert_refused(w, "SWMTKN-1-not-a-token", m);

    let rotated = m.docker_ok(&["swarm", "join-token", "--rotate", "-q", "worker"]);
    assert_ne!(rotated, worker_token);
    assert_eq!(swarm::join_token(m, "worker"), rotated);
    assert_eq!(swarm::join_token(m, "manager"), manager_token);
    assert_refused(w, &worker_token, m);

    swarm::join_ok(w, &rotated, m);
    assert_eq!(swarm::local_state(w), ("active".into(), "false".into()));
    swarm::join_ok(m2, &manager_token, m);
    assert_eq!(swarm::local_state(m2), ("active".into(), "true".into()));

    let again = swarm::join(w, &rotated, m);
    assert!(!again.status.success(), "a member joined twice");
    let err = swarm::stderr(&again);
    assert!(
        err.contains("This node is already part of a swarm"),
        "{err}"
    );
    let rows = swarm::node_ls(m).expect("node ls");
    assert_eq!(rows.len(), 3, "{rows:#?}");
}
