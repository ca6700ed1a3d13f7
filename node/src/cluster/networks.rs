//! Swarm-scoped networks at the API edge: `network create -d overlay` on a manager becomes a
//! [`Network`] in the replicated store, and `network ls/inspect/rm` show and remove them in
//! Docker's JSON (`Scope: "swarm"`). The network API reaches this through
//! [`SwarmNetworks`], implemented by [`ClusterBackend`].
//!
//! ```text
//!  NetworkApi ──(driver overlay, or a swarm network's name/id)──► SwarmNetworks ──► Manager
//!  NetworkApi ──(everything else)──► Networks (local records)
//! ```

use std::collections::BTreeMap;

use async_trait::async_trait;
use berth_api::backend::Filters;
use berth_api::error::{ApiError, ApiResult, ErrorKind};
use berth_raft::manager::Manager;
use berth_raft::networks::{Network, NetworkSpec};
use berth_raft::state::{Op, State};
use berth_raft::tasks::TaskState;
use berth_raft::ClusterError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{api_error, ClusterBackend};
use crate::network::api::SwarmNetworks;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: String,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, like local networks.
fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(ApiError::invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(name.to_owned())
}

/// The spec of a `network create -d overlay` request.
fn parse_create(body: Value) -> ApiResult<NetworkSpec> {
    let req: CreateRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid(format!("invalid network create request: {e}")))?;
    let name = check_name(&req.name)?;
    if req.enable_ipv6.unwrap_or(false) {
        return Err(ApiError::invalid(
            "IPv6 is not supported on swarm (overlay) networks; local bridge networks take --ipv6",
        ));
    }
    let ipam = req.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(ApiError::not_found(format!(
            "plugin \"{}\" not found",
            ipam.driver
        )));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::invalid(
            "only one IPv4 IPAM configuration per network is supported",
        ));
    }
    let cfg = configs.into_iter().next().unwrap_or_default();
    if !cfg.ip_range.is_empty() {
        return Err(ApiError::invalid(
            "--ip-range is not supported on swarm networks",
        ));
    }
    if cfg.subnet.contains(':') {
        return Err(ApiError::invalid(
            "IPv6 subnets are not supported on swarm (overlay) networks; local bridge networks take them",
        ));
    }
    if !cfg.subnet.is_empty() {
        cfg.subnet
            .parse::<berth_raft::netalloc::Cidr>()
            .map_err(ApiError::invalid)?;
    }
    if !cfg.gateway.is_empty() && cfg.subnet.is_empty() {
        return Err(ApiError::invalid("a gateway needs a subnet (--subnet)"));
    }
    let mut options = req.options.unwrap_or_default();
    options.remove(berth_raft::networks::VXLANID_OPTION);
    // `--opt encrypted` (kept in the options, as Docker shows it): the network's traffic
    // between nodes goes through WireGuard tunnels whose addresses come from a pool the
    // network's own subnet must stay out of.
    if berth_raft::tunnels::overlaps_pool(&cfg.subnet) {
        let (pool, len) = berth_raft::tunnels::TUNNEL_POOL;
        return Err(ApiError::invalid(format!(
            "subnet {} overlaps {pool}/{len}, the pool of the nodes' tunnel addresses",
            cfg.subnet
        )));
    }
    Ok(NetworkSpec {
        name,
        labels: req.labels.unwrap_or_default(),
        driver: "overlay".into(),
        options,
        internal: req.internal,
        attachable: req.attachable,
        ingress: req.ingress,
        subnet: cfg.subnet,
        gateway: cfg.gateway,
    })
}

/// A 64-hex-digit id, like local networks (and Docker's).
fn new_network_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// `network create -d overlay`.
pub async fn create(m: &Manager, body: Value) -> ApiResult<Value> {
    let spec = parse_create(body)?;
    let name = spec.name.clone();
    let net = Network {
        id: new_network_id(),
        meta: Default::default(),
        spec,
        vni: 0,
        subnet: String::new(),
        gateway: String::new(),
        addresses: BTreeMap::new(),
        cursor: 0,
    };
    let id = net.id.clone();
    m.propose(Op::CreateNetwork(Box::new(net)))
        .await
        .map_err(|e| match e {
            ClusterError::AlreadyExists(_) => {
                ApiError::conflict(format!("network with name {name} already exists"))
            }
            ClusterError::FailedPrecondition(msg) => ApiError::new(ErrorKind::Forbidden, msg),
            e => api_error(e),
        })?;
    Ok(json!({ "Id": id, "Warning": "" }))
}

/// A swarm network by id, name or unique id prefix; None when there is none.
pub fn find(s: &State, key: &str) -> ApiResult<Option<Network>> {
    if let Some(n) = s.network_by_key(key) {
        return Ok(Some(n.clone()));
    }
    let hits: Vec<&Network> = s
        .networks
        .values()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        _ => Err(ApiError::invalid(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            hits.len()
        ))),
    }
}

/// The nodes with a live task on network `id`: Docker's `Peers` (name, data-path address).
fn peers(s: &State, id: &str) -> Vec<(String, String, String)> {
    let mut out: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for t in s.tasks.values() {
        if !t.networks.iter().any(|a| a.network_id == id) || t.status.state > TaskState::Running {
            continue;
        }
        if let Some(n) = s.nodes.get(&t.node_id) {
            out.insert(
                n.id.clone(),
                (n.id.clone(), n.description.hostname.clone(), n.addr.clone()),
            );
        }
    }
    out.into_values().collect()
}

/// One swarm network as `network inspect` shows it. `Peers` are shown on a node that has
/// an endpoint in it (`me`), as Docker does.
pub fn view(s: &State, n: &Network, me: &str) -> Value {
    let mut v = json!({
        "Name": n.spec.name, "Id": n.id, "Created": n.meta.created_at, "Scope": "swarm",
        "Driver": n.spec.driver, "EnableIPv4": true, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null,
                 "Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
        "Internal": n.spec.internal, "Attachable": n.spec.attachable, "Ingress": n.spec.ingress,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {},
        "Options": n.spec.options, "Labels": n.spec.labels,
    });
    let peers = peers(s, &n.id);
    if peers.iter().any(|(id, _, _)| id == me) {
        v["Peers"] = peers
            .into_iter()
            .map(|(_, name, ip)| json!({"Name": name, "IP": ip}))
            .collect();
    }
    v
}

/// A network as the swarm API shows it (a task's `NetworksAttachments[].Network`).
pub fn swarm_object(n: &Network) -> Value {
    let ipam = json!({
        "Driver": {"Name": "default"},
        "Configs": [{"Subnet": n.subnet, "Gateway": n.gateway}],
    });
    json!({
        "ID": n.id,
        "Version": {"Index": n.meta.version},
        "CreatedAt": n.meta.created_at,
        "UpdatedAt": n.meta.updated_at,
        "Spec": {
            "Name": n.spec.name, "Labels": n.spec.labels,
            "DriverConfiguration": {"Name": n.spec.driver},
            "IPAMOptions": {"Driver": {"Name": "default"}, "Configs": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
            "Internal": n.spec.internal, "Attachable": n.spec.attachable, "Ingress": n.spec.ingress,
            "Scope": "swarm",
        },
        "DriverState": {"Name": n.spec.driver, "Options": n.spec.options},
        "IPAMOptions": ipam,
    })
}

fn matches(n: &Network, f: &Filters) -> bool {
    use super::services::{any_match as any, label_match};
    any(f, "driver", &|d| n.spec.driver == d)
        && any(f, "id", &|i| n.id.starts_with(i))
        && any(f, "name", &|x| n.spec.name.contains(x))
        && any(f, "scope", &|x| x == "swarm")
        && any(f, "type", &|t| t == "custom")
        && any(f, "label", &|l| label_match(&n.spec.labels, l))
}

/// `network rm` of a swarm network.
pub async fn remove(m: &Manager, n: &Network) -> ApiResult<()> {
    m.propose(Op::RemoveNetwork { id: n.id.clone() })
        .await
        .map_err(|e| match e {
            ClusterError::FailedPrecondition(msg) => ApiError::new(ErrorKind::Forbidden, msg),
            e => api_error(e),
        })?;
    Ok(())
}

/// The manager, when this node is an active, unlocked manager; None otherwise (a worker
/// or a node outside a swarm has no swarm networks to show).
async fn manager_if_any(c: &ClusterBackend) -> Option<std::sync::Arc<Manager>> {
    let st = c.swarm.status();
    if !st.active || !st.manager || st.locked {
        return None;
    }
    c.swarm.manager().await.ok()
}

#[async_trait]
impl SwarmNetworks for ClusterBackend {
    async fn create(&self, body: Value) -> ApiResult<Option<Value>> {
        match manager_if_any(self).await {
            Some(m) => create(&m, body).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list(&self, filters: &Filters) -> ApiResult<Option<Vec<Value>>> {
        let Some(m) = manager_if_any(self).await else {
            return Ok(None);
        };
        let me = m.node_id.clone();
        Ok(Some(m.read(|s| {
            s.networks
                .values()
                .filter(|n| matches(n, filters))
                .map(|n| view(s, n, &me))
                .collect()
        })))
    }

    async fn inspect(&self, key: &str) -> ApiResult<Option<Value>> {
        let Some(m) = manager_if_any(self).await else {
            return Ok(None);
        };
        let me = m.node_id.clone();
        m.read(|s| Ok(find(s, key)?.map(|n| view(s, &n, &me))))
    }

    async fn remove(&self, key: &str) -> ApiResult<bool> {
        let Some(m) = manager_if_any(self).await else {
            return Ok(false);
        };
        match m.read(|s| find(s, key))? {
            Some(n) => remove(&m, &n).await.map(|_| true),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requests_are_checked() {
        let spec = parse_create(json!({
            "Name": "ov1", "Driver": "overlay", "Attachable": true,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.254"}]},
            "Options": {"com.docker.network.driver.overlay.vxlanid_list": "9"}, "Labels": null,
        }))
        .expect("valid");
        assert_eq!(spec.name, "ov1");
        assert!(spec.attachable);
        assert_eq!(
            (spec.subnet.as_str(), spec.gateway.as_str()),
            ("10.5.0.0/24", "10.5.0.254")
        );
        assert!(spec.options.is_empty(), "the VNI is ours to choose");
        for bad in [
            json!({"Name": "-x"}),
            json!({"Name": "a", "IPAM": {"Config": [{"Subnet": "10.0.0.0"}]}}),
            json!({"Name": "a", "IPAM": {"Config": [{"Gateway": "10.0.0.1"}]}}),
            json!({"Name": "a", "EnableIPv6": true}),
        ] {
            assert!(parse_create(bad.clone()).is_err(), "{bad}");
        }
        let spec = parse_create(json!({"Name": "a", "Options": {"encrypted": ""}}))
            .expect("encrypted overlay");
        assert_eq!(spec.options.get("encrypted").map(String::as_str), Some(""));
        let e =
            parse_create(json!({"Name": "a", "IPAM": {"Config": [{"Subnet": "198.18.5.0/24"}]}}))
                .expect_err("inside the tunnel pool");
        assert!(matches!(e.kind, ErrorKind::InvalidArgument), "{e:?}");
    }
}
