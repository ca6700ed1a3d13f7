//! Task containers on swarm networks: what the agent does with the networks the managers
//! send with its assignments (every endpoint of each network it has tasks on).
//!
//! ```text
//!  Assignments.networks ──update()──┬─► overlay data plane: one Plane per network (VNI, this
//!   (every answer, ≤ 4 s apart:     │     node's address, remote endpoints) → reconcile
//!    a periodic resync too)         ├─► local records of those networks (made / dropped)
//!                                   ├─► service names for the embedded DNS (running tasks only)
//!                                   └─► VIP load balancing: an nft table in each local task
//!                                         container's namespace (DNAT, numgen random)
//!  run_task ──endpoints()──► the container's endpoints: one per network, with the address
//!                            the leader allocated
//! ```
//! Everything is derived from committed state each time, never patched incrementally, so a
//! missed update, a restart of berthd or churn elsewhere converges on the next answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, RwLock};

use berth_overlay_net::lb::{self, Vip};
use berth_overlay_net::model::{mac_for, Peer, Plane, OVERLAY_MTU};
use berth_overlay_net::wireguard::ENCRYPTED_OVERLAY_MTU;
use berth_raft::rpc::NetworkPeers;
use berth_raft::tasks::Task;

use crate::container::Containers;
use crate::network::{Endpoint, NetworkRecord, Networks};

/// Names on one network: service name (and alias) → VIP or task addresses; `tasks.<name>`
/// → task addresses; and the VIPs to balance.
#[derive(Default)]
struct Names {
    names: HashMap<String, Vec<Ipv4Addr>>,
    vips: Vec<Vip>,
}

pub struct NetAttach {
    nets: Networks,
    containers: Containers,
    /// Network id → its names (read by the embedded DNS).
    table: Arc<RwLock<HashMap<String, Names>>>,
    /// Container id → the LB script last applied in its namespace.
    applied: Mutex<HashMap<String, String>>,
}

/// `10.0.1.5/24` → 10.0.1.5.
fn addr(a: &str) -> Option<Ipv4Addr> {
    a.split('/').next()?.parse().ok()
}

impl NetAttach {
    pub fn new(containers: &Containers) -> Arc<NetAttach> {
        let nets = containers.networks().clone();
        let table: Arc<RwLock<HashMap<String, Names>>> = Arc::default();
        let t = table.clone();
        nets.set_service_resolver(Arc::new(move |net: &str, name: &str| {
            let t = t.read().unwrap_or_else(|p| p.into_inner());
            t.get(net)?.names.get(name).cloned()
        }));
        let t = table.clone();
        nets.set_vip_rules(Arc::new(move |ids: &[String]| {
            let t = t.read().unwrap_or_else(|p| p.into_inner());
            let vips: Vec<Vip> = ids
                .iter()
                .filter_map(|id| t.get(id))
                .flat_map(|n| n.vips.iter().cloned())
                .collect();
            (!vips.is_empty()).then(|| lb::render(&vips))
        }));
        Arc::new(NetAttach {
            nets,
            containers: containers.clone(),
            table,
            applied: Mutex::new(HashMap::new()),
        })
    }

    /// Converges this node to the networks of its latest assignments.
    pub async fn update(&self, local: &str, networks: &[NetworkPeers]) {
        let Ok(local) = local.parse::<Ipv4Addr>() else {
            return;
        };
        let planes: Vec<Plane> = networks.iter().filter_map(|n| plane(local, n)).collect();
        let driver = self.nets.overlay().clone();
        match tokio::task::spawn_blocking(move || driver.set_planes(planes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "overlay data plane"),
            Err(e) => tracing::warn!(error = %e, "overlay data plane"),
        }
        for n in networks {
            if let Err(e) = self.nets.ensure_swarm_network(record(n)).await {
                tracing::warn!(network_id = %n.network.id, error = %e, "swarm network on this node");
            }
        }
        {
            let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
            *t = networks
                .iter()
                .map(|n| (n.network.id.clone(), names(n)))
                .collect();
        }
        let wanted: BTreeSet<&str> = networks.iter().map(|n| n.network.id.as_str()).collect();
        for (id, used) in self.nets.swarm_networks() {
            if !used && !wanted.contains(id.as_str()) {
                if let Err(e) = self.nets.drop_swarm_network(&id).await {
                    tracing::warn!(network_id = %id, error = %e, "removing a swarm network");
                }
            }
        }
        self.balance().await;
    }

    /// The load-balancing rules of every local container on a swarm network.
    async fn balance(&self) {
        let mut by_ctr: BTreeMap<String, Vec<Vip>> = BTreeMap::new();
        {
            let t = self.table.read().unwrap_or_else(|p| p.into_inner());
            for (ctr, net) in self.nets.swarm_endpoints() {
                let vips = t.get(&net).map(|n| n.vips.clone()).unwrap_or_default();
                by_ctr.entry(ctr).or_default().extend(vips);
            }
        }
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| by_ctr.contains_key(id));
        for (ctr, vips) in by_ctr {
            let script = lb::render(&vips);
            let same = self
                .applied
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&ctr)
                == Some(&script);
            if same {
                continue;
            }
            let netns = self.containers.netns_path(&ctr);
            match self.nets.apply_rules_in(netns, script.clone()).await {
                Ok(()) => {
                    self.applied
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(ctr, script);
                }
                Err(e) => {
                    tracing::debug!(container_id = %ctr, error = %e, "VIP load balancing rules")
                }
            }
        }
    }

    /// The endpoints of a task's container: one per network, with its allocated address.
    pub fn endpoints(&self, t: &Task) -> BTreeMap<String, Endpoint> {
        let mut out = BTreeMap::new();
        for a in &t.networks {
            let Ok(rec) = self.nets.find(&a.network_id) else {
                continue;
            };
            // The service's name and its network aliases are answered from cluster state
            // (its VIP, or its tasks for dnsrr), never as names of this one task: in vip
            // mode an alias answers the VIP alone, as Docker's does.
            out.insert(
                rec.name.clone(),
                Endpoint {
                    network_id: rec.id.clone(),
                    aliases: Vec::new(),
                    ipv4_request: addr(&a.address).map(|i| i.to_string()).unwrap_or_default(),
                    ..Default::default()
                },
            );
        }
        out
    }
}

/// The data plane of one network on a node at `local`. An encrypted network's VXLAN runs
/// between tunnel addresses (none yet: no plane, never the clear underlay).
fn plane(local: Ipv4Addr, n: &NetworkPeers) -> Option<Plane> {
    let encrypted = berth_raft::tunnels::encrypted(&n.network.spec.options);
    let (local, mtu) = match encrypted {
        true => (n.tunnel.parse().ok()?, ENCRYPTED_OVERLAY_MTU),
        false => (local, OVERLAY_MTU),
    };
    let peers = n
        .endpoints
        .iter()
        .filter_map(|e| {
            let ip = addr(&e.address)?;
            let node: Ipv4Addr = e.node_addr.parse().ok()?;
            Some(Peer {
                ip,
                mac: mac_for(ip),
                node,
            })
        })
        .collect();
    Some(Plane {
        network_id: n.network.id.clone(),
        vni: n.network.vni,
        local,
        peers,
        mtu,
    })
}

/// The local record of a swarm network.
fn record(n: &NetworkPeers) -> NetworkRecord {
    let net = &n.network;
    NetworkRecord {
        id: net.id.clone(),
        name: net.spec.name.clone(),
        driver: "overlay".into(),
        created: net.meta.created_at.clone(),
        subnet: net.subnet.clone(),
        gateway: net.gateway.clone(),
        internal: net.spec.internal,
        attachable: net.spec.attachable,
        options: net.spec.options.clone(),
        labels: net.spec.labels.clone(),
        ..Default::default()
    }
}

/// The names of a network: each service resolves to its VIP (or, for dnsrr, to its running
/// tasks), `tasks.<service>` to its running tasks. Only running tasks are ever answered.
fn names(n: &NetworkPeers) -> Names {
    let mut out = Names::default();
    // The routing mesh's network carries published ports, not service discovery (as in
    // Docker): a task's names are those of its own networks.
    if n.network.spec.ingress {
        return out;
    }
    for s in &n.services {
        let tasks: Vec<Ipv4Addr> = n
            .endpoints
            .iter()
            .filter(|e| e.service_id == s.service_id && e.running)
            .filter_map(|e| addr(&e.address))
            .collect();
        let vip = addr(&s.vip);
        let answer = match vip {
            Some(v) => vec![v],
            None => tasks.clone(),
        };
        let mut keys = vec![s.name.to_ascii_lowercase()];
        keys.extend(s.aliases.iter().map(|a| a.to_ascii_lowercase()));
        for k in keys {
            if !answer.is_empty() {
                out.names.insert(k.clone(), answer.clone());
            }
            if !tasks.is_empty() {
                out.names.insert(format!("tasks.{k}"), tasks.clone());
            }
        }
        if let Some(vip) = vip {
            out.vips.push(Vip {
                vip,
                backends: tasks,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_raft::networks::{Network, NetworkSpec};
    use berth_raft::rpc::{PeerEndpoint, ServiceEndpoint};

    fn peers() -> NetworkPeers {
        let ep = |task: &str, svc: &str, addr: &str, node: &str, running: bool| PeerEndpoint {
            task_id: task.into(),
            service_id: svc.into(),
            node_id: format!("node-{node}"),
            node_addr: node.into(),
            address: addr.into(),
            running,
            aliases: Vec::new(),
        };
        NetworkPeers {
            network: Network {
                id: "net1".into(),
                meta: Default::default(),
                spec: NetworkSpec {
                    name: "ov1".into(),
                    driver: "overlay".into(),
                    ..Default::default()
                },
                vni: 4100,
                subnet: "10.0.1.0/24".into(),
                gateway: "10.0.1.1".into(),
                addresses: Default::default(),
                cursor: 0,
            },
            endpoints: vec![
                ep("a1", "A", "10.0.1.3/24", "10.231.0.11", true),
                ep("a2", "A", "10.0.1.4/24", "10.231.0.12", true),
                ep("a3", "A", "10.0.1.5/24", "10.231.0.13", false),
                ep("b1", "B", "10.0.1.7/24", "10.231.0.12", true),
            ],
            services: vec![
                ServiceEndpoint {
                    service_id: "A".into(),
                    name: "Web".into(),
                    vip: "10.0.1.2/24".into(),
                    aliases: vec!["front".into()],
                    ports: Vec::new(),
                },
                ServiceEndpoint {
                    service_id: "B".into(),
                    name: "rr".into(),
                    vip: String::new(),
                    aliases: Vec::new(),
                    ports: Vec::new(),
                },
            ],
            tunnel: String::new(),
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn names_answer_vips_and_running_tasks_only() {
        let n = names(&peers());
        assert_eq!(n.names["web"], vec![ip("10.0.1.2")]);
        assert_eq!(n.names["front"], vec![ip("10.0.1.2")]);
        assert_eq!(n.names["tasks.web"], vec![ip("10.0.1.3"), ip("10.0.1.4")]);
        assert_eq!(n.names["rr"], vec![ip("10.0.1.7")], "dnsrr: the tasks");
        assert_eq!(
            n.vips,
            vec![Vip {
                vip: ip("10.0.1.2"),
                backends: vec![ip("10.0.1.3"), ip("10.0.1.4")]
            }]
        );
    }

    #[test]
    fn planes_hold_every_endpoint_with_its_node() {
        let p = plane(ip("10.231.0.11"), &peers()).expect("a plain network has a plane");
        assert_eq!((p.vni, p.network_id.as_str()), (4100, "net1"));
        assert_eq!(p.peers.len(), 4, "the plan skips the local ones itself");
        assert!(p.peers.contains(&Peer {
            ip: ip("10.0.1.4"),
            mac: mac_for(ip("10.0.1.4")),
            node: ip("10.231.0.12")
        }));
    }

    #[test]
    fn encrypted_planes_run_between_tunnel_addresses_or_not_at_all() {
        let mut n = peers();
        n.network
            .spec
            .options
            .insert("encrypted".into(), String::new());
        assert_eq!(plane(ip("10.231.0.11"), &n), None, "no tunnel address yet");
        n.tunnel = "198.18.0.1".into();
        let p = plane(ip("10.231.0.11"), &n).expect("plane");
        assert_eq!((p.local, p.mtu), (ip("198.18.0.1"), ENCRYPTED_OVERLAY_MTU));
        let plain = plane(ip("10.231.0.11"), &peers()).expect("plane");
        assert_eq!(plain.mtu, OVERLAY_MTU);
    }
}
