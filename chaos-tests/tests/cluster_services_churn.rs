//! Services through membership churn: a worker cut off for less than the heartbeat grace
//! period keeps its tasks (none restarted, none replaced: Swarm users' top complaint), and a
//! global service follows nodes as they join and leave.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_chaos_tests::{consistently, eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";

/// IDs of the running task containers of `service` on every running host.
fn containers(c: &Cluster, service: &str) -> BTreeSet<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.hosts()
        .iter()
        .filter(|h| h.is_running())
        .flat_map(|h| {
            swarm::stdout(&h.docker(&["ps", "-q", "--no-trunc", "--filter", &filter]))
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `service ps` task IDs meant to run.
fn task_ids(m: &Host, service: &str) -> BTreeSet<String> {
    let out = m.docker(&[
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn on(h: &Host, service: &str) -> usize {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    swarm::stdout(&h.docker(&["ps", "-q", "--filter", &filter]))
        .lines()
        .count()
}

#[test]
fn brief_partitions_restart_nothing_and_global_services_follow_membership() {
    let c = Cluster::new(4);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let (m, w1, w2, late) = (c.host(0), c.host(1), c.host(2), c.host(3));
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "steady",
        "--replicas",
        "3",
        "--no-resolve-image",
        IMAGE,
        "sleep",
        "3600",
    ]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "everywhere",
        "--mode",
        "global",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let up = eventually(Duration::from_secs(60), || {
        containers(&c, "steady").len() == 3 && [m, w1, w2].iter().all(|h| on(h, "everywhere") == 1)
    });
    assert!(up, "services did not start");
    let before = (containers(&c, "steady"), task_ids(m, "steady"));

    // Cut w1 off for well under the grace period (3 heartbeats; a beat lost in the cut is
    // retried on a new connection after the heal): nothing moves.
    c.partition(&[w1], &[m, w2]);
    std::thread::sleep(Duration::from_millis(1000));
    c.heal();
    let unchanged = consistently(Duration::from_secs(8), || {
        (containers(&c, "steady"), task_ids(m, "steady")) == before
    });
    assert!(
        unchanged,
        "a brief partition changed the tasks: before {before:?}, now {:?} {:?}",
        containers(&c, "steady"),
        task_ids(m, "steady")
    );

    // A node that joins gets the global service's task.
    let token = swarm::join_token(m, "worker");
    swarm::join_ok(late, &token, m);
    let joined = eventually(Duration::from_secs(60), || on(late, "everywhere") == 1);
    assert!(joined, "the new node got no global task");

    // A node that leaves: its global task stops there and is not placed twice elsewhere.
    late.docker_ok(&["swarm", "leave"]);
    let left = eventually(Duration::from_secs(30), || on(late, "everywhere") == 0);
    assert!(left, "the task stayed on a node that left");
    let down = eventually(Duration::from_secs(30), || {
        swarm::node_ls(m).is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.hostname == late.hostname() && r.status == "Down")
        })
    });
    assert!(down, "{:?}", swarm::node_ls(m));
    let late_id = swarm::node_ls(m)
        .expect("node ls")
        .into_iter()
        .find(|r| r.hostname == late.hostname())
        .map(|r| r.id)
        .expect("the node that left");
    m.docker_ok(&["node", "rm", &late_id]);
    let three = consistently(Duration::from_secs(4), || {
        [m, w1, w2].iter().all(|h| on(h, "everywhere") == 1)
    });
    assert!(three, "global service after a node left");
    m.docker_ok(&["service", "rm", "steady", "everywhere"]);
}
