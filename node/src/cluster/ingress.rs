//! The routing mesh on a node: every port a service publishes in ingress mode is open on
//! every node, and a connection to it reaches one of the service's running tasks, on any
//! node, over the `ingress` overlay.
//!
//! ```text
//!  client ─► node:8080 ─► nft table berth_mesh (host namespace):
//!     prerouting/output, to a local address: tcp dport 8080
//!        dnat to numgen random mod N map { i : <task i's ingress address> . <target port> }
//!     postrouting: out of the ingress bridge, DNAT'ed ─► masquerade to this node's ingress
//!        address (its sandbox endpoint, on the bridge ovb-<ingress>) so replies come back here
//!  ─► bridge ovb-<ingress> ─► a local task's veth, or VXLAN to the task's node
//! ```
//! The node's address on ingress is allocated by the managers (holder `node:<id>`) and put
//! on the ingress bridge here, with the MAC every other node has for it (`mac_for`), so the
//! VXLAN neighbour and FDB entries the other nodes program for it reach this host. Docker
//! keeps this in an `ingress-sbox` namespace; here it is the host namespace, which needs no
//! second hop, so the ingress subnet is routed on the host.
//!
//! Rendered whole from committed state on every assignments answer (≤ 4 s apart) and
//! swapped in atomically when it differs (or every 30 s); the table stays in the kernel
//! while berthd is down, so published ports keep answering through a restart.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_overlay_net::model::{bridge_name, mac_for};
use berth_raft::ingress::NODE_HOLDER;
use berth_raft::rpc::NetworkPeers;

use crate::network::netlink::Netlink;
use crate::network::nft;

/// The routing mesh's table in the host namespace.
pub const TABLE: &str = "berth_mesh";
/// How often an unchanged table is put in again (someone may have flushed it).
const REFRESH: Duration = Duration::from_secs(30);

/// One published port and the ingress addresses of the tasks behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPort {
    pub protocol: String,
    pub published: u16,
    pub target: u16,
    pub backends: Vec<Ipv4Addr>,
}

/// What the routing mesh of this node is, from the ingress network's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPlan {
    pub bridge: String,
    /// This node's address on ingress, with its prefix.
    pub sandbox: (Ipv4Addr, u8),
    pub ports: Vec<MeshPort>,
}

#[derive(Default)]
pub struct Mesh {
    /// The script last applied, and when.
    applied: Mutex<Option<(String, Instant)>>,
}

fn ip_prefix(a: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, p) = a.split_once('/')?;
    Some((ip.parse().ok()?, p.parse().ok()?))
}

/// The mesh of node `node_id` (None: no ingress network, or no address on it yet).
pub fn plan(node_id: &str, networks: &[NetworkPeers]) -> Option<MeshPlan> {
    let n = networks.iter().find(|n| n.network.spec.ingress)?;
    let me = format!("{NODE_HOLDER}{node_id}");
    let sandbox = n
        .endpoints
        .iter()
        .find(|e| e.task_id == me)
        .and_then(|e| ip_prefix(&e.address))?;
    let mut ports = Vec::new();
    for s in &n.services {
        let mut backends: Vec<Ipv4Addr> = n
            .endpoints
            .iter()
            .filter(|e| e.service_id == s.service_id && e.running)
            .filter_map(|e| ip_prefix(&e.address).map(|(ip, _)| ip))
            .collect();
        backends.sort();
        backends.dedup();
        for p in s.ports.iter().filter(|p| p.ingress() && p.published > 0) {
            ports.push(MeshPort {
                protocol: p.protocol.clone(),
                published: p.published,
                target: p.target,
                backends: backends.clone(),
            });
        }
    }
    ports.sort_by(|a, b| (&a.protocol, a.published).cmp(&(&b.protocol, b.published)));
    Some(MeshPlan {
        bridge: bridge_name(&n.network.id),
        sandbox,
        ports,
    })
}

/// The `nft -f` script that replaces the mesh table (the same plan renders the same text).
pub fn render(p: &MeshPlan) -> String {
    let mut s = remove();
    let _ = writeln!(s, "table ip {TABLE} {{");
    s.push_str("  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump mesh\n  }\n");
    s.push_str("  chain output { type nat hook output priority -100; policy accept;\n    fib daddr type local jump mesh\n  }\n");
    s.push_str("  chain mesh {\n");
    for port in &p.ports {
        let (proto, hp, tp) = (&port.protocol, port.published, port.target);
        match port.backends.as_slice() {
            // No running task: no rule (the port answers with a reset).
            [] => {}
            [one] => {
                let _ = writeln!(s, "    {proto} dport {hp} dnat ip to {one}:{tp}");
            }
            many => {
                let map: Vec<String> = many
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("{i} : {b} . {tp}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "    {proto} dport {hp} dnat ip to numgen random mod {} map {{ {} }}",
                    many.len(),
                    map.join(", ")
                );
            }
        }
    }
    s.push_str("  }\n");
    let _ = writeln!(
        s,
        "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{}\" ct status dnat masquerade\n  }}",
        p.bridge
    );
    s.push_str("}\n");
    s
}

/// The script that removes the table.
pub fn remove() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

impl Mesh {
    /// Converges this node's routing mesh to its latest assignments.
    pub async fn update(&self, node_id: &str, networks: &[NetworkPeers]) {
        let script = match plan(node_id, networks) {
            Some(p) => {
                let q = p.clone();
                match tokio::task::spawn_blocking(move || sandbox(&q)).await {
                    Ok(Ok(true)) => render(&p),
                    // The ingress bridge is not there yet: next time.
                    Ok(Ok(false)) => return,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "ingress sandbox address");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ingress sandbox address");
                        return;
                    }
                }
            }
            None => remove(),
        };
        let fresh = {
            let a = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            match &*a {
                Some((s, at)) => *s == script && at.elapsed() < REFRESH,
                // Nothing applied since berthd started: a leftover table goes too.
                None => false,
            }
        };
        if fresh {
            return;
        }
        let sc = script.clone();
        match tokio::task::spawn_blocking(move || nft::apply(&sc)).await {
            Ok(Ok(())) => {
                *self.applied.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((script, Instant::now()));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "routing mesh rules"),
            Err(e) => tracing::warn!(error = %e, "routing mesh rules"),
        }
    }

    /// Leaving the swarm: the table goes.
    pub async fn clear(&self) {
        if self
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
        {
            match tokio::task::spawn_blocking(|| nft::apply(&remove())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "routing mesh rules left in place"),
                Err(e) => tracing::warn!(error = %e, "routing mesh rules left in place"),
            }
        }
    }
}

/// Puts this node's ingress address (and the MAC the other nodes know it by) on the ingress
/// bridge; false when the bridge does not exist yet (blocking).
fn sandbox(p: &MeshPlan) -> std::io::Result<bool> {
    let mut nl = Netlink::open()?;
    let Some(idx) = nl.link_index(&p.bridge)? else {
        return Ok(false);
    };
    let (ip, prefix) = p.sandbox;
    nl.set_mac(idx, mac_for(ip))?;
    if !nl.addresses(idx)?.contains(&(ip, prefix)) {
        nl.add_address(idx, ip, prefix)?;
    }
    nl.set_up(idx)?;
    crate::network::write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    // Connections to a published port from the host itself (127.0.0.1) are routed out of it.
    crate::network::write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", p.bridge),
        "1",
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_raft::ingress::PortConfig;
    use berth_raft::networks::{Network, NetworkSpec};
    use berth_raft::rpc::{PeerEndpoint, ServiceEndpoint};

    fn ep(holder: &str, svc: &str, addr: &str, running: bool) -> PeerEndpoint {
        PeerEndpoint {
            task_id: holder.into(),
            service_id: svc.into(),
            node_id: "n".into(),
            node_addr: "10.231.0.11".into(),
            address: addr.into(),
            running,
            aliases: Vec::new(),
        }
    }

    fn ingress() -> NetworkPeers {
        NetworkPeers {
            network: Network {
                id: "abcdef0123".into(),
                meta: Default::default(),
                spec: NetworkSpec {
                    name: "ingress".into(),
                    driver: "overlay".into(),
                    ingress: true,
                    ..Default::default()
                },
                vni: 4096,
                subnet: "10.0.0.0/24".into(),
                gateway: "10.0.0.1".into(),
                addresses: Default::default(),
                cursor: 0,
            },
            endpoints: vec![
                ep("node:n1", "", "10.0.0.2/24", true),
                ep("node:n2", "", "10.0.0.3/24", true),
                ep("t1", "web", "10.0.0.6/24", true),
                ep("t2", "web", "10.0.0.5/24", true),
                ep("t3", "web", "10.0.0.7/24", false),
                ep("t4", "one", "10.0.0.9/24", true),
            ],
            services: vec![
                ServiceEndpoint {
                    service_id: "web".into(),
                    name: "web".into(),
                    vip: "10.0.0.4/24".into(),
                    aliases: Vec::new(),
                    ports: vec![PortConfig {
                        name: String::new(),
                        protocol: "tcp".into(),
                        target: 80,
                        published: 8080,
                        mode: "ingress".into(),
                    }],
                },
                ServiceEndpoint {
                    service_id: "one".into(),
                    name: "one".into(),
                    vip: "10.0.0.8/24".into(),
                    aliases: Vec::new(),
                    ports: vec![PortConfig {
                        name: String::new(),
                        protocol: "udp".into(),
                        target: 53,
                        published: 5353,
                        mode: "ingress".into(),
                    }],
                },
            ],
            tunnel: String::new(),
        }
    }

    #[test]
    fn published_ports_spread_over_running_tasks_on_every_node() {
        let p = plan("n2", &[ingress()]).expect("a mesh");
        assert_eq!(p.sandbox, ("10.0.0.3".parse().expect("ip"), 24));
        assert_eq!(p.bridge, "ovb-abcdef012");
        let s = render(&p);
        assert!(s.starts_with("table ip berth_mesh {}\ndelete table ip berth_mesh\n"));
        assert!(
            s.contains("tcp dport 8080 dnat ip to numgen random mod 2 map { 0 : 10.0.0.5 . 80, 1 : 10.0.0.6 . 80 }"),
            "{s}"
        );
        assert!(s.contains("udp dport 5353 dnat ip to 10.0.0.9:53"), "{s}");
        assert!(s.contains("oifname \"ovb-abcdef012\" ct status dnat masquerade"));
        assert!(
            plan("n9", &[ingress()]).is_none(),
            "no address yet: no mesh"
        );
        assert!(plan("n1", &[]).is_none(), "no ingress: no mesh");
    }
}
