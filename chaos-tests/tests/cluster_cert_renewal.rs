//! Invariant: node certificates renew themselves before they expire, through a manager and
//! under the node's current certificate (no token), each time for a key the node made; the
//! cluster keeps working through the renewals, new certificates follow `swarm update
//! --cert-expiry`, and a demoted manager's certificate is re-issued for the worker role.
//!
//! Docker's shortest certificate lifetime is an hour, so the test shortens the renewal point
//! with berthd's test knob `BERTH_SWARM_CERT_RENEW_AFTER` (seconds after issue; see
//! `berth_raft::swarm::RENEW_AFTER_ENV`), which the hosts' berthd inherit from this process.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const RENEW_AFTER_SECS: &str = "20";

fn swarm_file(h: &Host, name: &str) -> PathBuf {
    h.root().join("data/swarm").join(name)
}

/// `openssl x509 -noout <args>` on a host's node certificate.
fn x509(h: &Host, args: &[&str]) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(swarm_file(h, "node.crt"))
        .args(args)
        .output()
        .expect("run openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn serial(h: &Host) -> String {
    x509(h, &["-serial"])
}

/// The certificate's public key, and the public key of the private key on disk.
fn public_keys(h: &Host) -> (String, String) {
    let of_key = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(swarm_file(h, "node.key"))
        .output()
        .expect("run openssl");
    (
        x509(h, &["-pubkey"]),
        String::from_utf8_lossy(&of_key.stdout).trim().to_owned(),
    )
}

fn lifetime_secs(h: &Host) -> i64 {
    let date = |flag: &str| {
        let s = x509(h, &[flag]);
        let text = s.split_once('=').map(|(_, d)| d.to_owned()).unwrap_or(s);
        let o = Command::new("date")
            .args(["-u", "+%s", "-d", &text])
            .output()
            .expect("run date");
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<i64>()
            .expect("a date")
    };
    date("-enddate") - date("-startdate")
}

#[test]
fn certificates_renew_and_follow_the_cluster() {
    // Inherited by every berthd the harness starts.
    std::env::set_var("BERTH_SWARM_CERT_RENEW_AFTER", RENEW_AFTER_SECS);
    let c = Cluster::new(4);
    swarm::form(&c, 3, 1);
    let (m1, m3, w) = (c.host(0), c.host(2), c.host(3));
    for h in c.hosts() {
        let (cert, key) = public_keys(h);
        assert_eq!(
            cert,
            key,
            "{}: the certificate is for the node's key",
            h.hostname()
        );
    }

    // New certificates follow --cert-expiry (default 90 days; 2 hours from now on).
    m1.docker_ok(&["swarm", "update", "--cert-expiry", "2h"]);
    let before: Vec<String> = c.hosts().iter().map(serial).collect();

    // Every node renews (a new serial), keeps a certificate for its own key, and the cluster
    // keeps working.
    let renewed = eventually(Duration::from_secs(120), || {
        c.hosts()
            .iter()
            .zip(&before)
            .all(|(h, old)| serial(h) != *old)
    });
    assert!(renewed, "not every node renewed its certificate");
    for h in c.hosts() {
        // node.crt and node.key are replaced one after the other: look twice.
        let matching = eventually(Duration::from_secs(5), || {
            let (cert, key) = public_keys(h);
            cert == key
        });
        assert!(matching, "{}: certificate and key differ", h.hostname());
        let life = lifetime_secs(h);
        assert!(
            (2 * 3600..=2 * 3600 + 120).contains(&life),
            "{}: lifetime {life}s, want 2h",
            h.hostname()
        );
        assert!(
            x509(h, &["-subject"]).contains("swarm-"),
            "{}",
            h.hostname()
        );
    }
    let back = eventually(Duration::from_secs(60), || swarm::converged(m1, 4, 3));
    assert!(back, "the cluster did not settle: {:?}", swarm::node_ls(m1));
    m3.docker_ok(&[
        "node",
        "update",
        "--label-add",
        "renewed=yes",
        &swarm::node_id(w),
    ]);
    assert!(x509(w, &["-subject"]).contains("swarm-worker"));

    // A demoted manager gets a worker certificate.
    m1.docker_ok(&["node", "demote", &swarm::node_id(m3)]);
    let reissued = eventually(Duration::from_secs(60), || {
        x509(m3, &["-subject"]).contains("swarm-worker")
    });
    assert!(
        reissued,
        "m3 kept its manager certificate: {}",
        x509(m3, &["-subject"])
    );
    let settled = eventually(Duration::from_secs(60), || swarm::converged(m1, 4, 2));
    assert!(settled, "{:?}", swarm::node_ls(m1));
}
