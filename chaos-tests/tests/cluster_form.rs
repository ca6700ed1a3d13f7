//! Invariant: 3 managers and 2 workers form one cluster and every manager shows the same
//! membership: 5 nodes, all Ready and Active, 3 managers of which exactly one is the Leader
//! (the same one on each) and two are Reachable. Workers hold no cluster state: asked for
//! it they answer 503 "This node is not a swarm manager…".

use std::time::{Duration, Instant};

use berth_chaos_tests::swarm::{self, NodeRow, NOT_A_MANAGER};
use berth_chaos_tests::{eventually, Cluster};

fn sorted_view(h: &berth_chaos_tests::Host) -> Vec<NodeRow> {
    let mut rows = swarm::node_ls(h).unwrap_or_default();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

#[test]
fn three_managers_and_two_workers_agree_on_membership() {
    let c = Cluster::new(5);
    let t = Instant::now();
    swarm::form(&c, 3, 2);
    eprintln!("3 managers + 2 workers formed in {:?}", t.elapsed());
    let (managers, workers) = c.hosts().split_at(3);

    // Every manager converges on one identical view.
    let agreed = eventually(Duration::from_secs(30), || {
        let first = sorted_view(&managers[0]);
        managers
            .iter()
            .all(|m| swarm::converged(m, 5, 3) && sorted_view(m) == first)
    });
    let views: Vec<_> = managers.iter().map(sorted_view).collect();
    assert!(agreed, "managers disagree: {views:#?}");

    // The view says who is who: each host's own node ID, role by how it joined.
    let view = &views[0];
    for (i, h) in c.hosts().iter().enumerate() {
        let id = swarm::node_id(h);
        let row = view.iter().find(|r| r.id == id);
        let row = row.unwrap_or_else(|| panic!("{} ({id}) missing: {view:#?}", h.hostname()));
        assert_eq!(row.hostname, h.hostname());
        assert_eq!(row.is_manager(), i < 3, "{row:?}");
    }

    for m in managers {
        assert_eq!(swarm::local_state(m), ("active".into(), "true".into()));
    }
    for w in workers {
        assert_eq!(swarm::local_state(w), ("active".into(), "false".into()));
        let o = w.docker(&["node", "ls"]);
        assert!(
            !o.status.success(),
            "a worker listed nodes: {}",
            swarm::stdout(&o)
        );
        assert!(
            swarm::stderr(&o).contains(NOT_A_MANAGER),
            "{}",
            swarm::stderr(&o)
        );
        let (code, body) = w.api_get("/nodes").expect("worker answers the API");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains(NOT_A_MANAGER), "{body}");
    }
}
