//! The replicated state machine: what every manager holds, and the commands that change it.
//!
//! ```text
//!  Command ──(Raft log, committed)──► State::apply(index, now) ──► Outcome
//! ```
//! `apply` is deterministic: it sees only the command, the entry's index (the new version of
//! what it touches) and the timestamp the proposer put in the command. Optimistic locking is
//! checked here, at apply time, so two racing updates based on the same version cannot both
//! win, whichever manager they came through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::networks::Network;
use crate::objects::{Cluster, DataKind, DataObject, Description, Node, NodeState};
use crate::tasks::{RolloutChange, Service, Task, TaskChange, TaskState};

/// Everything replicated. Serialised whole as a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub cluster: Option<Cluster>,
    pub nodes: BTreeMap<String, Node>,
    #[serde(default)]
    pub secrets: BTreeMap<String, DataObject>,
    #[serde(default)]
    pub configs: BTreeMap<String, DataObject>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub tasks: BTreeMap<String, Task>,
    /// Swarm-scoped networks (`crate::networks`).
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
}

/// A change to the state; the payload of a Raft log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// When the proposer made it (RFC 3339); becomes `UpdatedAt` of what it touches.
    pub at: String,
    pub op: Op,
}

/// What `Op::NodeStatus` says about a node.
struct NodeReport<'a> {
    state: NodeState,
    message: &'a str,
    addr: Option<&'a str>,
    description: Option<&'a Description>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The first entry of a cluster (and of a cluster re-formed by `--force-new-cluster`).
    Init {
        cluster: Box<Cluster>,
        node: Box<Node>,
    },
    /// Replace the cluster object, if it is still at `version`.
    UpdateCluster {
        version: Option<u64>,
        cluster: Box<Cluster>,
    },
    /// Create a node, or replace it if it is still at `version` (`None`: unconditionally).
    PutNode {
        version: Option<u64>,
        node: Box<Node>,
    },
    /// A liveness change seen by the leader, with the node's own report of itself
    /// (`description`, when it changed): no version check, applied to the node as it stands
    /// when the entry is applied, so it never carries back a spec read from a stale copy; a
    /// no-op when the node is gone or nothing changes.
    NodeStatus {
        id: String,
        state: NodeState,
        message: String,
        addr: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Box<Description>>,
    },
    RemoveNode {
        id: String,
    },
    /// Create a secret or config (`version: None`; its name must be free), or replace one
    /// still at `version`.
    PutData {
        kind: DataKind,
        version: Option<u64>,
        object: Box<DataObject>,
    },
    RemoveData {
        kind: DataKind,
        id: String,
    },
    /// Create a service (`version: None`; its name must be free), or replace one still at
    /// `version`. `new_spec`: the task template or mode changed, so tasks made from the
    /// older spec are out of date (the service's `spec_version` becomes this entry's index).
    PutService {
        version: Option<u64>,
        service: Box<Service>,
        new_spec: bool,
    },
    /// Delete a service; its tasks are told to go (desired state `remove`).
    RemoveService {
        id: String,
    },
    /// Task changes from the orchestrators, the scheduler and the agents.
    Tasks(Vec<TaskChange>),
    /// A rollout step decided by the orchestrators.
    Rollout(Box<RolloutChange>),
    /// Create a swarm-scoped network (its name must be free); its VXLAN id, subnet and
    /// gateway are allocated when the entry is applied.
    CreateNetwork(Box<Network>),
    /// Delete a network no service and no task uses.
    RemoveNetwork {
        id: String,
    },
    /// An address on an attachable network for a standalone container of a node.
    AttachContainer {
        network_id: String,
        node_id: String,
        container_id: String,
    },
    /// Gives a standalone container's address back.
    DetachContainer {
        network_id: String,
        node_id: String,
        container_id: String,
    },
}

/// What applying a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied; the object's new version.
    Done {
        version: u64,
    },
    /// Nothing to do (e.g. a status the node already has).
    #[default]
    Unchanged,
    /// The object moved on since the version the change was based on.
    OutOfSequence,
    NotFound {
        what: String,
    },
    /// A name already taken.
    AlreadyExists {
        what: String,
    },
    /// Not possible in the current state, for the reason given (a network in use, an
    /// address pool with no room).
    Refused {
        message: String,
    },
}

impl State {
    /// Applies one committed command at log index `index`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Outcome {
        let at = cmd.at.as_str();
        match &cmd.op {
            Op::Init { cluster, node } => self.init(index, at, cluster, node),
            Op::UpdateCluster { version, cluster } => {
                self.update_cluster(index, at, *version, cluster)
            }
            Op::PutNode { version, node } => self.put_node(index, at, *version, node),
            Op::NodeStatus {
                id,
                state,
                message,
                addr,
                description,
            } => self.node_status(
                index,
                at,
                id,
                NodeReport {
                    state: *state,
                    message,
                    addr: addr.as_deref(),
                    description: description.as_deref(),
                },
            ),
            Op::PutData {
                kind,
                version,
                object,
            } => self.put_data(index, at, *kind, *version, object),
            Op::RemoveData { kind, id } => self.remove_data(index, *kind, id),
            Op::PutService {
                version,
                service,
                new_spec,
            } => self.put_service(index, at, *version, service, *new_spec),
            Op::RemoveService { id } => self.remove_service(index, at, id),
            Op::Tasks(changes) => self.apply_tasks(index, at, changes),
            Op::Rollout(change) => self.rollout(index, at, change),
            Op::CreateNetwork(n) => self.create_network(index, at, n),
            Op::RemoveNetwork { id } => self.remove_network(index, id),
            Op::AttachContainer {
                network_id,
                node_id,
                container_id,
            } => match self.attach_container(network_id, node_id, container_id) {
                Ok(()) => Outcome::Done { version: index },
                Err(message) => Outcome::Refused { message },
            },
            Op::DetachContainer {
                network_id,
                node_id,
                container_id,
            } => {
                self.detach_container(network_id, node_id, container_id);
                Outcome::Done { version: index }
            }
            Op::RemoveNode { id } => self.remove_node(index, id),
        }
    }

    pub fn data(&self, kind: DataKind) -> &BTreeMap<String, DataObject> {
        match kind {
            DataKind::Secret => &self.secrets,
            DataKind::Config => &self.configs,
        }
    }

    /// Why a secret or config cannot be removed now (services refer to it; Docker's words).
    fn data_in_use(&self, kind: DataKind, id: &str) -> Option<String> {
        let name = &self.data(kind).get(id)?.name;
        let users: Vec<&str> = self
            .services
            .values()
            .filter(|s| s.spec.task_template.data_refs(kind).contains(&id))
            .map(|s| s.spec.name.as_str())
            .collect();
        (!users.is_empty()).then(|| {
            format!(
                "{} '{name}' is in use by the following service{}: {}",
                kind.as_str(),
                if users.len() > 1 { "s" } else { "" },
                users.join(", ")
            )
        })
    }

    /// A secret or config a service spec refers to that does not exist (removed since the
    /// API checked the spec).
    fn missing_data(&self, tt: &crate::tasks::TaskTemplate) -> Option<String> {
        [DataKind::Secret, DataKind::Config]
            .into_iter()
            .find_map(|kind| {
                tt.data_refs(kind)
                    .into_iter()
                    .find(|id| !self.data(kind).contains_key(*id))
                    .map(|id| format!("{} not found: {id}", kind.as_str()))
            })
    }

    fn data_mut(&mut self, kind: DataKind) -> &mut BTreeMap<String, DataObject> {
        match kind {
            DataKind::Secret => &mut self.secrets,
            DataKind::Config => &mut self.configs,
        }
    }

    /// The node that is this Raft member.
    pub fn node_by_raft_id(&self, raft_id: u64) -> Option<&Node> {
        self.nodes
            .values()
            .find(|n| n.raft_id == raft_id && n.spec.role == crate::ca::Role::Manager)
    }
}

impl State {
    /// `Op::Init`: the cluster object and its first manager. A re-formed cluster
    /// (force-new-cluster) keeps its nodes, but the single manager is the one in the command.
    fn init(&mut self, index: u64, at: &str, cluster: &Cluster, node: &Node) -> Outcome {
        let mut cluster = cluster.clone();
        stamp_new(&mut cluster.meta, index, at);
        let mut node = node.clone();
        stamp_new(&mut node.meta, index, at);
        crate::tunnels::assign(&self.nodes, self.nodes.get(&node.id), &mut node);
        let fresh = self.cluster.is_none();
        let cluster_id = cluster.id.clone();
        self.cluster = Some(cluster);
        self.nodes.insert(node.id.clone(), node);
        if fresh {
            // Docker makes the routing mesh's network with the swarm.
            self.create_ingress(&cluster_id, index, at);
        }
        self.sync_node_sandboxes();
        Outcome::Done { version: index }
    }

    /// `Op::UpdateCluster`: replaces the cluster object (keeping its creation time) if it is
    /// still at `version`.
    fn update_cluster(
        &mut self,
        index: u64,
        at: &str,
        version: Option<u64>,
        cluster: &Cluster,
    ) -> Outcome {
        let Some(cur) = self.cluster.as_mut() else {
            return Outcome::NotFound {
                what: "cluster".into(),
            };
        };
        if version.is_some_and(|v| v != cur.meta.version) {
            return Outcome::OutOfSequence;
        }
        let created = cur.meta.created_at.clone();
        *cur = cluster.clone();
        cur.meta.created_at = created;
        stamp(&mut cur.meta, index, at);
        Outcome::Done { version: index }
    }

    /// `Op::PutNode`: creates a node, or replaces one still at `version`.
    fn put_node(&mut self, index: u64, at: &str, version: Option<u64>, node: &Node) -> Outcome {
        let mut node = node.clone();
        match self.nodes.get(&node.id) {
            Some(cur) => {
                if version.is_some_and(|v| v != cur.meta.version) {
                    return Outcome::OutOfSequence;
                }
                node.meta.created_at = cur.meta.created_at.clone();
                stamp(&mut node.meta, index, at);
            }
            None if version.is_some() => {
                return Outcome::NotFound {
                    what: format!("node {}", node.id),
                }
            }
            None => stamp_new(&mut node.meta, index, at),
        }
        crate::tunnels::assign(&self.nodes, self.nodes.get(&node.id), &mut node);
        self.nodes.insert(node.id.clone(), node);
        self.sync_node_sandboxes();
        Outcome::Done { version: index }
    }

    /// `Op::NodeStatus`: a liveness change; unchanged when the node is gone or already
    /// there.
    fn node_status(&mut self, index: u64, at: &str, id: &str, report: NodeReport) -> Outcome {
        let Some(cur) = self.nodes.get(id) else {
            return Outcome::Unchanged;
        };
        let addr_same = report.addr.is_none_or(|a| a == cur.addr);
        let desc_same = report.description.is_none_or(|d| *d == cur.description);
        if cur.state == report.state && cur.message == report.message && addr_same && desc_same {
            return Outcome::Unchanged;
        }
        let mut node = cur.clone();
        node.state = report.state;
        node.message = report.message.to_owned();
        if let Some(a) = report.addr {
            node.addr = a.to_owned();
        }
        stamp(&mut node.meta, index, at);
        if let Some(d) = report.description {
            node.description = d.clone();
            // A node that now reports a WireGuard key gets its tunnel address.
            crate::tunnels::assign(&self.nodes, Some(cur), &mut node);
        }
        self.nodes.insert(id.to_owned(), node);
        Outcome::Done { version: index }
    }

    fn remove_node(&mut self, index: u64, id: &str) -> Outcome {
        match self.nodes.remove(id) {
            Some(_) => {
                self.sync_node_sandboxes();
                Outcome::Done { version: index }
            }
            None => Outcome::NotFound {
                what: format!("node {id}"),
            },
        }
    }

    /// `Op::PutData`: creates a secret or config (its name must be free), or replaces one
    /// still at `version`.
    fn put_data(
        &mut self,
        index: u64,
        at: &str,
        kind: DataKind,
        version: Option<u64>,
        object: &DataObject,
    ) -> Outcome {
        let mut object = object.clone();
        let map = self.data_mut(kind);
        let cur = map.get(&object.id).map(|o| &o.meta);
        if cur.is_none() && version.is_none() && map.values().any(|o| o.name == object.name) {
            return Outcome::AlreadyExists {
                what: format!("{} {}", kind.as_str(), object.name),
            };
        }
        let what = || format!("{} {}", kind.as_str(), object.id);
        if let Err(refused) = stamp_put(cur, version, &mut object.meta, index, at, what) {
            return refused;
        }
        map.insert(object.id.clone(), object);
        Outcome::Done { version: index }
    }

    /// `Op::RemoveData`: refused while a service refers to it.
    fn remove_data(&mut self, index: u64, kind: DataKind, id: &str) -> Outcome {
        if let Some(message) = self.data_in_use(kind, id) {
            return Outcome::Refused { message };
        }
        match self.data_mut(kind).remove(id) {
            Some(_) => Outcome::Done { version: index },
            None => Outcome::NotFound {
                what: format!("{} {id}", kind.as_str()),
            },
        }
    }

    fn put_service(
        &mut self,
        index: u64,
        at: &str,
        version: Option<u64>,
        service: &Service,
        new_spec: bool,
    ) -> Outcome {
        if let Some(message) = self.missing_data(&service.spec.task_template) {
            return Outcome::Refused { message };
        }
        let mut service = service.clone();
        let cur = self.services.get(&service.id).map(|s| &s.meta);
        let name = &service.spec.name;
        if cur.is_none()
            && version.is_none()
            && self.services.values().any(|s| s.spec.name == *name)
        {
            return Outcome::AlreadyExists {
                what: format!("service {name}"),
            };
        }
        let what = || format!("service {}", service.id);
        if let Err(refused) = stamp_put(cur, version, &mut service.meta, index, at, what) {
            return refused;
        }
        match self.resolve_ports(&service) {
            Ok(ports) => service.ports = ports,
            Err(message) => return Outcome::Refused { message },
        }
        if new_spec || version.is_none() {
            service.spec_version = index;
        }
        let id = service.id.clone();
        self.services.insert(id.clone(), service);
        self.sync_vips(&id);
        Outcome::Done { version: index }
    }

    pub(crate) fn create_network(&mut self, index: u64, at: &str, n: &Network) -> Outcome {
        if self.networks.contains_key(&n.id) || self.network_by_key(&n.spec.name).is_some() {
            return Outcome::AlreadyExists {
                what: format!("network {}", n.spec.name),
            };
        }
        if n.spec.ingress {
            if let Some(i) = self.ingress() {
                return Outcome::Refused {
                    message: format!("ingress network ({}) is already present", i.id),
                };
            }
        }
        let mut n = n.clone();
        if let Err(message) = self.allocate_network(&mut n) {
            return Outcome::Refused { message };
        }
        stamp_new(&mut n.meta, index, at);
        let ingress = n.spec.ingress;
        self.networks.insert(n.id.clone(), n);
        if ingress {
            self.sync_node_sandboxes();
        }
        Outcome::Done { version: index }
    }

    fn remove_network(&mut self, index: u64, id: &str) -> Outcome {
        let Some(n) = self.networks.get(id) else {
            return Outcome::NotFound {
                what: format!("network {id}"),
            };
        };
        if let Some(message) = self.network_in_use(n) {
            return Outcome::Refused { message };
        }
        self.networks.remove(id);
        Outcome::Done { version: index }
    }

    fn remove_service(&mut self, index: u64, at: &str, id: &str) -> Outcome {
        if self.services.remove(id).is_none() {
            return Outcome::NotFound {
                what: format!("service {id}"),
            };
        }
        self.sync_vips(id);
        for t in self.tasks.values_mut().filter(|t| t.service_id == id) {
            if t.desired_state < TaskState::Remove {
                t.desired_state = TaskState::Remove;
                stamp(&mut t.meta, index, at);
            }
        }
        Outcome::Done { version: index }
    }

    fn apply_tasks(&mut self, index: u64, at: &str, changes: &[TaskChange]) -> Outcome {
        let mut any = false;
        for c in changes {
            any |= self.apply_task(index, at, c);
        }
        if any {
            Outcome::Done { version: index }
        } else {
            Outcome::Unchanged
        }
    }

    /// One task change; whether it changed anything.
    fn apply_task(&mut self, index: u64, at: &str, c: &TaskChange) -> bool {
        match c {
            TaskChange::Create(t) => {
                if self.tasks.contains_key(&t.id) || !self.services.contains_key(&t.service_id) {
                    return false;
                }
                let mut t = (**t).clone();
                if let Err(err) = self.attach_task(&mut t) {
                    // Visible on the task (`service ps`), and replaced like any failed task.
                    t.status.state = TaskState::Rejected;
                    t.status.message = "allocating network addresses".into();
                    t.status.err = err;
                    t.status.timestamp = at.to_owned();
                }
                stamp_new(&mut t.meta, index, at);
                self.tasks.insert(t.id.clone(), t);
                true
            }
            TaskChange::Desire { id, state } => match self.tasks.get_mut(id) {
                Some(t) if t.desired_state < *state => {
                    t.desired_state = *state;
                    stamp(&mut t.meta, index, at);
                    true
                }
                _ => false,
            },
            TaskChange::Assign {
                id,
                node_id,
                state,
                message,
            } => match self.tasks.get_mut(id) {
                Some(t) if t.status.state <= TaskState::Pending && t.status.state <= *state => {
                    if t.status.state == *state && t.status.message == *message {
                        return false;
                    }
                    t.node_id = node_id.clone();
                    t.status.state = *state;
                    t.status.message = message.clone();
                    t.status.timestamp = at.to_owned();
                    stamp(&mut t.meta, index, at);
                    true
                }
                _ => false,
            },
            TaskChange::Status {
                id,
                node_id,
                status,
            } => match self.tasks.get_mut(id) {
                // Only the node the task is on reports it, and only forward.
                Some(t) if t.node_id == *node_id && status.state >= t.status.state => {
                    if t.status == *status {
                        return false;
                    }
                    t.status = status.clone();
                    stamp(&mut t.meta, index, at);
                    // Its container is gone: its addresses can go to new tasks.
                    let ended = (status.state.terminal() && !t.networks.is_empty())
                        .then(|| std::mem::take(&mut t.networks));
                    if let Some(attachments) = ended {
                        self.detach_task(id, &attachments);
                    }
                    true
                }
                _ => false,
            },
            TaskChange::Remove { id } => match self.tasks.remove(id) {
                Some(t) => {
                    self.detach_task(id, &t.networks);
                    true
                }
                None => false,
            },
        }
    }

    fn rollout(&mut self, index: u64, at: &str, c: &RolloutChange) -> Outcome {
        let Some(s) = self.services.get_mut(&c.service_id) else {
            return Outcome::NotFound {
                what: format!("service {}", c.service_id),
            };
        };
        if s.meta.version != c.version {
            return Outcome::OutOfSequence;
        }
        if c.rollback {
            if let Some(prev) = s.previous_spec.take() {
                let cur = std::mem::replace(&mut s.spec, prev);
                s.previous_spec = Some(cur);
                s.spec_version = index;
            }
        }
        s.update_status = Some(c.status.clone());
        stamp(&mut s.meta, index, at);
        if c.rollback {
            let ports = self
                .services
                .get(&c.service_id)
                .map(|s| self.resolve_ports(s));
            if let (Some(Ok(ports)), Some(s)) = (ports, self.services.get_mut(&c.service_id)) {
                s.ports = ports;
            }
            self.sync_vips(&c.service_id);
        }
        Outcome::Done { version: index }
    }
}

fn stamp_new(meta: &mut crate::objects::Meta, index: u64, at: &str) {
    meta.version = index;
    meta.created_at = at.to_owned();
    meta.updated_at = at.to_owned();
}

fn stamp(meta: &mut crate::objects::Meta, index: u64, at: &str) {
    meta.version = index;
    meta.updated_at = at.to_owned();
}

/// The version rules of an object made once (`version: None`) and then replaced only at the
/// version it is at: stamps `meta` for the write, or gives the refusal (`what` names the
/// object). A free name is the caller's to check.
fn stamp_put(
    cur: Option<&crate::objects::Meta>,
    version: Option<u64>,
    meta: &mut crate::objects::Meta,
    index: u64,
    at: &str,
    what: impl FnOnce() -> String,
) -> Result<(), Outcome> {
    match (cur, version) {
        (Some(cur), Some(v)) if cur.version != v => Err(Outcome::OutOfSequence),
        (Some(cur), Some(_)) => {
            meta.created_at = cur.created_at.clone();
            stamp(meta, index, at);
            Ok(())
        }
        (Some(_), None) => Err(Outcome::AlreadyExists { what: what() }),
        (None, Some(_)) => Err(Outcome::NotFound { what: what() }),
        (None, None) => {
            stamp_new(meta, index, at);
            Ok(())
        }
    }
}

/// Now, as Docker prints timestamps.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Meta;
    use crate::tasks::{ServiceSpec, TaskTemplate};
    use serde_json::json;

    fn apply(s: &mut State, index: u64, op: Op) -> Outcome {
        s.apply(index, &Command { at: now(), op })
    }

    fn secret(id: &str) -> Op {
        Op::PutData {
            kind: DataKind::Secret,
            version: None,
            object: Box::new(DataObject {
                id: id.into(),
                meta: Meta::default(),
                name: format!("name-{id}"),
                labels: BTreeMap::new(),
                data: b"x".to_vec(),
                templating: None,
                driver: None,
            }),
        }
    }

    fn service_using(secret_id: &str) -> Op {
        let tt = TaskTemplate {
            container_spec: Some(json!({
                "Image": "busybox",
                "Secrets": [{"SecretID": secret_id, "SecretName": "s"}],
            })),
            ..Default::default()
        };
        Op::PutService {
            version: None,
            service: Box::new(crate::tasks::Service {
                id: "svc1".into(),
                meta: Meta::default(),
                spec: ServiceSpec {
                    name: "app".into(),
                    task_template: tt,
                    ..Default::default()
                },
                previous_spec: None,
                spec_version: 0,
                update_status: None,
                job_iteration: 0,
                virtual_ips: Vec::new(),
                ports: Vec::new(),
            }),
            new_spec: true,
        }
    }

    #[test]
    fn secrets_in_use_stay_and_services_cannot_refer_to_missing_ones() {
        let mut s = State::default();
        assert!(matches!(
            apply(&mut s, 1, service_using("s1")),
            Outcome::Refused { message } if message == "secret not found: s1"
        ));
        apply(&mut s, 2, secret("s1"));
        assert!(matches!(
            apply(&mut s, 3, service_using("s1")),
            Outcome::Done { .. }
        ));
        let rm = || Op::RemoveData {
            kind: DataKind::Secret,
            id: "s1".into(),
        };
        assert!(matches!(
            apply(&mut s, 4, rm()),
            Outcome::Refused { message }
                if message == "secret 'name-s1' is in use by the following service: app"
        ));
        apply(&mut s, 5, Op::RemoveService { id: "svc1".into() });
        assert!(matches!(apply(&mut s, 6, rm()), Outcome::Done { .. }));
    }

    /// A heartbeat's report (state, address, description) applies to the node as it stands
    /// when the entry is applied: a spec change committed before it is kept, even when the
    /// manager that proposed the report had not seen that change yet.
    #[test]
    fn a_node_report_keeps_the_committed_spec() {
        let mut s = State::default();
        let node = Node::joined(
            "n1".into(),
            crate::ca::Role::Worker,
            crate::objects::Availability::Active,
            Description::default(),
        );
        let put = |node: &Node, version| Op::PutNode {
            version,
            node: Box::new(node.clone()),
        };
        assert_eq!(
            apply(&mut s, 1, put(&node, None)),
            Outcome::Done { version: 1 }
        );
        let mut labelled = node.clone();
        labelled.spec.labels.insert("k".into(), "v".into());
        assert_eq!(
            apply(&mut s, 2, put(&labelled, Some(1))),
            Outcome::Done { version: 2 }
        );
        let description = Description {
            hostname: "h1".into(),
            ..Description::default()
        };
        let report = Op::NodeStatus {
            id: "n1".into(),
            state: NodeState::Ready,
            message: String::new(),
            addr: Some("10.0.0.1".into()),
            description: Some(Box::new(description.clone())),
        };
        assert_eq!(
            apply(&mut s, 3, report.clone()),
            Outcome::Done { version: 3 }
        );
        let n = &s.nodes["n1"];
        assert_eq!(n.spec.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            (n.description.clone(), n.addr.as_str()),
            (description, "10.0.0.1")
        );
        assert_eq!(n.meta.version, 3);
        assert_eq!(apply(&mut s, 4, report), Outcome::Unchanged);
    }
}
