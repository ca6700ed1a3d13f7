//! A berthd that is in no swarm, driven by the stock docker CLI: the cluster commands fail
//! with dockerd's messages (SDK teardowns rely on `swarm leave --force` failing that way),
//! `info` reports the swarm inactive, and no cluster port is open.

mod common;

use common::{stderr, stdout, Daemon};

const NOT_A_MANAGER: &str = "Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// Runs `docker args…`, asserting it fails with exactly `message` on stderr.
fn fails_with(d: &Daemon, args: &[&str], message: &str) {
    let o = d.docker(args);
    assert!(
        !o.status.success(),
        "docker {args:?} succeeded: {}",
        stdout(&o)
    );
    assert_eq!(stderr(&o).trim(), message, "docker {args:?}");
}

#[test]
fn cluster_commands_outside_a_swarm_fail_like_dockerd() {
    let d = Daemon::start();
    for args in [
        &["node", "ls"][..],
        &["node", "inspect", "self"],
        &["node", "rm", "n1"],
        &["service", "ls"],
        &["service", "inspect", "web"],
        &["service", "rm", "web"],
        &["service", "ps", "web"],
        &[
            "service",
            "create",
            "--no-resolve-image",
            "--name",
            "web",
            "busybox",
        ],
        &["secret", "ls"],
        &["secret", "inspect", "s"],
        &["config", "ls"],
        &["swarm", "join-token", "worker"],
    ] {
        fails_with(&d, args, NOT_A_MANAGER);
    }
    fails_with(
        &d,
        &["swarm", "unlock-key"],
        &format!("could not fetch unlock key: {NOT_A_MANAGER}"),
    );
    fails_with(
        &d,
        &["swarm", "leave", "--force"],
        "Error response from daemon: This node is not part of a swarm",
    );
    fails_with(
        &d,
        &["swarm", "leave"],
        "Error response from daemon: This node is not part of a swarm",
    );
    // A join that reaches no manager fails, and leaves the node out of any swarm.
    let o = d.docker(&[
        "swarm",
        "join",
        "--token",
        "SWMTKN-1-00000000000000000000000000000000000000000000000000-0000000000000000000000000",
        "--advertise-addr",
        "127.0.0.1",
        "127.0.0.1:2377",
    ]);
    assert!(!o.status.success(), "join without a manager succeeded");
    assert!(
        stderr(&o).contains("could not join the swarm through 127.0.0.1:2377"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive"
    );
}

#[test]
fn info_reports_the_swarm_inactive_and_no_cluster_port_opens() {
    let d = Daemon::start();
    assert_eq!(
        d.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive"
    );
    assert_eq!(
        d.ok(&["info", "--format", "{{json .Swarm}}"]),
        r#"{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}"#
    );
    let info = d.ok(&["info"]);
    assert!(info.contains(" Swarm: inactive"), "{info}");
    let berth = d.berth_ok(&["info"]);
    assert!(berth.contains(" Swarm: inactive"), "{berth}");
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let o = d
            .in_netns("cat")
            .arg(table)
            .output()
            .expect("read the daemon's netns socket table");
        let listening: Vec<String> = stdout(&o)
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
            .map(str::to_owned)
            .collect();
        assert!(
            listening.is_empty(),
            "berthd outside a swarm listens on TCP: {listening:?}"
        );
    }
}
