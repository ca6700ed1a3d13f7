//! Local networks: the predefined `bridge`, `host` and `none`, user-defined networks, the
//! endpoints of containers on them, published ports and the embedded DNS server.
//!
//! `Networks` is driver-neutral: it keeps the records, the addresses (IPAM), the endpoints
//! and name resolution, and dispatches the data plane to the network's driver
//! (`driver.rs`: `NetworkDriver`, looked up by the record's `driver` name).
//!
//! ```text
//!  API ─► api.rs ─► Networks ─┬─ records        metadata.redb table `networks` (one transaction each)
//!   (ApiError at the edge)    ├─ create.rs      create/remove/prune: validation, subnet choice
//!                             ├─ endpoint.rs    attach/detach/restore, ports, name resolution
//!                             ├─ view.rs        inspect/list JSON and filters
//!                             ├─ ipam.rs        subnets, pools, per-network allocators (in memory)
//!                             ├─ ipam6.rs       the same for IPv6 (`EnableIPv6` networks)
//!                             ├─ dns.rs         127.0.0.11 inside each container on a user network
//!                             ├─ swarm.rs       local records of swarm networks, service names
//!                             └─ Drivers ─┬─ bridge.rs  bridge, veths (netlink.rs), nftables
//!                                         │             (nft.rs), published ports (ports.rs)
//!                                         ├─ overlay.rs bridge + VXLAN (berth-overlay-net)
//!                                         └─ local.rs   host, null
//! ```
//! State that lives only while containers run (addresses in use, endpoints, reservations,
//! DNS servers) is rebuilt from the container records at start, so nothing leaks across a
//! `kill -9` of berthd: links die with their namespace, the drivers' rules are regenerated
//! (`rebuild_rules`), and data plane without a record is swept (`NetworkDriver::sweep`).
//! Errors are `NetworkError` (`error.rs`), made an `ApiError` only in `api.rs`.

pub mod api;
pub mod bridge;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod create;
pub mod dns;
pub mod driver;
mod endpoint;
pub mod error;
pub mod ipam;
pub mod ipam6;
pub mod local;
pub mod netlink;
pub mod nft;
pub mod overlay;
pub mod ports;
mod swarm;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_api::ErrorKind;

use serde::{Deserialize, Serialize};

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::store::{MetaStore, Table};
use bridge::BridgeDriver;
pub use driver::{Created, Drivers, EndpointAddrs, Link, NetworkDriver, Sandbox};
pub use error::NetworkError;
use error::Result;
use ipam::{Allocator, Pool, Subnet};
use ipam6::{Allocator6, Pool6, Subnet6};
use local::{HostDriver, NullDriver};
use netlink::Netlink;
pub use swarm::{ServiceResolver, SwarmAttacher, SwarmAttachment};

const NETWORKS: Table = Table::new("networks");

/// A network as stored.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// bridge, host or null.
    pub driver: String,
    pub created: String,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    /// `--subnet` was given: only then may containers ask for a fixed `--ip`.
    pub user_subnet: bool,
    pub aux_addresses: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The bridge device (bridge driver only).
    pub bridge: String,
    /// `EnableIPv6`: containers get an address from `subnet6` too. The IPv6 fields are
    /// left out of the record when off, so records written before them read back unchanged.
    #[serde(skip_serializing_if = "is_false")]
    pub enable_ipv6: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet6: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_range6: String,
    /// An IPv6 `--subnet` was given: only then may containers ask for a fixed `--ip6`.
    #[serde(skip_serializing_if = "is_false")]
    pub user_subnet6: bool,
    /// The record's format version ([`NETWORK_RECORD_VERSION`]); 0 for records written
    /// before it had one, which are read the same way (version 1 only added fields).
    pub version: u32,
}

/// The format version of network records this berthd writes. A data root with a newer
/// one stops the start (`open_with`) rather than being misread.
pub const NETWORK_RECORD_VERSION: u32 = 1;

/// Writes a network record in this berthd's format version.
fn put_record(
    meta: &MetaStore,
    rec: &NetworkRecord,
) -> std::result::Result<(), crate::store::StoreError> {
    let mut rec = rec.clone();
    rec.version = NETWORK_RECORD_VERSION;
    meta.put(NETWORKS, &rec.id, &rec)
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl NetworkRecord {
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
}

/// How a container is attached to one network: what was asked (persisted with the
/// container) and, while it runs, what it got.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct Endpoint {
    pub network_id: String,
    pub aliases: Vec<String>,
    pub ipv4_request: String,
    pub mac_request: String,
    /// `IPAMConfig.LinkLocalIPs` as asked (IPv4 link-local addresses); left out of the
    /// record when empty, so records written before it read back unchanged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    pub links: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
    /// `IPAMConfig.IPv6Address` (`--ip6`). The IPv6 fields are left out of the record when
    /// empty, so records written before them read back unchanged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv6_request: String,
    // While attached:
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    /// The IPv6 address, prefix and gateway, on networks with IPv6 on.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip6: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub prefix6: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl Endpoint {
    pub fn clear_runtime(&mut self) {
        self.endpoint_id.clear();
        self.ip.clear();
        self.prefix = 0;
        self.gateway.clear();
        self.mac.clear();
        self.ip6.clear();
        self.prefix6 = 0;
        self.gateway6.clear();
    }
}

/// A container port published on the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortMapping {
    pub proto: String,
    pub ctr_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

/// An endpoint in use, as DNS and network inspect see it.
#[derive(Debug, Clone)]
struct Active {
    ctr_name: String,
    aliases: Vec<String>,
    /// Legacy links on a user-defined network, (alias, container name): names only this
    /// container resolves.
    links: Vec<(String, String)>,
    ip: Ipv4Addr,
    prefix: u8,
    /// The IPv6 address and prefix, on networks with IPv6 on.
    ip6: Option<(Ipv6Addr, u8)>,
    mac: String,
    endpoint_id: String,
}

struct Net {
    rec: NetworkRecord,
    alloc: Option<Allocator>,
    /// IPv6 addresses, on networks with IPv6 on.
    alloc6: Option<Allocator6>,
    /// container id → endpoint
    active: BTreeMap<String, Active>,
}

struct State {
    nets: BTreeMap<String, Net>,
    /// container id → its embedded DNS server's tasks
    dns: HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
}

/// Who is being attached: enough to name endpoints and answer DNS.
pub struct Attachee<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub netns: &'a Path,
    /// The network whose interface is eth0 and whose gateway is the default route.
    pub primary: &'a str,
    /// Upstream resolvers for names that aren't ours (`--dns`, else the host's).
    pub dns: &'a [String],
}

#[derive(Clone)]
pub struct Networks {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Arc<MetaStore>,
    events: Events,
    pools: Vec<Pool>,
    pools6: Vec<Pool6>,
    drivers: Drivers,
    state: Mutex<State>,
    /// Serialises rule syncs so an older view never replaces a newer one.
    sync_lock: Mutex<()>,
    /// The overlay driver (also in `drivers`), for the cluster agent.
    overlay: Arc<overlay::OverlayDriver>,
    /// Service names on swarm networks (the cluster agent's).
    services: Mutex<Option<ServiceResolver>>,
    /// Addresses on attachable swarm networks for standalone containers (the agent's).
    attacher: Mutex<Option<Arc<dyn swarm::SwarmAttacher>>>,
    /// The VIP load-balancing rules of swarm networks (the agent's).
    vip_rules: Mutex<Option<swarm::VipRules>>,
    /// The network of containers created without one: `bridge`, or `none` when the
    /// default bridge is off (`--bridge none`).
    default_network: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    pub bridge: String,
    pub bip: Option<String>,
    pub pools: Vec<Pool>,
    /// IPv6 default address pools (none: unique-local /64s).
    pub pools6: Vec<Pool6>,
    /// IPv6 on the default bridge (`--ipv6`), in `fixed_cidr_v6` if given.
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
}

/// `--bridge none`: no default bridge network; containers without `--network` get none.
pub const NO_BRIDGE: &str = "none";

impl NetConfig {
    /// Whether the default `bridge` network exists (not `--bridge none`).
    pub fn default_bridge(&self) -> bool {
        self.bridge != NO_BRIDGE
    }

    pub fn from_daemon(cfg: &DaemonConfig) -> NetConfig {
        NetConfig {
            bridge: cfg.bridge.clone(),
            bip: cfg.bip.clone(),
            pools: if cfg.default_address_pools.is_empty() {
                Pool::defaults()
            } else {
                cfg.default_address_pools.clone()
            },
            pools6: cfg.default_address_pools6.clone(),
            ipv6: cfg.ipv6,
            fixed_cidr_v6: cfg.fixed_cidr_v6.clone(),
        }
    }
}

/// The drivers of a single-host daemon: bridge, host and null.
pub fn local_drivers(cfg: &NetConfig) -> Drivers {
    let mut d = Drivers::default();
    d.register(Arc::new(BridgeDriver::new(cfg)));
    d.register(Arc::new(HostDriver));
    d.register(Arc::new(NullDriver));
    d
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub(crate) fn write_sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!(path, error = %e, "set sysctl");
    }
}

impl Networks {
    /// Loads the networks with the local drivers (`open_with`) and the overlay driver, which
    /// only the cluster agent feeds (`network create -d overlay` goes to the managers).
    pub fn open(cfg: &NetConfig, meta: Arc<MetaStore>, events: Events) -> anyhow::Result<Networks> {
        let mut drivers = local_drivers(cfg);
        drivers.register_overlay(Arc::new(overlay::OverlayDriver::default()));
        Self::open_with(cfg, meta, events, drivers)
    }

    /// Loads the networks, makes the predefined ones, and has each driver bring its
    /// networks into the state their records describe (after a reboot or a crash) and sweep
    /// what no record owns. Containers re-register their endpoints afterwards
    /// (`restore`, `restore_ports`), then `rebuild_rules` runs.
    pub fn open_with(
        cfg: &NetConfig,
        meta: Arc<MetaStore>,
        events: Events,
        drivers: Drivers,
    ) -> anyhow::Result<Networks> {
        if !nft::valid_ifname(&cfg.bridge) {
            anyhow::bail!("invalid bridge name {:?}", cfg.bridge);
        }
        let mut recs: Vec<NetworkRecord> = meta
            .list::<NetworkRecord>(NETWORKS)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        check_record_versions(&recs)?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        if !cfg.default_bridge() {
            drop_default_bridge(&meta, &mut recs)?;
        }
        add_predefined(cfg, &meta, &mut recs)?;
        follow_bip(cfg, &meta, &mut recs)?;
        follow_ipv6(cfg, &meta, &mut recs)?;
        if recs.iter().any(|r| r.enable_ipv6) {
            enable_ipv6_forwarding();
        }
        let mut nets = BTreeMap::new();
        for rec in recs {
            let (alloc, alloc6) = match drivers.get(&rec.driver) {
                Ok(d) => {
                    d.restore(&rec)?;
                    if d.has_addresses() {
                        (Some(allocator(&rec)?), allocator6(&rec)?)
                    } else {
                        (None, None)
                    }
                }
                Err(e) => {
                    tracing::warn!(network_id = %rec.id, driver = %rec.driver, error = %e, "network of a driver that is not here");
                    (None, None)
                }
            };
            let net = Net {
                rec,
                alloc,
                alloc6,
                active: BTreeMap::new(),
            };
            nets.insert(net.rec.id.clone(), net);
        }
        for d in drivers.all() {
            let live: Vec<NetworkRecord> = nets
                .values()
                .filter(|n| n.rec.driver == d.name())
                .map(|n| n.rec.clone())
                .collect();
            d.sweep(&live)?;
        }
        let overlay = drivers
            .get_overlay()
            .unwrap_or_else(|| Arc::new(overlay::OverlayDriver::default()));
        Ok(Networks {
            inner: Arc::new(Inner {
                overlay,
                services: Mutex::new(None),
                attacher: Mutex::new(None),
                vip_rules: Mutex::new(None),
                meta,
                events,
                pools: cfg.pools.clone(),
                pools6: cfg.pools6.clone(),
                drivers,
                state: Mutex::new(State {
                    nets,
                    dns: HashMap::new(),
                }),
                sync_lock: Mutex::new(()),
                default_network: if cfg.default_bridge() {
                    "bridge"
                } else {
                    NO_BRIDGE
                },
            }),
        })
    }

    /// The network of containers created without one (`bridge`, or `none` under
    /// `--bridge none`).
    pub fn default_network(&self) -> &'static str {
        self.inner.default_network
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a network by full id, name, or unique id prefix, like Docker.
    pub fn find(&self, key: &str) -> Result<NetworkRecord> {
        let st = self.state();
        find_in(&st, key).map(|n| n.rec.clone())
    }

    pub fn all(&self) -> Vec<NetworkRecord> {
        self.state().nets.values().map(|n| n.rec.clone()).collect()
    }

    /// Has every driver program the rules of its networks and published ports.
    pub fn rebuild_rules(&self) -> Result<()> {
        let _g = self
            .inner
            .sync_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut by_driver: BTreeMap<String, Vec<NetworkRecord>> = BTreeMap::new();
        for n in self.state().nets.values() {
            by_driver
                .entry(n.rec.driver.clone())
                .or_default()
                .push(n.rec.clone());
        }
        for d in self.inner.drivers.all() {
            d.sync(
                by_driver
                    .get(d.name())
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}

/// The predefined networks (`bridge`, `host`, `none`) a data root does not have yet.
fn add_predefined(
    cfg: &NetConfig,
    meta: &MetaStore,
    recs: &mut Vec<NetworkRecord>,
) -> anyhow::Result<()> {
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        if recs.iter().any(|r| r.name == name) || (name == "bridge" && !cfg.default_bridge()) {
            continue;
        }
        let mut rec = NetworkRecord {
            id: new_id(),
            name: name.into(),
            driver: driver.into(),
            created: now(),
            ..Default::default()
        };
        if name == "bridge" {
            rec.bridge = cfg.bridge.clone();
            rec.options = bridge::default_bridge_options(&cfg.bridge);
            let mut nl = Netlink::open()?;
            let (subnet, gw) = bridge::default_bridge_subnet(cfg, recs, &mut nl)?;
            rec.subnet = subnet.to_string();
            rec.gateway = gw.to_string();
        }
        put_record(meta, &rec)?;
        recs.push(rec);
    }
    Ok(())
}

/// `--bridge none` on a data root that had the default bridge: its record goes (as with
/// dockerd, containers that asked for `bridge` by name then fail to start), and so does
/// its device when it is the one berthd names by default.
fn drop_default_bridge(meta: &MetaStore, recs: &mut Vec<NetworkRecord>) -> anyhow::Result<()> {
    let Some(at) = recs.iter().position(|r| r.name == "bridge") else {
        return Ok(());
    };
    let rec = recs.remove(at);
    tracing::info!(device = %rec.bridge, "--bridge none: removing the default bridge network");
    meta.delete(NETWORKS, &rec.id)?;
    if rec.bridge == bridge::DEFAULT_DEVICE {
        let mut nl = Netlink::open()?;
        if let Some(idx) = nl.link_index(&rec.bridge)? {
            nl.delete_link(idx)?;
        }
    }
    Ok(())
}

/// Refuses a data root with network records newer than this berthd writes.
fn check_record_versions(recs: &[NetworkRecord]) -> anyhow::Result<()> {
    match recs.iter().find(|r| r.version > NETWORK_RECORD_VERSION) {
        Some(r) => anyhow::bail!(
            "network {} was written in record format {}, newer than this berthd's {NETWORK_RECORD_VERSION}: use a newer berthd",
            r.name,
            r.version
        ),
        None => Ok(()),
    }
}

/// IPv6 on the default bridge follows `--ipv6` and `--fixed-cidr-v6` (and the IPv6 default
/// address pools) at every start, as dockerd's does.
fn follow_ipv6(
    cfg: &NetConfig,
    meta: &MetaStore,
    recs: &mut [NetworkRecord],
) -> anyhow::Result<()> {
    let taken: Vec<Subnet6> = recs
        .iter()
        .filter(|r| r.name != "bridge")
        .filter_map(|r| r.subnet6.parse().ok())
        .collect();
    let Some(r) = recs.iter_mut().find(|r| r.name == "bridge") else {
        return Ok(());
    };
    let before = (r.enable_ipv6, r.subnet6.clone(), r.gateway6.clone());
    if !cfg.ipv6 {
        r.enable_ipv6 = false;
        r.subnet6.clear();
        r.gateway6.clear();
        r.user_subnet6 = false;
    } else {
        let subnet = match &cfg.fixed_cidr_v6 {
            Some(c) => c
                .parse::<Subnet6>()
                .map_err(|e| anyhow::anyhow!("--fixed-cidr-v6: {e}"))?,
            // A subnet it has keeps serving its running containers.
            None => match r.subnet6.parse::<Subnet6>() {
                Ok(s) if !taken.iter().any(|t| t.overlaps(&s)) => s,
                _ => ipam6::choose_subnet(&cfg.pools6, &taken)
                    .map_err(|e| anyhow::anyhow!("IPv6 for the default bridge: {e}"))?,
            },
        };
        let alloc =
            ipam6::plan(subnet, "", "").map_err(|e| anyhow::anyhow!("--fixed-cidr-v6: {e}"))?;
        r.enable_ipv6 = true;
        r.subnet6 = subnet.to_string();
        r.gateway6 = alloc.gateway.to_string();
        r.user_subnet6 = cfg.fixed_cidr_v6.is_some();
    }
    if before != (r.enable_ipv6, r.subnet6.clone(), r.gateway6.clone()) {
        put_record(meta, r)?;
    }
    Ok(())
}

/// Routing between IPv6 networks and the host's links, as dockerd sets it when a network
/// has IPv6 on (per network namespace; accept_ra of links that want router advertisements
/// while forwarding is on is the host administrator's to set to 2).
pub(crate) fn enable_ipv6_forwarding() {
    write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
}

/// `--bip` changed since the record was written: follow the flag, like dockerd.
fn follow_bip(cfg: &NetConfig, meta: &MetaStore, recs: &mut [NetworkRecord]) -> anyhow::Result<()> {
    let Some(bip) = &cfg.bip else {
        return Ok(());
    };
    let (gw, subnet) = bridge::parse_bip(bip).map_err(anyhow::Error::msg)?;
    if let Some(r) = recs.iter_mut().find(|r| r.name == "bridge") {
        if r.subnet != subnet.to_string() || r.gateway != gw.to_string() {
            r.subnet = subnet.to_string();
            r.gateway = gw.to_string();
            put_record(meta, r)?;
        }
    }
    Ok(())
}

/// The address allocator of a recorded network, with its auxiliary addresses taken.
fn allocator(rec: &NetworkRecord) -> Result<Allocator> {
    let subnet: Subnet = rec
        .subnet
        .parse()
        .map_err(NetworkError::ipam(ErrorKind::Internal))?;
    let range = (!rec.ip_range.is_empty())
        .then(|| rec.ip_range.parse::<Subnet>())
        .transpose()
        .map_err(NetworkError::ipam(ErrorKind::Internal))?;
    let gw: Ipv4Addr = rec
        .gateway
        .parse()
        .map_err(|_| NetworkError::Internal(format!("bad gateway {}", rec.gateway)))?;
    let mut a = Allocator::new(subnet, range, gw);
    for ip in rec.aux_addresses.values() {
        if let Ok(ip) = ip.parse() {
            let _ = a.claim(ip);
        }
    }
    Ok(a)
}

/// The IPv6 address allocator of a recorded network with IPv6 on.
fn allocator6(rec: &NetworkRecord) -> Result<Option<Allocator6>> {
    if !rec.enable_ipv6 {
        return Ok(None);
    }
    let bad = |what: &str, v: &str| NetworkError::Internal(format!("bad recorded IPv6 {what} {v}"));
    let subnet: Subnet6 = rec
        .subnet6
        .parse()
        .map_err(|_| bad("subnet", &rec.subnet6))?;
    ipam6::plan(subnet, &rec.gateway6, &rec.ip_range6)
        .map(Some)
        .map_err(|_| bad("gateway or range", &rec.gateway6))
}

fn find_in<'a>(st: &'a State, key: &str) -> Result<&'a Net> {
    if let Some(n) = st.nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = st.nets.values().find(|n| n.rec.name == key) {
        return Ok(n);
    }
    let hits: Vec<&Net> = st
        .nets
        .values()
        .filter(|n| !key.is_empty() && n.rec.id.starts_with(key))
        .collect();
    match hits.len() {
        1 => Ok(hits[0]),
        0 => Err(NetworkError::NotFound(format!("network {key} not found"))),
        _ => Err(NetworkError::invalid(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            hits.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as berthd wrote it before records had versions and IPv6.
    const BEFORE_VERSIONS: &str = r#"{"id":"0123456789abcdef","name":"app","driver":"bridge","created":"2026-11-01T00:00:00Z","subnet":"10.88.0.0/24","gateway":"10.88.0.1","ip_range":"","user_subnet":true,"aux_addresses":{},"internal":false,"attachable":false,"options":{},"labels":{"a":"1"},"bridge":"berth-012345678"}"#;

    #[test]
    fn records_before_versions_read_back_unchanged() {
        let rec: NetworkRecord = serde_json::from_str(BEFORE_VERSIONS).expect("old record");
        assert_eq!(rec.version, 0);
        assert!(!rec.enable_ipv6 && rec.subnet6.is_empty());
        assert_eq!(
            (rec.subnet.as_str(), rec.user_subnet),
            ("10.88.0.0/24", true)
        );
        check_record_versions(std::slice::from_ref(&rec)).expect("version 0 is read");
        // Written again: the same fields, plus the version (no IPv6 fields while off).
        let mut again = serde_json::to_value(&rec).expect("serialise");
        let old: serde_json::Value = serde_json::from_str(BEFORE_VERSIONS).expect("json");
        assert_eq!(
            again.as_object_mut().and_then(|o| o.remove("version")),
            Some(0.into())
        );
        assert_eq!(again, old);
    }

    #[test]
    fn newer_records_stop_the_start() {
        let mut rec: NetworkRecord = serde_json::from_str(BEFORE_VERSIONS).expect("old record");
        rec.version = NETWORK_RECORD_VERSION + 1;
        let e = check_record_versions(&[rec]).expect_err("newer");
        assert!(e.to_string().contains("newer than this berthd's"), "{e}");
    }

    #[test]
    fn ipv6_fields_round_trip() {
        let mut rec: NetworkRecord = serde_json::from_str(BEFORE_VERSIONS).expect("old record");
        rec.enable_ipv6 = true;
        rec.subnet6 = "fd00:1::/64".into();
        rec.gateway6 = "fd00:1::1".into();
        let back: NetworkRecord =
            serde_json::from_value(serde_json::to_value(&rec).expect("json")).expect("read");
        assert!(back.enable_ipv6);
        assert_eq!(
            allocator6(&back)
                .expect("alloc")
                .map(|a| a.gateway.to_string())
                .as_deref(),
            Some("fd00:1::1")
        );
        assert!(
            allocator6(&serde_json::from_str(BEFORE_VERSIONS).expect("v4"))
                .expect("none")
                .is_none()
        );
    }
}
