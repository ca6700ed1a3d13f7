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
//!                             ├─ ipam6.rs       the same for IPv6 (not wired in yet)
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
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_api::ErrorKind;

use serde::{Deserialize, Serialize};

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::store::{MetaStore, Table};
use bridge::BridgeDriver;
pub use driver::{Created, Drivers, Link, NetworkDriver, Sandbox};
pub use error::NetworkError;
use error::Result;
use ipam::{Allocator, Pool, Subnet};
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
    // While attached:
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
}

impl Endpoint {
    pub fn clear_runtime(&mut self) {
        self.endpoint_id.clear();
        self.ip.clear();
        self.prefix = 0;
        self.gateway.clear();
        self.mac.clear();
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
    mac: String,
    endpoint_id: String,
}

struct Net {
    rec: NetworkRecord,
    alloc: Option<Allocator>,
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
    drivers: Drivers,
    state: Mutex<State>,
    /// Serialises rule syncs so an older view never replaces a newer one.
    sync_lock: Mutex<()>,
    /// The overlay driver (also in `drivers`), for the cluster agent.
    overlay: Arc<overlay::OverlayDriver>,
    /// Service names on swarm networks (the cluster agent's).
    services: Mutex<Option<ServiceResolver>>,
    /// Addresses on attachable swarm networks for standalone containers (the agent's).
    attacher: Mutex<Option<swarm::SwarmAttacher>>,
}

pub struct NetConfig {
    pub bridge: String,
    pub bip: Option<String>,
    pub pools: Vec<Pool>,
}

impl NetConfig {
    pub fn from_daemon(cfg: &DaemonConfig) -> NetConfig {
        NetConfig {
            bridge: cfg.bridge.clone(),
            bip: cfg.bip.clone(),
            pools: if cfg.default_address_pools.is_empty() {
                Pool::defaults()
            } else {
                cfg.default_address_pools.clone()
            },
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
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        add_predefined(cfg, &meta, &mut recs)?;
        follow_bip(cfg, &meta, &mut recs)?;
        let mut nets = BTreeMap::new();
        for rec in recs {
            let alloc = match drivers.get(&rec.driver) {
                Ok(d) => {
                    d.restore(&rec)?;
                    d.has_addresses().then(|| allocator(&rec)).transpose()?
                }
                Err(e) => {
                    tracing::warn!(network_id = %rec.id, driver = %rec.driver, error = %e, "network of a driver that is not here");
                    None
                }
            };
            let net = Net {
                rec,
                alloc,
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
                meta,
                events,
                pools: cfg.pools.clone(),
                drivers,
                state: Mutex::new(State {
                    nets,
                    dns: HashMap::new(),
                }),
                sync_lock: Mutex::new(()),
            }),
        })
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
        if recs.iter().any(|r| r.name == name) {
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
        meta.put(NETWORKS, &rec.id, &rec)?;
        recs.push(rec);
    }
    Ok(())
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
            meta.put(NETWORKS, &r.id.clone(), r)?;
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
