//! Our `berth swarm` and `berth node` commands against a real berthd: a one-node cluster is
//! made, inspected, changed and left, with the docker CLI's texts (saying `berth`).

mod common;

use common::{stderr, stdout, Daemon};

const NOT_A_MANAGER: &str = "Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// Runs `berth args…`, asserting exit 1 and that stderr starts with `prefix`.
fn fails(d: &Daemon, args: &[&str], prefix: &str) {
    let o = d.berth(args);
    assert_eq!(o.status.code(), Some(1), "berth {args:?}: {}", stdout(&o));
    assert!(
        stderr(&o).starts_with(prefix),
        "berth {args:?}: stderr {:?}, expected it to start with {prefix:?}",
        stderr(&o)
    );
}

#[test]
fn berth_cli_drives_a_one_node_swarm() {
    let d = Daemon::start();
    // The daemon has a network namespace of its own: nothing else listens on its loopback.
    let port = 20000 + rand::random::<u16>() % 20000;
    let listen = format!("127.0.0.1:{port}");

    let out = d.berth_ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        "127.0.0.1",
        "--listen-addr",
        &listen,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    let id = lines[0]
        .strip_prefix("Swarm initialized: current node (")
        .and_then(|l| l.strip_suffix(") is now a manager."))
        .unwrap_or_else(|| panic!("unexpected init output:\n{out}"))
        .to_owned();
    assert_eq!(lines[1], "");
    assert_eq!(
        lines[2],
        "To add a worker to this swarm, run the following command:"
    );
    let join = lines[4]
        .strip_prefix("    berth swarm join --token ")
        .unwrap_or_else(|| panic!("unexpected join line in:\n{out}"));
    let (token, addr) = join.split_once(' ').expect("token and address");
    assert!(token.starts_with("SWMTKN-1-"), "{token}");
    assert_eq!(addr, listen);
    assert_eq!(
        lines.last().copied(),
        Some("To add a manager to this swarm, run 'berth swarm join-token manager' and follow the instructions.")
    );

    // Join tokens: quiet prints the token alone, the full form the command.
    assert_eq!(d.berth_ok(&["swarm", "join-token", "-q", "worker"]), token);
    let manager = d.berth_ok(&["swarm", "join-token", "manager"]);
    assert!(
        manager.starts_with("To add a manager to this swarm, run the following command:"),
        "{manager}"
    );
    let manager_token = d.berth_ok(&["swarm", "join-token", "-q", "manager"]);
    assert!(manager.contains(&format!(
        "    berth swarm join --token {manager_token} {listen}"
    )));
    assert_ne!(manager_token, token);
    fails(&d, &["swarm", "join-token", "boss"], "unknown role boss");

    // The node table: this node, starred, ready, active, leader.
    let ls = d.berth_ok(&["node", "ls"]);
    let rows: Vec<&str> = ls.lines().collect();
    assert_eq!(rows.len(), 2, "{ls}");
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID",
            "HOSTNAME",
            "STATUS",
            "AVAILABILITY",
            "MANAGER",
            "STATUS",
            "ENGINE",
            "VERSION"
        ]
    );
    assert!(rows[1].starts_with(&format!("{id} *   ")), "{ls}");
    let cells: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(cells[3..6], ["Ready", "Active", "Leader"], "{ls}");
    assert_eq!(d.berth_ok(&["node", "ls", "-q"]), id);
    // Byte for byte what the stock docker CLI prints against the same daemon.
    assert_eq!(ls, d.ok(&["node", "ls"]));
    assert_eq!(
        d.berth_ok(&["swarm", "join-token", "worker"]),
        d.ok(&["swarm", "join-token", "worker"])
            .replace("docker swarm", "berth swarm")
    );

    // No service runs: the task table is its header alone, as docker's.
    let ps = d.berth_ok(&["node", "ps"]);
    assert!(ps.starts_with("ID        NAME      IMAGE     NODE"), "{ps}");
    assert_eq!(ps, d.ok(&["node", "ps", "self"]));

    // Labels: update prints the node it was given; inspect resolves `self`.
    assert_eq!(
        d.berth_ok(&["node", "update", "--label-add", "foo=bar", &id]),
        id
    );
    assert_eq!(
        d.berth_ok(&["node", "inspect", "self", "--format", "{{.Spec.Labels}}"]),
        "map[foo:bar]"
    );
    fails(
        &d,
        &["node", "update", "--label-rm", "nope", &id],
        "key nope doesn't exist in node's labels",
    );
    let pretty = d.berth_ok(&["node", "inspect", "--pretty", "self"]);
    assert!(pretty.starts_with(&format!("ID:\t\t\t{id}\nLabels:\n - foo=bar\n")));
    assert!(pretty.contains("\n Leader:\t\tYes"), "{pretty}");
    assert_eq!(pretty, d.ok(&["node", "inspect", "--pretty", "self"]));
    assert!(d
        .berth_ok(&["node", "inspect", &id])
        .contains("\"Role\": \"manager\""));
    let o = d.berth(&["node", "promote", &id]);
    assert_eq!(
        stdout(&o),
        format!("Node {id} is already a manager.\n"),
        "{}",
        stderr(&o)
    );

    // Cluster settings and CA.
    assert_eq!(
        d.berth_ok(&["swarm", "update", "--task-history-limit", "7"]),
        "Swarm updated."
    );
    let ca = d.berth_ok(&["swarm", "ca"]);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert!(ca.ends_with("-----END CERTIFICATE-----"), "{ca}");
    // A root rotation: `swarm ca --rotate` waits until every node (here one) holds a
    // certificate from the new root and trusts only it, then prints the new root.
    let rotated = d.berth_ok(&["swarm", "ca", "--rotate"]);
    assert!(
        rotated.starts_with("-----BEGIN CERTIFICATE-----"),
        "{rotated}"
    );
    assert_ne!(rotated, ca, "the root did not change");
    assert_eq!(d.ok(&["swarm", "ca"]), rotated);
    assert_eq!(d.berth_ok(&["swarm", "ca"]), rotated);

    // Autolock: turning it on prints the unlock key, which unlock-key shows as docker does;
    // a rotation changes it; a node that runs is not locked; turning it off drops the key.
    fails(
        &d,
        &["swarm", "unlock-key", "--rotate"],
        "cannot rotate because autolock is not turned on",
    );
    let on = d.berth_ok(&["swarm", "update", "--autolock=true"]);
    let key = d.berth_ok(&["swarm", "unlock-key", "-q"]);
    assert!(key.starts_with("SWMKEY-1-"), "{key}");
    assert!(
        on.starts_with("Swarm updated.\n") && on.contains(&key),
        "{on}"
    );
    assert_eq!(
        d.berth_ok(&["swarm", "unlock-key"]),
        d.ok(&["swarm", "unlock-key"])
            .replace("docker swarm", "berth swarm")
    );
    let rotated = d.berth_ok(&["swarm", "unlock-key", "--rotate", "-q"]);
    assert!(
        rotated.starts_with("SWMKEY-1-") && rotated != key,
        "{rotated}"
    );
    assert_eq!(d.ok(&["swarm", "unlock-key", "-q"]), rotated);
    fails(&d, &["swarm", "unlock"], "Error: swarm is not locked");
    d.berth_ok(&["swarm", "update", "--autolock=false"]);
    fails(&d, &["swarm", "unlock-key"], "no unlock key is set");

    // What the daemon refuses comes back in its words, exit 1.
    fails(
        &d,
        &["swarm", "join", "--token", token, &listen],
        "Error response from daemon: This node is already part of a swarm.",
    );
    fails(&d, &["node", "rm", &id], "Error response from daemon: ");

    assert_eq!(
        d.berth_ok(&["swarm", "leave", "--force"]),
        "Node left the swarm."
    );
    assert_eq!(
        d.berth_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive"
    );
    fails(&d, &["node", "ls"], NOT_A_MANAGER);
    fails(
        &d,
        &["swarm", "leave"],
        "Error response from daemon: This node is not part of a swarm",
    );
}
