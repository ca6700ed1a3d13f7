//! The reconciler's kernel half: reads this node's overlay links, FDB and neighbour entries
//! ([`observe`]) and carries out [`Step`]s ([`execute`]) over rtnetlink, synchronously (no
//! async runtime: it runs on a blocking thread of the daemon).

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::model::{owned, Fdb, Observed, ObservedLink, VXLAN_PORT};
use crate::plan::Step;

/// A kernel operation that failed: what was being done, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct KernelError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

fn err(what: impl Into<String>) -> impl FnOnce(io::Error) -> KernelError {
    let what = what.into();
    move |source| KernelError { what, source }
}

/// An rtnetlink socket in the calling thread's network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink, KernelError> {
        let open = || -> io::Result<Socket> {
            let mut sock = Socket::new(NETLINK_ROUTE)?;
            sock.bind_auto()?;
            sock.connect(&SocketAddr::new(0, 0))?;
            Ok(sock)
        };
        Ok(Netlink {
            sock: open().map_err(err("open a netlink socket"))?,
            seq: 0,
        })
    }

    pub(crate) fn request(
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

    /// Every link: index → (name, message).
    fn links(&mut self) -> io::Result<BTreeMap<u32, (String, LinkMessage)>> {
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
                    Some((l.header.index, (name, l)))
                }
                _ => None,
            })
            .collect())
    }

    pub(crate) fn index(&mut self, name: &str) -> Result<u32, KernelError> {
        let links = self.links().map_err(err("list links"))?;
        links
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(i, _)| *i)
            .ok_or_else(|| KernelError {
                what: format!("look up {name}"),
                source: io::Error::from_raw_os_error(libc::ENODEV),
            })
    }

    fn neighbours(&mut self, family: AddressFamily) -> io::Result<Vec<NeighbourMessage>> {
        let mut q = NeighbourMessage::default();
        q.header.family = family;
        let replies = self.request(RouteNetlinkMessage::GetNeighbour(q), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    fn new_link(&mut self, m: LinkMessage) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    pub(crate) fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    fn neighbour(&mut self, m: NeighbourMessage, add: bool) -> io::Result<()> {
        if add {
            self.request(
                RouteNetlinkMessage::NewNeighbour(m),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .map(drop)
        } else {
            match self.request(RouteNetlinkMessage::DelNeighbour(m), 0) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                r => r.map(drop),
            }
        }
    }
}

fn mac_of(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

/// This namespace's overlay links ([`owned`] names only) with their VXLAN settings, static
/// FDB entries and permanent neighbour entries.
pub fn observe(nl: &mut Netlink) -> Result<Observed, KernelError> {
    let links = nl.links().map_err(err("list links"))?;
    let mut out = Observed::default();
    for (name, l) in links.values() {
        if !owned(name) {
            continue;
        }
        let mut o = ObservedLink::default();
        for a in &l.attributes {
            match a {
                LinkAttribute::Controller(m) => {
                    o.master = links.get(m).map(|(n, _)| n.clone());
                }
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Data(InfoData::Vxlan(v)) = i {
                            let id = v.iter().find_map(|x| match x {
                                InfoVxlan::Id(id) => Some(*id),
                                _ => None,
                            });
                            let local = v.iter().find_map(|x| match x {
                                InfoVxlan::Local(ip) => Some(*ip),
                                _ => None,
                            });
                            o.vxlan = id.map(|id| (id, local));
                        }
                    }
                }
                _ => {}
            }
        }
        out.links.insert(name.clone(), o);
    }
    let name_of = |idx: u32| links.get(&idx).map(|(n, _)| n.clone());
    for n in nl
        .neighbours(AddressFamily::Bridge)
        .map_err(err("list FDB entries"))?
    {
        let (Some(dev), true) = (
            name_of(n.header.ifindex),
            n.header.state == NeighbourState::Permanent,
        ) else {
            continue;
        };
        let mac = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(m) => mac_of(m),
            _ => None,
        });
        // An FDB message is of the bridge family, so its IPv4 destination comes back as
        // raw bytes.
        let dst = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
            }
            _ => None,
        });
        if let (Some(l), Some(mac), Some(dst)) = (out.links.get_mut(&dev), mac, dst) {
            if l.vxlan.is_some() && mac != [0; 6] {
                l.fdb.insert(Fdb { mac, dst });
            }
        }
    }
    for n in nl
        .neighbours(AddressFamily::Inet)
        .map_err(err("list neighbour entries"))?
    {
        let (Some(dev), true) = (
            name_of(n.header.ifindex),
            n.header.state == NeighbourState::Permanent,
        ) else {
            continue;
        };
        let ip = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let mac = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(m) => mac_of(m),
            _ => None,
        });
        if let (Some(l), Some(ip), Some(mac)) = (out.links.get_mut(&dev), ip, mac) {
            l.neigh.insert(ip, mac);
        }
    }
    Ok(out)
}

fn fdb_message(index: u32, fdb: &Fdb) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(fdb.mac.to_vec()));
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            fdb.dst,
        )));
    m
}

fn neigh_message(index: u32, ip: Ipv4Addr, mac: Option<[u8; 6]>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    if let Some(mac) = mac {
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    }
    m
}

/// Carries out one step.
pub fn execute(nl: &mut Netlink, step: &Step) -> Result<(), KernelError> {
    match step {
        Step::CreateBridge { name, mtu } => {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.clone()));
            m.attributes.push(LinkAttribute::Mtu(*mtu));
            m.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge,
                )]));
            nl.new_link(m)
                .map_err(err(format!("create bridge {name}")))?;
            let idx = nl.index(name)?;
            nl.set_up(idx).map_err(err(format!("{name} up")))
        }
        Step::CreateVxlan {
            name,
            vni,
            local,
            bridge,
            mtu,
        } => {
            let master = nl.index(bridge)?;
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.clone()));
            m.attributes.push(LinkAttribute::Mtu(*mtu));
            m.attributes.push(LinkAttribute::Controller(master));
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![
                    InfoVxlan::Id(*vni),
                    InfoVxlan::Local(*local),
                    InfoVxlan::Port(VXLAN_PORT),
                    InfoVxlan::Learning(false),
                    InfoVxlan::Proxy(true),
                    InfoVxlan::Ttl(0),
                ])),
            ]));
            nl.new_link(m)
                .map_err(err(format!("create VXLAN device {name} (VNI {vni})")))?;
            let idx = nl.index(name)?;
            nl.set_up(idx).map_err(err(format!("{name} up")))
        }
        Step::DeleteLink { name } => {
            let Ok(idx) = nl.index(name) else {
                return Ok(());
            };
            let mut m = LinkMessage::default();
            m.header.index = idx;
            match nl.request(RouteNetlinkMessage::DelLink(m), 0) {
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
                r => r.map(drop).map_err(err(format!("delete {name}"))),
            }
        }
        Step::AddFdb { dev, fdb } | Step::DelFdb { dev, fdb } => {
            let add = matches!(step, Step::AddFdb { .. });
            let idx = nl.index(dev)?;
            nl.neighbour(fdb_message(idx, fdb), add)
                .map_err(err(format!(
                    "{} FDB entry {} via {} on {dev}",
                    if add { "add" } else { "delete" },
                    fmt_mac(&fdb.mac),
                    fdb.dst
                )))
        }
        Step::SetNeigh { dev, ip, mac } => {
            let idx = nl.index(dev)?;
            nl.neighbour(neigh_message(idx, *ip, Some(*mac)), true)
                .map_err(err(format!("neighbour {ip} on {dev}")))
        }
        Step::DelNeigh { dev, ip } => {
            let idx = nl.index(dev)?;
            nl.neighbour(neigh_message(idx, *ip, None), false)
                .map_err(err(format!("delete neighbour {ip} on {dev}")))
        }
    }
}

/// One reconcile pass: observe, plan, carry out. Returns the steps taken; the first step
/// that fails stops the pass (the next pass starts from what is then there).
pub fn reconcile(
    nl: &mut Netlink,
    desired: &[crate::model::Plane],
) -> Result<Vec<Step>, KernelError> {
    let observed = observe(nl)?;
    let steps = crate::plan::plan(desired, &observed);
    for s in &steps {
        execute(nl, s)?;
    }
    Ok(steps)
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
