//! The reconciler against the real kernel: two "nodes" (network namespaces joined by a veth
//! underlay) each with a "container" namespace on an overlay; the planes are programmed from
//! the peers alone (no learning, no flooding), traffic crosses the VXLAN tunnel, a second
//! pass has nothing to do, a deleted device comes back, and an empty desired state leaves
//! no device behind. Needs root.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;

use berth_overlay_net::model::{bridge_name, mac_for, Peer, Plane};
use berth_overlay_net::netlink::{self, Netlink};

mod common;
use common::{inside, run, Netns};

fn reconcile(ns: &str, planes: Vec<Plane>) -> usize {
    inside(ns, move || {
        let mut nl = Netlink::open().expect("netlink");
        netlink::reconcile(&mut nl, &planes)
            .expect("reconcile")
            .len()
    })
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

#[test]
fn two_nodes_talk_over_vxlan_programmed_from_peers_only() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "needs root (namespaces, links)");
    let run_id = format!("{:06x}", std::process::id() & 0xffffff);
    let mut ns = Netns(Vec::new());
    let (a, b) = (
        ns.add(format!("ovt{run_id}a")),
        ns.add(format!("ovt{run_id}b")),
    );
    let (ca, cb) = (
        ns.add(format!("ovt{run_id}ca")),
        ns.add(format!("ovt{run_id}cb")),
    );
    // The underlay: a veth between the two nodes (test addresses, inside our namespaces).
    run(&[
        "ip", "-n", &a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &b,
    ]);
    for (n, addr) in [(&a, "192.0.2.1/24"), (&b, "192.0.2.2/24")] {
        run(&["ip", "-n", n, "addr", "add", addr, "dev", "u0"]);
        run(&["ip", "-n", n, "link", "set", "u0", "up"]);
    }
    let net = "4f2c1d0e9b8a7766";
    let (ta, tb) = (ip("10.0.0.3"), ip("10.0.0.4"));
    let plane = |local: &str, peer_ip: Ipv4Addr, peer_node: &str| Plane {
        network_id: net.into(),
        vni: 4242,
        local: ip(local),
        peers: BTreeSet::from([Peer {
            ip: peer_ip,
            mac: mac_for(peer_ip),
            node: ip(peer_node),
        }]),
        mtu: berth_overlay_net::model::OVERLAY_MTU,
    };
    let pa = plane("192.0.2.1", tb, "192.0.2.2");
    let pb = plane("192.0.2.2", ta, "192.0.2.1");
    assert!(
        reconcile(&a, vec![pa.clone()]) >= 4,
        "bridge, vxlan, fdb, neigh"
    );
    assert!(reconcile(&b, vec![pb.clone()]) >= 4);
    assert_eq!(
        reconcile(&a, vec![pa.clone()]),
        0,
        "converged: nothing to do"
    );

    // A "container" on each node, plugged into the bridge the way the driver does it.
    let br = bridge_name(net);
    for (node, ctr, addr) in [(&a, &ca, ta), (&b, &cb, tb)] {
        let mac = netlink::fmt_mac(&mac_for(addr));
        run(&[
            "ip", "-n", node, "link", "add", "v0", "mtu", "1450", "type", "veth", "peer", "name",
            "eth1", "netns", ctr,
        ]);
        run(&["ip", "-n", node, "link", "set", "v0", "master", &br, "up"]);
        run(&[
            "ip", "-n", ctr, "link", "set", "eth1", "address", &mac, "mtu", "1450",
        ]);
        run(&[
            "ip",
            "-n",
            ctr,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth1",
        ]);
        run(&["ip", "-n", ctr, "link", "set", "eth1", "up"]);
    }
    // busybox-static's ping (the project's test dependency), run inside the namespace.
    let ping = |from: &str, to: Ipv4Addr| {
        let to = to.to_string();
        let args = [
            "netns",
            "exec",
            from,
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            &to,
        ];
        Command::new("ip")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        ping(&ca, tb),
        "container on a reaches container on b over VXLAN"
    );
    assert!(ping(&cb, ta), "and back");
    // The overlay's devices leave room for the 50 bytes of VXLAN in a 1500-byte underlay.
    let vx = berth_overlay_net::model::vxlan_name(net);
    for dev in [&br, &vx] {
        let l = run(&["ip", "-n", &a, "-o", "link", "show", dev]);
        assert!(l.contains(" mtu 1450 "), "{l}");
    }
    let l = run(&["ip", "-n", &a, "-d", "-o", "link", "show", &vx]);
    assert!(
        l.contains("vxlan id 4242") && l.contains("local 192.0.2.1"),
        "{l}"
    );
    assert!(l.contains("nolearning") && l.contains("proxy"), "{l}");

    // Someone deletes the VXLAN device: the next pass makes it again, entries included.
    run(&[
        "ip",
        "-n",
        &a,
        "link",
        "del",
        &berth_overlay_net::model::vxlan_name(net),
    ]);
    assert!(reconcile(&a, vec![pa.clone()]) >= 3);
    assert!(ping(&ca, tb), "back after the device was remade");

    // The peer went away: its entries go, nothing else changes.
    let mut lonely = pa.clone();
    lonely.peers.clear();
    assert_eq!(
        reconcile(&a, vec![lonely]),
        2,
        "one FDB and one neighbour entry"
    );
    assert!(!ping(&ca, tb), "no entry, no traffic: nothing is flooded");

    // Nothing desired: no device of ours is left.
    run(&["ip", "-n", &a, "link", "del", "v0"]);
    reconcile(&a, Vec::new());
    let links = run(&["ip", "-n", &a, "-o", "link", "show"]);
    assert!(
        !links.contains("ovb-") && !links.contains("ovx-"),
        "{links}"
    );
}
