//! The overlay data plane as a docker user sees it, on 3 nodes (1 manager, 2 workers): a
//! service `web` (2 replicas of busybox httpd, each serving its own hostname) and a global
//! service `probe` on the overlay network `ov1`. From the probe task on every node: `web`
//! resolves to its VIP, `tasks.web` to both task addresses, and HTTP through the VIP
//! reaches both tasks, across nodes (VXLAN, peers programmed from committed state). A worker
//! running a web task is killed -9: once its task is replaced elsewhere, DNS and the VIP
//! follow on the surviving nodes. `network rm` is refused while the services exist and works
//! after; no VXLAN or bridge device of the overlay is left on any node.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_chaos_tests::swarm::{resolve, served, task_container};
use berth_chaos_tests::{eventually, swarm, Cluster, Host};

const IMAGE: &str = "busybox:latest";

/// `web`'s running tasks as (node hostname) from `service ps`.
fn web_nodes(m: &Host) -> Vec<String> {
    let out = m.docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}|{{.CurrentState}}",
        "web",
    ]);
    swarm::stdout(&out)
        .lines()
        .filter(|l| l.contains("|Running"))
        .filter_map(|l| l.split('|').next().map(str::to_owned))
        .collect()
}

/// The overlay devices of `h`, but those of the ingress network (every node has them for
/// as long as the swarm has the routing mesh).
fn overlay_links(h: &Host) -> Vec<String> {
    let ingress = h.docker_ok(&["network", "inspect", "--format", "{{.Id}}", "ingress"]);
    let short = &ingress[..ingress.len().min(9)];
    let out = std::process::Command::new("ip")
        .args(["-n", h.netns(), "-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n.starts_with("ovb-") || n.starts_with("ovx-"))
        .filter(|n| !n.ends_with(short))
        .collect()
}

/// From the probe task on `h`: `web` is the VIP, `tasks.web` the running tasks, and the VIP
/// reaches each of them. Returns the hostnames seen.
fn check_from(h: &Host, vip: &str, want_tasks: usize) -> Result<BTreeSet<String>, String> {
    let ctr = task_container(h, "probe").ok_or("no probe task")?;
    let web = resolve(h, &ctr, "web");
    if web != BTreeSet::from([vip.to_owned()]) {
        return Err(format!(
            "{}: web resolves to {web:?}, not {vip}",
            h.hostname()
        ));
    }
    let tasks = resolve(h, &ctr, "tasks.web");
    if tasks.len() != want_tasks {
        return Err(format!("{}: tasks.web = {tasks:?}", h.hostname()));
    }
    let seen: Vec<String> = served(h, &ctr, "web", 16);
    if seen.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "{}: a request through the VIP failed: {seen:?}",
            h.hostname()
        ));
    }
    let distinct: BTreeSet<String> = seen.into_iter().collect();
    if distinct.len() != want_tasks {
        return Err(format!("{}: the VIP reached {distinct:?}", h.hostname()));
    }
    // Each task directly, by its overlay address, from this node.
    for t in &tasks {
        if served(h, &ctr, t, 1)[0].is_empty() {
            return Err(format!("{}: task {t} unreachable", h.hostname()));
        }
    }
    Ok(distinct)
}

#[test]
fn overlay_services_resolve_balance_and_converge_after_a_node_dies() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let m = c.host(0);

    m.docker_ok(&["network", "create", "-d", "overlay", "ov1"]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "--no-resolve-image",
        "--network",
        "ov1",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "probe",
        "--mode",
        "global",
        "--no-resolve-image",
        "--network",
        "ov1",
        "--stop-grace-period",
        "1s",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let vip = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{(index .Endpoint.VirtualIPs 0).Addr}}",
        "web",
    ]);
    let vip = vip.split('/').next().unwrap_or_default().to_owned();
    let running = eventually(Duration::from_secs(90), || {
        web_nodes(m).len() == 2
            && c.hosts()
                .iter()
                .all(|h| task_container(h, "probe").is_some())
    });
    assert!(running, "services did not start: {:?}", web_nodes(m));

    for h in c.hosts() {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(90), || match check_from(h, &vip, 2) {
            Ok(_) => true,
            Err(e) => {
                last = e;
                false
            }
        });
        assert!(ok, "{last}\n{}", h.log_tail());
    }
    let peers = m.docker_ok(&["network", "inspect", "--format", "{{len .Peers}}", "ov1"]);
    assert!(
        peers == "3",
        "every node has an endpoint on ov1: {peers} peers"
    );

    // Kill -9 a worker that runs a web task: its task is replaced, DNS and the VIP follow.
    let victim = web_nodes(m)
        .into_iter()
        .find(|n| n != m.hostname())
        .and_then(|n| c.by_hostname(&n))
        .expect("a worker runs a web task");
    victim.kill9();
    let replaced = eventually(Duration::from_secs(60), || {
        let nodes = web_nodes(m);
        nodes.len() == 2 && nodes.iter().all(|n| n != victim.hostname())
    });
    assert!(replaced, "web not replaced: {:?}", web_nodes(m));
    for h in c
        .hosts()
        .iter()
        .filter(|h| h.hostname() != victim.hostname())
    {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(90), || match check_from(h, &vip, 2) {
            Ok(_) => true,
            Err(e) => {
                last = e;
                false
            }
        });
        assert!(ok, "after the node died: {last}\n{}", h.log_tail());
    }
    victim.start();

    // Removal: refused while in use; then the network and every device go.
    let busy = m.docker(&["network", "rm", "ov1"]);
    assert!(!busy.status.success(), "removed a network in use");
    m.docker_ok(&["service", "rm", "web", "probe"]);
    let removed = eventually(Duration::from_secs(60), || {
        m.docker(&["network", "rm", "ov1"]).status.success()
    });
    assert!(removed, "network rm after the services went");
    let clean = eventually(Duration::from_secs(30), || {
        c.hosts().iter().all(|h| overlay_links(h).is_empty())
    });
    let left: Vec<(String, Vec<String>)> = c
        .hosts()
        .iter()
        .map(|h| (h.hostname().to_owned(), overlay_links(h)))
        .collect();
    assert!(clean, "overlay devices left: {left:?}");
}
