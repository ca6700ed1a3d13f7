//! `network create`, `rm` and `prune`: the request checked, the name and subnet reserved
//! under the state lock, then the driver's data plane; all or nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::ErrorKind;

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{NetworkError, Result};
use super::ipam::{Allocator, Subnet};
use super::ipam6::{self, Allocator6, Pool6, Subnet6};
use super::netlink::Netlink;
use super::view::{label_filters, until_filter};
use super::{find_in, new_id, now, Created, Net, NetworkDriver, NetworkRecord, Networks, NETWORKS};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    #[serde(deserialize_with = "null_default")]
    name: String,
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_default")]
    internal: bool,
    #[serde(deserialize_with = "null_default")]
    attachable: bool,
    #[serde(deserialize_with = "null_default")]
    ingress: bool,
    #[serde(deserialize_with = "null_default")]
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
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_vec")]
    config: Vec<IpamConfig>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    #[serde(deserialize_with = "null_default")]
    subnet: String,
    #[serde(deserialize_with = "null_default")]
    gateway: String,
    #[serde(rename = "IPRange", deserialize_with = "null_default")]
    ip_range: String,
    #[serde(deserialize_with = "null_map")]
    auxiliary_addresses: BTreeMap<String, String>,
}

/// `null` is the field's zero value, as in dockerd (the SDKs send `"Driver": null`).
fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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

/// Any name with something in it, as dockerd takes them (spaces, `-x`, `a/b`: a network's
/// name is only ever looked up, never a path or device name); trimmed, with no control
/// characters and none of the quoting and separator characters of shell and nft scripts
/// (defence in depth: names never reach a script, and no user needs them).
fn check_name(name: &str) -> Result<String> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(NetworkError::invalid("network name is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(NetworkError::invalid(format!(
            "invalid network name {name:?}: control characters are not allowed"
        )));
    }
    if name.contains(['"', '\'', ';', '\\', '`', '$']) {
        return Err(NetworkError::invalid(format!(
            "invalid network name {name:?}: quotes, `;`, `\\`, backquotes and `$` are not allowed"
        )));
    }
    Ok(name)
}

/// The IPAM part of a create request, split by family: the default driver, at most one
/// IPv4 and one IPv6 config.
fn check_ipam(ipam: Option<IpamRequest>) -> Result<(IpamConfig, Option<IpamConfig>)> {
    let ipam = ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(NetworkError::NotFound(format!(
            "plugin \"{}\" not found",
            ipam.driver
        )));
    }
    let (v6, v4): (Vec<IpamConfig>, Vec<IpamConfig>) = ipam
        .config
        .into_iter()
        .partition(|c| ipam6::is_v6(&c.subnet) || ipam6::is_v6(&c.gateway));
    if v4.len() > 1 || v6.len() > 1 {
        return Err(NetworkError::invalid(
            "only one IPv4 and one IPv6 IPAM configuration per network are supported",
        ));
    }
    Ok((
        v4.into_iter().next().unwrap_or_default(),
        v6.into_iter().next(),
    ))
}

/// Whether the network gets IPv6: `EnableIPv6`, or an IPv6 IPAM config when it is not given.
fn wants_ipv6(enable: Option<bool>, v6: Option<&IpamConfig>) -> Result<bool> {
    match (enable, v6) {
        (Some(false), Some(c)) => Err(NetworkError::invalid(format!(
            "IPv6 subnet {} given for a network with IPv6 disabled (EnableIPv6 false)",
            c.subnet
        ))),
        (Some(on), _) => Ok(on),
        (None, v6) => Ok(v6.is_some()),
    }
}

/// The IPv6 subnet of a new network: the one asked for (checked against the other
/// networks' and the host's IPv6 routes), else one of the IPv6 pools, else a unique-local
/// /64. True when it was asked for.
fn choose_subnet6(
    want: &str,
    pools: &[Pool6],
    taken: &[Subnet6],
    host_routes: &[Subnet6],
) -> Result<(Subnet6, bool)> {
    let bad = |e: ipam6::Ipam6Error| NetworkError::invalid(e.to_string());
    let mut all = taken.to_vec();
    all.extend(host_routes.iter().copied());
    if want.is_empty() {
        let s = ipam6::choose_subnet(pools, &all)
            .map_err(|e| NetworkError::Forbidden(e.to_string()))?;
        return Ok((s, false));
    }
    let s: Subnet6 = want.parse().map_err(bad)?;
    if taken.iter().any(|t| t.overlaps(&s)) {
        return Err(NetworkError::Forbidden(format!(
            "Pool overlaps with other one on this address space: {s}"
        )));
    }
    if let Some(r) = host_routes.iter().find(|r| r.overlaps(&s)) {
        return Err(NetworkError::Forbidden(format!(
            "networks have overlapping IPv6: {s} overlaps the host route {r}"
        )));
    }
    Ok((s, true))
}

/// The subnet of a new network: the one asked for (checked against the other networks and
/// the host's routes), else the first free one of the pools. True when it was asked for.
fn choose_subnet(
    want: &str,
    pools: &[super::ipam::Pool],
    taken: &[Subnet],
    host_routes: &[Subnet],
) -> Result<(Subnet, bool)> {
    if want.is_empty() {
        let mut all = taken.to_vec();
        all.extend(host_routes.iter().copied());
        let s = pools.iter().find_map(|p| p.carve(&all)).ok_or_else(|| {
            NetworkError::Forbidden(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })?;
        return Ok((s, false));
    }
    let s: Subnet = want
        .parse()
        .map_err(NetworkError::ipam(ErrorKind::InvalidArgument))?;
    if taken.iter().any(|t| t.overlaps(&s)) {
        return Err(NetworkError::Forbidden(format!(
            "Pool overlaps with other one on this address space: {s}"
        )));
    }
    if let Some(r) = host_routes.iter().find(|r| r.overlaps(&s)) {
        return Err(NetworkError::Forbidden(format!(
            "networks have overlapping IPv4: {s} overlaps the host route {r}"
        )));
    }
    if s.prefix > 30 {
        return Err(NetworkError::invalid(format!(
            "subnet {s} is too small for a network"
        )));
    }
    Ok((s, true))
}

/// Gateway, range and auxiliary addresses of a new network in `subnet`, as an allocator.
fn plan_addresses(subnet: Subnet, want: &IpamConfig) -> Result<(Allocator, Option<Subnet>)> {
    let gateway = if want.gateway.is_empty() {
        subnet.first_host()
    } else {
        let g: Ipv4Addr = want.gateway.parse().map_err(|_| {
            NetworkError::invalid(format!("invalid gateway address {}", want.gateway))
        })?;
        if !subnet.contains(g) {
            return Err(NetworkError::invalid(format!(
                "gateway {g} is not in the subnet {subnet}"
            )));
        }
        g
    };
    let range = if want.ip_range.is_empty() {
        None
    } else {
        let r: Subnet = want
            .ip_range
            .parse()
            .map_err(NetworkError::ipam(ErrorKind::InvalidArgument))?;
        if !subnet.contains_subnet(&r) {
            return Err(NetworkError::invalid(format!(
                "ip-range {r} is not inside the subnet {subnet}"
            )));
        }
        Some(r)
    };
    let mut alloc = Allocator::new(subnet, range, gateway);
    for (k, ip) in &want.auxiliary_addresses {
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| NetworkError::invalid(format!("invalid auxiliary address {k}={ip}")))?;
        alloc
            .claim(ip)
            .map_err(NetworkError::ipam(ErrorKind::InvalidArgument))?;
    }
    Ok((alloc, range))
}

/// The host's IPv4 and IPv6 routes: a new network's subnets must not shadow one.
pub(super) struct HostRoutes {
    pub v4: Vec<Subnet>,
    pub v6: Vec<Subnet6>,
}

async fn host_routes() -> Result<HostRoutes> {
    tokio::task::spawn_blocking(|| {
        let mut nl = Netlink::open().map_err(|e| NetworkError::kernel("netlink", e))?;
        let v4 = nl
            .routes()
            .map_err(|e| NetworkError::kernel("list routes", e))?
            .into_iter()
            .map(|(ip, p, _)| Subnet::new(ip, p))
            .collect();
        let v6 = nl
            .routes6()
            .map_err(|e| NetworkError::kernel("list IPv6 routes", e))?
            .into_iter()
            .map(|(ip, p)| Subnet6::new(ip, p))
            .collect();
        Ok(HostRoutes { v4, v6 })
    })
    .await?
}

/// Gateway and range of a new network's IPv6 subnet, as an allocator.
fn plan_addresses6(subnet: Subnet6, want: &IpamConfig) -> Result<Allocator6> {
    if !want.auxiliary_addresses.is_empty() {
        return Err(NetworkError::invalid(
            "auxiliary addresses are not supported on IPv6 subnets",
        ));
    }
    ipam6::plan(subnet, &want.gateway, &want.ip_range)
        .map_err(|e| NetworkError::invalid(e.to_string()))
}

impl Networks {
    pub async fn create(&self, body: Value) -> Result<Value> {
        let req: CreateRequest = serde_json::from_value(body)
            .map_err(|e| NetworkError::invalid(format!("invalid network create request: {e}")))?;
        let name = check_name(&req.name)?;
        let driver_name = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        if driver_name == "overlay" {
            // Swarm networks are made by the managers (the network API sends them there).
            return Err(NetworkError::NeedsSwarm);
        }
        let driver = self.inner.drivers.get(driver_name)?.clone();
        if driver.singleton() {
            return Err(NetworkError::Forbidden(format!(
                "only one instance of \"{driver_name}\" network is allowed"
            )));
        }
        if req.config_only || req.ingress {
            return Err(NetworkError::invalid(
                "config-only and ingress networks are not supported",
            ));
        }
        let mut rec = NetworkRecord {
            id: new_id(),
            name,
            driver: driver.name().to_owned(),
            internal: req.internal,
            attachable: req.attachable,
            options: req.options,
            labels: req.labels,
            ..Default::default()
        };
        driver.prepare(&mut rec)?;
        let (want, want6) = check_ipam(req.ipam)?;
        if wants_ipv6(req.enable_ipv6, want6.as_ref())? {
            if !driver.has_addresses() {
                return Err(NetworkError::invalid(format!(
                    "IPv6 is not supported on {driver_name} networks"
                )));
            }
            rec.enable_ipv6 = true;
        }
        let routes = host_routes().await?;
        let rec = self.reserve(rec, &want, want6.unwrap_or_default(), &routes)?;
        if rec.enable_ipv6 {
            super::enable_ipv6_forwarding();
        }
        self.make(&driver, &rec).await?;
        self.inner.events.publish(
            "network",
            "create",
            &rec.id,
            BTreeMap::from([("name".into(), rec.name), ("type".into(), rec.driver)]),
        );
        Ok(json!({"Id": rec.id, "Warning": ""}))
    }

    /// Makes a new network visible at once, with its name, device and subnet, so that a
    /// concurrent create can't take them; `make` removes it again if the kernel work fails.
    fn reserve(
        &self,
        mut rec: NetworkRecord,
        want: &IpamConfig,
        want6: IpamConfig,
        host_routes: &HostRoutes,
    ) -> Result<NetworkRecord> {
        let mut st = self.state();
        if st.nets.values().any(|n| n.rec.name == rec.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        if !rec.bridge.is_empty() && st.nets.values().any(|n| n.rec.bridge == rec.bridge) {
            return Err(NetworkError::Conflict(format!(
                "bridge name {} is already used by another network",
                rec.bridge
            )));
        }
        let taken: Vec<Subnet> = st
            .nets
            .values()
            .filter_map(|n| n.rec.subnet.parse().ok())
            .collect();
        let (subnet, user_subnet) =
            choose_subnet(&want.subnet, &self.inner.pools, &taken, &host_routes.v4)?;
        let (alloc, range) = plan_addresses(subnet, want)?;
        let alloc6 = if rec.enable_ipv6 {
            let taken6: Vec<Subnet6> = st
                .nets
                .values()
                .filter_map(|n| n.rec.subnet6.parse().ok())
                .collect();
            let (subnet6, user_subnet6) =
                choose_subnet6(&want6.subnet, &self.inner.pools6, &taken6, &host_routes.v6)?;
            let a = plan_addresses6(subnet6, &want6)?;
            rec.subnet6 = subnet6.to_string();
            rec.gateway6 = a.gateway.to_string();
            if !want6.ip_range.is_empty() {
                rec.ip_range6 = a.range.to_string();
            }
            rec.user_subnet6 = user_subnet6;
            Some(a)
        } else {
            None
        };
        rec.created = now();
        rec.subnet = subnet.to_string();
        rec.gateway = alloc.gateway.to_string();
        rec.ip_range = range.map(|r| r.to_string()).unwrap_or_default();
        rec.user_subnet = user_subnet;
        rec.aux_addresses = want.auxiliary_addresses.clone();
        st.nets.insert(
            rec.id.clone(),
            Net {
                rec: rec.clone(),
                alloc: Some(alloc),
                alloc6,
                active: BTreeMap::new(),
            },
        );
        Ok(rec)
    }

    /// All or nothing: what a failed create made (the device, if the driver made it; its
    /// rules; the name and subnet reserved) is undone before the error goes back.
    async fn make(&self, driver: &Arc<dyn NetworkDriver>, rec: &NetworkRecord) -> Result<()> {
        let made = {
            let (d, r) = (driver.clone(), rec.clone());
            tokio::task::spawn_blocking(move || d.create(&r)).await
        };
        let created = match made.map_err(NetworkError::from).and_then(|r| r) {
            Ok(c) => c,
            Err(e) => {
                self.undo_create(driver, rec, Created::Existing).await;
                return Err(e);
            }
        };
        let stored = self
            .rebuild_rules()
            .and_then(|_| Ok(super::put_record(&self.inner.meta, rec)?));
        if let Err(e) = stored {
            self.undo_create(driver, rec, created).await;
            return Err(e);
        }
        Ok(())
    }

    async fn undo_create(
        &self,
        driver: &Arc<dyn NetworkDriver>,
        rec: &NetworkRecord,
        made: Created,
    ) {
        self.state().nets.remove(&rec.id);
        if made == Created::New {
            let (d, r) = (driver.clone(), rec.clone());
            let _ = tokio::task::spawn_blocking(move || d.delete(&r)).await;
        }
        if let Err(e) = self.rebuild_rules() {
            tracing::warn!(network_id = %rec.id, error = %e, "restore rules after a failed create");
        }
    }

    pub async fn remove(&self, key: &str) -> Result<()> {
        let rec = {
            let st = self.state();
            let n = find_in(&st, key)?;
            if n.rec.predefined() {
                return Err(NetworkError::Forbidden(format!(
                    "{} is a pre-defined network and cannot be removed",
                    n.rec.name
                )));
            }
            if n.rec.driver == "overlay" {
                return Err(NetworkError::Forbidden(format!(
                    "network {} is a swarm network: remove it on a manager",
                    n.rec.name
                )));
            }
            if !n.active.is_empty() {
                return Err(NetworkError::Forbidden(format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.rec.name, n.rec.id
                )));
            }
            n.rec.clone()
        };
        self.inner.meta.delete(NETWORKS, &rec.id)?;
        self.state().nets.remove(&rec.id);
        if let Ok(d) = self.inner.drivers.get(&rec.driver) {
            let (d, r) = (d.clone(), rec.clone());
            tokio::task::spawn_blocking(move || d.delete(&r)).await??;
        }
        self.rebuild_rules()?;
        self.inner.events.publish(
            "network",
            "destroy",
            &rec.id,
            BTreeMap::from([("name".into(), rec.name), ("type".into(), rec.driver)]),
        );
        Ok(())
    }

    pub async fn prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Value> {
        let victims: Vec<String> = {
            let st = self.state();
            st.nets
                .values()
                .filter(|n| !n.rec.predefined() && n.active.is_empty() && n.rec.driver != "overlay")
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ipam::Pool;

    #[test]
    fn names_are_checked_like_docker() {
        assert_eq!(check_name("  web-1 ").expect("valid"), "web-1");
        assert_eq!(
            check_name(" ").expect_err("empty").to_string(),
            "network name is empty"
        );
        for ok in ["my net", "-x", "a/b", "x:y"] {
            assert_eq!(check_name(ok).expect("valid"), ok);
        }
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn null_fields_are_absent() {
        let req: CreateRequest = serde_json::from_value(serde_json::json!({
            "Name": "n", "Driver": null, "Internal": null, "Attachable": null, "Ingress": null,
            "ConfigOnly": null, "EnableIPv6": null, "Options": null, "Labels": null,
            "IPAM": {"Driver": null, "Config": [{"Subnet": null, "Gateway": null,
                     "IPRange": null, "AuxiliaryAddresses": null}], "Options": null},
            "CheckDuplicate": null
        }))
        .expect("nulls parse");
        assert_eq!(req.name, "n");
        assert!(req.driver.is_empty() && !req.internal);
        let req: CreateRequest =
            serde_json::from_value(serde_json::json!({"Name": "n", "IPAM": null}))
                .expect("null IPAM parses");
        assert!(req.ipam.is_none());
    }

    #[test]
    fn ipam_takes_the_default_driver_and_one_config() {
        assert!(check_ipam(None).is_ok());
        let other = IpamRequest {
            driver: "dhcp".into(),
            config: Vec::new(),
        };
        assert!(
            matches!(check_ipam(Some(other)), Err(NetworkError::NotFound(m)) if m == "plugin \"dhcp\" not found")
        );
        let two = IpamRequest {
            driver: String::new(),
            config: vec![IpamConfig::default(), IpamConfig::default()],
        };
        assert!(matches!(
            check_ipam(Some(two)),
            Err(NetworkError::Invalid(_))
        ));
        let v6 = |s: &str| IpamConfig {
            subnet: s.into(),
            ..Default::default()
        };
        let dual = IpamRequest {
            driver: String::new(),
            config: vec![v6("2001:db8::/64"), v6("10.1.0.0/24")],
        };
        let (four, six) = check_ipam(Some(dual)).expect("one of each");
        assert_eq!(four.subnet, "10.1.0.0/24");
        assert_eq!(six.map(|c| c.subnet).as_deref(), Some("2001:db8::/64"));
        let two6 = IpamRequest {
            driver: String::new(),
            config: vec![v6("2001:db8::/64"), v6("2001:db8:1::/64")],
        };
        assert!(check_ipam(Some(two6)).is_err());
        assert!(wants_ipv6(None, Some(&v6("2001:db8::/64"))).expect("implied"));
        assert!(!wants_ipv6(None, None).expect("off"));
        assert!(wants_ipv6(Some(true), None).expect("on"));
        assert!(wants_ipv6(Some(false), Some(&v6("2001:db8::/64"))).is_err());
    }

    #[test]
    fn ipv6_subnets_avoid_other_networks_and_host_routes() {
        let taken: Vec<Subnet6> = vec!["2001:db8:1::/64".parse().expect("subnet")];
        let routes: Vec<Subnet6> = vec!["fd00::/64".parse().expect("route")];
        assert!(matches!(
            choose_subnet6("2001:db8:1::/80", &[], &taken, &routes),
            Err(NetworkError::Forbidden(m)) if m.starts_with("Pool overlaps")
        ));
        assert!(matches!(
            choose_subnet6("fd00::/64", &[], &taken, &routes),
            Err(NetworkError::Forbidden(m)) if m.contains("host route")
        ));
        assert!(matches!(
            choose_subnet6("zz::/64", &[], &taken, &routes),
            Err(NetworkError::Invalid(m)) if m.contains("invalid CIDR")
        ));
        let (s, user) = choose_subnet6("2001:db8:2::/64", &[], &taken, &routes).expect("free");
        assert_eq!((s.to_string().as_str(), user), ("2001:db8:2::/64", true));
        let pool = Pool6::parse("base=fd00::/56,size=64").expect("pool");
        let (s, user) = choose_subnet6("", &[pool], &taken, &routes).expect("from the pool");
        assert_eq!((s.to_string().as_str(), user), ("fd00:0:0:1::/64", false));
    }

    #[test]
    fn subnets_avoid_other_networks_and_host_routes() {
        let pools = vec![Pool::parse("base=10.50.0.0/16,size=24").expect("pool")];
        let taken = vec!["10.50.0.0/24".parse().expect("subnet")];
        let routes = vec!["10.50.1.0/24".parse().expect("subnet")];
        let (s, user) = choose_subnet("", &pools, &taken, &routes).expect("free subnet");
        assert_eq!((s.to_string().as_str(), user), ("10.50.2.0/24", false));
        assert!(matches!(
            choose_subnet("10.50.0.128/25", &pools, &taken, &routes),
            Err(NetworkError::Forbidden(m)) if m.starts_with("Pool overlaps")
        ));
        assert!(matches!(
            choose_subnet("10.50.1.0/24", &pools, &taken, &routes),
            Err(NetworkError::Forbidden(m)) if m.contains("overlaps the host route")
        ));
        assert!(matches!(
            choose_subnet("10.60.0.0/31", &pools, &taken, &routes),
            Err(NetworkError::Invalid(m)) if m.contains("too small")
        ));
        let (s, user) = choose_subnet("10.60.0.0/24", &pools, &taken, &routes).expect("free");
        assert_eq!((s.to_string().as_str(), user), ("10.60.0.0/24", true));
    }

    #[test]
    fn gateway_and_range_must_be_inside_the_subnet() {
        let s: Subnet = "10.70.0.0/24".parse().expect("subnet");
        let (a, r) = plan_addresses(s, &IpamConfig::default()).expect("defaults");
        assert_eq!((a.gateway.to_string().as_str(), r), ("10.70.0.1", None));
        let bad_gw = IpamConfig {
            gateway: "10.71.0.1".into(),
            ..Default::default()
        };
        assert!(plan_addresses(s, &bad_gw).is_err());
        let bad_range = IpamConfig {
            ip_range: "10.70.1.0/25".into(),
            ..Default::default()
        };
        assert!(plan_addresses(s, &bad_range).is_err());
        let aux = IpamConfig {
            auxiliary_addresses: BTreeMap::from([("h".into(), "10.70.0.9".into())]),
            ..Default::default()
        };
        let (mut a, _) = plan_addresses(s, &aux).expect("aux");
        assert!(
            a.claim("10.70.0.9".parse().expect("ip")).is_err(),
            "aux address taken"
        );
    }
}
