//! Invariant: with autolock on, a manager that restarts stays locked until `docker swarm
//! unlock` gives it the cluster's current unlock key: swarm calls answer 503 with dockerd's
//! message, a wrong key (or a rotated-out one) is refused, the right one brings the manager
//! back into the cluster. Workers are never locked; turning autolock off lets a manager
//! restart unlocked again.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

/// How long a manager may take to re-store its keys after the cluster's unlock key changed
/// (they follow the replicated cluster object every half second).
const RESEAL: Duration = Duration::from_secs(3);

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
    let rotated = m1.docker_ok(&["swarm", "unlock-key", "--rotate", "-q"]);
    assert!(
        rotated.starts_with("SWMKEY-1-") && rotated != key,
        "{rotated}"
    );
    assert_eq!(m3.docker_ok(&["swarm", "unlock-key", "-q"]), rotated);
    std::thread::sleep(RESEAL);
    restart(m3);
    assert_eq!(state(m3), "locked");
    let o = unlock(m3, &key);
    assert!(!o.status.success(), "the rotated-out key unlocked m3");
    let o = unlock(m3, &rotated);
    assert!(o.status.success(), "unlock: {}", swarm::stderr(&o));
    let back = eventually(Duration::from_secs(60), || swarm::converged(m3, 4, 3));
    assert!(back, "m3 did not come back: {:?}", swarm::node_ls(m3));

    // Autolock off: keys are stored plain again and a restart needs nothing.
    m1.docker_ok(&["swarm", "update", "--autolock=false"]);
    let none = m1.docker(&["swarm", "unlock-key", "-q"]);
    assert!(
        swarm::stderr(&none).contains("no unlock key is set"),
        "{none:?}"
    );
    std::thread::sleep(RESEAL);
    restart(m2);
    assert_eq!(state(m2), "active");
    let back = eventually(Duration::from_secs(60), || swarm::converged(m2, 4, 3));
    assert!(back, "m2 did not come back: {:?}", swarm::node_ls(m2));
}
