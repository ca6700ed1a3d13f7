//! VIP load balancing without IPVS: a small nftables table in each container namespace on an
//! overlay network, rendered whole from committed state and swapped in atomically (`nft -f`).
//!
//! ```text
//!  table ip berth_lb
//!    chain output (nat, hook output): ip daddr <VIP> dnat to numgen random mod N map { 0 : <task 1>, … }
//! ```
//! The client's own namespace picks a backend for each new connection (conntrack keeps the
//! choice for the connection's life and undoes it on replies), so there is no central
//! balancer, no idle timeout of its own and no source NAT: the backend sees the client's
//! address. A VIP with no running backend gets no rule (its connections time out).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The table's name in a container namespace.
pub const TABLE: &str = "berth_lb";

/// One service VIP and the addresses of its running tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub vip: Ipv4Addr,
    pub backends: Vec<Ipv4Addr>,
}

/// The `nft -f` script that replaces the table with rules for `vips` (sorted, so that the
/// same state renders the same text).
pub fn render(vips: &[Vip]) -> String {
    let mut vips: Vec<Vip> = vips.to_vec();
    vips.sort_by_key(|v| v.vip);
    let mut s = String::new();
    // Declaring then deleting makes the delete succeed whether or not the table exists.
    let _ = writeln!(
        s,
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{"
    );
    s.push_str("  chain output { type nat hook output priority -100; policy accept;\n");
    for v in &vips {
        let mut backends = v.backends.clone();
        backends.sort();
        backends.dedup();
        match backends.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(s, "    ip daddr {} dnat to {one}", v.vip);
            }
            many => {
                let map: Vec<String> = many
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("{i} : {b}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "    ip daddr {} dnat to numgen random mod {} map {{ {} }}",
                    v.vip,
                    many.len(),
                    map.join(", ")
                );
            }
        }
    }
    s.push_str("  }\n}\n");
    s
}

/// The script that removes the table (a namespace that left every overlay network).
pub fn remove() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn vips_spread_over_their_running_tasks() {
        let s = render(&[
            Vip {
                vip: ip("10.0.0.9"),
                backends: vec![],
            },
            Vip {
                vip: ip("10.0.0.2"),
                backends: vec![ip("10.0.0.4"), ip("10.0.0.3"), ip("10.0.0.4")],
            },
            Vip {
                vip: ip("10.0.0.5"),
                backends: vec![ip("10.0.0.6")],
            },
        ]);
        assert!(s.starts_with("table ip berth_lb {}\ndelete table ip berth_lb\n"));
        assert!(s.contains(
            "ip daddr 10.0.0.2 dnat to numgen random mod 2 map { 0 : 10.0.0.3, 1 : 10.0.0.4 }"
        ));
        assert!(s.contains("ip daddr 10.0.0.5 dnat to 10.0.0.6\n"));
        assert!(!s.contains("10.0.0.9"), "no backend, no rule");
        // Rendering is a function of the state, not of its order.
        let again = render(&[
            Vip {
                vip: ip("10.0.0.5"),
                backends: vec![ip("10.0.0.6")],
            },
            Vip {
                vip: ip("10.0.0.2"),
                backends: vec![ip("10.0.0.3"), ip("10.0.0.4")],
            },
        ]);
        assert_eq!(s, again);
        assert_eq!(remove(), "table ip berth_lb {}\ndelete table ip berth_lb\n");
    }
}
