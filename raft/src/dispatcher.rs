//! The managers' side of agent sessions: the tasks assigned to a node (long-polled), and
//! the status reports of the nodes that run them (batched into one Raft entry each).
//!
//! ```text
//!  agent ──Assignments{known}──► any manager: its applied state, waited on until the node's
//!                                 tasks change or ~4 s pass
//!  agent ──TaskStatus[..]──────► any manager ──propose Op::Tasks(Status…)──► leader
//! ```
//! Any manager answers from its own applied state, so agents keep their session through a
//! leader change; a manager that lags only answers later.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::error::{ClusterError, ClusterResult};
use crate::ingress::{attach_holder, holder_node};
use crate::manager::Manager;
use crate::networks::template_networks;
use crate::objects::DataKind;
use crate::objects::NodeState;
use crate::rpc::{Assignments, NetworkPeers, PeerEndpoint, Reply, ServiceEndpoint, TaskReport};
use crate::state::{Op, State};
use crate::tasks::{TaskChange, TaskState};

/// How long an assignments request waits for a change before it answers anyway.
const LONG_POLL: Duration = Duration::from_secs(4);

/// The tasks of `node_id` an agent must know about: every task on it that is not deleted.
fn assigned(
    state: &State,
    node_id: &str,
    log_subscriptions: Vec<crate::logs::LogSubscription>,
) -> Assignments {
    let tasks: Vec<_> = state
        .tasks
        .values()
        .filter(|t| t.node_id == node_id && t.status.state >= TaskState::Assigned)
        .cloned()
        .collect();
    let mut h = DefaultHasher::new();
    let mut secrets = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for t in &tasks {
        t.id.hash(&mut h);
        t.desired_state.hash(&mut h);
        if t.desired_state <= TaskState::Running {
            for (kind, set) in [
                (DataKind::Secret, &mut secrets),
                (DataKind::Config, &mut configs),
            ] {
                set.extend(t.spec.data_refs(kind).into_iter().map(str::to_owned));
            }
        }
    }
    for s in &log_subscriptions {
        s.id.hash(&mut h);
    }
    let pick = |kind: DataKind, ids: &BTreeSet<String>| {
        ids.iter()
            .filter_map(|id| state.data(kind).get(id).cloned())
            .collect::<Vec<_>>()
    };
    let mut networks = network_peers(state, node_id, &tasks);
    let tunnels = crate::tunnels::for_node(state, node_id, &mut networks);
    serde_json::to_string(&(&networks, &tunnels))
        .unwrap_or_default()
        .hash(&mut h);
    Assignments {
        fingerprint: h.finish(),
        secrets: pick(DataKind::Secret, &secrets),
        configs: pick(DataKind::Config, &configs),
        tasks,
        log_subscriptions,
        networks,
        tunnels,
    }
}

/// The networks of a node's tasks that have not ended (a task told to stop still runs until
/// it has), of its standalone containers, and ingress (every node is in the routing mesh),
/// each with every endpoint and service on it.
pub fn network_peers(
    state: &State,
    node_id: &str,
    node_tasks: &[crate::tasks::Task],
) -> Vec<NetworkPeers> {
    let mine = attach_holder(node_id, "");
    let mut ids: BTreeSet<&str> = node_tasks
        .iter()
        .filter(|t| !t.status.state.terminal())
        .flat_map(|t| t.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    ids.extend(state.ingress().map(|n| n.id.as_str()));
    ids.extend(
        state
            .networks
            .values()
            .filter(|n| n.addresses.values().any(|h| h.starts_with(&mine)))
            .map(|n| n.id.as_str()),
    );
    ids.into_iter()
        .filter_map(|id| state.networks.get(id))
        .map(|n| peers_of(state, n))
        .collect()
}

/// One network's endpoints (tasks, node sandboxes, standalone containers) and services.
fn peers_of(state: &State, n: &crate::networks::Network) -> NetworkPeers {
    let id = n.id.as_str();
    let up = |node_id: &str| {
        let node = state.nodes.get(node_id);
        let addr = node.map(|n| n.addr.clone()).unwrap_or_default();
        (addr, node.is_some_and(|n| n.state != NodeState::Down))
    };
    let mut endpoints = Vec::new();
    for (ip, holder) in &n.addresses {
        if let Some(node_id) = holder_node(holder) {
            let (node_addr, live) = up(node_id);
            endpoints.push(PeerEndpoint {
                task_id: holder.clone(),
                service_id: String::new(),
                node_id: node_id.to_owned(),
                node_addr,
                address: n.with_prefix(std::net::Ipv4Addr::from(*ip)),
                running: live,
                aliases: Vec::new(),
            });
            continue;
        }
        let Some(t) = state.tasks.get(holder) else {
            continue;
        };
        let Some(a) = t.networks.iter().find(|a| a.network_id == id) else {
            continue;
        };
        let (node_addr, live) = up(&t.node_id);
        endpoints.push(PeerEndpoint {
            task_id: t.id.clone(),
            service_id: t.service_id.clone(),
            node_id: t.node_id.clone(),
            node_addr,
            address: a.address.clone(),
            running: live
                && t.desired_state <= TaskState::Running
                && t.status.state == TaskState::Running,
            aliases: a.aliases.clone(),
        });
    }
    let services = state
        .services
        .values()
        .filter(|s| state.service_networks(s).iter().any(|x| x == id))
        .map(|s| ServiceEndpoint {
            service_id: s.id.clone(),
            name: s.spec.name.clone(),
            vip: s
                .virtual_ips
                .iter()
                .find(|v| v.network_id == id)
                .map(|v| v.addr.clone())
                .unwrap_or_default(),
            aliases: template_networks(&s.spec.task_template)
                .into_iter()
                .find(|(t, _)| t == id)
                .map(|(_, a)| a)
                .unwrap_or_default(),
            ports: if n.spec.ingress {
                s.ports.iter().filter(|p| p.ingress()).cloned().collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let mut network = n.clone();
    network.addresses.clear();
    NetworkPeers {
        network,
        endpoints,
        services,
        tunnel: String::new(),
    }
}

impl Manager {
    /// Answers an agent's assignments request once its tasks differ from `known`.
    pub(crate) async fn assignments(&self, node_id: &str, known: u64) -> ClusterResult<Reply> {
        let mut applied = self.applied_watch();
        let mut logs = self.logs.watch();
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        loop {
            let subs = self.logs.for_node(node_id);
            let a = self.read(|s| assigned(s, node_id, subs));
            if a.fingerprint != known {
                return Ok(Reply::Assignments(Box::new(a)));
            }
            let changed = async {
                tokio::select! {
                    r = applied.changed() => r.is_ok(),
                    r = logs.changed() => r.is_ok(),
                }
            };
            match tokio::time::timeout_at(deadline, changed).await {
                Ok(true) => {}
                _ => return Ok(Reply::Assignments(Box::new(a))),
            }
        }
    }

    /// Gives a standalone container of node `node_id` an address on an attachable network
    /// (Docker's messages when there is no such network or it is not attachable).
    pub(crate) async fn attach_network(
        &self,
        node_id: &str,
        network: &str,
        container_id: &str,
    ) -> ClusterResult<Reply> {
        let found = self.read(|s| {
            s.network_by_key(network)
                .map(|n| (n.id.clone(), n.spec.name.clone(), n.spec.attachable))
        });
        let Some((network_id, name, attachable)) = found else {
            return Err(ClusterError::NotFound(format!(
                "network {network} not found"
            )));
        };
        if !attachable {
            return Err(ClusterError::PermissionDenied(format!(
                "rpc error: code = PermissionDenied desc = network {name} not manually attachable"
            )));
        }
        self.propose(Op::AttachContainer {
            network_id: network_id.clone(),
            node_id: node_id.to_owned(),
            container_id: container_id.to_owned(),
        })
        .await?;
        let holder = attach_holder(node_id, container_id);
        let address = self
            .read(|s| s.address_of(&network_id, &holder))
            .ok_or_else(|| ClusterError::Internal("the attachment was not kept".into()))?;
        Ok(Reply::Attached {
            network_id,
            name,
            address,
        })
    }

    /// Gives a standalone container's address back.
    pub(crate) async fn detach_network(
        &self,
        node_id: &str,
        network_id: &str,
        container_id: &str,
    ) -> ClusterResult<Reply> {
        self.propose(Op::DetachContainer {
            network_id: network_id.to_owned(),
            node_id: node_id.to_owned(),
            container_id: container_id.to_owned(),
        })
        .await?;
        Ok(Reply::Done)
    }

    /// Commits a node's status reports about its own tasks.
    pub(crate) async fn task_status(
        &self,
        node_id: &str,
        reports: Vec<TaskReport>,
    ) -> ClusterResult<Reply> {
        let changes: Vec<TaskChange> = reports
            .into_iter()
            .map(|r| TaskChange::Status {
                id: r.task_id,
                node_id: node_id.to_owned(),
                status: r.status,
            })
            .collect();
        if !changes.is_empty() {
            self.propose(Op::Tasks(changes)).await?;
        }
        Ok(Reply::Done)
    }
}
