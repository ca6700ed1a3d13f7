//! The swarm seam's typed models, Docker's messages for a node outside a swarm, and
//! [`InactiveSwarm`], the [`SwarmBackend`] of a node that is in no cluster.
//!
//! ```text
//!  /swarm*, /nodes*, /services*, /tasks*, /secrets*, /configs*
//!      ─► routes::swarm (parse query/body into these models)
//!      ─► Backends::swarm: InactiveSwarm today; the cluster control plane once it exists
//! ```
//! `InactiveSwarm` holds no state, starts nothing and opens no port: outside a cluster every
//! cluster endpoint answers 503 as dockerd does, `/info` reports `LocalNodeState: inactive`
//! and `/_ping` sends `Swarm: inactive`. `swarm init` and `swarm join` are the two calls that
//! dockerd performs for real on such a node; this build cannot, so they answer 501.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::{ByteStream, Filters, LogOptions, ServiceUpdateOptions, SwarmBackend};
use crate::error::{ApiError, ApiResult, ErrorKind};

/// dockerd's answer to every cluster call on a node that is in no swarm (503).
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// dockerd's answer to `swarm leave` on a node that is in no swarm (503).
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

/// 503: the call needs a swarm manager and this node is in no swarm.
pub fn not_a_manager() -> ApiError {
    ApiError::new(ErrorKind::Unavailable, NOT_A_MANAGER)
}

/// 503: `swarm leave` on a node that is in no swarm.
pub fn not_in_a_swarm() -> ApiError {
    ApiError::new(ErrorKind::Unavailable, NOT_IN_A_SWARM)
}

/// `Swarm.LocalNodeState` of `/info`; also the `Swarm` header of `/_ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalNodeState {
    #[default]
    Inactive,
    Pending,
    Active,
    Error,
    Locked,
}

impl LocalNodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalNodeState::Inactive => "inactive",
            LocalNodeState::Pending => "pending",
            LocalNodeState::Active => "active",
            LocalNodeState::Error => "error",
            LocalNodeState::Locked => "locked",
        }
    }
}

/// A manager this node knows of (`Swarm.RemoteManagers[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "Addr")]
    pub addr: String,
}

/// The `Swarm` object of `/info`. Outside a cluster dockerd sends exactly
/// `{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,
/// "Error":"","RemoteManagers":null}`; the counts and `Cluster` appear once it is a member.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: LocalNodeState,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<Peer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managers: Option<u64>,
    /// The cluster's `ClusterInfo` (ID, Version, Spec, ...), owned by the control plane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Value>,
}

/// `POST /swarm/init` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub data_path_port: u32,
    pub default_addr_pool: Vec<String>,
    pub force_new_cluster: bool,
    pub subnet_size: u32,
    /// The cluster `Spec` (orchestration, raft, dispatcher, CA, encryption, task defaults).
    pub spec: Value,
    pub auto_lock_managers: bool,
    pub availability: String,
}

/// `POST /swarm/join` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub remote_addrs: Vec<String>,
    pub join_token: String,
    pub availability: String,
}

/// `POST /swarm/update` query; the body is the cluster `Spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwarmUpdateFlags {
    /// The cluster object's version the update is based on.
    pub version: u64,
    pub rotate_worker_token: bool,
    pub rotate_manager_token: bool,
    pub rotate_manager_unlock_key: bool,
}

/// `POST /swarm/unlock` body, and `GET /swarm/unlockkey` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnlockKey {
    pub unlock_key: String,
}

/// The node of a host that is in no swarm: Docker's answers, nothing running behind them.
#[derive(Debug, Clone, Copy, Default)]
pub struct InactiveSwarm;

#[async_trait]
impl SwarmBackend for InactiveSwarm {
    fn local_node_state(&self) -> LocalNodeState {
        LocalNodeState::Inactive
    }
    async fn info(&self) -> ApiResult<SwarmInfo> {
        Ok(SwarmInfo::default())
    }
    async fn init(&self, _req: InitRequest) -> ApiResult<String> {
        Err(not_implemented("swarm init"))
    }
    async fn join(&self, _req: JoinRequest) -> ApiResult<()> {
        Err(not_implemented("swarm join"))
    }
    async fn leave(&self, _force: bool) -> ApiResult<()> {
        Err(not_in_a_swarm())
    }
    async fn inspect(&self) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn update(&self, _flags: SwarmUpdateFlags, _spec: Value) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn unlock(&self, _key: UnlockKey) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn unlock_key(&self) -> ApiResult<UnlockKey> {
        Err(not_a_manager())
    }
    async fn node_list(&self, _filters: Filters) -> ApiResult<Vec<Value>> {
        Err(not_a_manager())
    }
    async fn node_inspect(&self, _id: &str) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn node_remove(&self, _id: &str, _force: bool) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn node_update(&self, _id: &str, _version: u64, _spec: Value) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn service_list(&self, _filters: Filters, _status: bool) -> ApiResult<Vec<Value>> {
        Err(not_a_manager())
    }
    async fn service_create(&self, _spec: Value, _auth: Option<String>) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn service_inspect(&self, _id: &str, _insert_defaults: bool) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn service_remove(&self, _id: &str) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn service_update(
        &self,
        _id: &str,
        _opts: ServiceUpdateOptions,
        _spec: Value,
    ) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn service_logs(&self, _id: &str, _opts: LogOptions) -> ApiResult<ByteStream> {
        Err(not_a_manager())
    }
    async fn task_list(&self, _filters: Filters) -> ApiResult<Vec<Value>> {
        Err(not_a_manager())
    }
    async fn task_inspect(&self, _id: &str) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn task_logs(&self, _id: &str, _opts: LogOptions) -> ApiResult<ByteStream> {
        Err(not_a_manager())
    }
    async fn secret_list(&self, _filters: Filters) -> ApiResult<Vec<Value>> {
        Err(not_a_manager())
    }
    async fn secret_create(&self, _spec: Value) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn secret_inspect(&self, _id: &str) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn secret_remove(&self, _id: &str) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn secret_update(&self, _id: &str, _version: u64, _spec: Value) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn config_list(&self, _filters: Filters) -> ApiResult<Vec<Value>> {
        Err(not_a_manager())
    }
    async fn config_create(&self, _spec: Value) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn config_inspect(&self, _id: &str) -> ApiResult<Value> {
        Err(not_a_manager())
    }
    async fn config_remove(&self, _id: &str) -> ApiResult<()> {
        Err(not_a_manager())
    }
    async fn config_update(&self, _id: &str, _version: u64, _spec: Value) -> ApiResult<()> {
        Err(not_a_manager())
    }
}

/// 501: dockerd performs this call on a node outside a swarm; this build cannot yet.
fn not_implemented(what: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotImplemented,
        format!("{what} is not implemented yet in berth"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_outside_a_swarm_is_dockerds() {
        let v = serde_json::to_value(SwarmInfo::default()).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                "ControlAvailable": false, "Error": "", "RemoteManagers": null})
        );
    }

    #[test]
    fn init_and_join_bodies_parse_the_clis_fields() {
        let r: InitRequest = serde_json::from_str(
            r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.0.0.1","DataPathPort":4789,
                "DefaultAddrPool":["10.10.0.0/16"],"SubnetSize":24,"ForceNewCluster":false,
                "Spec":{"Orchestration":{}},"AutoLockManagers":true,"Availability":"active"}"#,
        )
        .expect("init body");
        assert_eq!(r.advertise_addr, "10.0.0.1");
        assert_eq!(r.default_addr_pool, vec!["10.10.0.0/16"]);
        assert!(r.auto_lock_managers);
        let j: JoinRequest =
            serde_json::from_str(r#"{"RemoteAddrs":["10.0.0.1:2377"],"JoinToken":"SWMTKN-1-x"}"#)
                .expect("join body");
        assert_eq!(j.remote_addrs, vec!["10.0.0.1:2377"]);
        assert_eq!(j.join_token, "SWMTKN-1-x");
    }

    #[test]
    fn local_node_state_serializes_as_the_ping_header() {
        for s in [
            LocalNodeState::Inactive,
            LocalNodeState::Pending,
            LocalNodeState::Active,
            LocalNodeState::Error,
            LocalNodeState::Locked,
        ] {
            let v = serde_json::to_value(s).expect("serialize");
            assert_eq!(v.as_str(), Some(s.as_str()));
        }
    }
}
