//! The `bridge` driver: a Linux bridge per network with the gateway address on it, one veth
//! per endpoint (its container end created directly in the container's namespace),
//! published ports held by bound sockets and DNAT'ed by the daemon's nftables table.
//!
//! ```text
//!  container netns        daemon netns
//!  eth0 ══ veth ══ vbXXXXXXXX ─ berth-1a2b3c4d5 (gateway) ─ nft table `berth`: masquerade,
//!                                                          isolation, published ports
//! ```
//! The nft table is rendered whole from the bridge records and the published ports on each
//! `sync` (`nft.rs`), so a restart converges by construction; bridges come back from their
//! records in `restore`, and `sweep` deletes the bridges of records that are gone.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use berth_api::ErrorKind;

use super::driver::{Created, EndpointAddrs, Link, NetworkDriver, Sandbox};
use super::error::{NetworkError, Result};
use super::ipam::Subnet;
use super::ipam6::Subnet6;
use super::netlink::{self, Netlink};
use super::{nft, ports, write_sysctl, NetConfig, NetworkRecord, PortMapping};

/// Prefix of the bridges of user-defined networks: `berth-` + 9 hex digits of the id.
pub const BRIDGE_PREFIX: &str = "berth-";
/// The default bridge network's device when `--bridge` does not name one.
pub const DEFAULT_DEVICE: &str = "berth0";
const MTU_OPTION: &str = "com.docker.network.driver.mtu";
const NAME_OPTION: &str = "com.docker.network.bridge.name";
const MASQUERADE_OPTION: &str = "com.docker.network.bridge.enable_ip_masquerade";
/// `nat` (default) or `routed`: whether traffic leaving the network is masqueraded.
const GATEWAY_MODE_V4: &str = "com.docker.network.bridge.gateway_mode_ipv4";
const GATEWAY_MODE_V6: &str = "com.docker.network.bridge.gateway_mode_ipv6";

/// What one container published through this driver.
#[derive(Default)]
struct Published {
    dnats: Vec<nft::Dnat>,
    reservations: Vec<ports::Reservation>,
    /// Relays of `[::1]` connections to IPv6 published TCP ports (`relay_loopback6`).
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl Published {
    /// Relays `[::1]:port` to the container when a TCP port is held on `::`.
    fn relay_loopback(
        &mut self,
        r: &ports::Reservation,
        proto: &str,
        host_ip: IpAddr,
        to: IpAddr,
        ctr_port: u16,
    ) {
        if proto != "tcp" || host_ip != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
            return;
        }
        match r.relay_loopback6(std::net::SocketAddr::new(to, ctr_port)) {
            Ok(task) => self.relays.push(task),
            Err(e) => tracing::warn!(port = r.port, error = %e, "relay [::1] to a published port"),
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        for t in &self.relays {
            t.abort();
        }
    }
}

pub struct BridgeDriver {
    /// The daemon's nftables table (`berth`, or `berth_<bridge>` beside another daemon).
    table: String,
    /// container id → its published ports
    published: Mutex<HashMap<String, Published>>,
}

impl BridgeDriver {
    pub fn new(cfg: &NetConfig) -> BridgeDriver {
        BridgeDriver {
            table: table_name(&cfg.bridge),
            published: Mutex::new(HashMap::new()),
        }
    }

    /// The nftables table this driver owns.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<String, Published>> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The nftables table of a daemon whose default bridge is `bridge`.
pub fn table_name(bridge: &str) -> String {
    if bridge == DEFAULT_DEVICE {
        "berth".to_owned()
    } else {
        format!("berth_{}", bridge.replace(['-', '.'], "_"))
    }
}

impl NetworkDriver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn has_addresses(&self) -> bool {
        true
    }

    fn prepare(&self, rec: &mut NetworkRecord) -> Result<()> {
        rec.bridge = match rec.options.get(NAME_OPTION) {
            Some(b) => match netlink::ifname_problem(b) {
                Some(why) => {
                    return Err(NetworkError::invalid(format!(
                        "invalid bridge name {b:?} ({NAME_OPTION}): {why}; an interface name is 1 to 15 bytes without whitespace, '/', ':', '%' or quotes"
                    )))
                }
                None => b.clone(),
            },
            None => format!("{BRIDGE_PREFIX}{}", &rec.id[..9]),
        };
        mtu_option(rec)?;
        for key in [GATEWAY_MODE_V4, GATEWAY_MODE_V6] {
            if let Some(m) = rec
                .options
                .get(key)
                .filter(|m| !matches!(m.as_str(), "nat" | "routed"))
            {
                return Err(NetworkError::invalid(format!(
                    "invalid {key} {m:?}: expected nat or routed"
                )));
            }
        }
        Ok(())
    }

    fn create(&self, rec: &NetworkRecord) -> Result<Created> {
        let mut nl = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
        make_bridge(&mut nl, rec, mtu_option(rec)?)
    }

    fn restore(&self, rec: &NetworkRecord) -> Result<()> {
        let mut nl = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
        let mtu = mtu_option(rec).ok().flatten().filter(|m| *m != 1500);
        make_bridge(&mut nl, rec, mtu).map(drop)
    }

    fn delete(&self, rec: &NetworkRecord) -> Result<()> {
        delete_bridge(&rec.bridge)
    }

    fn sweep(&self, live: &[NetworkRecord]) -> Result<()> {
        let mut nl = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
        let links = nl
            .links()
            .map_err(|e| NetworkError::kernel("list links", e))?;
        for (idx, name) in links {
            if name.starts_with(BRIDGE_PREFIX)
                && name.len() == BRIDGE_PREFIX.len() + 9
                && !live.iter().any(|r| r.bridge == name)
            {
                tracing::info!(bridge = %name, "removing a bridge no network owns");
                let _ = nl.delete_link(idx);
            }
        }
        Ok(())
    }

    fn sync(&self, nets: &[NetworkRecord]) -> Result<()> {
        let bridges: Vec<nft::BridgeRules> = nets
            .iter()
            .filter_map(|r| {
                Some(nft::BridgeRules {
                    ifname: r.bridge.clone(),
                    subnet: r.subnet.parse().ok()?,
                    subnet6: r.enable_ipv6.then(|| r.subnet6.parse().ok()).flatten(),
                    internal: r.internal,
                    masquerade: r
                        .options
                        .get(MASQUERADE_OPTION)
                        .is_none_or(|v| v != "false")
                        && r.options.get(GATEWAY_MODE_V4).is_none_or(|v| v != "routed"),
                    masquerade6: r
                        .options
                        .get(MASQUERADE_OPTION)
                        .is_none_or(|v| v != "false")
                        && r.options.get(GATEWAY_MODE_V6).is_none_or(|v| v != "routed"),
                })
            })
            .collect();
        let mut dnats: Vec<nft::Dnat> = self
            .published()
            .values()
            .flat_map(|c| c.dnats.iter().cloned())
            .collect();
        dnats.sort_by_key(|d| (d.host_port, d.proto));
        nft::apply(&nft::render(&self.table, &bridges, &dnats)).map_err(NetworkError::Rules)
    }

    fn join(&self, sb: &mut Sandbox<'_>, l: &Link) -> Result<()> {
        let bridge = &l.network.bridge;
        let master = sb
            .host
            .link_index(bridge)
            .map_err(|e| NetworkError::kernel(format!("look up bridge {bridge}"), e))?
            .ok_or_else(|| {
                NetworkError::Internal(format!(
                    "bridge {bridge} of network {} is missing",
                    l.network.name
                ))
            })?;
        let host_name = format!("vb{}", hex::encode(rand::random::<[u8; 4]>()));
        sb.host
            .create_veth(&host_name, master, &l.ifname, l.mac, sb.netns.as_raw_fd())
            .map_err(|e| NetworkError::kernel(format!("create veth {host_name}"), e))?;
        let idx = sb
            .ctr
            .link_index(&l.ifname)
            .map_err(|e| NetworkError::kernel(format!("look up {}", l.ifname), e))?
            .ok_or_else(|| {
                NetworkError::Internal(format!("{} did not appear in the container", l.ifname))
            })?;
        sb.ctr
            .add_address(idx, l.ip, l.prefix)
            .map_err(|e| NetworkError::kernel(format!("address {}", l.ip), e))?;
        if let Some((ip6, prefix6)) = l.ip6 {
            // A namespace's links may start with IPv6 off (a host whose default is off).
            write_sysctl(
                &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", l.ifname),
                "0",
            );
            sb.ctr
                .add_address6(idx, ip6, prefix6)
                .map_err(|e| NetworkError::kernel(format!("address {ip6}"), e))?;
        }
        add_link_local(sb.ctr, idx, &l.link_local)?;
        sb.ctr
            .set_up(idx)
            .map_err(|e| NetworkError::kernel(format!("{} up", l.ifname), e))
    }

    fn leave(&self, sb: &mut Sandbox<'_>, ip: &str) -> Result<()> {
        // The interface holding this endpoint's address; its veth peer goes with it.
        let links = sb
            .ctr
            .links()
            .map_err(|e| NetworkError::kernel("list links", e))?;
        for (idx, name) in links {
            let addrs = sb
                .ctr
                .addresses(idx)
                .map_err(|e| NetworkError::kernel(format!("addresses of {name}"), e))?;
            if addrs.iter().any(|(a, _)| a.to_string() == ip) {
                return sb
                    .ctr
                    .delete_link(idx)
                    .map_err(|e| NetworkError::kernel(format!("delete {name}"), e));
            }
        }
        Ok(())
    }

    fn publish(
        &self,
        ctr_id: &str,
        ctr_name: &str,
        addrs: EndpointAddrs,
        wanted: &[ports::Binding],
    ) -> Result<Vec<PortMapping>> {
        let mut p = Published::default();
        let mut mappings = Vec::new();
        let failed = |why| NetworkError::Publish {
            ctr_name: ctr_name.to_owned(),
            ctr_id: ctr_id.to_owned(),
            why,
        };
        for b in wanted {
            for (r, host_ip, ctr_ip) in reserve_binding(b, addrs).map_err(failed)? {
                mappings.push(PortMapping {
                    proto: b.proto.to_owned(),
                    ctr_port: b.ctr_port,
                    host_ip: host_ip.to_string(),
                    host_port: r.port,
                });
                p.dnats.push(nft::Dnat {
                    proto: b.proto,
                    host_ip: Some(host_ip).filter(|i| !i.is_unspecified()),
                    host_port: r.port,
                    ctr_ip,
                    ctr_port: b.ctr_port,
                });
                p.relay_loopback(&r, b.proto, host_ip, ctr_ip, b.ctr_port);
                p.reservations.push(r);
            }
        }
        self.published().insert(ctr_id.to_owned(), p);
        Ok(mappings)
    }

    fn restore_ports(&self, ctr_id: &str, addrs: EndpointAddrs, maps: &[PortMapping]) {
        let mut published = self.published();
        let p = published.entry(ctr_id.to_owned()).or_default();
        for m in maps {
            let proto = if m.proto == "udp" { "udp" } else { "tcp" };
            let Ok(host_ip) = m.host_ip.parse::<IpAddr>() else {
                tracing::warn!(container_id = %ctr_id, host_ip = %m.host_ip, "recorded port of an unreadable address");
                continue;
            };
            let ctr_ip = match (host_ip, addrs.ip6) {
                (IpAddr::V4(_), _) => IpAddr::V4(addrs.ip),
                (IpAddr::V6(_), Some(ip6)) => IpAddr::V6(ip6),
                (IpAddr::V6(_), None) => continue,
            };
            let b = ports::Binding {
                proto,
                ctr_port: m.ctr_port,
                host_ip: Some(host_ip),
                host_port: Some((m.host_port, m.host_port)),
            };
            match ports::reserve(&b) {
                Ok(r) => {
                    p.relay_loopback(&r, proto, host_ip, ctr_ip, m.ctr_port);
                    p.reservations.push(r)
                }
                Err(e) => {
                    tracing::warn!(container_id = %ctr_id, error = %e, "re-reserve published port")
                }
            }
            p.dnats.push(nft::Dnat {
                proto,
                host_ip: Some(host_ip).filter(|i| !i.is_unspecified()),
                host_port: m.host_port,
                ctr_ip,
                ctr_port: m.ctr_port,
            });
        }
    }

    fn release_ports(&self, ctr_id: &str) -> bool {
        self.published()
            .remove(ctr_id)
            .is_some_and(|p| !p.dnats.is_empty())
    }
}

/// The host sides one binding takes: (reservation, host address, container address). A
/// binding with no address takes every IPv4 address, and every IPv6 one too (the same port)
/// when the container has an IPv6 address; an IPv6 address needs the container to have one.
fn reserve_binding(
    b: &ports::Binding,
    addrs: EndpointAddrs,
) -> std::result::Result<Vec<(ports::Reservation, IpAddr, IpAddr)>, ports::PortError> {
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let ctr4 = IpAddr::V4(addrs.ip);
    match (b.host_ip, addrs.ip6) {
        (None, Some(ip6)) => {
            let (r4, r6) = ports::reserve_dual(b)?;
            let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            Ok(vec![(r4, any4, ctr4), (r6, any6, IpAddr::V6(ip6))])
        }
        (None, None) => Ok(vec![(ports::reserve(b)?, any4, ctr4)]),
        (Some(ip @ IpAddr::V6(_)), Some(ip6)) => {
            Ok(vec![(ports::reserve(b)?, ip, IpAddr::V6(ip6))])
        }
        (Some(ip @ IpAddr::V6(_)), None) => Err(ports::PortError::NoIpv6 {
            ip,
            port: b.host_port.map_or(0, |(lo, _)| lo),
        }),
        (Some(ip), _) => Ok(vec![(ports::reserve(b)?, ip, ctr4)]),
    }
}

/// `IPAMConfig.LinkLocalIPs` on a container's interface: IPv4 ones /16 in 169.254.0.0/16
/// (else /32), IPv6 ones /64 in fe80::/10 (else /128).
fn add_link_local(nl: &mut Netlink, idx: u32, addrs: &[IpAddr]) -> Result<()> {
    for ll in addrs {
        let made = match ll {
            IpAddr::V4(ip) => nl.add_address(idx, *ip, if ip.is_link_local() { 16 } else { 32 }),
            IpAddr::V6(ip) => {
                let link_scoped = ip.segments()[0] & 0xffc0 == 0xfe80;
                nl.add_address6(idx, *ip, if link_scoped { 64 } else { 128 })
            }
        };
        made.map_err(|e| NetworkError::kernel(format!("link-local address {ll}"), e))?;
    }
    Ok(())
}

/// `com.docker.network.driver.mtu`, checked.
fn mtu_option(rec: &NetworkRecord) -> Result<Option<u32>> {
    match rec.options.get(MTU_OPTION) {
        Some(m) => Ok(Some(
            m.parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| NetworkError::invalid(format!("invalid MTU {m:?}")))?,
        )),
        None => Ok(None),
    }
}

/// Creates the bridge if missing, gives it the gateway address, brings it up. A bridge it
/// created is deleted again if a later step fails; an interface of that name that is not a
/// bridge is refused (dockerd: "existing interface … is not a bridge").
fn make_bridge(nl: &mut Netlink, rec: &NetworkRecord, mtu: Option<u32>) -> Result<Created> {
    let subnet: Subnet = rec
        .subnet
        .parse()
        .map_err(NetworkError::ipam(ErrorKind::Internal))?;
    let gw: Ipv4Addr = rec
        .gateway
        .parse()
        .map_err(|_| NetworkError::Internal(format!("bad gateway {}", rec.gateway)))?;
    let (made, idx) = match nl.link(&rec.bridge) {
        Ok(Some((i, true))) => (Created::Existing, i),
        Ok(Some((_, false))) => {
            return Err(NetworkError::invalid(format!(
                "existing interface {} is not a bridge",
                rec.bridge
            )))
        }
        Ok(None) => {
            let i = nl
                .create_bridge(&rec.bridge, mtu)
                .map_err(|e| NetworkError::kernel(format!("create bridge {}", rec.bridge), e))?;
            (Created::New, i)
        }
        Err(e) => return Err(NetworkError::kernel(format!("look up {}", rec.bridge), e)),
    };
    let configured = configure_bridge(nl, idx, rec, gw, subnet);
    if configured.is_err() && made == Created::New {
        let _ = nl.delete_link(idx);
    }
    configured.map(|_| made)
}

/// The gateway address on the bridge, and the bridge up.
fn configure_bridge(
    nl: &mut Netlink,
    idx: u32,
    rec: &NetworkRecord,
    gw: Ipv4Addr,
    subnet: Subnet,
) -> Result<()> {
    nl.add_address(idx, gw, subnet.prefix)
        .map_err(|e| NetworkError::kernel(format!("address {gw} on {}", rec.bridge), e))?;
    if rec.enable_ipv6 {
        let bad =
            || NetworkError::Internal(format!("bad IPv6 gateway {}/{}", rec.gateway6, rec.subnet6));
        let gw6: Ipv6Addr = rec.gateway6.parse().map_err(|_| bad())?;
        let subnet6: Subnet6 = rec.subnet6.parse().map_err(|_| bad())?;
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", rec.bridge),
            "0",
        );
        nl.add_address6(idx, gw6, subnet6.prefix)
            .map_err(|e| NetworkError::kernel(format!("address {gw6} on {}", rec.bridge), e))?;
    }
    nl.set_up(idx)
        .map_err(|e| NetworkError::kernel(format!("{} up", rec.bridge), e))?;
    // Published ports reached from 127.0.0.1 are DNAT'ed out of this bridge.
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.bridge),
        "1",
    );
    Ok(())
}

fn delete_bridge(name: &str) -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
    if let Some(i) = nl
        .link_index(name)
        .map_err(|e| NetworkError::kernel(format!("look up {name}"), e))?
    {
        nl.delete_link(i)
            .map_err(|e| NetworkError::kernel(format!("delete bridge {name}"), e))?;
    }
    Ok(())
}

/// The options `docker network inspect bridge` shows for the default bridge.
pub fn default_bridge_options(bridge: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "com.docker.network.bridge.default_bridge".into(),
            "true".into(),
        ),
        ("com.docker.network.bridge.enable_icc".into(), "true".into()),
        (
            "com.docker.network.bridge.enable_ip_masquerade".into(),
            "true".into(),
        ),
        (
            "com.docker.network.bridge.host_binding_ipv4".into(),
            "0.0.0.0".into(),
        ),
        (NAME_OPTION.into(), bridge.to_owned()),
        (MTU_OPTION.into(), "1500".into()),
    ])
}

/// `--bip 172.30.0.1/16`: the bridge's own address and, from it, the subnet.
pub fn parse_bip(bip: &str) -> std::result::Result<(Ipv4Addr, Subnet), String> {
    let (ip, prefix) = bip
        .split_once('/')
        .ok_or_else(|| format!("invalid --bip {bip:?}: expected ADDRESS/PREFIX"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid --bip {bip:?}: bad address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 30)
        .ok_or_else(|| format!("invalid --bip {bip:?}: bad prefix"))?;
    Ok((ip, Subnet::new(ip, prefix)))
}

/// The default bridge's subnet: `--bip`, else what the bridge device already carries, else
/// the first pool subnet that overlaps no host route and no other network.
pub fn default_bridge_subnet(
    cfg: &NetConfig,
    recs: &[NetworkRecord],
    nl: &mut Netlink,
) -> anyhow::Result<(Subnet, Ipv4Addr)> {
    if let Some(bip) = &cfg.bip {
        let (gw, s) = parse_bip(bip).map_err(anyhow::Error::msg)?;
        return Ok((s, gw));
    }
    if let Some(idx) = nl.link_index(&cfg.bridge)? {
        if let Some((ip, p)) = nl.addresses(idx)?.into_iter().next() {
            return Ok((Subnet::new(ip, p), ip));
        }
    }
    let mut taken: Vec<Subnet> = recs.iter().filter_map(|r| r.subnet.parse().ok()).collect();
    taken.extend(
        nl.routes()?
            .into_iter()
            .map(|(ip, p, _)| Subnet::new(ip, p)),
    );
    let s = cfg
        .pools
        .iter()
        .find_map(|p| p.carve(&taken))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no default address pool subnet is free for the bridge network; set --bip"
            )
        })?;
    Ok((s, s.first_host()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(options: &[(&str, &str)]) -> NetworkRecord {
        NetworkRecord {
            id: "0123456789abcdef".into(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    fn driver() -> BridgeDriver {
        BridgeDriver::new(&NetConfig {
            bridge: "berth0".into(),
            bip: None,
            pools: Vec::new(),
            ..Default::default()
        })
    }

    #[test]
    fn bridge_name_comes_from_the_option_or_the_id() {
        let d = driver();
        let mut r = rec(&[]);
        d.prepare(&mut r).expect("valid");
        assert_eq!(r.bridge, "berth-012345678");
        let mut r = rec(&[(NAME_OPTION, "br-test")]);
        d.prepare(&mut r).expect("valid");
        assert_eq!(r.bridge, "br-test");
        let mut r = rec(&[(NAME_OPTION, "a/b")]);
        assert!(
            matches!(d.prepare(&mut r), Err(NetworkError::Invalid(m)) if m.starts_with("invalid bridge name \"a/b\""))
        );
    }

    #[test]
    fn mtu_must_be_a_link_mtu() {
        let d = driver();
        for bad in ["0", "67", "65536", "big"] {
            let mut r = rec(&[(MTU_OPTION, bad)]);
            let e = d.prepare(&mut r).expect_err(bad);
            assert_eq!(e.to_string(), format!("invalid MTU {bad:?}"));
        }
        let mut r = rec(&[(MTU_OPTION, "9000")]);
        d.prepare(&mut r).expect("9000 is valid");
    }

    #[test]
    fn table_names_follow_the_default_bridge() {
        assert_eq!(table_name("berth0"), "berth");
        assert_eq!(table_name("br-x.1"), "berth_br_x_1");
    }

    #[test]
    fn bip_gives_gateway_and_subnet() {
        let (gw, s) = parse_bip("172.30.5.1/16").expect("valid");
        assert_eq!(gw, Ipv4Addr::new(172, 30, 5, 1));
        assert_eq!(s.to_string(), "172.30.0.0/16");
        assert!(parse_bip("172.30.5.1").is_err());
        assert!(parse_bip("172.30.5.1/31").is_err());
    }
}
