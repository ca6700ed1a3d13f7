//! The replicated cluster objects: the cluster itself (spec, CA, join tokens) and its nodes.
//!
//! Specs use Docker's field names (PascalCase) because the Engine API hands them in and out
//! unchanged (`docker swarm update` sends back the spec it read); everything else here is the
//! control plane's own and is turned into Docker's JSON by the engine's API edge.
//! Every object carries a [`Meta`] whose `version` is the Raft index of the entry that last
//! changed it: Docker's `Version.Index`, the optimistic lock of every update.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::ca::Role;

/// Version and timestamps of a stored object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub version: u64,
    /// RFC 3339 with nanoseconds, as Docker prints them.
    pub created_at: String,
    pub updated_at: String,
}

/// `Spec` of `GET /swarm` (Docker's `SwarmSpec`); fields this build does not use are kept as
/// they came, so an update never drops them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub orchestration: Orchestration,
    #[serde(default)]
    pub raft: RaftSpec,
    #[serde(default)]
    pub dispatcher: DispatcherSpec,
    #[serde(rename = "CAConfig", default)]
    pub ca_config: CaConfig,
    #[serde(default)]
    pub task_defaults: Value,
    #[serde(default)]
    pub encryption_config: EncryptionConfig,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            name: "default".into(),
            labels: BTreeMap::new(),
            orchestration: Orchestration::default(),
            raft: RaftSpec::default(),
            dispatcher: DispatcherSpec::default(),
            ca_config: CaConfig::default(),
            task_defaults: Value::Object(Default::default()),
            encryption_config: EncryptionConfig::default(),
            other: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Orchestration {
    #[serde(default = "default_history")]
    pub task_history_retention_limit: i64,
}

fn default_history() -> i64 {
    5
}

impl Default for Orchestration {
    fn default() -> Self {
        Orchestration {
            task_history_retention_limit: default_history(),
        }
    }
}

/// Docker's Raft settings. Berth keeps them for the API; its own Raft timing is fixed for a
/// fast failover (see `crate::manager::raft_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftSpec {
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: u64,
    #[serde(default)]
    pub keep_old_snapshots: u64,
    #[serde(default = "default_slow_followers")]
    pub log_entries_for_slow_followers: u64,
    #[serde(default = "default_election_tick")]
    pub election_tick: u64,
    #[serde(default = "default_heartbeat_tick")]
    pub heartbeat_tick: u64,
}

fn default_snapshot_interval() -> u64 {
    10_000
}
fn default_slow_followers() -> u64 {
    500
}
fn default_election_tick() -> u64 {
    10
}
fn default_heartbeat_tick() -> u64 {
    1
}

impl Default for RaftSpec {
    fn default() -> Self {
        RaftSpec {
            snapshot_interval: default_snapshot_interval(),
            keep_old_snapshots: 0,
            log_entries_for_slow_followers: default_slow_followers(),
            election_tick: default_election_tick(),
            heartbeat_tick: default_heartbeat_tick(),
        }
    }
}

/// How often nodes report to the managers, in nanoseconds (Docker's unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatcherSpec {
    #[serde(default = "default_heartbeat_period")]
    pub heartbeat_period: u64,
}

/// One second: a node that misses [`MISSED_HEARTBEATS`] periods is down, so a dead node's
/// tasks can be replaced within 5 s, while a blip shorter than that changes nothing.
pub const DEFAULT_HEARTBEAT_PERIOD_NS: u64 = 1_000_000_000;
/// Heartbeat periods without news after which the leader marks a node down.
pub const MISSED_HEARTBEATS: u32 = 3;

fn default_heartbeat_period() -> u64 {
    DEFAULT_HEARTBEAT_PERIOD_NS
}

impl Default for DispatcherSpec {
    fn default() -> Self {
        DispatcherSpec {
            heartbeat_period: default_heartbeat_period(),
        }
    }
}

impl DispatcherSpec {
    pub fn period(&self) -> std::time::Duration {
        let ns = if self.heartbeat_period == 0 {
            DEFAULT_HEARTBEAT_PERIOD_NS
        } else {
            self.heartbeat_period
        };
        std::time::Duration::from_nanos(ns)
    }
}

/// Node certificate lifetime in nanoseconds (90 days by default, at least one hour), and
/// what asks for a root rotation (`swarm ca --rotate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaConfig {
    #[serde(default = "default_cert_expiry")]
    pub node_cert_expiry: u64,
    /// A root to rotate to (PEM); kept in the spec as Docker keeps it.
    #[serde(
        default,
        rename = "SigningCACert",
        skip_serializing_if = "String::is_empty"
    )]
    pub signing_ca_cert: String,
    /// The key of `signing_ca_cert`: taken by an update, never stored in the spec (the
    /// cluster's CA key lives in [`Cluster::ca_key`] / [`RootRotation::ca_key`]).
    #[serde(
        default,
        rename = "SigningCAKey",
        skip_serializing_if = "String::is_empty"
    )]
    pub signing_ca_key: String,
    /// A change of this counter asks for a rotation to a newly generated root.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub force_rotate: u64,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub const DEFAULT_CERT_EXPIRY_NS: u64 = 90 * 24 * 3600 * 1_000_000_000;
pub const MIN_CERT_EXPIRY_NS: u64 = 3600 * 1_000_000_000;

fn default_cert_expiry() -> u64 {
    DEFAULT_CERT_EXPIRY_NS
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            node_cert_expiry: default_cert_expiry(),
            signing_ca_cert: String::new(),
            signing_ca_key: String::new(),
            force_rotate: 0,
            other: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionConfig {
    #[serde(default)]
    pub auto_lock_managers: bool,
}

/// The cluster object (one per cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub meta: Meta,
    pub spec: ClusterSpec,
    /// Root CA certificate (PEM), handed to every node.
    pub ca_cert: String,
    /// Root CA key (PEM), replicated among managers only: any leader can sign certificates.
    pub ca_key: String,
    /// Join tokens, `SWMTKN-1-<ca digest>-<secret>`; rotation replaces one.
    pub worker_token: String,
    pub manager_token: String,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u32,
    /// The managers' unlock key (`SWMKEY-1-…`) while autolock is on; every manager seals its
    /// TLS key, the CA key and its Raft data key with it (`crate::swarm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_key: Option<String>,
    /// A root rotation under way (`swarm ca --rotate`): nodes renew under the new root
    /// until every node holds a certificate from it; then it replaces `ca_cert`/`ca_key`
    /// and the join tokens are made anew (`crate::rotation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_rotation: Option<RootRotation>,
}

/// The root a rotation moves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRotation {
    /// The new root (PEM, self-signed).
    pub ca_cert: String,
    /// Its key (PEM), replicated among managers like `Cluster::ca_key`.
    pub ca_key: String,
    /// The new root's name and key certified by the old root (PEM): presented after every
    /// leaf issued during the rotation, so nodes still trusting only the old root accept it.
    pub cross_signed: String,
}

/// The TLS facts a node reports about itself (Docker's `Description.TLSInfo`): the roots it
/// trusts and the issuer of its certificate (subject and SubjectPublicKeyInfo, base64 DER).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTlsInfo {
    pub trust_root: String,
    pub cert_issuer_subject: String,
    pub cert_issuer_public_key: String,
}

/// `Spec` of a node (`docker node update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub role: Role,
    pub availability: Availability,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

impl Availability {
    pub fn parse(s: &str) -> Option<Availability> {
        match s {
            "" | "active" => Some(Availability::Active),
            "pause" => Some(Availability::Pause),
            "drain" => Some(Availability::Drain),
            _ => None,
        }
    }
}

/// What a node reports about itself when it joins and in its heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    pub hostname: String,
    pub architecture: String,
    pub os: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub engine_version: String,
    pub engine_labels: BTreeMap<String, String>,
    /// Filled in by the swarm session (the engine does not know it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_info: Option<NodeTlsInfo>,
    /// The public key and port of the node's WireGuard tunnels (encrypted overlays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<crate::tunnels::WireguardKey>,
}

/// A node's state as the leader sees it (`Status.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Unknown,
    Down,
    Ready,
    Disconnected,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Down => "down",
            NodeState::Ready => "ready",
            NodeState::Disconnected => "disconnected",
        }
    }
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub meta: Meta,
    pub spec: NodeSpec,
    pub description: Description,
    pub state: NodeState,
    pub message: String,
    /// The address the node is seen at (its advertise address, without port).
    pub addr: String,
    /// The cluster port address (`ip:port`) of a manager; also kept after a demotion
    /// so that a later promotion knows where to reach it.
    pub manager_addr: String,
    /// The node's Raft id (managers; 0 for a node that never was one).
    pub raft_id: u64,
    /// SHA-256 of the node's current certificate: how the cluster port recognises it. A removed
    /// node's certificate matches no node and is refused.
    pub cert_fingerprint: String,
    /// The node's address inside the WireGuard tunnels (`crate::tunnels`), allocated once it
    /// has published a key; empty before.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tunnel_addr: String,
}

impl Node {
    /// A node that has just joined (or made) the cluster: ready, no labels.
    pub fn joined(
        id: String,
        role: Role,
        availability: Availability,
        description: Description,
    ) -> Node {
        Node {
            id,
            meta: Meta::default(),
            spec: NodeSpec {
                name: String::new(),
                labels: BTreeMap::new(),
                role,
                availability,
            },
            description,
            state: NodeState::Ready,
            message: String::new(),
            addr: String::new(),
            manager_addr: String::new(),
            raft_id: 0,
            cert_fingerprint: String::new(),
            tunnel_addr: String::new(),
        }
    }
}

/// Which store a [`DataObject`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Secret,
    Config,
}

impl DataKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DataKind::Secret => "secret",
            DataKind::Config => "config",
        }
    }
    /// Docker's size limits: 500 KiB for a secret, 1000 KiB for a config.
    pub fn max_size(self) -> usize {
        match self {
            DataKind::Secret => 500 * 1024,
            DataKind::Config => 1000 * 1024,
        }
    }
}

/// A secret or a config: named, immutable data with labels (only labels can change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataObject {
    pub id: String,
    pub meta: Meta,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub data: Vec<u8>,
    /// `Templating` and `Driver` as given (Docker's `Driver` objects), kept for inspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Value>,
}
