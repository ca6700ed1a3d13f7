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
/// stream sends in bursts faster than packets are sealed, and every packet dropped here
/// costs TCP a retransmit and a smaller window: 2-3 % were dropped with 500, still up to
/// 1 % with 1024 once the receiving side got faster, next to none with 2048. More would
/// only add delay (2048 full-size packets are ~12 ms at 2 Gbit/s).
const TX_QUEUE: u32 = 2048;

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
