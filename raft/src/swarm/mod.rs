//! This host's membership of a swarm: `init`, `join`, `leave`, restore at daemon start, the
//! node's session with the managers (heartbeats, manager failover), and role changes.
//!
//! ```text
//!  <data-root>/swarm/
//!     node.json      identity: node id, role, cluster id, addresses, known managers
//!     ca.crt         the roots this node trusts: the cluster's root, and during a root
//!                    rotation the new one after it (crate::rotation)
//!     node.crt  node.key   [ca.key: managers, the key of the first root in ca.crt]
//!     raft.dek       managers only: the key the Raft log and snapshots are sealed with
//!     raft.redb      managers only (crate::storage), sealed with raft.dek
//! ```
//! With autolock on, the secrets among these (`node.key`, `ca.key`, `raft.dek`) are stored
//! sealed with the cluster's unlock key instead (`<name>.sealed`, [`ca::seal`]): a restarted
//! manager is *locked* (it runs nothing of the swarm) until `swarm unlock` gives the key.
//! Every manager follows the cluster's autolock setting and unlock key from the replicated
//! cluster object (`sync_keys`): turning autolock on seals, off unseals, a rotation re-seals.
//! Workers never seal (Docker locks managers only).
//! Nothing here runs, and no port is open, until `init` or `join` (or a restore of a node that
//! was a member). Every node, managers included, runs one session loop that heartbeats a
//! manager (its own first); the reply tells it the managers and its role, so a promotion or a
//! demotion decided anywhere reaches the node within a heartbeat; so do the roots to trust
//! and the root to hold a certificate from, which is how a root rotation reaches each node.
//!
//! Files of this module: `files.rs` (what is on disk), `keys.rs` (autolock and `swarm
//! unlock`), `session.rs` (heartbeats, role changes, certificate renewal, trusted roots).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::ca::{self, CaError, NodeCert, Role, RootCa, UnlockKey};
use crate::error::{ClusterError, ClusterResult};
use crate::manager::{new_node_id, new_raft_id, AutoJoinResponder, Manager, ManagerConfig};
use crate::objects::{
    Availability, Cluster, ClusterSpec, Description, Node, NodeState, NodeTlsInfo,
};
use crate::rpc::{ClusterClient, Heartbeat, JoinReply, JoinRequest, Peer, Reply, Request};
use crate::state::Op;

mod files;
mod keys;
mod session;

use files::{write_atomic, Certs};
use keys::keys_loop;
use session::session_loop;
pub use session::RENEW_AFTER_ENV;

/// dockerd's words for a second init/join.
pub const ALREADY_IN_SWARM: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";
/// dockerd's words for a manager's `swarm leave` without `--force`.
pub const LEAVE_MANAGER: &str = "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves the remaining managers without a quorum or, if it is the last one, deletes the swarm state. Use `--force` to suppress this message.";

/// The node's identity, persisted in `node.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: String,
    pub raft_id: u64,
    pub role: Role,
    pub cluster_id: String,
    /// Advertise address (ip).
    pub addr: String,
    /// Cluster port address others reach this node at (`ip:port`).
    pub manager_addr: String,
    /// Where the cluster port listens when this node is a manager.
    pub listen_addr: String,
    pub managers: Vec<Peer>,
    /// Set when the cluster refused this node (removed): it stays out until `swarm leave`.
    #[serde(default)]
    pub error: String,
}

/// `swarm init` as the engine hands it over (addresses already resolved).
pub struct InitParams {
    pub listen: SocketAddr,
    pub advertise: SocketAddr,
    pub force_new_cluster: bool,
    pub spec: ClusterSpec,
    pub availability: String,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u32,
    /// Set with `--autolock`: the new cluster's unlock key.
    pub unlock_key: Option<UnlockKey>,
}

/// `swarm join` as the engine hands it over.
pub struct JoinParams {
    pub remote: Vec<SocketAddr>,
    pub token: String,
    pub listen: SocketAddr,
    pub advertise: SocketAddr,
    pub availability: String,
}

/// What `/info` and `/_ping` report.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub active: bool,
    pub node_id: String,
    pub addr: String,
    pub manager: bool,
    pub error: String,
    pub managers: Vec<Peer>,
    /// A manager whose keys are sealed, waiting for `swarm unlock`.
    pub locked: bool,
}

struct Active {
    id: Identity,
    manager: Option<Arc<Manager>>,
    /// The session and key-keeping loops (none while locked).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    locked: bool,
}

impl Active {
    fn stop_tasks(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The files autolock seals: the node's TLS key, the CA key (managers), the Raft data key.
const SECRETS: [&str; 3] = ["node.key", "ca.key", "raft.dek"];

/// This host's swarm membership.
pub struct Swarm {
    dir: PathBuf,
    describe: Arc<dyn Fn() -> Description + Send + Sync>,
    active: Mutex<Option<Active>>,
    status: std::sync::RwLock<Status>,
    /// Clients of the managers under this node's current certificate, made once and dropped
    /// whenever the certificates change (`save_certs`, `wipe`).
    clients: std::sync::Mutex<Option<SessionClients>>,
    /// The key this node's secrets are sealed with on disk (None: stored plain). Known after
    /// init, join or unlock; a restarted node with sealed secrets has none: it is locked.
    kek: std::sync::Mutex<Option<UnlockKey>>,
    /// When this node's certificate is due for renewal (unix seconds) and the role it
    /// grants: read whenever the certificate is loaded or saved.
    cert_due: std::sync::Mutex<Option<(i64, Role)>>,
    /// Handed to every manager this node starts (`set_auto_join`).
    auto_join: std::sync::Mutex<Option<Arc<dyn AutoJoinResponder>>>,
    /// What the peer port serves (`set_image_source`); without one it is not opened.
    images: std::sync::Mutex<Option<Arc<dyn crate::peer::ImageSource>>>,
}

struct SessionClients {
    tls: Arc<rustls::ClientConfig>,
    by_addr: HashMap<SocketAddr, ClusterClient>,
    /// What this node reports as its `TLSInfo`, read with the certificates.
    tls_info: NodeTlsInfo,
}

impl Swarm {
    pub fn new(dir: PathBuf, describe: Arc<dyn Fn() -> Description + Send + Sync>) -> Arc<Swarm> {
        Arc::new(Swarm {
            dir,
            describe,
            active: Mutex::new(None),
            status: Default::default(),
            clients: Default::default(),
            kek: Default::default(),
            cert_due: Default::default(),
            auto_join: Default::default(),
            images: Default::default(),
        })
    }

    /// Managers started from now on answer automatic joins with `r` (set it before
    /// `restore`).
    pub fn set_auto_join(&self, r: Arc<dyn AutoJoinResponder>) {
        *self.auto_join.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    /// The peer port serves `src`'s images to the swarm's other nodes (set before `restore`).
    pub fn set_image_source(&self, src: Arc<dyn crate::peer::ImageSource>) {
        *self.images.lock().unwrap_or_else(|p| p.into_inner()) = Some(src);
    }

    /// `image`'s `docker save` archive, from the first other ready node that has it.
    pub async fn fetch_image(
        self: &Arc<Self>,
        image: &str,
    ) -> ClusterResult<futures_util::stream::BoxStream<'static, Result<Vec<u8>, String>>> {
        let peers = match self
            .call(&crate::rpc::Request::PeerAddrs, crate::rpc::CALL_TIMEOUT)
            .await?
        {
            crate::rpc::Reply::PeerAddrs(p) => p,
            other => {
                return Err(ClusterError::Internal(format!(
                    "unexpected reply to PeerAddrs: {other:?}"
                )))
            }
        };
        let certs = self.load_certs()?;
        let tls = ca::client_config(&certs.trust_pem, Some(&certs.cert))
            .map_err(|e| ClusterError::internal("client tls", e))?;
        crate::peer::fetch(&peers, image, tls).await
    }

    /// The peer port's loop for the node at `ip` (none without an image source).
    fn peer_port(self: &Arc<Self>, ip: &str) -> Option<tokio::task::JoinHandle<()>> {
        let src = self
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let ip: std::net::IpAddr = ip.parse().ok()?;
        let me = Arc::downgrade(self);
        let tls = move || {
            let s = me
                .upgrade()
                .ok_or_else(|| ClusterError::Unavailable("the node is shutting down".into()))?;
            let certs = s.load_certs()?;
            ca::server_config(&certs.trust_pem, &certs.cert)
                .map_err(|e| ClusterError::internal("server tls", e))
        };
        Some(tokio::spawn(crate::peer::serve(ip, src, tls)))
    }

    /// Cheap, for `/_ping`.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The manager of this node, or dockerd's 503 when it is none.
    pub async fn manager(&self) -> ClusterResult<Arc<Manager>> {
        let a = self.active.lock().await;
        a.as_ref()
            .and_then(|a| a.manager.clone())
            .ok_or_else(|| ClusterError::NotAllowed(NOT_A_MANAGER.into()))
    }

    /// Resumes the membership recorded in the data root (at daemon start).
    pub async fn restore(self: &Arc<Self>) -> ClusterResult<()> {
        let Some(id) = self.load_identity()? else {
            return Ok(());
        };
        let mut guard = self.active.lock().await;
        if self.sealed() {
            tracing::info!(node_id = %id.node_id, "swarm membership restored, locked: waiting for swarm unlock");
            *guard = Some(self.activate_locked(id));
            return Ok(());
        }
        let manager = if id.role == Role::Manager && id.error.is_empty() {
            Some(self.start_manager(&id).await?)
        } else {
            None
        };
        tracing::info!(node_id = %id.node_id, role = id.role.as_str(), "swarm membership restored");
        *guard = Some(self.activate(id, manager));
        Ok(())
    }

    pub async fn init(self: &Arc<Self>, p: InitParams) -> ClusterResult<String> {
        let mut guard = self.active.lock().await;
        if p.force_new_cluster {
            return self.force_new_cluster(&mut guard, p).await;
        }
        if guard.is_some() {
            return Err(ClusterError::NotAllowed(ALREADY_IN_SWARM.into()));
        }
        let availability = parse_availability(&p.availability)?;
        if p.spec.ca_config.node_cert_expiry < crate::objects::MIN_CERT_EXPIRY_NS {
            return Err(ClusterError::InvalidArgument(
                "minimum certificate expiry time is 1h0m0s".into(),
            ));
        }
        self.wipe()?;
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = p.unlock_key.clone();
        let root = RootCa::generate().map_err(|e| ClusterError::internal("create root CA", e))?;
        let node_id = new_node_id();
        let cluster_id = new_node_id();
        let raft_id = new_raft_id();
        let expiry = Duration::from_nanos(p.spec.ca_config.node_cert_expiry);
        let cert = root
            .issue(&node_id, Role::Manager, &cluster_id, expiry)
            .map_err(|e| ClusterError::internal("issue certificate", e))?;
        self.save_certs(root.cert_pem(), root.key_pem(), &cert)?;
        let id = Identity {
            node_id: node_id.clone(),
            raft_id,
            role: Role::Manager,
            cluster_id: cluster_id.clone(),
            addr: p.advertise.ip().to_string(),
            manager_addr: p.advertise.to_string(),
            listen_addr: p.listen.to_string(),
            managers: vec![Peer {
                node_id: node_id.clone(),
                addr: p.advertise.to_string(),
            }],
            error: String::new(),
        };
        let cluster = Cluster {
            id: cluster_id,
            meta: Default::default(),
            worker_token: ca::new_token(&root),
            manager_token: ca::new_token(&root),
            ca_cert: root.cert_pem().to_owned(),
            ca_key: root.key_pem().unwrap_or_default().to_owned(),
            spec: p.spec,
            default_addr_pool: p.default_addr_pool,
            subnet_size: p.subnet_size,
            data_path_port: p.data_path_port,
            unlock_key: p.unlock_key.as_ref().map(UnlockKey::to_text),
            root_rotation: None,
        };
        let node = Node {
            addr: id.addr.clone(),
            manager_addr: id.manager_addr.clone(),
            raft_id,
            cert_fingerprint: cert.fingerprint.clone(),
            ..Node::joined(
                node_id.clone(),
                Role::Manager,
                availability,
                (self.describe)(),
            )
        };
        let mgr = match self.start_manager(&id).await {
            Ok(m) => m,
            Err(e) => {
                let _ = self.wipe();
                return Err(e);
            }
        };
        if let Err(e) = mgr
            .bootstrap(Op::Init {
                cluster: Box::new(cluster),
                node: Box::new(node),
            })
            .await
        {
            mgr.shutdown().await;
            let _ = self.wipe();
            return Err(e);
        }
        self.save_identity(&id)?;
        tracing::info!(node_id = %node_id, "swarm initialised");
        *guard = Some(self.activate(id, Some(mgr)));
        Ok(node_id)
    }

    /// `swarm init --force-new-cluster`: this manager's state becomes a one-manager cluster.
    async fn force_new_cluster(
        self: &Arc<Self>,
        guard: &mut Option<Active>,
        p: InitParams,
    ) -> ClusterResult<String> {
        let Some(active) = guard.take() else {
            return Err(ClusterError::InvalidArgument(
                "--force-new-cluster needs the state of a former manager on this node".into(),
            ));
        };
        let mut id = active.id.clone();
        if active.locked {
            *guard = Some(active);
            return Err(ClusterError::Locked);
        }
        if id.role != Role::Manager {
            *guard = Some(active);
            return Err(ClusterError::InvalidArgument(
                "--force-new-cluster can only be used on a manager".into(),
            ));
        }
        active.stop_tasks();
        let old = active.manager.clone();
        let state = match &old {
            Some(m) => m.read(|s| s.clone()),
            None => Default::default(),
        };
        if let Some(m) = old {
            m.shutdown().await;
        }
        // A fresh Raft log seeded with the old state: the cluster, its nodes (other managers
        // become workers in the records and are dropped from Raft), this node as sole manager.
        let raft_path = self.dir.join("raft.redb");
        let _ = std::fs::remove_file(&raft_path);
        id.manager_addr = p.advertise.to_string();
        id.addr = p.advertise.ip().to_string();
        id.listen_addr = p.listen.to_string();
        let mgr = self.start_manager(&id).await?;
        let Some(cluster) = state.cluster.clone() else {
            return Err(ClusterError::Internal(
                "no cluster in the saved state".into(),
            ));
        };
        let mut me = state.nodes.get(&id.node_id).cloned().ok_or_else(|| {
            ClusterError::Internal("this node is missing from the saved state".into())
        })?;
        me.manager_addr = id.manager_addr.clone();
        me.addr = id.addr.clone();
        me.raft_id = id.raft_id;
        mgr.bootstrap(Op::Init {
            cluster: Box::new(cluster),
            node: Box::new(me),
        })
        .await?;
        for (nid, mut n) in state.nodes {
            if nid == id.node_id {
                continue;
            }
            if n.spec.role == Role::Manager {
                // Other managers are not in the new Raft. They stay listed, down, as workers:
                // one that comes back learns it from its first heartbeat, stops its old Raft
                // member and carries on as a worker (promote it again to make it a manager).
                n.spec.role = Role::Worker;
                n.state = NodeState::Down;
            }
            mgr.propose(Op::PutNode {
                version: None,
                node: Box::new(n),
            })
            .await?;
        }
        id.managers = mgr.managers();
        self.save_identity(&id)?;
        let node_id = id.node_id.clone();
        *guard = Some(self.activate(id, Some(mgr)));
        Ok(node_id)
    }

    /// Joins the swarm through one of `p.remote`: the manager signs this node's key, and
    /// this node keeps the certificates, its identity and (as a manager) a Raft member.
    pub async fn join(self: &Arc<Self>, p: JoinParams) -> ClusterResult<()> {
        let mut guard = self.active.lock().await;
        if guard.is_some() {
            return Err(ClusterError::NotAllowed(ALREADY_IN_SWARM.into()));
        }
        let token = ca::JoinToken::parse(&p.token)
            .map_err(|e| ClusterError::InvalidArgument(e.to_string()))?;
        let (tls, pinned) = ca::pinned_client_config(&token);
        // The node's key is made here and stays here; the manager signs a request for it.
        let csr = ca::Csr::generate().map_err(|e| ClusterError::internal("node key", e))?;
        let req = Request::Join(JoinRequest {
            csr: csr.csr_pem.clone(),
            token: p.token.clone(),
            addr: p.advertise.ip().to_string(),
            manager_addr: p.advertise.to_string(),
            availability: p.availability.clone(),
            description: (self.describe)(),
        });
        let (r, via) = ask_to_join(&p.remote, &tls, &req).await?;
        check_pinned_root(&pinned, &r.ca_cert)?;
        self.wipe()?;
        self.keep_join_reply(&r, &csr)?;
        let id = Identity {
            node_id: r.node_id.clone(),
            raft_id: r.raft_id,
            role: r.role,
            cluster_id: r.cluster_id.clone(),
            addr: p.advertise.ip().to_string(),
            manager_addr: p.advertise.to_string(),
            listen_addr: p.listen.to_string(),
            managers: r.managers.clone(),
            error: String::new(),
        };
        self.save_identity(&id)?;
        let manager = if r.role == Role::Manager {
            Some(self.start_joined_manager(&id, &r.managers, via).await?)
        } else {
            None
        };
        tracing::info!(node_id = %id.node_id, role = id.role.as_str(), "joined the swarm");
        *guard = Some(self.activate(id, manager));
        Ok(())
    }

    /// Keeps what the manager sent a joining node: the unlock key (a manager joining a
    /// cluster with autolock on seals its secrets from the start), the root CA (with its key,
    /// for a manager) and the node's signed certificate.
    fn keep_join_reply(&self, r: &JoinReply, csr: &ca::Csr) -> ClusterResult<()> {
        let kek = match (r.role, r.unlock_key.as_deref()) {
            (Role::Manager, Some(k)) => {
                Some(UnlockKey::parse(k).map_err(|e| ClusterError::internal("unlock key", e))?)
            }
            _ => None,
        };
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = kek;
        // The first root of the bundle is the one the token named; a manager's key is its.
        RootCa::from_pem(&r.ca_cert, r.ca_key.as_deref())
            .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(&r.cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("node certificate", e))?;
        self.save_certs(&r.ca_cert, r.ca_key.as_deref(), &cert)
    }

    /// Starts the Raft member of a node that joined as a manager and asks the leader to add
    /// it.
    async fn start_joined_manager(
        &self,
        id: &Identity,
        managers: &[Peer],
        via: SocketAddr,
    ) -> ClusterResult<Arc<Manager>> {
        let mgr = self.start_manager(id).await?;
        // The manager that took the join knows this node; others may not have caught up yet
        // (several managers joining at once): ask through it first.
        let mut peers = managers.to_vec();
        peers.sort_by_key(|p| p.addr != via.to_string());
        if let Err(e) = mgr
            .to_leader_via(
                &peers,
                Request::AddManager {
                    node_id: id.node_id.clone(),
                },
            )
            .await
        {
            tracing::warn!(error = %e, "joining manager not yet added to raft; will retry");
        }
        Ok(mgr)
    }

    pub async fn leave(self: &Arc<Self>, force: bool) -> ClusterResult<()> {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_ref() else {
            return Err(ClusterError::NotAllowed(NOT_IN_A_SWARM.into()));
        };
        if active.locked && !force {
            return Err(ClusterError::Locked);
        }
        if let Some(mgr) = &active.manager {
            if !force {
                return Err(ClusterError::NotAllowed(LEAVE_MANAGER.into()));
            }
            // Leave Raft cleanly when the others can still commit without us.
            if mgr.voters().len() > 1 {
                let req = Request::RemoveManager {
                    node_id: active.id.node_id.clone(),
                };
                if let Err(e) =
                    tokio::time::timeout(Duration::from_secs(5), mgr.to_leader(req)).await
                {
                    tracing::warn!(error = %e, "leaving without removing this manager from raft");
                }
            }
        }
        let Some(active) = guard.take() else {
            return Ok(());
        };
        active.stop_tasks();
        if let Some(m) = active.manager {
            m.shutdown().await;
        }
        self.wipe()?;
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = Status::default();
        tracing::info!("left the swarm");
        Ok(())
    }

    fn activate(self: &Arc<Self>, id: Identity, manager: Option<Arc<Manager>>) -> Active {
        self.publish(&id, manager.is_some());
        let mut tasks = vec![
            tokio::spawn(session_loop(Arc::downgrade(self))),
            tokio::spawn(keys_loop(Arc::downgrade(self))),
        ];
        tasks.extend(self.peer_port(&id.addr));
        Active {
            id,
            manager,
            tasks,
            locked: false,
        }
    }

    /// A member whose secrets are sealed and whose key is not known: nothing runs.
    fn activate_locked(&self, id: Identity) -> Active {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = Status {
            active: true,
            // dockerd shows no node ID and the lock as the error while locked.
            node_id: String::new(),
            addr: id.addr.clone(),
            manager: false,
            error: crate::error::LOCKED.into(),
            managers: id.managers.clone(),
            locked: true,
        };
        Active {
            id,
            manager: None,
            tasks: Vec::new(),
            locked: true,
        }
    }

    fn publish(&self, id: &Identity, manager: bool) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = Status {
            active: true,
            node_id: id.node_id.clone(),
            addr: id.addr.clone(),
            manager,
            error: id.error.clone(),
            managers: id.managers.clone(),
            locked: false,
        };
    }

    async fn start_manager(&self, id: &Identity) -> ClusterResult<Arc<Manager>> {
        let Certs {
            trust_pem,
            root,
            cert,
        } = self.load_certs()?;
        let listen = crate::rpc::parse_addr(&id.listen_addr)?;
        let dek = self.raft_dek()?;
        let auto_join = self
            .auto_join
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Manager::start(ManagerConfig {
            dir: self.dir.clone(),
            raft_id: id.raft_id,
            node_id: id.node_id.clone(),
            cluster_id: id.cluster_id.clone(),
            listen,
            advertise: id.manager_addr.clone(),
            ca: root,
            trust_pem,
            cert,
            dek,
            auto_join,
        })
        .await
    }
}

/// Sends the join request to each manager address in turn until one takes it; its reply and
/// address. Unreachable managers are skipped (the last one's error is returned when none
/// answers); any other error ends the attempt.
async fn ask_to_join(
    remote: &[SocketAddr],
    tls: &Arc<rustls::ClientConfig>,
    req: &Request,
) -> ClusterResult<(Box<JoinReply>, SocketAddr)> {
    let mut last = ClusterError::Unavailable("no manager address given".into());
    for addr in remote {
        let client = ClusterClient::new(*addr, tls.clone());
        match client.call(req).await {
            Ok(Reply::Joined(r)) => return Ok((r, *addr)),
            Ok(_) => last = ClusterError::Internal("unexpected reply to join".into()),
            Err(ClusterError::Unavailable(m)) => {
                last = ClusterError::Unavailable(format!(
                    "could not join the swarm through {addr}: {m}"
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// The CA the manager presented was pinned by the token; it must be what it sent.
fn check_pinned_root(pinned: &ca::PinnedRoot, ca_cert: &str) -> ClusterResult<()> {
    let Some(der) = pinned.der() else {
        return Ok(());
    };
    let root = RootCa::from_pem(ca_cert, None)
        .map_err(|e| ClusterError::internal("root CA from the manager", e))?;
    if root.cert_der().as_ref() != der.as_ref() {
        return Err(ClusterError::PermissionDenied(
            "the manager sent a root CA other than the one it presented".into(),
        ));
    }
    Ok(())
}

fn parse_availability(s: &str) -> ClusterResult<Availability> {
    Availability::parse(s).ok_or_else(|| {
        ClusterError::InvalidArgument(format!(
            "invalid availability {s:?}: expected active, pause or drain"
        ))
    })
}

/// dockerd's answer to every cluster call on a node that is not a manager.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// dockerd's answer to `swarm unlock` on a node that is not locked (409).
pub const NOT_LOCKED: &str = "swarm is not locked";
/// dockerd's answer to `swarm leave` outside a swarm.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
/// A worker's answer to manager calls (dockerd's wording).
pub const WORKER_NOT_MANAGER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
