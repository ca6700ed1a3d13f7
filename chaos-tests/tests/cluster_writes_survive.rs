//! Invariant: no acknowledged write is lost, at volume. 5,000 secrets acknowledged by the
//! API (from several clients at once, through every manager), then SIGKILL of every berthd
//! at once and a restart: every manager has all 5,000.

use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, swarm, Cluster};

const WRITES: usize = 5_000;
const CLIENTS: usize = 8;

fn count(h: &berth_chaos_tests::Host) -> usize {
    match h.api_get("/secrets") {
        Some((200, body)) => serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .map(|v| v.len())
            .unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn five_thousand_acknowledged_writes_survive_kill_9_of_every_node() {
    let c = Cluster::new(3);
    swarm::form(&c, 3, 0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let h = c.host(client % 3);
            s.spawn(move || {
                for i in (client..WRITES).step_by(CLIENTS) {
                    let body = format!(r#"{{"Name":"w{i:05}","Data":"eA=="}}"#);
                    let (code, resp) = h.api_post("/secrets/create", &body).expect("create");
                    assert_eq!(code, 201, "write {i} through {}: {resp}", h.hostname());
                }
            });
        }
    });
    eprintln!(
        "{WRITES} writes acknowledged in {:?} by {CLIENTS} clients",
        t.elapsed()
    );

    for h in c.hosts() {
        h.kill9();
    }
    for h in c.hosts() {
        h.launch();
    }
    for h in c.hosts() {
        h.wait_ready();
    }
    let all = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| count(h) == WRITES)
    });
    let counts: Vec<usize> = c.hosts().iter().map(count).collect();
    assert!(all, "secrets per manager after the restart: {counts:?}");
}
