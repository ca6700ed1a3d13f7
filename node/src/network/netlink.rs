//! A small synchronous rtnetlink client: the handful of link, address and route operations
//! bridge networking needs, with no async runtime, so it can run on a thread that has
//! entered a container's network namespace.
//!
//! A netlink socket belongs to the namespace it was opened in, whatever thread uses it
//! later: opening one socket before `setns` and one after gives a handle on each side.
//! Messages come from `netlink-packet-route` (already in the build through libcontainer);
//! the request/ack loop is ours.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Why `name` cannot name a network interface, or `None` when it can: Linux's
/// `dev_valid_name` (1–15 bytes, not `.` or `..`, no `/`, `:` or whitespace), plus no `%`,
/// which the kernel takes as a template (`br%d` makes `br0`, and the name asked for never
/// exists), and no quotes or backslashes, which have no place in the nftables rules the
/// name is written into.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 15 {
        return Some("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Some("\".\" and \"..\" are not interface names");
    }
    match name
        .bytes()
        .find(|b| !b.is_ascii_graphic() || matches!(b, b'/' | b':' | b'%' | b'"' | b'\'' | b'\\'))
    {
        None => None,
        Some(b'%') => Some("'%' would make it a name template"),
        Some(b) if b.is_ascii_whitespace() => Some("it contains whitespace"),
        Some(b) if !b.is_ascii_graphic() => Some("it contains a control or non-ASCII character"),
        Some(_) => Some("it contains one of / : \" ' \\"),
    }
}

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a route socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let _ = sock.set_ext_ack(true);
        Ok(Netlink { sock, seq: 0 })
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link called `name`: its index and whether it is a bridge.
    pub fn link(&mut self, name: &str) -> io::Result<Option<(u32, bool)>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => {
                    let bridge = l.attributes.iter().any(|a| match a {
                        LinkAttribute::LinkInfo(infos) => infos
                            .iter()
                            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
                        _ => false,
                    });
                    Some((l.header.index, bridge))
                }
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link's (index, name).
    pub fn links(&mut self) -> io::Result<Vec<(u32, String)>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some((l.header.index, name))
                }
                _ => None,
            })
            .collect())
    }

    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)?;
        self.link_index(name)?
            .ok_or_else(|| io::Error::other(format!("bridge {name} vanished after creation")))
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(drop)
    }

    /// A veth pair whose first end, `name`, is created here (up, enslaved to `master`) and
    /// whose peer is created directly inside the namespace `peer_ns` (moving a link between
    /// namespaces afterwards costs an RCU grace period, ~17 ms).
    pub fn create_veth(
        &mut self,
        name: &str,
        master: u32,
        peer_name: &str,
        peer_mac: [u8; 6],
        peer_ns: RawFd,
    ) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_owned()));
        peer.attributes
            .push(LinkAttribute::Address(peer_mac.to_vec()));
        peer.attributes.push(LinkAttribute::NetNsFd(peer_ns));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        let bcast = u32::from(ip) | (u32::MAX.checked_shr(prefix as u32).unwrap_or(0));
        m.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// An IPv6 address on a link, usable at once: no duplicate address detection (the
    /// address comes from the network's IPAM, which hands each out once), as dockerd does.
    pub fn add_address6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V6(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V6(ip)));
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// The IPv4 addresses on a link, as (address, prefix length).
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut q = AddressMessage::default();
        q.header.family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetAddress(q), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(IpAddr::V4(ip)) => Some((*ip, a.header.prefix_len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        self.add_default_route_via(AddressFamily::Inet, RouteAddress::Inet(gateway))
    }

    /// The IPv6 default route, through `gateway` (on the link of the subnet holding it).
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr) -> io::Result<()> {
        self.add_default_route_via(AddressFamily::Inet6, RouteAddress::Inet6(gateway))
    }

    fn add_default_route_via(
        &mut self,
        family: AddressFamily,
        gateway: RouteAddress,
    ) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: family,
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: RouteProtocol::Boot,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..m.header
        };
        m.attributes.push(RouteAttribute::Gateway(gateway));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Destinations of the IPv6 routes in the main table, as (network, prefix length), the
    /// default route and link-local and multicast ones excluded: a new network's IPv6
    /// subnet must not shadow one.
    pub fn routes6(&mut self) -> io::Result<Vec<(Ipv6Addr, u8)>> {
        Ok(self
            .main_routes(AddressFamily::Inet6)?
            .into_iter()
            .filter_map(|(dst, prefix, _)| match dst {
                RouteAddress::Inet6(ip)
                    if ip.segments()[0] & 0xffc0 != 0xfe80 && !ip.is_multicast() =>
                {
                    Some((ip, prefix))
                }
                _ => None,
            })
            .collect())
    }

    /// The routes of one family in the main table but the default one, as (destination,
    /// prefix length, output interface).
    fn main_routes(
        &mut self,
        family: AddressFamily,
    ) -> io::Result<Vec<(RouteAddress, u8, Option<u32>)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = family;
        let replies = self.request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(rt)
                    if rt.header.table == RouteHeader::RT_TABLE_MAIN
                        && rt.header.destination_prefix_length > 0 =>
                {
                    let dst = rt.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(d) => Some(d.clone()),
                        _ => None,
                    })?;
                    let oif = rt.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    });
                    Some((dst, rt.header.destination_prefix_length, oif))
                }
                _ => None,
            })
            .collect())
    }

    /// Destinations of the IPv4 routes in the main table, as (network, prefix length),
    /// the default route excluded. Used to refuse a subnet that overlaps a host route.
    pub fn routes(&mut self) -> io::Result<Vec<(Ipv4Addr, u8, Option<u32>)>> {
        Ok(self
            .main_routes(AddressFamily::Inet)?
            .into_iter()
            .filter_map(|(dst, prefix, oif)| match dst {
                RouteAddress::Inet(ip) => Some((ip, prefix, oif)),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_like_the_kernel() {
        for ok in [
            "berth0",
            "br-1",
            "a",
            "x.y",
            "0123456789abcde",
            "..a",
            "a_b@c",
        ] {
            assert_eq!(ifname_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "br%d",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\nb",
            "a\"b",
            "a'b",
            "a\\b",
            "0123456789abcdef",
            "é",
        ] {
            assert!(ifname_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(
            ifname_problem("br%d"),
            Some("'%' would make it a name template")
        );
    }
}
