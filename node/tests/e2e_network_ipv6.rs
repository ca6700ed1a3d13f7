//! IPv6 end to end with the docker CLI: the default bridge with `--ipv6 --fixed-cidr-v6`,
//! outbound IPv6 through NAT66 to another "machine" (a namespace the test makes), ports
//! published on IPv6 reached from there and from the host's `[::1]`, `network create --ipv6`
//! and `--ip6`, and a `kill -9` of berthd that keeps every address and port. Nothing leaves the namespaces the test makes.

mod common;

use std::time::Duration;

use common::outside::{http_get, web, Outside};
use common::{eventually, stderr, stdout, Daemon};

/// A unique-local /48 prefix for this run, e.g. `fd3a:12f4:9c`.
fn prefix() -> String {
    let r: [u8; 5] = rand::random();
    format!(
        "fd{:02x}:{:x}:{:x}",
        r[0],
        u16::from_be_bytes([r[1], r[2]]),
        u16::from_be_bytes([r[3], r[4]])
    )
}

/// A second container asking for `ip` on `n6` is refused: the address is in use.
fn assert_fixed_ip6_taken(d: &Daemon, ip: &str) {
    let taken = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n6",
        "--ip6",
        ip,
        "busybox",
        "true",
    ]);
    assert_eq!(taken.status.code(), Some(125), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("Address already in use"),
        "{}",
        stderr(&taken)
    );
}

#[test]
fn ipv6_default_bridge_nat66_published_ports_and_restart() {
    let p = prefix();
    let fixed = format!("{p}:1::/64");
    let mut d = Daemon::start_with(&["--ipv6", "--fixed-cidr-v6", &fixed]);
    d.busybox();
    // Another machine, joined over IPv6 only, with no route back to container subnets.
    let out = Outside::new(
        &d,
        "o6",
        &format!("{p}:203::1/64"),
        &format!("{p}:203::2/64"),
        "from outside6",
    );

    // The default bridge has IPv6 in the subnet given.
    let enabled = d.ok(&["network", "inspect", "-f", "{{.EnableIPv6}}", "bridge"]);
    assert_eq!(enabled, "true");
    let subnets = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "bridge",
    ]);
    assert!(subnets.contains(&fixed), "{subnets}");

    // Outbound IPv6: the outside has no route to the bridge's subnet; NAT66 answers.
    let o = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://[{p}:203::2]:9000/"),
    ]);
    assert_eq!(o, "from outside6");

    // A port published on both families: `ps` shows both, the outside reaches it over IPv6.
    web(&d, &["-p", "18090:80"], "pub6", "published6");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        ps.contains("pub6 0.0.0.0:18090->80/tcp, [::]:18090->80/tcp"),
        "{ps}"
    );
    let url6 = format!("http://[{p}:203::1]:18090/");
    assert!(eventually(Duration::from_secs(5), || http_get(
        &out.ns, &url6
    )
    .as_deref()
        == Some("published6")));
    // [::1] on the host: relayed by berthd (the kernel cannot forward ::1 off loopback).
    assert_eq!(
        http_get(&d.netns, "http://[::1]:18090/").as_deref(),
        Some("published6")
    );
    let ip6 = d.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.GlobalIPv6Address}}",
        "pub6",
    ]);
    assert!(ip6.starts_with(&format!("{p}:1::")), "{ip6}");

    // A user network with IPv6 and a fixed address (docker CLI flags).
    let subnet2 = format!("{p}:5::/64");
    d.ok(&["network", "create", "--ipv6", "--subnet", &subnet2, "n6"]);
    let fixed_ip = format!("{p}:5::50");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "n6",
        "--ip6",
        &fixed_ip,
        "busybox",
        "sleep",
        "300",
    ]);
    let addrs = d.ok(&["exec", "fixed", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("{fixed_ip}/64")), "{addrs}");
    assert_fixed_ip6_taken(&d, &fixed_ip);

    // kill -9 of berthd: addresses stay claimed, the port still answers over IPv6.
    d.kill9();
    d.spawn();
    assert!(eventually(Duration::from_secs(5), || http_get(
        &out.ns, &url6
    )
    .as_deref()
        == Some("published6")));
    assert!(
        eventually(Duration::from_secs(5), || http_get(
            &d.netns,
            "http://[::1]:18090/"
        )
        .as_deref()
            == Some("published6")),
        "[::1] relayed again after the restart: {}",
        d.log_tail()
    );
    let again = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -6 addr show eth0 | grep global",
    ]);
    assert!(
        !again.contains(&format!("{ip6}/")),
        "a running container's address is not handed out again: {again}"
    );
    assert_fixed_ip6_taken(&d, &fixed_ip);

    // Removing the IPv6 network and its container leaves the default bridge's rules.
    d.ok(&["rm", "-f", "fixed"]);
    d.ok(&["network", "rm", "n6"]);
    let rules = stdout(
        &d.in_netns("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft"),
    );
    assert!(!rules.contains(&subnet2), "{rules}");
    assert!(rules.contains(&fixed), "{rules}");
}
