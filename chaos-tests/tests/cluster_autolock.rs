//! Invariant: with autolock on, a manager that restarts stays locked until `docker swarm
//! unlock` gives it the cluster's current unlock key: swarm calls answer 503 with dockerd's
//! message, a wrong key (or a rotated-out one) is refused, the right one brings the manager
//! back into the cluster. Workers are never locked; turning autolock off lets a manager
//! restart unlocked again.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

/// How many times `h` has re-stored its keys for a new unlock key (they follow the
/// replicated cluster object every half second): waited on before a kill, so that the kill
/// tests the sealed keys, not a manager that had not seen the change yet.
fn reseals(h: &Host) -> usize {
    std::fs::read_to_string(h.log_path())
        .unwrap_or_default()
        .matches("swarm keys re-stored for the cluster's autolock setting")
        .count()
}

fn resealed(h: &Host, before: usize) {
    let done = eventually(Duration::from_secs(30), || reseals(h) > before);
    assert!(
        done,
        "{} did not re-store its keys:\n{}",
        h.hostname(),
        h.log_tail()
    );
}

fn restart(h: &Host) {
    h.kill9();
    h.start();
}

fn state(h: &Host) -> String {
    swarm::local_state(h).0
}

fn unlock(h: &Host, key: &str) -> std::process::Output {
    h.docker_with_input(&["swarm", "unlock"], &format!("{key}\n"))
}

#[test]
fn a_restarted_manager_needs_the_unlock_key() {
    let c = Cluster::new(4);
    let (m1, m2, m3, w) = (c.host(0), c.host(1), c.host(2), c.host(3));
    let listen = format!("{}:2377", m1.ip());
    let out = m1.docker_ok(&[
        "swarm",
        "init",
        "--autolock",
        "--advertise-addr",
        m1.ip(),
        "--listen-addr",
        &listen,
    ]);
    let key = m1.docker_ok(&["swarm", "unlock-key", "-q"]);
    assert!(key.starts_with("SWMKEY-1-"), "{key}");
    assert!(out.contains(&key), "init prints the unlock key: {out}");
    let mtoken = swarm::join_token(m1, "manager");
    let wtoken = swarm::join_token(m1, "worker");
    for (i, m) in [m2, m3].into_iter().enumerate() {
        swarm::join_ok(m, &mtoken, m1);
        let ok = eventually(Duration::from_secs(60), || {
            swarm::converged(m1, i + 2, i + 2)
        });
        assert!(
            ok,
            "{} did not join: {:?}",
            m.hostname(),
            swarm::node_ls(m1)
        );
    }
    swarm::join_ok(w, &wtoken, m1);
    let formed = eventually(Duration::from_secs(60), || swarm::converged(m1, 4, 3));
    assert!(formed, "the cluster did not form: {:?}", swarm::node_ls(m1));
    assert_eq!(m2.docker_ok(&["swarm", "unlock-key", "-q"]), key);

    // A restarted manager is locked: nothing of the swarm answers but with the lock.
    restart(m2);
    assert_eq!(state(m2), "locked");
    let (code, body) = m2.api_get("/nodes").expect("GET /nodes");
    assert_eq!(code, 503, "{body}");
    let message: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(message["message"], LOCKED, "{body}");
    let ls = swarm::node_ls(m2).expect_err("node ls on a locked manager");
    assert!(ls.contains(LOCKED), "{ls}");
    // The rest of the cluster carries on without it.
    m1.docker_ok(&[
        "node",
        "update",
        "--label-add",
        "while=locked",
        &swarm::node_id(w),
    ]);

    // A wrong key is refused and the node stays locked.
    let wrong = "SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let o = unlock(m2, wrong);
    assert!(!o.status.success(), "a wrong key unlocked the node");
    let err = swarm::stderr(&o);
    assert!(err.contains("invalid key"), "{err}");
    assert_eq!(state(m2), "locked");

    // The right key: the manager rejoins and serves again.
    let o = unlock(m2, &key);
    assert!(
        o.status.success(),
        "unlock: {}\n{}",
        swarm::stderr(&o),
        m2.log_tail()
    );
    let back = eventually(Duration::from_secs(60), || swarm::converged(m2, 4, 3));
    assert!(back, "m2 did not come back: {:?}", swarm::node_ls(m2));
    let again = unlock(m2, &key);
    assert!(
        swarm::stderr(&again).contains("swarm is not locked"),
        "{again:?}"
    );

    // Workers are never locked.
    restart(w);
    assert_eq!(state(w), "active");

    // Rotation: every manager re-seals with the new key; the old one no longer opens.
    let before = reseals(m3);
    let rotated = m1.docker_ok(&["swarm", "unlock-key", "--rotate", "-q"]);
    assert!(
        rotated.starts_with("SWMKEY-1-") && rotated != key,
        "{rotated}"
    );
    // m3 reads its own copy of the cluster object, which may trail m1's by a moment.
    let same = eventually(Duration::from_secs(10), || {
        swarm::stdout(&m3.docker(&["swarm", "unlock-key", "-q"])) == rotated
    });
    assert!(same, "m3 shows another unlock key");
    resealed(m3, before);
    restart(m3);
    assert_eq!(state(m3), "locked");
    let o = unlock(m3, &key);
    assert!(!o.status.success(), "the rotated-out key unlocked m3");
    let o = unlock(m3, &rotated);
    assert!(o.status.success(), "unlock: {}", swarm::stderr(&o));
    let back = eventually(Duration::from_secs(60), || swarm::converged(m3, 4, 3));
    assert!(back, "m3 did not come back: {:?}", swarm::node_ls(m3));

    // Autolock off: keys are stored plain again and a restart needs nothing.
    let before = reseals(m2);
    m1.docker_ok(&["swarm", "update", "--autolock=false"]);
    let none = m1.docker(&["swarm", "unlock-key", "-q"]);
    assert!(
        swarm::stderr(&none).contains("no unlock key is set"),
        "{none:?}"
    );
    resealed(m2, before);
    restart(m2);
    assert_eq!(state(m2), "active");
    let back = eventually(Duration::from_secs(60), || swarm::converged(m2, 4, 3));
    assert!(back, "m2 did not come back: {:?}", swarm::node_ls(m2));
}
