//! The cluster port's messages and the client side of its two gRPC services.
//!
//! ```text
//!  Raft service     AppendEntries · Vote · InstallSnapshot   (openraft messages as JSON)
//!  Cluster service  Call(Request) → Result<Reply, ClusterError>   (JSON)
//! ```
//! Both run over mutual TLS ([`crate::ca`]); servers are addressed by the name
//! `swarm-manager`, which only manager certificates carry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ca::Role;
use crate::error::{ClusterError, ClusterResult};
use crate::objects::Description;
use crate::state::{Command, Outcome};

pub mod pb {
    #![allow(clippy::all, clippy::unwrap_used)]
    tonic::include_proto!("berth.cluster.v1");
}

/// A manager as nodes know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub node_id: String,
    /// Cluster port address, `ip:port`.
    pub addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Join(JoinRequest),
    /// A write, forwarded by a manager to the leader.
    Propose(Command),
    /// Make a manager-role node a Raft voter (sent to the leader once the node serves Raft).
    AddManager {
        node_id: String,
    },
    /// Take a manager out of the Raft membership (before a demotion or a leave).
    RemoveManager {
        node_id: String,
    },
    Heartbeat(Heartbeat),
    /// A node promoted to manager fetches what a manager holds: the CA key and a manager
    /// certificate for the key of its certificate signing request.
    ManagerMaterial {
        csr: String,
    },
    /// A node renews its certificate (before expiry, or after a role change): the caller's
    /// current certificate identifies it; the new one carries the role the cluster has for
    /// it and the cluster's current certificate lifetime.
    Renew {
        csr: String,
    },
    /// An agent asks for the tasks assigned to it; answered when they differ from what it
    /// has (`known`, the fingerprint of its last answer) or after a few seconds.
    Assignments {
        known: u64,
    },
    /// An agent reports what its tasks did.
    TaskStatus(Vec<TaskReport>),
    /// A manager tells the others of a log subscription it serves (`logs.rs`).
    LogSubscribe(crate::logs::LogSubscription),
    LogCancel {
        id: String,
    },
    /// A node sends log lines for a subscription.
    PublishLogs(crate::logs::LogBatch),
    /// A node with no certificate asks to join with a cluster secret instead of a token
    /// (the engine's automatic join); the payload is the engine's, answered by the
    /// manager's [`AutoJoinResponder`](crate::manager::AutoJoinResponder).
    AutoJoin(serde_json::Value),
    /// A node asks where the other ready nodes' peer ports are (to fetch an image from one).
    PeerAddrs,
    /// A node asks for an address for a standalone container on an attachable network
    /// (`docker run --network <overlay>`): answered with [`Reply::Attached`].
    AttachNetwork {
        /// The network's id or name.
        network: String,
        container_id: String,
    },
    /// A node gives a standalone container's address back (the container is gone).
    DetachNetwork {
        network_id: String,
        container_id: String,
    },
}

/// One observation of a task by the node that runs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskReport {
    pub task_id: String,
    pub status: crate::tasks::TaskStatus,
}

/// The tasks a node is to run (or stop), with the secrets and configs they use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignments {
    pub fingerprint: u64,
    pub tasks: Vec<crate::tasks::Task>,
    #[serde(default)]
    pub secrets: Vec<crate::objects::DataObject>,
    #[serde(default)]
    pub configs: Vec<crate::objects::DataObject>,
    /// Log subscriptions that ask this node for its tasks' logs.
    #[serde(default)]
    pub log_subscriptions: Vec<crate::logs::LogSubscription>,
    /// Every swarm network this node has tasks or standalone containers on, and ingress,
    /// with all its endpoints in the cluster:
    /// what the node programs its overlay data plane, load balancing and DNS from.
    #[serde(default)]
    pub networks: Vec<NetworkPeers>,
    /// This node's WireGuard tunnels, when it has a task on an encrypted network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<crate::tunnels::Tunnels>,
}

/// One network as a node that has tasks on it must know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPeers {
    /// The network (its allocation table left out).
    pub network: crate::networks::Network,
    /// Every task holding an address on it, on any node.
    pub endpoints: Vec<PeerEndpoint>,
    /// Every service with tasks on it: its name and VIP.
    pub services: Vec<ServiceEndpoint>,
    /// An encrypted network: this node's tunnel address, the VXLAN local (the endpoints'
    /// `node_addr` are then tunnel addresses too); empty for a plain one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tunnel: String,
}

/// A task's address on a network, and where the task runs. A node's ingress sandbox and a
/// standalone container are endpoints too: their `task_id` is their holder (`node:<id>`,
/// `attach:<node>:<container>`) and their `service_id` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEndpoint {
    pub task_id: String,
    pub service_id: String,
    pub node_id: String,
    /// The node's data-path address (its advertise address): the VXLAN underlay peer.
    pub node_addr: String,
    /// `10.0.1.5/24`.
    pub address: String,
    /// Running and meant to run on a node that is up: DNS and load balancing use only these.
    pub running: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A service's name on a network and its virtual IP (empty for endpoint mode dnsrr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEndpoint {
    pub service_id: String,
    pub name: String,
    /// `10.0.1.2/24`, or empty.
    pub vip: String,
    /// The service's network aliases on this network (names that resolve like its name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// On the ingress network: the ports it publishes through the routing mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::ingress::PortConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    /// The joiner's advertise address (ip).
    pub addr: String,
    /// Its cluster port address, `ip:port`.
    pub manager_addr: String,
    pub availability: String,
    pub description: Description,
    /// PEM of the joiner's certificate signing request: its private key never leaves it.
    pub csr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReply {
    pub node_id: String,
    pub raft_id: u64,
    pub role: Role,
    pub cluster_id: String,
    /// The roots to trust (PEM): the cluster's root first (the one the token names), and
    /// during a root rotation the new root after it.
    pub ca_cert: String,
    /// The joiner's certificate, for the key of its request.
    pub cert_pem: String,
    /// Managers only.
    pub ca_key: Option<String>,
    pub managers: Vec<Peer>,
    /// Managers only, while autolock is on: the key to seal the new manager's secrets with.
    #[serde(default)]
    pub unlock_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: String,
    pub addr: String,
    pub description: Description,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub period_ms: u64,
    /// The node's role as the cluster has it: a change means a promotion or a demotion.
    pub role: Role,
    pub managers: Vec<Peer>,
    /// The roots nodes are to trust now (PEM; old and new during a root rotation).
    #[serde(default)]
    pub trust_root: String,
    /// The root new certificates are issued under (PEM): a node whose certificate has
    /// another issuer renews it.
    #[serde(default)]
    pub desired_root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Material {
    pub ca_key: String,
    /// A manager certificate for the key of the request.
    pub cert_pem: String,
    pub raft_id: u64,
    /// While autolock is on: the key to seal the new manager's secrets with.
    #[serde(default)]
    pub unlock_key: Option<String>,
    /// The roots to trust (PEM), the cluster's root first; `ca_key` is its key.
    #[serde(default)]
    pub trust_root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Joined(Box<JoinReply>),
    Proposed {
        outcome: Outcome,
        index: u64,
    },
    Done,
    Heartbeat(HeartbeatReply),
    Material(Material),
    /// The renewed certificate (PEM, with its intermediates), for the key of the request,
    /// and the roots to trust with it.
    Renewed {
        cert_pem: String,
        #[serde(default)]
        trust_root: String,
    },
    Assignments(Box<Assignments>),
    /// The answer to [`Request::AutoJoin`] (the engine's payload).
    AutoJoin(serde_json::Value),
    /// The answer to [`Request::PeerAddrs`].
    PeerAddrs(Vec<crate::peer::PeerAddr>),
    /// The network a standalone container was attached to and its address (`10.0.1.5/24`).
    Attached {
        network_id: String,
        name: String,
        address: String,
    },
}

/// A client of one manager's Cluster service.
#[derive(Clone)]
pub struct ClusterClient {
    inner: pb::cluster_client::ClusterClient<tonic::transport::Channel>,
    pub addr: SocketAddr,
}

/// How long one call may take before the manager counts as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl ClusterClient {
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> ClusterClient {
        Self::new_live(addr, crate::ca::LiveConfig::new(tls))
    }

    /// A client whose new connections follow `tls` as it changes.
    pub fn new_live(
        addr: SocketAddr,
        tls: crate::ca::LiveConfig<rustls::ClientConfig>,
    ) -> ClusterClient {
        let channel = crate::ca::channel_live(addr, tls);
        ClusterClient {
            inner: pb::cluster_client::ClusterClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            addr,
        }
    }

    pub async fn call(&self, req: &Request) -> ClusterResult<Reply> {
        self.call_timeout(req, CALL_TIMEOUT).await
    }

    pub async fn call_timeout(&self, req: &Request, timeout: Duration) -> ClusterResult<Reply> {
        let json = serde_json::to_vec(req).map_err(|e| ClusterError::internal("encode", e))?;
        let mut client = self.inner.clone();
        let fut = client.call(pb::Blob { json });
        let resp = match tokio::time::timeout(timeout, fut).await {
            Err(_) => {
                return Err(ClusterError::Unavailable(format!(
                    "manager {} did not answer within {timeout:?}",
                    self.addr
                )))
            }
            Ok(Err(status)) => return Err(status_error(self.addr, status)),
            Ok(Ok(r)) => r.into_inner(),
        };
        let reply: Result<Reply, ClusterError> = serde_json::from_slice(&resp.json)
            .map_err(|e| ClusterError::internal("decode reply", e))?;
        reply
    }
}

fn status_error(addr: SocketAddr, status: tonic::Status) -> ClusterError {
    match status.code() {
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            ClusterError::PermissionDenied(status.message().to_owned())
        }
        _ => ClusterError::Unavailable(format!("manager {addr} unreachable: {}", status.message())),
    }
}

/// Parses a cluster port address (`ip:port`, or `ip` meaning port 2377).
pub fn parse_addr(s: &str) -> ClusterResult<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, crate::DEFAULT_PORT));
    }
    Err(ClusterError::InvalidArgument(format!(
        "invalid address {s:?}: expected an IP address with an optional port"
    )))
}
