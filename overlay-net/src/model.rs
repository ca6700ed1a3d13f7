//! What the data plane of one node should be ([`Plane`], one per overlay network with a
//! local endpoint) and what it is ([`Observed`], read from the kernel).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The VXLAN UDP port (IANA's, and Docker's default data-path port).
pub const VXLAN_PORT: u16 = 4789;
/// The MTU of the containers' side of an overlay: 1500 less the 50 bytes of VXLAN over IPv4.
pub const OVERLAY_MTU: u32 = 1450;
/// Name prefixes of the devices this crate owns: `ovb-<9 hex>` (bridge), `ovx-<9 hex>`
/// (VXLAN); anything else is never touched.
pub const BRIDGE_PREFIX: &str = "ovb-";
pub const VXLAN_PREFIX: &str = "ovx-";

/// The bridge of a network: `ovb-` + the first 9 hex digits of its id (13 bytes).
pub fn bridge_name(network_id: &str) -> String {
    format!("{BRIDGE_PREFIX}{}", short(network_id))
}

/// The VXLAN device of a network: `ovx-` + the first 9 hex digits of its id.
pub fn vxlan_name(network_id: &str) -> String {
    format!("{VXLAN_PREFIX}{}", short(network_id))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(9)]
}

/// Whether a link name is one of ours.
pub fn owned(name: &str) -> bool {
    name.starts_with(BRIDGE_PREFIX) || name.starts_with(VXLAN_PREFIX)
}

/// Docker's MAC for an address: 02:42 followed by the address (the same on every node).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A remote endpoint: its address, its MAC, and the node it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// The node's data-path address: where VXLAN packets for this endpoint go.
    pub node: Ipv4Addr,
}

/// One overlay network's data plane on this node, as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    pub network_id: String,
    pub vni: u32,
    /// This node's data-path address (the VXLAN `local`).
    pub local: Ipv4Addr,
    /// Every endpoint of the network on other nodes.
    pub peers: BTreeSet<Peer>,
    /// The MTU of its bridge and VXLAN device: [`OVERLAY_MTU`], or less when the VXLAN
    /// packets go through a tunnel (`wireguard::ENCRYPTED_OVERLAY_MTU`).
    pub mtu: u32,
}

impl Plane {
    pub fn bridge(&self) -> String {
        bridge_name(&self.network_id)
    }
    pub fn vxlan(&self) -> String {
        vxlan_name(&self.network_id)
    }
}

/// An FDB entry on a VXLAN device: a MAC reached through a remote node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fdb {
    pub mac: [u8; 6],
    pub dst: Ipv4Addr,
}

/// One of our links as the kernel has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedLink {
    /// VXLAN devices: their id and local address (None for a bridge).
    pub vxlan: Option<(u32, Option<Ipv4Addr>)>,
    /// VXLAN devices: the bridge they are enslaved to.
    pub master: Option<String>,
    /// VXLAN devices: static FDB entries with a remote destination.
    pub fdb: BTreeSet<Fdb>,
    /// VXLAN devices: permanent neighbour entries, IP → MAC.
    pub neigh: BTreeMap<Ipv4Addr, [u8; 6]>,
}

/// This node's overlay links (only those [`owned`]), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: BTreeMap<String, ObservedLink>,
}
