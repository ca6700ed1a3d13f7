//! `docker service logs` gathers the output of a service's tasks from every node that runs
//! them, with the `<task>@<node>` prefix the CLI builds from the details Docker sends; task
//! logs, `--raw`, `--tail`, stderr, and `--follow` (existing lines, then new ones).

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster};

const IMAGE: &str = "busybox:latest";

#[test]
fn service_logs_come_from_every_node() {
    let c = Cluster::new(2);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 1);
    let m = c.host(0);
    let script = "echo out-$(hostname); echo err-$(hostname) >&2; \
                  i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.5; done";
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "talker",
        "--replicas",
        "2",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let both_running = eventually(Duration::from_secs(60), || {
        c.hosts().iter().all(|h| {
            let filter = "label=com.docker.swarm.service.name=talker";
            swarm::stdout(&h.docker(&["ps", "-q", "--filter", filter]))
                .lines()
                .count()
                == 1
        })
    });
    assert!(both_running, "one task per node");

    // Both tasks' first lines, each prefixed with its task and node.
    let mut out = String::new();
    let complete = eventually(Duration::from_secs(20), || {
        let o = m.docker(&["service", "logs", "talker"]);
        out = swarm::stdout(&o) + &swarm::stderr(&o);
        out.matches("| out-").count() == 2 && out.matches("| err-").count() == 2
    });
    assert!(complete, "service logs:\n{out}");
    for h in c.hosts() {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("@{}", h.hostname())) && l.contains("out-")),
            "no line from {}:\n{out}",
            h.hostname()
        );
    }
    assert!(
        out.lines().all(|l| l.starts_with("talker.")),
        "prefix: {out}"
    );

    // --raw: the bare lines; --tail 1: one line per task.
    // (Once both tasks have ticked: right after the start a task's last line may still be
    // its stderr one.)
    let mut raw = String::new();
    let tails = eventually(Duration::from_secs(10), || {
        raw = m.docker_ok(&["service", "logs", "--raw", "--tail", "1", "talker"]);
        let lines: Vec<&str> = raw.lines().collect();
        lines.len() == 2 && lines.iter().all(|l| l.starts_with("tick-"))
    });
    assert!(tails, "--tail 1: {raw}");

    // One task's logs, by task ID.
    let task = m.docker_ok(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        "talker",
    ]);
    let task = task.lines().next().expect("a task").to_owned();
    let one = m.docker_ok(&["service", "logs", "--raw", &task]);
    assert_eq!(one.matches("out-").count(), 1, "{one}");

    // --follow: what is there, then what comes; ended by the client.
    let o = m.docker_timeout(
        &[
            "service", "logs", "--follow", "--raw", "--tail", "0", "talker",
        ],
        // Long enough for the CLI to start and the streams to open on a loaded machine.
        Duration::from_secs(8),
    );
    let followed = swarm::stdout(&o);
    assert!(
        followed.matches("tick-").count() >= 4,
        "follow gave: {followed}"
    );

    m.docker_ok(&["service", "rm", "talker"]);
}
