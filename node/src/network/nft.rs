//! The daemon's nftables table, regenerated whole from the network state and swapped in by
//! one atomic transaction (`nft -f -`) on every change: nothing to diff, nothing stale, and
//! a restart reconciles by construction. Established flows survive a swap (conntrack keeps
//! their NAT bindings).
//!
//! Rules, per bridge network:
//! - `postrouting`: masquerade traffic leaving the subnet (not for `--internal` networks);
//!   masquerade traffic reaching a container through a published port from loopback or from
//!   its own subnet (hairpin), so replies come back through the host.
//! - `forward`: containers on different networks cannot talk (one rule per bridge against the
//!   set of all bridges), `--internal` networks cannot leave their bridge; DNAT'ed traffic
//!   (published ports) is let through first.
//! - `prerouting`/`output`: published ports, DNAT'ed when addressed to a local address
//!   (`fib daddr type local`), from outside, from containers and from the host itself.
//!
//! The same rules for IPv6 go in an `ip6` table of the same name (NAT66 masquerade unless the
//! network is in routed mode), present only while some network has IPv6 on.
//!
//! Nothing here is a shell command line: the script goes to nft on stdin, and names are
//! validated interface names.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::ipam::Subnet;
use super::ipam6::Subnet6;

#[derive(Debug, Clone)]
pub struct BridgeRules {
    pub ifname: String,
    pub subnet: Subnet,
    /// The IPv6 subnet, on networks with IPv6 on.
    pub subnet6: Option<Subnet6>,
    pub internal: bool,
    /// Masquerade IPv4 traffic leaving the network (off with
    /// `com.docker.network.bridge.enable_ip_masquerade=false` or
    /// `com.docker.network.bridge.gateway_mode_ipv4=routed`).
    pub masquerade: bool,
    /// The same for IPv6 (NAT66; off in `gateway_mode_ipv6=routed`).
    pub masquerade6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub proto: &'static str,
    /// None: every local address (of the family of `ctr_ip`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub ctr_ip: IpAddr,
    pub ctr_port: u16,
}

/// One address family's table: `ip` (IPv4) or `ip6`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn table_kind(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// The daemon's IPv4 table and its IPv6 table (`ip6`, the same name), both replaced in one
/// transaction. The IPv6 table exists only while a network has IPv6 on or a port is
/// published to an IPv6 address.
pub fn render(table: &str, bridges: &[BridgeRules], dnats: &[Dnat]) -> String {
    let mut s = String::new();
    let v6_bridges: Vec<(&BridgeRules, Subnet6)> = bridges
        .iter()
        .filter_map(|b| Some((b, b.subnet6?)))
        .collect();
    let v4_bridges: Vec<(&BridgeRules, String)> =
        bridges.iter().map(|b| (b, b.subnet.to_string())).collect();
    let (v6_dnats, v4_dnats): (Vec<&Dnat>, Vec<&Dnat>) =
        dnats.iter().partition(|d| d.ctr_ip.is_ipv6());
    // Declaring then deleting makes the delete succeed whether or not the table exists.
    for kind in ["ip", "ip6"] {
        let _ = writeln!(s, "table {kind} {table} {{}}\ndelete table {kind} {table}");
    }
    render_family(&mut s, Family::V4, table, &v4_bridges, &v4_dnats);
    if !v6_bridges.is_empty() || !v6_dnats.is_empty() {
        let v6: Vec<(&BridgeRules, String)> = v6_bridges
            .iter()
            .map(|(b, n)| (*b, n.to_string()))
            .collect();
        render_family(&mut s, Family::V6, table, &v6, &v6_dnats);
    }
    s
}

fn render_family(
    s: &mut String,
    fam: Family,
    table: &str,
    bridges: &[(&BridgeRules, String)],
    dnats: &[&Dnat],
) {
    let kind = fam.table_kind();
    let _ = writeln!(s, "table {kind} {table} {{");
    s.push_str(
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump publish\n  }\n",
    );
    // `::1` cannot be forwarded off the loopback device: berthd relays it (ports.rs).
    let except_loopback = match fam {
        Family::V4 => "",
        Family::V6 => "ip6 daddr != ::1 ",
    };
    let _ = writeln!(
        s,
        "  chain output {{ type nat hook output priority -100; policy accept;\n    fib daddr type local {except_loopback}jump publish\n  }}",
    );
    s.push_str("  chain publish {\n");
    for d in dnats {
        let daddr = d
            .host_ip
            .map(|ip| format!("{} daddr {ip} ", fam.table_kind()))
            .unwrap_or_default();
        let to = match d.ctr_ip {
            IpAddr::V4(ip) => format!("{ip}:{}", d.ctr_port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", d.ctr_port),
        };
        let _ = writeln!(
            s,
            "    {daddr}{p} dport {hp} dnat to {to}",
            p = d.proto,
            hp = d.host_port,
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n");
    let a = fam.table_kind();
    for (b, net) in bridges {
        let br = &b.ifname;
        if fam == Family::V4 {
            // 127.0.0.1 → published port (route_localnet lets it leave lo, then this).
            let _ = writeln!(s, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        }
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ct status dnat {a} saddr {net} masquerade"
        );
        let masquerade = match fam {
            Family::V4 => b.masquerade,
            Family::V6 => b.masquerade6,
        };
        if !b.internal && masquerade {
            let _ = writeln!(s, "    {a} saddr {net} oifname != \"{br}\" masquerade");
        }
    }
    s.push_str("  }\n");
    if !bridges.is_empty() {
        let names: Vec<String> = bridges
            .iter()
            .map(|(b, _)| format!("\"{}\"", b.ifname))
            .collect();
        let _ = writeln!(
            s,
            "  set bridges {{ type ifname; elements = {{ {} }} }}",
            names.join(", ")
        );
    }
    s.push_str("  chain forward { type filter hook forward priority filter; policy accept;\n");
    s.push_str("    ct status dnat accept\n");
    for (b, _) in bridges {
        let br = &b.ifname;
        if b.internal {
            let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
            let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
        } else {
            let _ = writeln!(
                s,
                "    iifname \"{br}\" oifname != \"{br}\" oifname @bridges drop"
            );
        }
    }
    s.push_str("  }\n}\n");
}

pub fn apply(script: &str) -> Result<(), String> {
    let mut child = Command::new(nft_binary())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft (is the nftables package installed?): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("write nft script: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nftables refused the rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn nft_binary() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft")
}

/// A valid Linux interface name that is safe to quote in a rule (see
/// `netlink::ifname_problem`).
pub fn valid_ifname(n: &str) -> bool {
    super::netlink::ifname_problem(n).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(ifname: &str, subnet: &str, subnet6: Option<&str>, internal: bool) -> BridgeRules {
        BridgeRules {
            ifname: ifname.into(),
            subnet: subnet.parse().expect("subnet"),
            subnet6: subnet6.map(|s| s.parse().expect("subnet6")),
            internal,
            masquerade: true,
            masquerade6: true,
        }
    }

    #[test]
    fn ruleset_shape() {
        let s = render(
            "berth",
            &[
                bridge("berth0", "172.17.0.0/16", None, false),
                bridge("berth-abc", "172.18.0.0/16", None, true),
            ],
            &[Dnat {
                proto: "tcp",
                host_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
                host_port: 8080,
                ctr_ip: std::net::Ipv4Addr::new(172, 17, 0, 2).into(),
                ctr_port: 80,
            }],
        );
        assert!(s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80"));
        assert!(s.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"));
        assert!(!s.contains("ip saddr 172.18.0.0/16 oifname != \"berth-abc\" masquerade"));
        assert!(s.contains("oifname \"berth-abc\" iifname != \"berth-abc\" drop"));
        assert!(s.starts_with("table ip berth {}\ndelete table ip berth\n"));
        // No IPv6 anywhere: the IPv6 table is only removed.
        assert!(s.contains("table ip6 berth {}\ndelete table ip6 berth\n"));
        assert!(!s.contains("table ip6 berth {\n"));
    }

    #[test]
    fn ipv6_networks_and_ports_get_the_ip6_table() {
        let mut routed = bridge("berth-r", "172.20.0.0/16", Some("2001:db8:2::/64"), false);
        routed.masquerade6 = false;
        let s = render(
            "berth",
            &[
                bridge("berth0", "172.17.0.0/16", None, false),
                bridge("berth-v6", "172.19.0.0/16", Some("fd00:1::/64"), false),
                routed,
            ],
            &[
                Dnat {
                    proto: "tcp",
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: "172.19.0.2".parse().expect("ip"),
                    ctr_port: 80,
                },
                Dnat {
                    proto: "tcp",
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: "fd00:1::2".parse().expect("ip6"),
                    ctr_port: 80,
                },
            ],
        );
        let v6 = &s[s.find("table ip6 berth {\n").expect("ip6 table")..];
        assert!(v6.contains("tcp dport 8080 dnat to [fd00:1::2]:80"));
        assert!(v6.contains("ip6 saddr fd00:1::/64 oifname != \"berth-v6\" masquerade"));
        assert!(!v6.contains("ip6 saddr 2001:db8:2::/64 oifname != \"berth-r\" masquerade"));
        assert!(
            !v6.contains("::1 masquerade"),
            "[::1] is relayed, not forwarded"
        );
        assert!(v6.contains("fib daddr type local ip6 daddr != ::1 jump publish"));
        assert!(!v6.contains("berth0"), "a v4-only bridge has no IPv6 rules");
        assert!(!v6.contains("172.19.0.2"));
        let v4_start = s.find("table ip berth {\n").expect("ip table");
        let v4 = &s[v4_start..s.find("table ip6 berth {\n").expect("ip6 table")];
        assert!(v4.contains("tcp dport 8080 dnat to 172.19.0.2:80"));
        assert!(!v4.contains("fd00:1::2"));
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("berth0"));
        assert!(!valid_ifname("a\"b"));
        assert!(!valid_ifname("0123456789abcdef"));
        assert!(!valid_ifname(""));
    }
}
