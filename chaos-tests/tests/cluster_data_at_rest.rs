//! Invariant: what the managers replicate is sealed on disk. A secret's name and bytes are
//! in no manager's Raft file (log and snapshot), and a follower that restarts reads its
//! sealed log back.

use std::path::Path;
use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn raft_file(root: &Path) -> Vec<u8> {
    std::fs::read(root.join("data/swarm/raft.redb")).expect("read raft.redb")
}

#[test]
fn secrets_are_sealed_in_the_raft_log_and_snapshots() {
    let c = Cluster::new(3);
    swarm::form(&c, 3, 0);
    let leader = c.host(0);
    // A snapshot after every few entries, so the state is in snapshots too.
    leader.docker_ok(&["swarm", "update", "--snapshot-interval", "5"]);
    let name = format!("atrest-{}", c.run_id());
    let plain = format!("plaintext-{}-value", c.run_id());
    let file = std::env::temp_dir().join(format!("{name}.txt"));
    std::fs::write(&file, &plain).expect("write the secret file");
    leader.docker_ok(&[
        "secret",
        "create",
        &name,
        file.to_str().expect("utf-8 path"),
    ]);
    let _ = std::fs::remove_file(&file);
    for i in 0..12 {
        let body = format!(r#"{{"Name":"{name}-{i}","Data":"eA=="}}"#);
        let (code, resp) = leader.api_post("/secrets/create", &body).expect("create");
        assert_eq!(code, 201, "{resp}");
    }
    // The same bytes as serde writes them for Vec<u8> (a JSON array) and as text.
    let as_array = serde_json::to_string(plain.as_bytes()).expect("json");
    for h in c.hosts() {
        assert!(
            eventually(Duration::from_secs(20), || {
                matches!(h.api_get("/secrets"), Some((200, b)) if b.contains(&format!("{name}-11")))
            }),
            "{} never saw the secrets",
            h.hostname()
        );
        let raw = raft_file(h.root());
        for needle in [name.as_bytes(), plain.as_bytes(), as_array.as_bytes()] {
            assert!(
                !contains(&raw, needle),
                "{}: raft.redb holds {:?} in the clear",
                h.hostname(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    // A follower restarted by kill -9 unseals its log and snapshot again.
    let follower = c.host(2);
    follower.kill9();
    follower.launch();
    follower.wait_ready();
    assert!(
        eventually(Duration::from_secs(30), || {
            matches!(follower.api_get("/secrets"), Some((200, b)) if b.contains(&format!("{name}-11")))
        }),
        "the restarted follower lost its sealed state: {}",
        follower.log_tail()
    );
}
