//! The user-space WireGuard tunnels against the real kernel: two "nodes" (network
//! namespaces joined by a veth underlay) each with a tunnel device; tunnel addresses answer
//! each other, an encrypted overlay plane (VXLAN between tunnel addresses, MTU 1390) carries
//! full-size frames between two "containers", a key change on one side (published to the
//! other) keeps traffic going, a peer with a stale key gets nothing through, and dropping a
//! device removes it. Needs root.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;

use berth_overlay_net::model::{bridge_name, mac_for, Peer, Plane};
use berth_overlay_net::netlink::{self, Netlink};
use berth_overlay_net::wireguard::{Device, PeerConfig, PrivateKey, DEVICE, ENCRYPTED_OVERLAY_MTU};

mod common;
use common::{inside, run, Netns};

/// The pattern byte at `offset` of a test stream.
fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Sends `len` pattern bytes over TCP from namespace `from` to `to`:7777 in namespace `at`.
/// Returns (bytes sent, bytes received that matched the pattern where they landed).
fn tcp_transfer(from: &str, at: &str, to: Ipv4Addr, len: u64) -> (u64, u64) {
    use std::io::{Read, Write};
    let listener = inside(at, || {
        std::net::TcpListener::bind("0.0.0.0:7777").expect("listen")
    });
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        let (mut buf, mut at, mut good) = (vec![0u8; 1 << 16], 0u64, 0u64);
        loop {
            let n = c.read(&mut buf).expect("read");
            if n == 0 {
                return good;
            }
            for &b in &buf[..n] {
                good += u64::from(b == pattern(at));
                at += 1;
            }
        }
    });
    inside(from, move || {
        let mut c = std::net::TcpStream::connect((to, 7777)).expect("connect");
        let mut sent = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        while sent < len {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = pattern(sent + i as u64);
            }
            c.write_all(&buf).expect("write");
            sent += buf.len() as u64;
        }
        drop(c); // the end of the stream: the server returns
        (sent, server.join().expect("server"))
    })
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

/// busybox-static's ping inside `ns`: `size` bytes of payload, one packet.
fn ping(ns: &str, to: Ipv4Addr, size: u32) -> bool {
    let (to, size) = (to.to_string(), size.to_string());
    let args = [
        "netns",
        "exec",
        ns,
        "/bin/busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-s",
        &size,
        &to,
    ];
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn eventually_ping(ns: &str, to: Ipv4Addr, size: u32) -> bool {
    (0..5).any(|_| ping(ns, to, size))
}

fn peer(key: &PrivateKey, under: &str, tunnel: Ipv4Addr) -> PeerConfig {
    PeerConfig {
        public: key.public(),
        endpoint: SocketAddrV4::new(ip(under), 51820),
        address: tunnel,
    }
}

#[test]
fn tunnels_carry_an_encrypted_overlay_and_survive_a_key_change() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "needs root (namespaces, tun devices)");
    let run_id = format!("{:06x}", std::process::id() & 0xffffff);
    let mut ns = Netns(Vec::new());
    let (a, b) = (
        ns.add(format!("wgt{run_id}a")),
        ns.add(format!("wgt{run_id}b")),
    );
    let (ca, cb) = (
        ns.add(format!("wgt{run_id}ca")),
        ns.add(format!("wgt{run_id}cb")),
    );
    run(&[
        "ip", "-n", &a, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &b,
    ]);
    for (n, addr) in [(&a, "192.0.2.1/24"), (&b, "192.0.2.2/24")] {
        run(&["ip", "-n", n, "addr", "add", addr, "dev", "u0"]);
        run(&["ip", "-n", n, "link", "set", "u0", "up"]);
    }
    let (ka, kb) = (
        PrivateKey::generate().expect("key"),
        PrivateKey::generate().expect("key"),
    );
    let (ta, tb) = (ip("198.18.0.1"), ip("198.18.0.2"));
    let start = |n: &str, k: &PrivateKey, t: Ipv4Addr| {
        let k = k.clone();
        inside(n, move || {
            Device::start(DEVICE, &k, t, 16, 51820).expect("device")
        })
    };
    let (da, db) = (start(&a, &ka, ta), start(&b, &kb, tb));
    da.set_peers(&[peer(&kb, "192.0.2.2", tb)]);
    db.set_peers(&[peer(&ka, "192.0.2.1", ta)]);
    assert!(eventually_ping(&a, tb, 56), "a reaches b's tunnel address");
    assert!(ping(&b, ta, 56), "and back");
    // 1440-byte packets (the tunnel's MTU) pass whole.
    assert!(
        ping(&a, tb, 1440 - 28),
        "full-size packets through the tunnel"
    );
    let l = run(&["ip", "-n", &a, "-o", "link", "show", DEVICE]);
    assert!(l.contains(" mtu 1440 "), "{l}");

    // An encrypted overlay: VXLAN between the tunnel addresses.
    let net = "5e6f7a8b9c0d1e2f";
    let (xa, xb) = (ip("10.9.0.3"), ip("10.9.0.4"));
    let plane = |local: Ipv4Addr, peer_ip: Ipv4Addr, peer_node: Ipv4Addr| Plane {
        network_id: net.into(),
        vni: 4343,
        local,
        peers: BTreeSet::from([Peer {
            ip: peer_ip,
            mac: mac_for(peer_ip),
            node: peer_node,
        }]),
        mtu: ENCRYPTED_OVERLAY_MTU,
    };
    for (node, p) in [(&a, plane(ta, xb, tb)), (&b, plane(tb, xa, ta))] {
        inside(node, move || {
            let mut nl = Netlink::open().expect("netlink");
            netlink::reconcile(&mut nl, &[p]).expect("reconcile");
        });
    }
    let br = bridge_name(net);
    for (node, ctr, addr) in [(&a, &ca, xa), (&b, &cb, xb)] {
        let mac = netlink::fmt_mac(&mac_for(addr));
        run(&[
            "ip", "-n", node, "link", "add", "v0", "mtu", "1390", "type", "veth", "peer", "name",
            "eth1", "netns", ctr,
        ]);
        run(&["ip", "-n", node, "link", "set", "v0", "master", &br, "up"]);
        run(&[
            "ip", "-n", ctr, "link", "set", "eth1", "address", &mac, "mtu", "1390",
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
    assert!(
        eventually_ping(&ca, xb, 56),
        "containers talk over the encrypted overlay"
    );
    assert!(
        ping(&ca, xb, ENCRYPTED_OVERLAY_MTU - 28),
        "full-size frames: VXLAN + WireGuard fit the underlay"
    );
    // A bulk TCP stream: its frames reach the receiving tun device gathered by flow (one
    // segmentation-offload write per batch); every byte must come out as it went in.
    let (sent, got) = tcp_transfer(&ca, &cb, xb, 32 << 20);
    assert_eq!(
        got, sent,
        "a 32 MiB stream over the encrypted overlay, byte for byte"
    );

    // a changes its key; b learns the new public key: traffic goes on.
    let ka2 = PrivateKey::generate().expect("key");
    da.set_key(&ka2);
    db.set_peers(&[peer(&ka2, "192.0.2.1", ta)]);
    assert!(eventually_ping(&cb, xa, 56), "after a's key changed");
    assert!(ping(&ca, xb, 56), "both ways");

    // A peer configured with a stale key gets nothing through.
    db.set_peers(&[peer(&ka, "192.0.2.1", ta)]);
    assert!(!ping(&b, ta, 56), "b still has a's old key: no session");

    // Dropping a device removes it.
    drop(da);
    let links = run(&["ip", "-n", &a, "-o", "link", "show"]);
    assert!(!links.contains(DEVICE), "{links}");
    drop(db);
}
