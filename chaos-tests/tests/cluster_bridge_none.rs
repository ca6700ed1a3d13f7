//! A node whose berthd runs with `--bridge none` (no default bridge network) in a cluster:
//! its service tasks and its standalone containers on an attachable overlay have the
//! overlay as their only network (eth0, the embedded DNS, no default route), and reach the
//! tasks of both nodes across it (each serves its own hostname). Publishing a port there needs the default bridge:
//! refused with the reason, and the address the refused container was given goes back.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_chaos_tests::swarm::{resolve, served, sh, stderr, task_container};
use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";
const HTTPD: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www";

/// The IPv4 addresses (with prefix) of `ctr`'s interfaces other than lo.
fn addresses(h: &Host, ctr: &str) -> Vec<String> {
    sh(h, ctr, "ip -o -4 addr")
        .lines()
        .filter(|l| !l.contains(": lo "))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

#[test]
fn a_bridgeless_node_runs_overlay_tasks_and_containers() {
    let c = Cluster::bare(2);
    let (m, w) = (c.host(0), c.host(1));
    w.set_bridgeless();
    for h in c.hosts() {
        h.launch();
    }
    for h in c.hosts() {
        h.wait_ready();
        h.import_busybox();
    }
    swarm::form(&c, 1, 1);
    let nets = w.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n == "bridge"), "{nets}");

    m.docker_ok(&["network", "create", "-d", "overlay", "--attachable", "ov"]);
    let subnet = m.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{(index .IPAM.Config 0).Subnet}}",
        "ov",
    ]);
    let prefix = subnet.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
    let prefix = format!("{prefix}.");
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--mode",
        "global",
        "--no-resolve-image",
        "--network",
        "ov",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    let up = eventually(Duration::from_secs(90), || {
        c.hosts().iter().all(|h| task_container(h, "web").is_some())
    });
    assert!(up, "web did not start on both nodes:\n{}", w.log_tail());

    // The bridgeless node's task: the overlay alone, as eth0, and no way out.
    let task = task_container(w, "web").expect("web task");
    let addrs = addresses(w, &task);
    assert!(
        addrs.len() == 1 && addrs[0].starts_with(&prefix),
        "the task's addresses: {addrs:?} (overlay {subnet})"
    );
    let eth0 = sh(w, &task, "ip -o -4 addr show eth0");
    assert!(eth0.contains(&prefix), "eth0: {eth0}");
    let routes = sh(w, &task, "ip route");
    assert!(!routes.contains("default"), "routes: {routes}");

    // Across the overlay: both tasks by name, each serving its own hostname.
    let mut seen = BTreeSet::new();
    let ok = eventually(Duration::from_secs(30), || {
        let tasks = resolve(w, &task, "tasks.web");
        seen = tasks
            .iter()
            .flat_map(|t| served(w, &task, t, 1))
            .filter(|s| !s.is_empty())
            .collect();
        tasks.len() == 2 && seen.len() == 2
    });
    assert!(ok, "from the bridgeless node's task: {seen:?}");

    // A standalone container on the attachable overlay: its only network; the VIP answers.
    let script =
        "ip -o -4 addr show eth0; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80 | tail -n 1";
    let mut out = String::new();
    let ok = eventually(Duration::from_secs(30), || {
        out = w.docker_ok(&["run", "--rm", "--network", "ov", IMAGE, "sh", "-c", script]);
        out.contains(&prefix) && out.lines().last().is_some_and(|l| seen.contains(l))
    });
    assert!(ok, "a standalone container on ov: {out}");
    let net = w.docker_ok(&[
        "create",
        "--name",
        "standalone",
        "--network",
        "ov",
        IMAGE,
        "true",
    ]);
    assert!(!net.is_empty());
    let mode = w.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
        "standalone",
    ]);
    assert_eq!(mode, "ov ov");
    w.docker_ok(&["rm", "standalone"]);

    // Published ports need the default bridge.
    let o = w.docker(&[
        "run",
        "--rm",
        "--network",
        "ov",
        "-p",
        "8080:80",
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("--bridge none"), "{}", stderr(&o));

    // The refused create's address went back at once: well inside the 60 s the agent's
    // collector leaves a fresh attachment alone, the network can go.
    m.docker_ok(&["service", "rm", "web"]);
    let gone = eventually(Duration::from_secs(30), || {
        c.hosts().iter().all(|h| task_container(h, "web").is_none())
            && m.docker(&["network", "rm", "ov"]).status.success()
    });
    assert!(gone, "web or ov stayed:\n{}", m.log_tail());
}
