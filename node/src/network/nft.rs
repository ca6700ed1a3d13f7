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
//! Nothing here is a shell command line: the script goes to nft on stdin, and names are
//! validated interface names.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::ipam::Subnet;

#[derive(Debug, Clone)]
pub struct BridgeRules {
    pub ifname: String,
    pub subnet: Subnet,
    pub internal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub proto: &'static str,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub ctr_ip: Ipv4Addr,
    pub ctr_port: u16,
}

pub fn render(table: &str, bridges: &[BridgeRules], dnats: &[Dnat]) -> String {
    let mut s = String::new();
    // Declaring then deleting makes the delete succeed whether or not the table exists.
    let _ = writeln!(
        s,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    s.push_str(
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump publish\n  }\n",
    );
    s.push_str(
        "  chain output { type nat hook output priority -100; policy accept;\n    fib daddr type local jump publish\n  }\n",
    );
    s.push_str("  chain publish {\n");
    for d in dnats {
        let daddr = d
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    {daddr}{p} dport {hp} dnat to {ip}:{cp}",
            p = d.proto,
            hp = d.host_port,
            ip = d.ctr_ip,
            cp = d.ctr_port
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n");
    for b in bridges {
        let (br, net) = (&b.ifname, b.subnet);
        let _ = writeln!(s, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ct status dnat ip saddr {net} masquerade"
        );
        if !b.internal {
            let _ = writeln!(s, "    ip saddr {net} oifname != \"{br}\" masquerade");
        }
    }
    s.push_str("  }\n");
    if !bridges.is_empty() {
        let names: Vec<String> = bridges
            .iter()
            .map(|b| format!("\"{}\"", b.ifname))
            .collect();
        let _ = writeln!(
            s,
            "  set bridges {{ type ifname; elements = {{ {} }} }}",
            names.join(", ")
        );
    }
    s.push_str("  chain forward { type filter hook forward priority filter; policy accept;\n");
    s.push_str("    ct status dnat accept\n");
    for b in bridges {
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
    s
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

    #[test]
    fn ruleset_shape() {
        let s = render(
            "berth",
            &[
                BridgeRules {
                    ifname: "berth0".into(),
                    subnet: "172.17.0.0/16".parse().expect("subnet"),
                    internal: false,
                },
                BridgeRules {
                    ifname: "berth-abc".into(),
                    subnet: "172.18.0.0/16".parse().expect("subnet"),
                    internal: true,
                },
            ],
            &[Dnat {
                proto: "tcp",
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                ctr_ip: Ipv4Addr::new(172, 17, 0, 2),
                ctr_port: 80,
            }],
        );
        assert!(s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80"));
        assert!(s.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"));
        assert!(!s.contains("ip saddr 172.18.0.0/16 oifname != \"berth-abc\" masquerade"));
        assert!(s.contains("oifname \"berth-abc\" iifname != \"berth-abc\" drop"));
        assert!(s.starts_with("table ip berth {}\ndelete table ip berth\n"));
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("berth0"));
        assert!(!valid_ifname("a\"b"));
        assert!(!valid_ifname("0123456789abcdef"));
        assert!(!valid_ifname(""));
    }
}
