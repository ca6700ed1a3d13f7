//! Invariant: a manager that was away for longer than the log keeps (more entries than the
//! compaction window) catches up from the leader's snapshot and ends with the same state.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster};

/// Sets the cluster's Raft compaction: a snapshot every `interval` entries, `keep` entries
/// kept behind it for slow followers.
fn set_compaction(h: &berth_chaos_tests::Host, interval: u64, keep: u64) {
    let (code, body) = h.api_get("/swarm").expect("GET /swarm");
    assert_eq!(code, 200, "{body}");
    let mut sw: serde_json::Value = serde_json::from_str(&body).expect("swarm json");
    let version = sw["Version"]["Index"].as_u64().expect("version");
    sw["Spec"]["Raft"]["SnapshotInterval"] = interval.into();
    sw["Spec"]["Raft"]["LogEntriesForSlowFollowers"] = keep.into();
    let (code, body) = h
        .api_post(
            &format!("/swarm/update?version={version}"),
            &sw["Spec"].to_string(),
        )
        .expect("POST /swarm/update");
    assert_eq!(code, 200, "{body}");
}

fn secret_names(h: &berth_chaos_tests::Host) -> Vec<String> {
    let o = h.docker(&["secret", "ls", "--format", "{{.Name}}"]);
    let mut v: Vec<String> = swarm::stdout(&o).lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn a_manager_far_behind_catches_up_by_snapshot() {
    let c = Cluster::new(3);
    swarm::form(&c, 3, 0);
    let (m1, m3) = (c.host(0), c.host(2));
    set_compaction(m1, 20, 5);

    m3.kill9();
    let mut expected = Vec::new();
    for i in 0..80 {
        let name = format!("s{i:03}");
        let body = format!(r#"{{"Name":"{name}","Data":"c2VjcmV0"}}"#);
        let (code, resp) = m1.api_post("/secrets/create", &body).expect("create");
        assert_eq!(code, 201, "{resp}");
        expected.push(name);
    }
    // Compaction runs in the background (a few times a second): let it catch up with the
    // writes before the laggard returns.
    std::thread::sleep(Duration::from_secs(2));
    m3.start();
    let caught_up = eventually(Duration::from_secs(30), || secret_names(m3) == expected);
    assert!(
        caught_up,
        "{} has {:?}\n{}",
        m3.hostname(),
        secret_names(m3).len(),
        m3.log_tail()
    );
    let log = std::fs::read_to_string(m3.log_path()).unwrap_or_default();
    assert!(
        log.contains("installed a raft snapshot from the leader"),
        "{} caught up without a snapshot: the log was not compacted\n{}",
        m3.hostname(),
        m3.log_tail()
    );
    // And it is a full member again: a write through it commits.
    m3.docker_ok(&["secret", "create", "after-catchup", "/etc/hostname"]);
}
