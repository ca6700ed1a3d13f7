//! The tun device's link settings: MTU, transmit queue, tunnel address, up.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::{KernelError, Netlink};

fn err(what: String) -> impl FnOnce(std::io::Error) -> KernelError {
    move |source| KernelError { what, source }
}

/// Packets the kernel holds for the outbound thread (a tun device's default is 500). A TCP
/// stream sends in bursts faster than packets are sealed; with 500, 2–3 % of them were
/// dropped at the device and every drop cost TCP a retransmit and a smaller window. This
/// many is also kernel WireGuard's per-peer queue.
const TX_QUEUE: u32 = 1024;

/// Gives `name` its MTU, its transmit queue and `address/prefix` (the prefix's route goes
/// through it), and sets it up.
pub fn configure(name: &str, mtu: u32, address: Ipv4Addr, prefix: u8) -> Result<(), KernelError> {
    let mut nl = Netlink::open()?;
    let index = nl.index(name)?;
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Mtu(mtu));
    m.attributes.push(LinkAttribute::TxQueueLen(TX_QUEUE));
    nl.request(RouteNetlinkMessage::SetLink(m), 0)
        .map_err(err(format!("MTU and transmit queue of {name}")))?;
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = prefix;
    a.header.index = index;
    a.attributes
        .push(AddressAttribute::Local(IpAddr::V4(address)));
    a.attributes
        .push(AddressAttribute::Address(IpAddr::V4(address)));
    nl.request(
        RouteNetlinkMessage::NewAddress(a),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
    .map_err(err(format!("address {address}/{prefix} on {name}")))?;
    nl.set_up(index).map_err(err(format!("{name} up")))
}
