//! Healthcheck gating of service tasks: a task with a healthcheck is "starting" until its
//! first passing probe and only then running; an unhealthy task fails (and is replaced); an
//! update whose new tasks never get healthy rolls back.

use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";

/// (desired, current) of the tasks of `service`.
fn states(m: &Host, service: &str) -> Vec<(String, String, String)> {
    let out = m.docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
        service,
    ]);
    swarm::stdout(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 3).then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .collect()
}

#[test]
fn tasks_run_once_healthy_and_unhealthy_ones_are_replaced() {
    let c = Cluster::new(2);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 1);
    let m = c.host(0);

    // Healthy after ~3 s: "Starting" first, then "Running".
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "slow",
        "--replicas",
        "2",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "30",
        IMAGE,
        "sh",
        "-c",
        "sleep 8; touch /tmp/ok; exec sleep 3600",
    ]);
    let starting = eventually(Duration::from_secs(30), || {
        let s = states(m, "slow");
        s.len() == 2 && s.iter().all(|t| t.1.starts_with("Starting"))
    });
    assert!(starting, "not held in starting: {:?}", states(m, "slow"));
    let running = eventually(Duration::from_secs(30), || {
        let s = states(m, "slow");
        s.len() == 2 && s.iter().all(|t| t.1.starts_with("Running"))
    });
    assert!(running, "never running: {:?}", states(m, "slow"));

    // Never healthy: tasks fail as unhealthy and are replaced.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "sick",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "--restart-delay",
        "200ms",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let replaced = eventually(Duration::from_secs(40), || {
        let s = states(m, "sick");
        s.iter()
            .filter(|t| t.1.starts_with("Failed") && t.2.contains("unhealthy"))
            .count()
            >= 2
    });
    assert!(
        replaced,
        "unhealthy tasks not failed: {:?}",
        states(m, "sick")
    );
    assert!(
        states(m, "sick")
            .iter()
            .all(|t| !t.1.starts_with("Running")),
        "an unhealthy task counted as running: {:?}",
        states(m, "sick")
    );
    m.docker_ok(&["service", "rm", "sick"]);

    // An update to a healthcheck that never passes: rolled back by itself.
    m.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--health-cmd",
        "false",
        "--health-retries",
        "1",
        "--health-interval",
        "200ms",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "3s",
        "slow",
    ]);
    let rolled_back = eventually(Duration::from_secs(90), || {
        let state = m.docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            "slow",
        ]);
        state == "rollback_completed"
    });
    assert!(
        rolled_back,
        "update status: {}; tasks {:?}",
        m.docker_ok(&[
            "service",
            "inspect",
            "--format",
            "{{json .UpdateStatus}}",
            "slow"
        ]),
        states(m, "slow")
    );
    let healthy_again = eventually(Duration::from_secs(40), || {
        states(m, "slow")
            .iter()
            .filter(|t| t.0 == "Running" && t.1.starts_with("Running"))
            .count()
            == 2
    });
    assert!(healthy_again, "{:?}", states(m, "slow"));
    m.docker_ok(&["service", "rm", "slow"]);
}
