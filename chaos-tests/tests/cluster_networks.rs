//! Swarm-scoped networks in the replicated store, as a docker user sees them on 3 nodes (1
//! manager, 2 workers): `network create -d overlay` gives each network its own subnet and
//! VXLAN id, `network ls/inspect` show them with scope swarm, a service on a network gets a
//! VIP and each task an address of that network (no two alike), `network rm` is refused
//! while a service uses the network and works once it is gone, and workers cannot create
//! swarm networks.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use berth_chaos_tests::{eventually, swarm, Cluster, Host};
use serde_json::Value;

const IMAGE: &str = "busybox:latest";

fn json(h: &Host, args: &[&str]) -> Value {
    let out = h.docker_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// (subnet, gateway, VXLAN id) of a network as `network inspect` shows it.
fn network(h: &Host, name: &str) -> (String, String, String) {
    let v = json(h, &["network", "inspect", "--format", "{{json .}}", name]);
    assert_eq!(v["Scope"], "swarm", "{v}");
    assert_eq!(v["Driver"], "overlay", "{v}");
    let cfg = &v["IPAM"]["Config"][0];
    let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
    (
        s(&cfg["Subnet"]),
        s(&cfg["Gateway"]),
        s(&v["Options"]["com.docker.network.driver.overlay.vxlanid_list"]),
    )
}

fn in_subnet(addr: &str, subnet: &str) -> bool {
    let ip: Ipv4Addr = addr
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("address");
    let (base, prefix) = subnet.split_once('/').expect("subnet");
    let base: Ipv4Addr = base.parse().expect("subnet base");
    let prefix: u32 = prefix.parse().expect("prefix");
    let mask = u32::MAX << (32 - prefix);
    u32::from(ip) & mask == u32::from(base)
}

/// The addresses of a service's tasks meant to run, from `docker inspect --type task`.
fn task_addresses(m: &Host, service: &str) -> Vec<String> {
    let ids = m.docker_ok(&[
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        service,
    ]);
    ids.lines()
        .filter(|l| !l.is_empty())
        .flat_map(|id| {
            let v = json(
                m,
                &[
                    "inspect",
                    "--type",
                    "task",
                    "--format",
                    "{{json .NetworksAttachments}}",
                    id,
                ],
            );
            v.as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|a| a["Addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn swarm_networks_allocate_without_collisions_and_guard_removal() {
    let c = Cluster::new(3);
    for h in c.hosts() {
        h.import_busybox();
    }
    swarm::form(&c, 1, 2);
    let (m, w1) = (c.host(0), c.host(1));

    m.docker_ok(&["network", "create", "-d", "overlay", "--attachable", "ov1"]);
    m.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.20.0.0/24",
        "--gateway",
        "10.20.0.254",
        "ov2",
    ]);
    let (s1, g1, vni1) = network(m, "ov1");
    let (s2, g2, vni2) = network(m, "ov2");
    assert!(s1.starts_with("10.") && s1.ends_with("/24"), "{s1}");
    assert_eq!((s2.as_str(), g2.as_str()), ("10.20.0.0/24", "10.20.0.254"));
    assert!(in_subnet(&g1, &s1), "{g1} in {s1}");
    assert_ne!(vni1, vni2);
    assert!(!vni1.is_empty() && !vni2.is_empty());
    let ls = m.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "driver=overlay",
        "--format",
        "{{.Name}} {{.Scope}}",
    ]);
    let rows: BTreeSet<&str> = ls.lines().collect();
    // `ingress` is made with the swarm (the routing mesh's network).
    assert_eq!(
        rows,
        BTreeSet::from(["ingress swarm", "ov1 swarm", "ov2 swarm"]),
        "{ls}"
    );

    // Names are unique, subnets never overlap, workers cannot make swarm networks.
    let dup = m.docker(&["network", "create", "-d", "overlay", "ov1"]);
    assert!(!dup.status.success());
    assert!(
        swarm::stderr(&dup).contains("already exists"),
        "{}",
        swarm::stderr(&dup)
    );
    let overlap = m.docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.20.0.0/16",
        "ov3",
    ]);
    assert!(!overlap.status.success());
    assert!(
        swarm::stderr(&overlap).contains("overlaps"),
        "{}",
        swarm::stderr(&overlap)
    );
    let on_worker = w1.docker(&["network", "create", "-d", "overlay", "ovw"]);
    assert!(!on_worker.status.success(), "a worker made a swarm network");

    // A service on ov1: one VIP, and an address of ov1 for each task, all different.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "3",
        "--no-resolve-image",
        "--network",
        "ov1",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let vips = json(
        m,
        &[
            "service",
            "inspect",
            "--format",
            "{{json .Endpoint.VirtualIPs}}",
            "web",
        ],
    );
    let vips = vips.as_array().cloned().unwrap_or_default();
    assert_eq!(vips.len(), 1, "{vips:?}");
    let ov1_id = m.docker_ok(&["network", "inspect", "--format", "{{.Id}}", "ov1"]);
    assert_eq!(vips[0]["NetworkID"], ov1_id.as_str());
    let vip = vips[0]["Addr"].as_str().unwrap_or_default().to_owned();
    assert!(in_subnet(&vip, &s1), "VIP {vip} in {s1}");
    let mut addrs = Vec::new();
    let three = eventually(Duration::from_secs(30), || {
        addrs = task_addresses(m, "web");
        addrs.len() == 3
    });
    assert!(three, "task addresses: {addrs:?}");
    let mut all: BTreeSet<String> = addrs.iter().cloned().collect();
    all.insert(vip.clone());
    all.insert(format!("{g1}/24"));
    assert_eq!(all.len(), 5, "VIP, gateway and tasks all differ: {all:?}");
    assert!(addrs.iter().all(|a| in_subnet(a, &s1)), "{addrs:?}");

    // dnsrr: addresses for the tasks, no VIP.
    m.docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "rr",
        "--endpoint-mode",
        "dnsrr",
        "--no-resolve-image",
        "--network",
        "ov2",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let rr = m.docker_ok(&[
        "service",
        "inspect",
        "--format",
        "{{json .Endpoint.VirtualIPs}}",
        "rr",
    ]);
    assert_eq!(rr, "null", "dnsrr has no VIP");
    let rr_addr = eventually(Duration::from_secs(30), || {
        task_addresses(m, "rr")
            .iter()
            .any(|a| in_subnet(a, "10.20.0.0/24"))
    });
    assert!(rr_addr, "{:?}", task_addresses(m, "rr"));

    // In use: refused; after the service is gone (and its tasks ended): removed.
    let busy = m.docker(&["network", "rm", "ov1"]);
    assert!(!busy.status.success(), "removed a network in use");
    assert!(
        swarm::stderr(&busy).contains("in use by service web"),
        "{}",
        swarm::stderr(&busy)
    );
    m.docker_ok(&["service", "rm", "web", "rr"]);
    let overlays = || {
        let o = m.docker(&[
            "network",
            "ls",
            "--filter",
            "driver=overlay",
            "--format",
            "{{.Name}}",
        ]);
        swarm::stdout(&o)
    };
    let removed = eventually(Duration::from_secs(60), || {
        m.docker(&["network", "rm", "ov1", "ov2"]).status.success() || overlays() == "ingress"
    });
    assert!(
        removed,
        "{}",
        m.docker_ok(&["network", "ls", "--filter", "driver=overlay"])
    );
    let left = overlays();
    assert_eq!(left, "ingress", "left: {left}");
}
