//! WireGuard tunnels of encrypted overlays, the control plane's part: each node's tunnel
//! address (allocated when its entry is applied) and, for each node, the peers it must have.
//!
//! ```text
//!  heartbeat/join: Description.wireguard = {public key, port} ─► PutNode ─► State::apply
//!        └─► assign(): the node keeps its tunnel address, or gets the lowest free one of
//!            TUNNEL_POOL once it has published a key
//!  dispatcher: for each network with `encrypted` among its options that has a task on node N
//!        ├─► every other node with an endpoint on it becomes a peer of N (key, underlay
//!        │   endpoint, tunnel address)
//!        └─► endpoints' node addresses are rewritten to tunnel addresses, and N's own tunnel
//!            address is the VXLAN local: the frames go through the tunnels
//! ```
//! An endpoint on a node that has no tunnel address or key yet is left out of an encrypted
//! network's plane (its `node_addr` is emptied): it is never reached in the clear.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::objects::Node;
use crate::rpc::NetworkPeers;
use crate::state::State;

/// Where tunnel addresses come from: 198.18.0.0/16 (RFC 2544's benchmarking space: routed
/// nowhere, and in none of Docker's default pools). Overlay subnets may not overlap it.
pub const TUNNEL_POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 16);

/// The option that makes an overlay encrypted (`--opt encrypted`).
pub const ENCRYPTED_OPTION: &str = "encrypted";

/// What a node publishes about its tunnels (in its description).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireguardKey {
    /// Base64 of the X25519 public key.
    pub public_key: String,
    /// The UDP port its tunnels listen on.
    pub port: u16,
}

/// A node's tunnels as its assignments carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnels {
    /// This node's tunnel address.
    pub address: String,
    /// The public key the cluster has for this node: the node uses the private key that
    /// matches it (it may already have published a newer one).
    pub public_key: String,
    pub peers: Vec<TunnelPeer>,
}

/// Another node reached through the tunnels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelPeer {
    pub node_id: String,
    /// Its underlay address and WireGuard port, `ip:port`.
    pub endpoint: String,
    pub address: String,
    pub public_key: String,
}

/// Whether a network's traffic between nodes is to be encrypted.
pub fn encrypted(options: &BTreeMap<String, String>) -> bool {
    options.contains_key(ENCRYPTED_OPTION)
}

/// Whether a subnet (`a.b.c.d/n`) overlaps the tunnel pool.
pub fn overlaps_pool(subnet: &str) -> bool {
    let Ok(c) = subnet.parse::<crate::netalloc::Cidr>() else {
        return false;
    };
    let (a, p) = (c.base, c.prefix);
    let (b, q) = (u32::from(TUNNEL_POOL.0), TUNNEL_POOL.1);
    let m = p.min(q);
    let mask = if m == 0 { 0 } else { u32::MAX << (32 - m) };
    a & mask == b & mask
}

/// Applying a node: it keeps the tunnel address it had (`cur`), or gets the lowest free one
/// once it has published a key.
pub fn assign(nodes: &BTreeMap<String, Node>, cur: Option<&Node>, node: &mut Node) {
    if let Some(c) = cur.filter(|c| !c.tunnel_addr.is_empty()) {
        node.tunnel_addr = c.tunnel_addr.clone();
        return;
    }
    if !node.tunnel_addr.is_empty() || node.description.wireguard.is_none() {
        return;
    }
    let used: BTreeSet<&str> = nodes
        .values()
        .filter(|n| n.id != node.id)
        .map(|n| n.tunnel_addr.as_str())
        .collect();
    let base = u32::from(TUNNEL_POOL.0);
    let size = 1u32 << (32 - TUNNEL_POOL.1);
    // .0 is the network, the last one the broadcast address.
    node.tunnel_addr = (1..size - 1)
        .map(|i| Ipv4Addr::from(base + i).to_string())
        .find(|a| !used.contains(a.as_str()))
        .unwrap_or_default();
}

/// A node's tunnel peers, and its encrypted networks' endpoints rewritten to tunnel
/// addresses. `None` when the node has no encrypted network (or no tunnel address yet).
pub fn for_node(state: &State, node_id: &str, networks: &mut [NetworkPeers]) -> Option<Tunnels> {
    let me = state.nodes.get(node_id);
    let mine = me
        .filter(|n| !n.tunnel_addr.is_empty())
        .and_then(|n| Some((n.tunnel_addr.clone(), n.description.wireguard.clone()?)));
    let mut peers: BTreeMap<String, TunnelPeer> = BTreeMap::new();
    let mut any = false;
    for net in networks
        .iter_mut()
        .filter(|n| encrypted(&n.network.spec.options))
    {
        any = true;
        net.tunnel = mine.as_ref().map(|(a, _)| a.clone()).unwrap_or_default();
        for e in &mut net.endpoints {
            let peer = state.nodes.get(&e.node_id).and_then(|n| {
                let wg = n.description.wireguard.as_ref()?;
                (!n.tunnel_addr.is_empty() && !n.addr.is_empty()).then(|| TunnelPeer {
                    node_id: n.id.clone(),
                    endpoint: format!("{}:{}", n.addr, wg.port),
                    address: n.tunnel_addr.clone(),
                    public_key: wg.public_key.clone(),
                })
            });
            match (peer, mine.is_some()) {
                (Some(p), true) => {
                    e.node_addr = p.address.clone();
                    if p.node_id != node_id {
                        peers.insert(p.node_id.clone(), p);
                    }
                }
                _ => e.node_addr.clear(),
            }
        }
    }
    let (address, key) = mine?;
    any.then(|| Tunnels {
        address,
        public_key: key.public_key,
        peers: peers.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::Role;
    use crate::objects::{Availability, Description};

    fn node(id: &str, key: Option<&str>) -> Node {
        let description = Description {
            wireguard: key.map(|k| WireguardKey {
                public_key: k.into(),
                port: 51820,
            }),
            ..Default::default()
        };
        let mut n = Node::joined(id.into(), Role::Worker, Availability::Active, description);
        n.addr = format!("10.231.0.{}", id.len() + 10);
        n
    }

    #[test]
    fn addresses_are_kept_and_the_lowest_free_one_is_given() {
        let mut nodes = BTreeMap::new();
        let mut a = node("a", Some("ka"));
        assign(&nodes, None, &mut a);
        assert_eq!(a.tunnel_addr, "198.18.0.1");
        nodes.insert(a.id.clone(), a.clone());
        let mut b = node("b", Some("kb"));
        assign(&nodes, None, &mut b);
        assert_eq!(b.tunnel_addr, "198.18.0.2");
        nodes.insert(b.id.clone(), b.clone());
        // A heartbeat with a new key (a rotation) keeps the address.
        let mut a2 = node("a", Some("ka2"));
        assign(&nodes, nodes.get("a"), &mut a2);
        assert_eq!(a2.tunnel_addr, "198.18.0.1");
        // No key published: no address.
        let mut c = node("c", None);
        assign(&nodes, None, &mut c);
        assert_eq!(c.tunnel_addr, "");
        // a leaves: its address is free again.
        nodes.remove("a");
        let mut d = node("d", Some("kd"));
        assign(&nodes, None, &mut d);
        assert_eq!(d.tunnel_addr, "198.18.0.1");
    }

    #[test]
    fn subnets_that_overlap_the_pool_are_seen() {
        assert!(overlaps_pool("198.18.3.0/24"));
        assert!(overlaps_pool("198.0.0.0/8"));
        assert!(!overlaps_pool("198.19.0.0/24"));
        assert!(!overlaps_pool("10.0.0.0/8"));
    }
}
