//! The routing mesh and attachable overlays, control-plane half: the `ingress` network made
//! with the cluster, an address on it for every node (its ingress sandbox endpoint), the
//! published ports of services (ingress mode: every node; host mode: the task's node) with
//! Docker's conflict rules, and addresses for standalone containers on attachable overlays.
//!
//! ```text
//!  Op::Init (new cluster) ──► network "ingress" (Ingress: true, first subnet of the pools)
//!  nodes added / removed ──► holder "node:<node id>" on ingress, one address each
//!  PutService ──► ports resolved: conflicts refused, published 0 → 30000.. (ingress mode)
//!             ──► needs ingress: its tasks get an ingress address, the service a VIP there
//!  Op::AttachContainer ──► holder "attach:<node id>:<container id>" on an attachable overlay
//! ```
//! Like the rest of `State::apply`, all of it is deterministic: every manager allocates the
//! same for the same entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::networks::{template_networks, Network, NetworkSpec};
use crate::state::State;
use crate::tasks::Service;

/// The ingress network's name (Docker's).
pub const INGRESS_NAME: &str = "ingress";
/// Holder prefix of a node's ingress sandbox address.
pub const NODE_HOLDER: &str = "node:";
/// Holder prefix of a standalone container's address: `attach:<node id>:<container id>`.
pub const ATTACH_HOLDER: &str = "attach:";
/// Where ingress ports published without a number are taken from (Docker's range).
pub const DYNAMIC_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// One published port of a service (Docker's `PortConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    #[serde(default)]
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub target: u16,
    /// 0 only for host mode (a random port on the task's node).
    pub published: u16,
    /// `ingress` or `host`.
    pub mode: String,
}

impl PortConfig {
    pub fn ingress(&self) -> bool {
        self.mode != "host"
    }
}

/// The ports an `EndpointSpec` asks for (PublishMode defaults to ingress, as in Docker).
pub fn spec_ports(endpoint_spec: Option<&Value>) -> Vec<PortConfig> {
    endpoint_spec
        .and_then(|e| e.get("Ports"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let s = |k: &str, d: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .filter(|x| !x.is_empty())
                    .unwrap_or(d)
                    .to_owned()
            };
            Some(PortConfig {
                name: s("Name", ""),
                protocol: s("Protocol", "tcp"),
                target: p.get("TargetPort").and_then(Value::as_u64)? as u16,
                published: p.get("PublishedPort").and_then(Value::as_u64).unwrap_or(0) as u16,
                mode: s("PublishMode", "ingress"),
            })
        })
        .collect()
}

/// A service (or a task made from it) publishes a port through the routing mesh.
pub fn needs_ingress(endpoint_spec: Option<&Value>) -> bool {
    spec_ports(endpoint_spec).iter().any(PortConfig::ingress)
}

/// The ingress network's id in a cluster: fixed by the cluster's id, so every manager
/// makes the same one.
pub fn ingress_id(cluster_id: &str) -> String {
    hex::encode(Sha256::digest(format!("{cluster_id}/ingress").as_bytes()))
}

/// The node a `node:` or `attach:` holder belongs to.
pub fn holder_node(holder: &str) -> Option<&str> {
    if let Some(n) = holder.strip_prefix(NODE_HOLDER) {
        return Some(n);
    }
    holder.strip_prefix(ATTACH_HOLDER)?.split(':').next()
}

/// The holder of a standalone container's address.
pub fn attach_holder(node_id: &str, container_id: &str) -> String {
    format!("{ATTACH_HOLDER}{node_id}:{container_id}")
}

impl State {
    /// The ingress network, if there is one.
    pub fn ingress(&self) -> Option<&Network> {
        self.networks.values().find(|n| n.spec.ingress)
    }

    /// The networks a service's tasks are on: its own, and ingress when it publishes a port
    /// through the routing mesh.
    pub fn service_networks(&self, svc: &Service) -> Vec<String> {
        let mut ids: Vec<String> = template_networks(&svc.spec.task_template)
            .into_iter()
            .filter_map(|(t, _)| self.network_by_key(&t).map(|n| n.id.clone()))
            .collect();
        if needs_ingress(svc.spec.endpoint_spec.as_ref()) {
            if let Some(i) = self.ingress() {
                if !ids.contains(&i.id) {
                    ids.push(i.id.clone());
                }
            }
        }
        ids
    }

    /// Makes the ingress network of a new cluster.
    pub(crate) fn create_ingress(&mut self, cluster_id: &str, index: u64, at: &str) {
        if self.ingress().is_some() {
            return;
        }
        let n = Network {
            id: ingress_id(cluster_id),
            meta: Default::default(),
            spec: NetworkSpec {
                name: INGRESS_NAME.into(),
                driver: "overlay".into(),
                ingress: true,
                ..Default::default()
            },
            vni: 0,
            subnet: String::new(),
            gateway: String::new(),
            addresses: Default::default(),
            cursor: 0,
        };
        let _ = self.create_network(index, at, &n);
    }

    /// Every node holds one address on ingress (its sandbox endpoint); removed nodes none.
    pub(crate) fn sync_node_sandboxes(&mut self) {
        let nodes: Vec<String> = self.nodes.keys().cloned().collect();
        let Some(id) = self.ingress().map(|n| n.id.clone()) else {
            return;
        };
        let net = self.networks.get_mut(&id).expect("found just above");
        net.addresses.retain(|_, h| {
            h.strip_prefix(NODE_HOLDER)
                .is_none_or(|n| nodes.iter().any(|x| x == n))
        });
        for n in nodes {
            let holder = format!("{NODE_HOLDER}{n}");
            if !net.addresses.values().any(|h| *h == holder) {
                net.take(&holder);
            }
        }
    }

    /// The published ports of a service as they will be: checked against the other
    /// services (Docker's conflict rules and messages), ingress ports without a number given
    /// one from [`DYNAMIC_PORTS`] (the one it had, if it had one).
    pub(crate) fn resolve_ports(&self, svc: &Service) -> Result<Vec<PortConfig>, String> {
        let mut ports = spec_ports(svc.spec.endpoint_spec.as_ref());
        if ports.iter().any(PortConfig::ingress) && self.ingress().is_none() {
            return Err("service needs ingress network, but no ingress network is present".into());
        }
        let others: Vec<(&Service, &PortConfig)> = self
            .services
            .values()
            .filter(|o| o.id != svc.id)
            .flat_map(|o| o.ports.iter().map(move |p| (o, p)))
            .collect();
        let old = self.services.get(&svc.id).map(|s| s.ports.as_slice());
        for p in ports.iter_mut().filter(|p| p.ingress() && p.published == 0) {
            let had = old.into_iter().flatten().find(|o| {
                o.ingress() && o.target == p.target && o.protocol == p.protocol && o.published > 0
            });
            let taken = |n: u16| {
                others
                    .iter()
                    .any(|(_, o)| o.published == n && o.protocol == p.protocol)
            };
            p.published = match had.map(|h| h.published).filter(|n| !taken(*n)) {
                Some(n) => n,
                None => DYNAMIC_PORTS
                    .clone()
                    .find(|n| !taken(*n))
                    .ok_or("no published port left in the dynamic range")?,
            };
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in ports.iter().filter(|p| p.published > 0) {
            if !seen.insert((p.published, p.protocol.clone())) {
                return Err("EndpointSpec: duplicate published ports provided".into());
            }
            for (o, q) in &others {
                if q.published != p.published || q.protocol != p.protocol {
                    continue;
                }
                let how = match (p.ingress(), q.ingress()) {
                    (_, true) => "an ingress port",
                    (true, false) => "a host-published port",
                    (false, false) => continue,
                };
                return Err(format!(
                    "port '{}' is already in use by service '{}' ({}) as {how}",
                    p.published, o.spec.name, o.id
                ));
            }
        }
        Ok(ports)
    }

    /// Gives a standalone container on node `node_id` an address on an attachable network.
    pub(crate) fn attach_container(
        &mut self,
        network_id: &str,
        node_id: &str,
        container_id: &str,
    ) -> Result<(), String> {
        let holder = attach_holder(node_id, container_id);
        let net = self
            .networks
            .get_mut(network_id)
            .ok_or_else(|| format!("network {network_id} not found"))?;
        if !net.spec.attachable {
            return Err(format!("network {} not manually attachable", net.spec.name));
        }
        if net.addresses.values().any(|h| *h == holder) {
            return Ok(());
        }
        net.take(&holder).map(|_| ()).ok_or_else(|| {
            format!(
                "could not find an available IP address on network {}",
                net.spec.name
            )
        })
    }

    /// Gives back a standalone container's address.
    pub(crate) fn detach_container(&mut self, network_id: &str, node_id: &str, container_id: &str) {
        let holder = attach_holder(node_id, container_id);
        if let Some(n) = self.networks.get_mut(network_id) {
            n.release(&holder);
        }
    }

    /// The address (`10.0.0.5/24`) `holder` has on network `id`.
    pub fn address_of(&self, id: &str, holder: &str) -> Option<String> {
        let n = self.networks.get(id)?;
        let (ip, _) = n.addresses.iter().find(|(_, h)| *h == holder)?;
        Some(n.with_prefix(std::net::Ipv4Addr::from(*ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Meta;
    use crate::state::{Command, Op, Outcome};
    use crate::tasks::{ServiceSpec, TaskTemplate};
    use serde_json::json;

    fn apply(s: &mut State, index: u64, op: Op) -> Outcome {
        s.apply(
            index,
            &Command {
                at: "2026-01-01T00:00:00Z".into(),
                op,
            },
        )
    }

    fn service(id: &str, ports: Value) -> Service {
        Service {
            id: id.into(),
            meta: Meta::default(),
            spec: ServiceSpec {
                name: format!("svc-{id}"),
                task_template: TaskTemplate::default(),
                endpoint_spec: Some(json!({ "Ports": ports })),
                ..Default::default()
            },
            previous_spec: None,
            spec_version: 0,
            update_status: None,
            job_iteration: 0,
            virtual_ips: Vec::new(),
            ports: Vec::new(),
        }
    }

    fn put(s: &mut State, index: u64, svc: Service) -> Outcome {
        let version = s.services.get(&svc.id).map(|c| c.meta.version);
        apply(
            s,
            index,
            Op::PutService {
                version,
                service: Box::new(svc),
                new_spec: true,
            },
        )
    }

    fn with_ingress() -> State {
        let mut s = State::default();
        s.create_ingress("cluster1", 1, "now");
        s
    }

    #[test]
    fn ingress_is_made_once_and_every_node_gets_an_address() {
        let mut s = with_ingress();
        let i = s.ingress().expect("ingress").clone();
        assert_eq!(
            (i.spec.name.as_str(), i.subnet.as_str()),
            ("ingress", "10.0.0.0/24")
        );
        assert_eq!(i.id, ingress_id("cluster1"));
        for id in ["n1", "n2"] {
            let n = crate::objects::Node::joined(
                id.into(),
                crate::ca::Role::Worker,
                crate::objects::Availability::Active,
                Default::default(),
            );
            apply(
                &mut s,
                2,
                Op::PutNode {
                    version: None,
                    node: Box::new(n),
                },
            );
        }
        assert_eq!(
            s.address_of(&i.id, "node:n1").as_deref(),
            Some("10.0.0.2/24")
        );
        assert_eq!(
            s.address_of(&i.id, "node:n2").as_deref(),
            Some("10.0.0.3/24")
        );
        s.nodes.remove("n1");
        s.sync_node_sandboxes();
        assert_eq!(s.address_of(&i.id, "node:n1"), None);
        s.create_ingress("cluster1", 2, "now");
        assert_eq!(s.networks.len(), 1);
        assert_eq!(holder_node("attach:n2:abc"), Some("n2"));
        assert_eq!(holder_node("node:n2"), Some("n2"));
        assert_eq!(holder_node("task1"), None);
    }

    #[test]
    fn published_ports_conflict_like_docker_and_get_dynamic_numbers() {
        let mut s = with_ingress();
        let web = service("w", json!([{"TargetPort": 80, "PublishedPort": 8080}]));
        assert!(matches!(put(&mut s, 2, web), Outcome::Done { .. }));
        assert_eq!(s.services["w"].ports[0].mode, "ingress");
        assert_eq!(s.services["w"].virtual_ips.len(), 1, "a VIP on ingress");
        let clash = service("x", json!([{"TargetPort": 81, "PublishedPort": 8080}]));
        let o = put(&mut s, 3, clash);
        assert!(
            matches!(&o, Outcome::Refused { message } if message == "port '8080' is already in use by service 'svc-w' (w) as an ingress port"),
            "{o:?}"
        );
        let host = service(
            "h",
            json!([{"TargetPort": 80, "PublishedPort": 9090, "PublishMode": "host"}]),
        );
        assert!(matches!(put(&mut s, 4, host), Outcome::Done { .. }));
        let o = put(
            &mut s,
            5,
            service("y", json!([{"TargetPort": 1, "PublishedPort": 9090}])),
        );
        assert!(
            matches!(&o, Outcome::Refused { message } if message.ends_with("as a host-published port")),
            "{o:?}"
        );
        // Two host-mode services may share a port (the scheduler keeps them apart).
        let host2 = service(
            "h2",
            json!([{"TargetPort": 80, "PublishedPort": 9090, "PublishMode": "host"}]),
        );
        assert!(matches!(put(&mut s, 6, host2), Outcome::Done { .. }));
        let dynamic = service("d", json!([{"TargetPort": 80}]));
        assert!(matches!(
            put(&mut s, 7, dynamic.clone()),
            Outcome::Done { .. }
        ));
        assert_eq!(s.services["d"].ports[0].published, 30000);
        assert!(matches!(put(&mut s, 8, dynamic), Outcome::Done { .. }));
        assert_eq!(s.services["d"].ports[0].published, 30000, "kept on update");
        let dup = service(
            "z",
            json!([{"TargetPort": 80, "PublishedPort": 7000}, {"TargetPort": 81, "PublishedPort": 7000}]),
        );
        assert!(matches!(put(&mut s, 9, dup), Outcome::Refused { .. }));
        // Ingress in use: not removable.
        let id = s.ingress().expect("ingress").id.clone();
        let o = apply(&mut s, 10, Op::RemoveNetwork { id });
        assert!(
            matches!(&o, Outcome::Refused { message } if message.starts_with("ingress network cannot be removed because service")),
            "{o:?}"
        );
    }
}
