//! Local networks: the predefined `bridge`, `host` and `none`, user-defined bridge networks,
//! container endpoints (a veth whose container end is created directly in the container's
//! namespace), published ports and the embedded DNS server.
//!
//! ```text
//!  API ─► Networks ─┬─ records       metadata.redb table `networks` (one transaction each)
//!                   ├─ ipam.rs       subnets, pools, per-network allocators (in memory)
//!                   ├─ netlink.rs    bridges, veths, addresses, routes (rtnetlink, no `ip`)
//!                   ├─ nft.rs        the daemon's nftables table, rebuilt whole per change
//!                   ├─ ports.rs      host-port reservations and `-p` parsing
//!                   └─ dns.rs        127.0.0.11 inside each container on a user network
//! ```
//! State that lives only while containers run (addresses in use, endpoints, reservations,
//! DNS servers) is rebuilt from the container records at start, so nothing leaks across a
//! `kill -9` of berthd: links die with their namespace, the nft table is regenerated, and
//! bridges without a record are deleted.

pub mod api;
pub mod dns;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod ports;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::{ApiError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::store::{MetaStore, Table};
use ipam::{Allocator, Pool, Subnet};
use netlink::Netlink;

const NETWORKS: Table = Table::new("networks");
/// Prefix of the bridges of user-defined networks: `berth-` + 9 hex digits of the id.
const BRIDGE_PREFIX: &str = "berth-";

type Result<T> = std::result::Result<T, ApiError>;

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidArgument, m)
}
fn internal(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, m)
}

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

#[derive(Default)]
struct PerContainer {
    dnats: Vec<nft::Dnat>,
    reservations: Vec<ports::Reservation>,
    dns: Vec<tokio::task::JoinHandle<()>>,
}

struct State {
    nets: BTreeMap<String, Net>,
    ctrs: HashMap<String, PerContainer>,
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
    table: String,
    pools: Vec<Pool>,
    state: Mutex<State>,
    /// Serialises nft rebuilds so an older ruleset never replaces a newer one.
    nft_lock: Mutex<()>,
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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn write_sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!(path, error = %e, "set sysctl");
    }
}

impl Networks {
    /// Loads the networks, makes the predefined ones, and brings every bridge into the
    /// state its record describes (after a reboot or a crash). Containers re-register their
    /// endpoints afterwards (`restore_endpoints`), then `rebuild_rules` runs.
    pub fn open(cfg: &NetConfig, meta: Arc<MetaStore>, events: Events) -> anyhow::Result<Networks> {
        if !nft::valid_ifname(&cfg.bridge) {
            anyhow::bail!("invalid bridge name {:?}", cfg.bridge);
        }
        let table = if cfg.bridge == "berth0" {
            "berth".to_owned()
        } else {
            format!("berth_{}", cfg.bridge.replace(['-', '.'], "_"))
        };
        let mut recs: Vec<NetworkRecord> = meta
            .list::<NetworkRecord>(NETWORKS)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let mut nl = Netlink::open()?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
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
                rec.options = BTreeMap::from([
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
                    ("com.docker.network.bridge.name".into(), cfg.bridge.clone()),
                    ("com.docker.network.driver.mtu".into(), "1500".into()),
                ]);
                let (subnet, gw) = default_bridge_subnet(cfg, &recs, &mut nl)?;
                rec.subnet = subnet.to_string();
                rec.gateway = gw.to_string();
            }
            meta.put(NETWORKS, &rec.id, &rec)?;
            recs.push(rec);
        }
        // `--bip` changed since the record was written: follow the flag, like dockerd.
        if let Some(bip) = &cfg.bip {
            let (gw, subnet) = parse_bip(bip).map_err(anyhow::Error::msg)?;
            if let Some(r) = recs.iter_mut().find(|r| r.name == "bridge") {
                if r.subnet != subnet.to_string() || r.gateway != gw.to_string() {
                    r.subnet = subnet.to_string();
                    r.gateway = gw.to_string();
                    meta.put(NETWORKS, &r.id.clone(), r)?;
                }
            }
        }
        let mut nets = BTreeMap::new();
        let links = nl.links()?;
        for rec in recs {
            let mut alloc = None;
            if rec.driver == "bridge" {
                ensure_bridge(&mut nl, &rec)?;
                let subnet: Subnet = rec.subnet.parse().map_err(anyhow::Error::msg)?;
                let range = (!rec.ip_range.is_empty())
                    .then(|| rec.ip_range.parse::<Subnet>())
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let gw: Ipv4Addr = rec.gateway.parse()?;
                let mut a = Allocator::new(subnet, range, gw);
                for ip in rec.aux_addresses.values() {
                    if let Ok(ip) = ip.parse() {
                        let _ = a.claim(ip);
                    }
                }
                alloc = Some(a);
            }
            nets.insert(
                rec.id.clone(),
                Net {
                    rec,
                    alloc,
                    active: BTreeMap::new(),
                },
            );
        }
        // Bridges of networks that no longer exist (removed while berthd was down mid-way).
        for (idx, name) in links {
            if name.starts_with(BRIDGE_PREFIX)
                && name.len() == BRIDGE_PREFIX.len() + 9
                && !nets.values().any(|n| n.rec.bridge == name)
            {
                tracing::info!(bridge = %name, "removing a bridge no network owns");
                let _ = nl.delete_link(idx);
            }
        }
        Ok(Networks {
            inner: Arc::new(Inner {
                meta,
                events,
                table,
                pools: cfg.pools.clone(),
                state: Mutex::new(State {
                    nets,
                    ctrs: HashMap::new(),
                }),
                nft_lock: Mutex::new(()),
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

    /// Regenerates the nft table from the bridges and published ports.
    pub fn rebuild_rules(&self) -> Result<()> {
        let _g = self
            .inner
            .nft_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let script = {
            let st = self.state();
            let bridges: Vec<nft::BridgeRules> = st
                .nets
                .values()
                .filter(|n| n.rec.driver == "bridge")
                .filter_map(|n| {
                    Some(nft::BridgeRules {
                        ifname: n.rec.bridge.clone(),
                        subnet: n.rec.subnet.parse().ok()?,
                        internal: n.rec.internal,
                    })
                })
                .collect();
            let mut dnats: Vec<nft::Dnat> = st
                .ctrs
                .values()
                .flat_map(|c| c.dnats.iter().cloned())
                .collect();
            dnats.sort_by_key(|d| (d.host_port, d.proto));
            nft::render(&self.inner.table, &bridges, &dnats)
        };
        nft::apply(&script).map_err(internal)
    }

    // ---- network API ------------------------------------------------------------------

    pub async fn create(&self, body: Value) -> Result<Value> {
        let req: CreateRequest = serde_json::from_value(body)
            .map_err(|e| invalid(format!("invalid network create request: {e}")))?;
        let name = req.name.trim().to_owned();
        if name.is_empty() {
            return Err(invalid("network name is empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            || !name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_owned()
        } else {
            req.driver.clone()
        };
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    format!("only one instance of \"{driver}\" network is allowed"),
                ))
            }
            "overlay" => return Err(berth_api::swarm::not_a_manager()),
            other => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    format!("plugin \"{other}\" not found"),
                ))
            }
        }
        if req.enable_ipv6.unwrap_or(false) {
            return Err(invalid("IPv6 networks are not supported by this engine"));
        }
        if req.config_only || req.ingress {
            return Err(invalid(
                "config-only and ingress networks are not supported",
            ));
        }
        let id = new_id();
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b) => match netlink::ifname_problem(b) {
                Some(why) => {
                    return Err(invalid(format!(
                        "invalid bridge name {b:?} (com.docker.network.bridge.name): {why}; an interface name is 1 to 15 bytes without whitespace, '/', ':', '%' or quotes"
                    )))
                }
                None => b.clone(),
            },
            None => format!("{BRIDGE_PREFIX}{}", &id[..9]),
        };
        let mtu = match req.options.get("com.docker.network.driver.mtu") {
            Some(m) => Some(
                m.parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| invalid(format!("invalid MTU {m:?}")))?,
            ),
            None => None,
        };
        let ipam = req.ipam.unwrap_or_default();
        if !matches!(ipam.driver.as_str(), "" | "default") {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("plugin \"{}\" not found", ipam.driver),
            ));
        }
        if ipam.config.len() > 1 {
            return Err(invalid(
                "only one IPv4 IPAM configuration per network is supported",
            ));
        }
        let want = ipam.config.into_iter().next().unwrap_or_default();
        // Reserve the name and the subnet under the lock, then do the kernel work.
        let mut nl = tokio::task::spawn_blocking(Netlink::open)
            .await
            .map_err(ApiError::internal_from)?
            .map_err(|e| internal(format!("netlink: {e}")).with_source(e))?;
        let host_routes: Vec<Subnet> = nl
            .routes()
            .map_err(|e| internal(format!("list routes: {e}")).with_source(e))?
            .into_iter()
            .map(|(ip, p, _)| Subnet::new(ip, p))
            .collect();
        let rec = {
            let mut st = self.state();
            if st.nets.values().any(|n| n.rec.name == name) {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("network with name {name} already exists"),
                ));
            }
            if st.nets.values().any(|n| n.rec.bridge == bridge) {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("bridge name {bridge} is already used by another network"),
                ));
            }
            let taken: Vec<Subnet> = st
                .nets
                .values()
                .filter_map(|n| n.rec.subnet.parse().ok())
                .collect();
            let (subnet, user_subnet) = if want.subnet.is_empty() {
                let mut all = taken.clone();
                all.extend(host_routes.iter().copied());
                let s = self
                    .inner
                    .pools
                    .iter()
                    .find_map(|p| p.carve(&all))
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorKind::Forbidden,
                            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
                        )
                    })?;
                (s, false)
            } else {
                let s: Subnet = want.subnet.parse().map_err(invalid)?;
                if want.subnet.contains(':') {
                    return Err(invalid("IPv6 subnets are not supported by this engine"));
                }
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(ApiError::new(
                        ErrorKind::Forbidden,
                        format!("Pool overlaps with other one on this address space: {s}"),
                    ));
                }
                if let Some(r) = host_routes.iter().find(|r| r.overlaps(&s)) {
                    return Err(ApiError::new(
                        ErrorKind::Forbidden,
                        format!("networks have overlapping IPv4: {s} overlaps the host route {r}"),
                    ));
                }
                if s.prefix > 30 {
                    return Err(invalid(format!("subnet {s} is too small for a network")));
                }
                (s, true)
            };
            let gateway = if want.gateway.is_empty() {
                subnet.first_host()
            } else {
                let g: Ipv4Addr = want
                    .gateway
                    .parse()
                    .map_err(|_| invalid(format!("invalid gateway address {}", want.gateway)))?;
                if !subnet.contains(g) {
                    return Err(invalid(format!(
                        "gateway {g} is not in the subnet {subnet}"
                    )));
                }
                g
            };
            let range = if want.ip_range.is_empty() {
                None
            } else {
                let r: Subnet = want.ip_range.parse().map_err(invalid)?;
                if !subnet.contains_subnet(&r) {
                    return Err(invalid(format!(
                        "ip-range {r} is not inside the subnet {subnet}"
                    )));
                }
                Some(r)
            };
            let mut alloc = Allocator::new(subnet, range, gateway);
            for (k, ip) in &want.auxiliary_addresses {
                let ip: Ipv4Addr = ip
                    .parse()
                    .map_err(|_| invalid(format!("invalid auxiliary address {k}={ip}")))?;
                alloc.claim(ip).map_err(invalid)?;
            }
            let rec = NetworkRecord {
                id: id.clone(),
                name: name.clone(),
                driver: driver.clone(),
                created: now(),
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
                ip_range: range.map(|r| r.to_string()).unwrap_or_default(),
                user_subnet,
                aux_addresses: want.auxiliary_addresses.clone(),
                internal: req.internal,
                attachable: req.attachable,
                options: req.options.clone(),
                labels: req.labels.clone(),
                bridge: bridge.clone(),
            };
            // Visible at once so a concurrent create can't take the name or subnet; removed
            // again if the kernel work fails.
            st.nets.insert(
                id.clone(),
                Net {
                    rec: rec.clone(),
                    alloc: Some(alloc),
                    active: BTreeMap::new(),
                },
            );
            rec
        };
        // All or nothing: what a failed create made (the bridge, if it was ours; its rules;
        // the name and subnet reserved above) is undone before the error goes back.
        let bridge_made = {
            let rec = rec.clone();
            tokio::task::spawn_blocking(move || make_bridge(&mut nl, &rec, mtu))
                .await
                .map_err(ApiError::internal_from)
                .and_then(|r| r)
        };
        let made = bridge_made
            .clone()
            .and_then(|_| self.rebuild_rules())
            .and_then(|_| {
                self.inner
                    .meta
                    .put(NETWORKS, &id, &rec)
                    .map_err(ApiError::internal_from)
            });
        if let Err(e) = made {
            self.state().nets.remove(&id);
            if let Ok(Made::Created(idx)) = bridge_made {
                let _ = tokio::task::spawn_blocking(move || delete_link(idx)).await;
            }
            if let Err(e) = self.rebuild_rules() {
                tracing::warn!(network_id = %id, error = %e.message, "restore rules after a failed create");
            }
            return Err(e);
        }
        self.inner.events.publish(
            "network",
            "create",
            &id,
            BTreeMap::from([("name".into(), name), ("type".into(), driver)]),
        );
        Ok(json!({"Id": id, "Warning": ""}))
    }

    pub async fn remove(&self, key: &str) -> Result<()> {
        let rec = {
            let st = self.state();
            let n = find_in(&st, key)?;
            if n.rec.predefined() {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "{} is a pre-defined network and cannot be removed",
                        n.rec.name
                    ),
                ));
            }
            if !n.active.is_empty() {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "error while removing network: network {} id {} has active endpoints",
                        n.rec.name, n.rec.id
                    ),
                ));
            }
            n.rec.clone()
        };
        self.inner
            .meta
            .delete(NETWORKS, &rec.id)
            .map_err(ApiError::internal_from)?;
        self.state().nets.remove(&rec.id);
        let b = rec.bridge.clone();
        tokio::task::spawn_blocking(move || delete_bridge(&b))
            .await
            .map_err(ApiError::internal_from)??;
        self.rebuild_rules()?;
        self.inner.events.publish(
            "network",
            "destroy",
            &rec.id,
            BTreeMap::from([("name".into(), rec.name), ("type".into(), rec.driver)]),
        );
        Ok(())
    }

    pub fn inspect(&self, key: &str) -> Result<Value> {
        let st = self.state();
        Ok(view(find_in(&st, key)?))
    }

    pub fn list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<Value>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "driver" | "id" | "label" | "name" | "scope" | "type" | "dangling"
            ) {
                return Err(invalid(format!("invalid filter '{k}'")));
            }
        }
        let st = self.state();
        let mut out: Vec<Value> = st
            .nets
            .values()
            .filter(|n| matches_filters(n, filters))
            .map(view)
            .collect();
        out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        Ok(out)
    }

    pub async fn prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Value> {
        let victims: Vec<String> = {
            let st = self.state();
            st.nets
                .values()
                .filter(|n| !n.rec.predefined() && n.active.is_empty())
                .filter(|n| label_filters(&n.rec, filters))
                .filter(|n| until_filter(&n.rec, filters))
                .map(|n| n.rec.id.clone())
                .collect()
        };
        let mut deleted = Vec::new();
        for id in victims {
            let name = self.find(&id).map(|r| r.name).unwrap_or_default();
            if self.remove(&id).await.is_ok() {
                deleted.push(name);
            }
        }
        Ok(json!({
            "NetworksDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }
        }))
    }

    // ---- endpoints --------------------------------------------------------------------

    /// Checks an endpoint request at create/connect time and fills in the network id.
    pub fn check_endpoint(&self, net_key: &str, ep: &mut Endpoint) -> Result<NetworkRecord> {
        let rec = self.find(net_key)?;
        let user_defined = !rec.predefined();
        if !ep.aliases.is_empty() && !user_defined {
            return Err(invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        if !ep.ipv4_request.is_empty() {
            if !rec.user_subnet {
                return Err(invalid(
                    "user specified IP address is supported only when connecting to networks with user configured subnets",
                ));
            }
            let ip: Ipv4Addr = ep
                .ipv4_request
                .parse()
                .map_err(|_| invalid(format!("invalid IPv4 address: {}", ep.ipv4_request)))?;
            let s: Subnet = rec.subnet.parse().map_err(invalid)?;
            if !s.contains(ip) {
                return Err(invalid(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
        }
        if !ep.mac_request.is_empty() {
            ipam::parse_mac(&ep.mac_request).map_err(invalid)?;
        }
        ep.network_id = rec.id.clone();
        Ok(rec)
    }

    /// Attaches a container's namespace to its networks: addresses, veths created inside
    /// the namespace, default route, DNS. `eps` is updated with what each endpoint got.
    /// On error nothing stays allocated; the links go with the namespace.
    pub async fn attach(
        &self,
        who: &Attachee<'_>,
        eps: &mut BTreeMap<String, Endpoint>,
        first_if: usize,
    ) -> Result<()> {
        if eps.is_empty() {
            return Ok(());
        }
        let mut order: Vec<String> = eps.keys().cloned().collect();
        order.sort_by_key(|n| n != who.primary);
        let mut plan = Vec::new();
        {
            let mut st = self.state();
            for (i, name) in order.iter().enumerate() {
                let ep = eps.get(name).cloned().unwrap_or_default();
                let r = (|| -> Result<PlannedLink> {
                    let net = st.nets.get_mut(&ep.network_id).ok_or_else(|| {
                        ApiError::new(ErrorKind::NotFound, format!("network {name} not found"))
                    })?;
                    let alloc = net
                        .alloc
                        .as_mut()
                        .ok_or_else(|| invalid(format!("network {name} has no addresses")))?;
                    let ip = if ep.ipv4_request.is_empty() {
                        alloc.allocate().map_err(internal)?
                    } else {
                        let ip: Ipv4Addr = ep.ipv4_request.parse().map_err(|_| {
                            invalid(format!("invalid IPv4 address: {}", ep.ipv4_request))
                        })?;
                        alloc
                            .claim(ip)
                            .map_err(|e| ApiError::new(ErrorKind::Forbidden, e))?;
                        ip
                    };
                    let mac = if ep.mac_request.is_empty() {
                        ipam::mac_for(ip)
                    } else {
                        ipam::parse_mac(&ep.mac_request).map_err(invalid)?
                    };
                    Ok(PlannedLink {
                        net_name: name.clone(),
                        net_id: net.rec.id.clone(),
                        bridge: net.rec.bridge.clone(),
                        ifname: format!("eth{}", first_if + i),
                        ip,
                        prefix: alloc.subnet.prefix,
                        gateway: alloc.gateway,
                        mac,
                        internal: net.rec.internal,
                        user_defined: !net.rec.predefined(),
                    })
                })();
                match r {
                    Ok(p) => plan.push(p),
                    Err(e) => {
                        release(&mut st, &plan);
                        return Err(e);
                    }
                }
            }
        }
        let want_dns = first_if == 0 && plan.iter().any(|p| p.user_defined);
        let default_gw = (first_if == 0)
            .then(|| plan.iter().find(|p| !p.internal).map(|p| p.gateway))
            .flatten();
        let netns = who.netns.to_owned();
        let links = plan.clone();
        let res = run_in_netns(netns, move |host, ctr| {
            configure_links(host, ctr, &links, default_gw)?;
            if want_dns {
                return dns::bind_here()
                    .map(Some)
                    .map_err(|e| format!("embedded DNS on 127.0.0.11:53: {e}"));
            }
            Ok(None)
        })
        .await;
        let socks = match res {
            Ok(s) => s,
            Err(e) => {
                release(&mut self.state(), &plan);
                return Err(internal(format!("attach to network: {e}")));
            }
        };
        let mut st = self.state();
        for p in &plan {
            let endpoint_id = new_id();
            if let Some(ep) = eps.get_mut(&p.net_name) {
                ep.endpoint_id = endpoint_id.clone();
                ep.ip = p.ip.to_string();
                ep.prefix = p.prefix;
                ep.gateway = p.gateway.to_string();
                ep.mac = ipam::format_mac(&p.mac);
                if let Some(net) = st.nets.get_mut(&p.net_id) {
                    net.active.insert(
                        who.id.to_owned(),
                        Active {
                            ctr_name: who.name.to_owned(),
                            aliases: ep.aliases.clone(),
                            ip: p.ip,
                            prefix: p.prefix,
                            mac: ep.mac.clone(),
                            endpoint_id,
                        },
                    );
                }
            }
        }
        if let Some(socks) = socks {
            let tasks = self.start_dns(socks, who.id, who.dns);
            st.ctrs.entry(who.id.to_owned()).or_default().dns = tasks;
        }
        drop(st);
        for p in &plan {
            self.inner.events.publish(
                "network",
                "connect",
                &p.net_id,
                BTreeMap::from([
                    ("container".into(), who.id.to_owned()),
                    ("name".into(), p.net_name.clone()),
                    ("type".into(), "bridge".into()),
                ]),
            );
        }
        Ok(())
    }

    fn start_dns(
        &self,
        socks: dns::Sockets,
        ctr_id: &str,
        dns_opt: &[String],
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let upstreams: Vec<SocketAddr> = if dns_opt.is_empty() {
            dns::upstreams_from(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        } else {
            dns_opt
                .iter()
                .filter_map(|d| d.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect()
        };
        let me = self.clone();
        let lookup: dns::Lookup = Arc::new(move |name: &str, asker: &str| me.resolve(name, asker));
        match dns::serve(socks, ctr_id.to_owned(), lookup, Arc::new(upstreams)) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(container_id = %ctr_id, error = %e, "embedded DNS");
                Vec::new()
            }
        }
    }

    /// A name as the container `asker` sees it: names, aliases and short ids of the
    /// containers on the user-defined networks it is attached to.
    fn resolve(&self, name: &str, asker: &str) -> Option<Vec<Ipv4Addr>> {
        let st = self.state();
        let mut ips = Vec::new();
        for net in st.nets.values() {
            if net.rec.predefined() || !net.active.contains_key(asker) {
                continue;
            }
            // `name.network` resolves too.
            let short = name
                .strip_suffix(&format!(".{}", net.rec.name.to_ascii_lowercase()))
                .unwrap_or(name);
            for (id, a) in &net.active {
                let hit = a.ctr_name.eq_ignore_ascii_case(short)
                    || a.aliases.iter().any(|al| al.eq_ignore_ascii_case(short))
                    || (short.len() == 12 && id.starts_with(short));
                if hit && !ips.contains(&a.ip) {
                    ips.push(a.ip);
                }
            }
        }
        (!ips.is_empty()).then_some(ips)
    }

    /// Re-registers the endpoints of a container that kept running while berthd was down:
    /// its addresses are claimed again and its DNS server reopened in its namespace.
    pub async fn restore(&self, who: &Attachee<'_>, eps: &BTreeMap<String, Endpoint>) {
        let mut user_defined = false;
        {
            let mut st = self.state();
            for (name, ep) in eps {
                let Ok(ip) = ep.ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                let Some(net) = st.nets.get_mut(&ep.network_id) else {
                    tracing::warn!(container_id = %who.id, network = %name, "endpoint of a network that is gone");
                    continue;
                };
                if let Some(a) = net.alloc.as_mut() {
                    let _ = a.claim(ip);
                }
                user_defined |= !net.rec.predefined();
                net.active.insert(
                    who.id.to_owned(),
                    Active {
                        ctr_name: who.name.to_owned(),
                        aliases: ep.aliases.clone(),
                        ip,
                        prefix: ep.prefix,
                        mac: ep.mac.clone(),
                        endpoint_id: ep.endpoint_id.clone(),
                    },
                );
            }
        }
        if user_defined {
            let res = run_in_netns(who.netns.to_owned(), |_, _| {
                dns::bind_here().map_err(|e| e.to_string())
            })
            .await;
            match res {
                Ok(socks) => {
                    let tasks = self.start_dns(socks, who.id, who.dns);
                    self.state().ctrs.entry(who.id.to_owned()).or_default().dns = tasks;
                }
                Err(e) => {
                    tracing::warn!(container_id = %who.id, error = %e, "reopen embedded DNS")
                }
            }
        }
    }

    /// Publishes ports for a container whose primary address is `ip`: reserves the host
    /// ports (a port in use is an error before the container starts) and installs the
    /// DNAT rules. Returns what was published.
    pub fn publish(
        &self,
        ctr_id: &str,
        ctr_name: &str,
        ip: Ipv4Addr,
        wanted: &[ports::Binding],
    ) -> Result<Vec<PortMapping>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut reservations = Vec::new();
        let mut mappings = Vec::new();
        let mut dnats = Vec::new();
        for b in wanted {
            let r = ports::reserve(b).map_err(|e| {
                internal(format!(
                    "driver failed programming external connectivity on endpoint {ctr_name} ({ctr_id}): {e}"
                ))
            })?;
            mappings.push(PortMapping {
                proto: b.proto.to_owned(),
                ctr_port: b.ctr_port,
                host_ip: b
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                host_port: r.port,
            });
            dnats.push(nft::Dnat {
                proto: b.proto,
                host_ip: b.host_ip.filter(|i| !i.is_unspecified()),
                host_port: r.port,
                ctr_ip: ip,
                ctr_port: b.ctr_port,
            });
            reservations.push(r);
        }
        {
            let mut st = self.state();
            let pc = st.ctrs.entry(ctr_id.to_owned()).or_default();
            pc.dnats = dnats;
            pc.reservations = reservations;
        }
        if let Err(e) = self.rebuild_rules() {
            let mut st = self.state();
            if let Some(pc) = st.ctrs.get_mut(ctr_id) {
                pc.dnats.clear();
                pc.reservations.clear();
            }
            return Err(e);
        }
        Ok(mappings)
    }

    /// Re-publishes the recorded ports of a container that kept running across a restart.
    pub fn restore_ports(&self, ctr_id: &str, ip: Ipv4Addr, maps: &[PortMapping]) {
        let mut st = self.state();
        let pc = st.ctrs.entry(ctr_id.to_owned()).or_default();
        for m in maps {
            let proto = if m.proto == "udp" { "udp" } else { "tcp" };
            let host_ip = m.host_ip.parse::<Ipv4Addr>().ok();
            let b = ports::Binding {
                proto,
                ctr_port: m.ctr_port,
                host_ip,
                host_port: Some((m.host_port, m.host_port)),
            };
            match ports::reserve(&b) {
                Ok(r) => pc.reservations.push(r),
                Err(e) => {
                    tracing::warn!(container_id = %ctr_id, error = %e, "re-reserve published port")
                }
            }
            pc.dnats.push(nft::Dnat {
                proto,
                host_ip: host_ip.filter(|i| !i.is_unspecified()),
                host_port: m.host_port,
                ctr_ip: ip,
                ctr_port: m.ctr_port,
            });
        }
    }

    /// Forgets everything a container held: addresses, endpoints, ports, DNS. Its links
    /// go when its namespace is removed.
    pub fn detach(&self, ctr_id: &str) {
        let (had_ports, events) = {
            let mut st = self.state();
            let mut events = Vec::new();
            for net in st.nets.values_mut() {
                if let Some(a) = net.active.remove(ctr_id) {
                    if let Some(al) = net.alloc.as_mut() {
                        al.release(a.ip);
                    }
                    events.push((net.rec.id.clone(), net.rec.name.clone()));
                }
            }
            let had_ports = match st.ctrs.remove(ctr_id) {
                Some(pc) => {
                    for t in pc.dns {
                        t.abort();
                    }
                    !pc.dnats.is_empty()
                }
                None => false,
            };
            (had_ports, events)
        };
        if had_ports {
            if let Err(e) = self.rebuild_rules() {
                tracing::warn!(container_id = %ctr_id, error = %e.message, "remove port rules");
            }
        }
        for (id, name) in events {
            self.inner.events.publish(
                "network",
                "disconnect",
                &id,
                BTreeMap::from([
                    ("container".into(), ctr_id.to_owned()),
                    ("name".into(), name),
                    ("type".into(), "bridge".into()),
                ]),
            );
        }
    }

    /// Removes one endpoint of a running container (`network disconnect`).
    pub async fn detach_one(&self, ctr_id: &str, netns: &Path, ep: &Endpoint) -> Result<()> {
        let ip: Option<Ipv4Addr> = ep.ip.parse().ok();
        let netns = netns.to_owned();
        let ip_str = ep.ip.clone();
        run_in_netns(netns, move |_, ctr| {
            // The interface holding this endpoint's address.
            for (idx, _) in ctr.links().map_err(|e| e.to_string())? {
                let addrs = ctr.addresses(idx).map_err(|e| e.to_string())?;
                if addrs.iter().any(|(a, _)| a.to_string() == ip_str) {
                    return ctr.delete_link(idx).map_err(|e| e.to_string());
                }
            }
            Ok(())
        })
        .await
        .map_err(internal)?;
        let mut st = self.state();
        if let Some(net) = st.nets.get_mut(&ep.network_id) {
            net.active.remove(ctr_id);
            if let (Some(a), Some(ip)) = (net.alloc.as_mut(), ip) {
                a.release(ip);
            }
        }
        Ok(())
    }

    /// How many interfaces (other than lo) a namespace has: the next one is `eth<N>`.
    pub async fn interface_count(&self, netns: &Path) -> usize {
        run_in_netns(netns.to_owned(), |_, ctr| {
            Ok(ctr
                .links()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|(_, n)| n.starts_with("eth"))
                .count())
        })
        .await
        .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct PlannedLink {
    net_name: String,
    net_id: String,
    bridge: String,
    ifname: String,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    mac: [u8; 6],
    internal: bool,
    user_defined: bool,
}

fn release(st: &mut State, plan: &[PlannedLink]) {
    for p in plan {
        if let Some(a) = st.nets.get_mut(&p.net_id).and_then(|n| n.alloc.as_mut()) {
            a.release(p.ip);
        }
    }
}

fn configure_links(
    host: &mut Netlink,
    ctr: &mut Netlink,
    links: &[PlannedLink],
    default_gw: Option<Ipv4Addr>,
) -> std::result::Result<(), String> {
    let ns = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| format!("open own namespace: {e}"))?;
    for l in links {
        let master = host
            .link_index(&l.bridge)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("bridge {} of network {} is missing", l.bridge, l.net_name))?;
        let host_name = format!("vb{}", hex::encode(rand::random::<[u8; 4]>()));
        host.create_veth(&host_name, master, &l.ifname, l.mac, ns.as_raw_fd())
            .map_err(|e| format!("create veth {host_name}: {e}"))?;
        let idx = ctr
            .link_index(&l.ifname)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} did not appear in the container", l.ifname))?;
        ctr.add_address(idx, l.ip, l.prefix)
            .map_err(|e| format!("address {}: {e}", l.ip))?;
        ctr.set_up(idx)
            .map_err(|e| format!("{} up: {e}", l.ifname))?;
    }
    if let Some(gw) = default_gw {
        ctr.add_default_route(gw)
            .map_err(|e| format!("default route via {gw}: {e}"))?;
    }
    Ok(())
}

/// Runs `f` on a fresh thread that has entered the namespace at `netns`, with a netlink
/// socket of the daemon's namespace (`host`) and one of the container's (`ctr`).
async fn run_in_netns<T, F>(netns: PathBuf, f: F) -> std::result::Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&mut Netlink, &mut Netlink) -> std::result::Result<T, String> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let mut host = Netlink::open().map_err(|e| format!("netlink: {e}"))?;
            let file = std::fs::File::open(&netns)
                .map_err(|e| format!("open {}: {e}", netns.display()))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("enter {}: {e}", netns.display()))?;
            let mut ctr = Netlink::open().map_err(|e| format!("netlink: {e}"))?;
            f(&mut host, &mut ctr)
        })();
        let _ = tx.send(r);
    });
    rx.await
        .unwrap_or_else(|_| Err("network namespace thread panicked".into()))
}

fn ensure_bridge(nl: &mut Netlink, rec: &NetworkRecord) -> anyhow::Result<()> {
    let mtu = rec
        .options
        .get("com.docker.network.driver.mtu")
        .and_then(|m| m.parse().ok())
        .filter(|m| *m != 1500);
    make_bridge(nl, rec, mtu)
        .map(drop)
        .map_err(|e| anyhow::anyhow!(e.message))
}

/// Whether `make_bridge` created the bridge (its index) or found it there.
#[derive(Debug, Clone, Copy)]
enum Made {
    Created(u32),
    Existing,
}

/// Creates the bridge if missing, gives it the gateway address, brings it up. A bridge it
/// created is deleted again if a later step fails; an interface of that name that is not a
/// bridge is refused (dockerd: "existing interface … is not a bridge").
fn make_bridge(nl: &mut Netlink, rec: &NetworkRecord, mtu: Option<u32>) -> Result<Made> {
    let subnet: Subnet = rec.subnet.parse().map_err(internal)?;
    let gw: Ipv4Addr = rec
        .gateway
        .parse()
        .map_err(|_| internal(format!("bad gateway {}", rec.gateway)))?;
    let (made, idx) = match nl.link(&rec.bridge) {
        Ok(Some((i, true))) => (Made::Existing, i),
        Ok(Some((_, false))) => {
            return Err(invalid(format!(
                "existing interface {} is not a bridge",
                rec.bridge
            )))
        }
        Ok(None) => {
            let i = nl.create_bridge(&rec.bridge, mtu).map_err(|e| {
                internal(format!("create bridge {}: {e}", rec.bridge)).with_source(e)
            })?;
            (Made::Created(i), i)
        }
        Err(e) => return Err(internal(format!("look up {}: {e}", rec.bridge)).with_source(e)),
    };
    let configured = configure_bridge(nl, idx, rec, gw, subnet);
    if configured.is_err() {
        if let Made::Created(i) = made {
            let _ = nl.delete_link(i);
        }
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
        .map_err(|e| internal(format!("address {gw} on {}: {e}", rec.bridge)).with_source(e))?;
    nl.set_up(idx)
        .map_err(|e| internal(format!("{} up: {e}", rec.bridge)).with_source(e))?;
    // Published ports reached from 127.0.0.1 are DNAT'ed out of this bridge.
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.bridge),
        "1",
    );
    Ok(())
}

fn delete_link(index: u32) -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")).with_source(e))?;
    nl.delete_link(index)
        .map_err(|e| internal(format!("delete link {index}: {e}")).with_source(e))
}

fn delete_bridge(name: &str) -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| internal(format!("netlink: {e}")).with_source(e))?;
    if let Some(i) = nl
        .link_index(name)
        .map_err(|e| internal(format!("look up {name}: {e}")).with_source(e))?
    {
        nl.delete_link(i)
            .map_err(|e| internal(format!("delete bridge {name}: {e}")).with_source(e))?;
    }
    Ok(())
}

/// `--bip 172.30.0.1/16`: the bridge's own address and, from it, the subnet.
fn parse_bip(bip: &str) -> std::result::Result<(Ipv4Addr, Subnet), String> {
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
fn default_bridge_subnet(
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
        0 => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("network {key} not found"),
        )),
        _ => Err(invalid(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            hits.len()
        ))),
    }
}

fn view(n: &Net) -> Value {
    let r = &n.rec;
    let config = if r.driver == "bridge" {
        let mut c = json!({"Subnet": r.subnet, "Gateway": r.gateway});
        if !r.ip_range.is_empty() {
            c["IPRange"] = json!(r.ip_range);
        }
        if !r.aux_addresses.is_empty() {
            c["AuxiliaryAddresses"] = json!(r.aux_addresses);
        }
        json!([c])
    } else {
        json!([])
    };
    let containers: serde_json::Map<String, Value> = n
        .active
        .iter()
        .map(|(id, a)| {
            (
                id.clone(),
                json!({
                    "Name": a.ctr_name, "EndpointID": a.endpoint_id, "MacAddress": a.mac,
                    "IPv4Address": format!("{}/{}", a.ip, a.prefix), "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": r.name, "Id": r.id, "Created": r.created, "Scope": "local", "Driver": r.driver,
        "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": r.internal, "Attachable": r.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": r.options, "Labels": r.labels,
    })
}

fn label_filters(r: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> bool {
    f.get("label").is_none_or(|ls| {
        ls.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
            None => r.labels.contains_key(l),
        })
    }) && f.get("label!").is_none_or(|ls| {
        !ls.iter().any(|l| match l.split_once('=') {
            Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
            None => r.labels.contains_key(l),
        })
    })
}

fn until_filter(r: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> bool {
    let Some(until) = f.get("until").and_then(|v| v.first()) else {
        return true;
    };
    let Ok(created) = chrono::DateTime::parse_from_rfc3339(&r.created) else {
        return true;
    };
    match parse_until(until) {
        Some(t) => created.timestamp() < t,
        None => true,
    }
}

/// `until=` as Docker takes it: unix seconds, RFC 3339, or a duration ago (`10m`, `24h`).
fn parse_until(v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return Some(secs as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(chrono::Utc::now().timestamp() - secs)
}

fn matches_filters(n: &Net, f: &HashMap<String, Vec<String>>) -> bool {
    let r = &n.rec;
    let any = |k: &str, p: &dyn Fn(&str) -> bool| f.get(k).is_none_or(|v| v.iter().any(|x| p(x)));
    any("driver", &|d| r.driver == d)
        && any("id", &|i| r.id.starts_with(i))
        && any("name", &|x| r.name.contains(x))
        && any("scope", &|s| s == "local")
        && any("type", &|t| match t {
            "custom" => !r.predefined(),
            "builtin" => r.predefined(),
            _ => false,
        })
        && any("dangling", &|d| match d {
            "true" | "1" => n.active.is_empty() && !r.predefined(),
            "false" | "0" => !n.active.is_empty() || r.predefined(),
            _ => true,
        })
        && label_filters(r, f)
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_only: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamRequest>,
    #[serde(deserialize_with = "null_map")]
    options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_map")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamRequest {
    driver: String,
    #[serde(deserialize_with = "null_vec")]
    config: Vec<IpamConfig>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    #[serde(deserialize_with = "null_map")]
    auxiliary_addresses: BTreeMap<String, String>,
}

fn null_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

fn null_vec<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
