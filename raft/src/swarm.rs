//! This host's membership of a swarm: `init`, `join`, `leave`, restore at daemon start, the
//! node's session with the managers (heartbeats, manager failover), and role changes.
//!
//! ```text
//!  <data-root>/swarm/
//!     node.json      identity: node id, role, cluster id, addresses, known managers
//!     ca.crt  node.crt  node.key  [ca.key: managers]
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
//! demotion decided anywhere reaches the node within a heartbeat.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::ca::{self, CaError, NodeCert, Role, RootCa, UnlockKey};
use crate::error::{ClusterError, ClusterResult};
use crate::manager::{new_node_id, new_raft_id, Manager, ManagerConfig};
use crate::objects::{Availability, Cluster, ClusterSpec, Description, Node, NodeState};
use crate::rpc::{ClusterClient, Heartbeat, JoinRequest, Peer, Reply, Request};
use crate::state::Op;

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
}

/// Test knob: `BERTH_SWARM_CERT_RENEW_AFTER=<seconds>` makes a node certificate due that
/// long after it was issued, instead of at swarmkit's random 50–80% of its lifetime (the
/// shortest lifetime Docker allows is an hour). For tests only; unset in production.
pub const RENEW_AFTER_ENV: &str = "BERTH_SWARM_CERT_RENEW_AFTER";

fn renew_at(cert: &NodeCert) -> i64 {
    match std::env::var(RENEW_AFTER_ENV)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(after) => cert.issued_at().saturating_add(after.max(1)),
        None => cert.renew_at(),
    }
}

struct SessionClients {
    tls: Arc<rustls::ClientConfig>,
    by_addr: HashMap<SocketAddr, ClusterClient>,
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
        })
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

    /// `swarm unlock`: opens this node's sealed secrets with `key` and starts what a restore
    /// would have started. A key that opens nothing is refused and the node stays locked.
    pub async fn unlock(self: &Arc<Self>, key: &str) -> ClusterResult<()> {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_ref() else {
            return Err(ClusterError::NotAllowed(NOT_A_MANAGER.into()));
        };
        if !active.locked {
            return Err(ClusterError::FailedPrecondition(NOT_LOCKED.into()));
        }
        let key = UnlockKey::parse(key).map_err(|_| ClusterError::WrongUnlockKey)?;
        // Every sealed secret must open; node.key always exists.
        for name in SECRETS {
            self.read_secret_with(name, Some(&key))?;
        }
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        self.forget_clients();
        let id = active.id.clone();
        let manager = if id.role == Role::Manager && id.error.is_empty() {
            Some(self.start_manager(&id).await?)
        } else {
            None
        };
        tracing::info!(node_id = %id.node_id, "swarm unlocked");
        *guard = Some(self.activate(id, manager));
        Ok(())
    }

    /// Brings the secrets on disk in line with the cluster's autolock setting: sealed with
    /// its unlock key on a manager while autolock is on, plain otherwise. Runs every half
    /// second (and right after a `swarm update` served here); a no-op when nothing changed.
    pub async fn sync_keys(&self) -> ClusterResult<()> {
        let want = {
            let a = self.active.lock().await;
            let Some(a) = a.as_ref() else { return Ok(()) };
            if a.locked {
                return Ok(());
            }
            match &a.manager {
                // A manager follows the cluster; until it has the cluster object it keeps
                // what it has.
                Some(m) => match m.read(|s| s.cluster.clone()) {
                    Some(c) if c.spec.encryption_config.auto_lock_managers => {
                        match c.unlock_key.as_deref().map(UnlockKey::parse) {
                            Some(Ok(k)) => Some(k),
                            _ => return Ok(()),
                        }
                    }
                    Some(_) => None,
                    None => return Ok(()),
                },
                None => None,
            }
        };
        self.reseal(want)
    }

    /// Re-stores every secret sealed with `want` (plain for None).
    fn reseal(&self, want: Option<UnlockKey>) -> ClusterResult<()> {
        let mut kek = self.kek.lock().unwrap_or_else(|p| p.into_inner());
        if *kek == want {
            return Ok(());
        }
        for name in SECRETS {
            if let Some(bytes) = self.read_secret_with(name, kek.as_ref())? {
                self.write_secret(name, &bytes, want.as_ref())?;
            }
        }
        tracing::info!(
            sealed = want.is_some(),
            "swarm keys re-stored for the cluster's autolock setting"
        );
        *kek = want;
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
        self.save_certs(&root, &cert)?;
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
        let mut last = ClusterError::Unavailable("no manager address given".into());
        let mut joined = None;
        for addr in &p.remote {
            let client = ClusterClient::new(*addr, tls.clone());
            match client.call(&req).await {
                Ok(Reply::Joined(r)) => {
                    joined = Some(r);
                    break;
                }
                Ok(_) => last = ClusterError::Internal("unexpected reply to join".into()),
                Err(ClusterError::Unavailable(m)) => {
                    last = ClusterError::Unavailable(format!(
                        "could not join the swarm through {addr}: {m}"
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        let Some(r) = joined else { return Err(last) };
        // The CA the manager presented was pinned by the token; it must be what it sent.
        if let Some(der) = pinned.der() {
            let root = RootCa::from_pem(&r.ca_cert, None)
                .map_err(|e| ClusterError::internal("root CA from the manager", e))?;
            if root.cert_der().as_ref() != der.as_ref() {
                return Err(ClusterError::PermissionDenied(
                    "the manager sent a root CA other than the one it presented".into(),
                ));
            }
        }
        self.wipe()?;
        // A manager joining a cluster with autolock on seals its secrets from the start.
        let kek = match (r.role, r.unlock_key.as_deref()) {
            (Role::Manager, Some(k)) => {
                Some(UnlockKey::parse(k).map_err(|e| ClusterError::internal("unlock key", e))?)
            }
            _ => None,
        };
        *self.kek.lock().unwrap_or_else(|p| p.into_inner()) = kek;
        let root = RootCa::from_pem(&r.ca_cert, r.ca_key.as_deref())
            .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(&r.cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("node certificate", e))?;
        self.save_certs(&root, &cert)?;
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
            let mgr = self.start_manager(&id).await?;
            if let Err(e) = mgr
                .to_leader_via(
                    &r.managers,
                    Request::AddManager {
                        node_id: id.node_id.clone(),
                    },
                )
                .await
            {
                tracing::warn!(error = %e, "joining manager not yet added to raft; will retry");
            }
            Some(mgr)
        } else {
            None
        };
        tracing::info!(node_id = %id.node_id, role = id.role.as_str(), "joined the swarm");
        *guard = Some(self.activate(id, manager));
        Ok(())
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
        let tasks = vec![
            tokio::spawn(session_loop(Arc::downgrade(self))),
            tokio::spawn(keys_loop(Arc::downgrade(self))),
        ];
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
        let (root, cert) = self.load_certs()?;
        if root.key_pem().is_none() {
            return Err(ClusterError::Internal("manager without the CA key".into()));
        }
        let listen = crate::rpc::parse_addr(&id.listen_addr)?;
        let dek = self.raft_dek()?;
        Manager::start(ManagerConfig {
            dir: self.dir.clone(),
            raft_id: id.raft_id,
            node_id: id.node_id.clone(),
            cluster_id: id.cluster_id.clone(),
            listen,
            advertise: id.manager_addr.clone(),
            ca: root,
            cert,
            dek,
        })
        .await
    }

    /// This manager's Raft data key, made on first use (a new manager, or one from before
    /// keys existed).
    fn raft_dek(&self) -> ClusterResult<UnlockKey> {
        if let Some(bytes) = self.read_secret("raft.dek")? {
            let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                ClusterError::Internal(format!(
                    "{}: a raft data key is 32 bytes, found {}",
                    self.dir.join("raft.dek").display(),
                    bytes.len()
                ))
            })?;
            return Ok(UnlockKey::from_bytes(key));
        }
        let key = UnlockKey::generate();
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.write_secret("raft.dek", key.as_bytes(), kek.as_ref())?;
        Ok(key)
    }

    /// Sends a request to a manager on this node's behalf (an agent's session calls): its
    /// own manager first, then the others in order, until one answers.
    pub async fn call(self: &Arc<Self>, req: &Request, timeout: Duration) -> ClusterResult<Reply> {
        let (id, has_manager) = {
            let a = self.active.lock().await;
            match a.as_ref() {
                Some(a) if !a.locked => (a.id.clone(), a.manager.is_some()),
                _ => return Err(ClusterError::Unavailable("not part of a swarm".into())),
            }
        };
        let mut targets: Vec<String> = Vec::new();
        if has_manager {
            targets.push(id.manager_addr.clone());
        }
        targets.extend(id.managers.iter().map(|p| p.addr.clone()));
        targets.dedup();
        let mut last = ClusterError::Unavailable("no manager is known".into());
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            match self.client(addr)?.call_timeout(req, timeout).await {
                Err(e @ ClusterError::Unavailable(_)) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// One heartbeat round; returns how long to wait before the next.
    async fn beat(self: &Arc<Self>) -> Duration {
        let (id, has_manager) = {
            let a = self.active.lock().await;
            match a.as_ref() {
                Some(a) => (a.id.clone(), a.manager.is_some()),
                None => return Duration::from_secs(1),
            }
        };
        if !id.error.is_empty() {
            return Duration::from_secs(5);
        }
        let hb = Request::Heartbeat(Heartbeat {
            node_id: id.node_id.clone(),
            addr: id.addr.clone(),
            description: (self.describe)(),
        });
        // Own manager first, then the others in order.
        let mut targets: Vec<String> = Vec::new();
        if has_manager {
            targets.push(id.manager_addr.clone());
        }
        targets.extend(id.managers.iter().map(|p| p.addr.clone()));
        targets.dedup();
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            let client = match self.client(addr) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "swarm session: no usable certificate");
                    return Duration::from_secs(5);
                }
            };
            match client.call_timeout(&hb, Duration::from_secs(3)).await {
                Ok(Reply::Heartbeat(r)) => {
                    let period = Duration::from_millis(r.period_ms.clamp(100, 60_000));
                    self.after_beat(&id, has_manager, r).await;
                    return period;
                }
                Ok(_) => {}
                Err(ClusterError::PermissionDenied(m)) => {
                    self.refused(&m).await;
                    return Duration::from_secs(5);
                }
                Err(e) => tracing::debug!(manager = %t, error = %e, "heartbeat"),
            }
        }
        Duration::from_millis(500)
    }

    async fn after_beat(
        self: &Arc<Self>,
        id: &Identity,
        has_manager: bool,
        r: crate::rpc::HeartbeatReply,
    ) {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_mut() else { return };
        if active.id.node_id != id.node_id {
            return;
        }
        let mut changed = false;
        if !r.managers.is_empty() && r.managers != active.id.managers {
            active.id.managers = r.managers.clone();
            changed = true;
        }
        if r.role == Role::Manager && !has_manager {
            match self.promote(&active.id).await {
                Ok((mgr, raft_id)) => {
                    active.id.role = Role::Manager;
                    active.id.raft_id = raft_id;
                    active.manager = Some(mgr);
                    changed = true;
                }
                Err(e) => tracing::warn!(error = %e, "promotion to manager failed; will retry"),
            }
        } else if r.role == Role::Worker && has_manager {
            if let Some(m) = active.manager.take() {
                m.shutdown().await;
            }
            let _ = std::fs::remove_file(self.dir.join("raft.redb"));
            self.remove_secret("ca.key");
            self.remove_secret("raft.dek");
            active.id.role = Role::Worker;
            changed = true;
            tracing::info!("demoted to worker");
        }
        if self.renewal_due(active.id.role) {
            match self.renew(active).await {
                Ok(()) => changed = true,
                Err(e) => tracing::warn!(error = %e, "certificate renewal failed; will retry"),
            }
        }
        if let Some(m) = &active.manager {
            // A manager not (yet) in the Raft membership, e.g. its join was cut short: ask
            // the leader again (a no-op for a member).
            if !m.voters().contains(&m.raft_id) {
                let (m, managers, node_id) = (
                    m.clone(),
                    active.id.managers.clone(),
                    active.id.node_id.clone(),
                );
                tokio::spawn(async move {
                    if let Err(e) = m
                        .to_leader_via(&managers, Request::AddManager { node_id })
                        .await
                    {
                        tracing::debug!(error = %e, "add this manager to raft");
                    }
                });
            }
        }
        if changed {
            if let Err(e) = self.save_identity(&active.id) {
                tracing::warn!(error = %e, "saving swarm identity");
            }
        }
        self.publish(&active.id, active.manager.is_some());
    }

    async fn promote(&self, id: &Identity) -> ClusterResult<(Arc<Manager>, u64)> {
        let (root, _) = self.load_certs()?;
        let csr = ca::Csr::generate().map_err(|e| ClusterError::internal("node key", e))?;
        let req = Request::ManagerMaterial {
            csr: csr.csr_pem.clone(),
        };
        let mut material = None;
        for p in &id.managers {
            let Ok(addr) = crate::rpc::parse_addr(&p.addr) else {
                continue;
            };
            match self.client(addr)?.call(&req).await {
                Ok(Reply::Material(m)) => {
                    material = Some(m);
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "manager material"),
            }
        }
        let m = material.ok_or_else(|| ClusterError::Unavailable("no manager reachable".into()))?;
        if let Some(k) = m.unlock_key.as_deref() {
            // Autolock is on: the manager's secrets are sealed from the start.
            let k = UnlockKey::parse(k).map_err(|e| ClusterError::internal("unlock key", e))?;
            self.reseal(Some(k))?;
        }
        let root = RootCa::from_pem(root.cert_pem(), Some(&m.ca_key))
            .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(&m.cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("node certificate", e))?;
        self.save_certs(&root, &cert)?;
        let mut id = id.clone();
        id.raft_id = m.raft_id;
        id.role = Role::Manager;
        let _ = std::fs::remove_file(self.dir.join("raft.redb"));
        self.remove_secret("raft.dek");
        let mgr = self.start_manager(&id).await?;
        // Joining Raft is retried by the session (a manager outside the membership asks
        // again on every heartbeat), so a failure here does not undo the promotion.
        if let Err(e) = mgr
            .to_leader_via(
                &id.managers,
                Request::AddManager {
                    node_id: id.node_id.clone(),
                },
            )
            .await
        {
            tracing::warn!(error = %e, "promoted manager not yet in raft; will retry");
        }
        tracing::info!(node_id = %id.node_id, "promoted to manager");
        Ok((mgr, m.raft_id))
    }

    /// Whether this node's certificate is due for renewal, or grants another role than the
    /// one the cluster has for the node (a demoted manager gets a worker certificate).
    fn renewal_due(&self, role: Role) -> bool {
        let cached = *self.cert_due.lock().unwrap_or_else(|p| p.into_inner());
        let due = match cached {
            Some(d) => Some(d),
            None => self.load_certs().ok().map(|_| {
                self.cert_due
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or((i64::MAX, role))
            }),
        };
        match due {
            Some((at, cert_role)) => cert_role != role || chrono::Utc::now().timestamp() >= at,
            None => false,
        }
    }

    /// Renews this node's certificate: a new key made here, a signing request to a manager
    /// (its own first) authenticated by the current certificate. A manager then restarts its
    /// cluster port and Raft member on the new certificate.
    async fn renew(self: &Arc<Self>, active: &mut Active) -> ClusterResult<()> {
        let csr = ca::Csr::generate().map_err(|e| ClusterError::internal("node key", e))?;
        let req = Request::Renew {
            csr: csr.csr_pem.clone(),
        };
        let mut targets: Vec<String> = Vec::new();
        if active.manager.is_some() {
            targets.push(active.id.manager_addr.clone());
        }
        targets.extend(active.id.managers.iter().map(|p| p.addr.clone()));
        targets.dedup();
        let mut signed = None;
        for t in targets {
            let Ok(addr) = crate::rpc::parse_addr(&t) else {
                continue;
            };
            match self.client(addr)?.call(&req).await {
                Ok(Reply::Renewed { cert_pem }) => {
                    signed = Some(cert_pem);
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(manager = %t, error = %e, "certificate renewal"),
            }
        }
        let cert_pem = signed.ok_or_else(|| {
            ClusterError::Unavailable("no manager could renew this node's certificate".into())
        })?;
        let cert = NodeCert::from_pem(&cert_pem, &csr.key_pem)
            .map_err(|e| ClusterError::internal("renewed certificate", e))?;
        let (root, _) = self.load_certs()?;
        self.save_certs(&root, &cert)?;
        tracing::info!(node_id = %active.id.node_id, role = cert.role.as_str(), not_after = cert.not_after, "node certificate renewed");
        if let Some(m) = active.manager.take() {
            m.shutdown().await;
            let mut tries = 0;
            loop {
                match self.start_manager(&active.id).await {
                    Ok(m) => {
                        active.manager = Some(m);
                        break;
                    }
                    Err(e) if tries < 10 => {
                        tries += 1;
                        tracing::debug!(error = %e, "restarting the manager on its renewed certificate");
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The cluster no longer knows this node's certificate: it was removed.
    async fn refused(&self, why: &str) {
        let mut guard = self.active.lock().await;
        let Some(active) = guard.as_mut() else { return };
        tracing::warn!(reason = why, "the swarm refused this node");
        active.id.error = format!("this node was removed from the swarm: {why}");
        if let Some(m) = active.manager.take() {
            m.shutdown().await;
        }
        let _ = self.save_identity(&active.id);
        self.publish(&active.id, false);
    }

    /// The (cached) session client of the manager at `addr`, under this node's certificate.
    fn client(&self, addr: SocketAddr) -> ClusterResult<ClusterClient> {
        let mut cache = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            let (root, cert) = self.load_certs()?;
            let tls = ca::client_config(root.cert_pem(), Some(&cert))
                .map_err(|e| ClusterError::internal("client tls", e))?;
            *cache = Some(SessionClients {
                tls,
                by_addr: HashMap::new(),
            });
        }
        let c = cache.as_mut().expect("filled above");
        let tls = c.tls.clone();
        Ok(c.by_addr
            .entry(addr)
            .or_insert_with(|| ClusterClient::new(addr, tls))
            .clone())
    }

    fn forget_clients(&self) {
        *self.clients.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn wipe(&self) -> ClusterResult<()> {
        self.forget_clients();
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::internal(
                &format!("remove {}", self.dir.display()),
                e,
            )),
        }
    }

    fn load_identity(&self) -> ClusterResult<Option<Identity>> {
        let p = self.dir.join("node.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ClusterError::internal(&format!("read {}", p.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
        }
    }

    fn save_identity(&self, id: &Identity) -> ClusterResult<()> {
        let bytes = serde_json::to_vec_pretty(id)
            .map_err(|e| ClusterError::internal("encode identity", e))?;
        write_atomic(&self.dir, "node.json", &bytes)
    }

    fn save_certs(&self, root: &RootCa, cert: &NodeCert) -> ClusterResult<()> {
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        write_atomic(&self.dir, "ca.crt", root.cert_pem().as_bytes())?;
        write_atomic(&self.dir, "node.crt", cert.cert_pem.as_bytes())?;
        self.write_secret("node.key", cert.key_pem.as_bytes(), kek.as_ref())?;
        if let Some(k) = root.key_pem() {
            self.write_secret("ca.key", k.as_bytes(), kek.as_ref())?;
        }
        // Clients made under the previous certificate go; the next call builds new ones.
        self.forget_clients();
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((renew_at(cert), cert.role));
        Ok(())
    }

    fn load_certs(&self) -> ClusterResult<(RootCa, NodeCert)> {
        let read = |name: &str| -> ClusterResult<Option<String>> {
            let p = self.dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
            }
        };
        let missing =
            |n: &str| ClusterError::Internal(format!("{n} missing from {}", self.dir.display()));
        let secret = |name: &str| -> ClusterResult<Option<String>> {
            self.read_secret(name)?
                .map(|b| {
                    String::from_utf8(b).map_err(|_| {
                        ClusterError::Internal(format!(
                            "{name} in {} is not PEM",
                            self.dir.display()
                        ))
                    })
                })
                .transpose()
        };
        let ca_cert = read("ca.crt")?.ok_or_else(|| missing("ca.crt"))?;
        let ca_key = secret("ca.key")?;
        let root = RootCa::from_pem(&ca_cert, ca_key.as_deref())
            .map_err(|e| ClusterError::internal("root CA", e))?;
        let cert = NodeCert::from_pem(
            &read("node.crt")?.ok_or_else(|| missing("node.crt"))?,
            &secret("node.key")?.ok_or_else(|| missing("node.key"))?,
        )
        .map_err(|e| ClusterError::internal("node certificate", e))?;
        *self.cert_due.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((renew_at(&cert), cert.role));
        Ok((root, cert))
    }

    /// Whether this node's secrets are on disk sealed (autolock).
    fn sealed(&self) -> bool {
        self.dir.join("node.key.sealed").exists()
    }

    /// A secret file's bytes, opened with the current key when sealed.
    fn read_secret(&self, name: &str) -> ClusterResult<Option<Vec<u8>>> {
        let kek = self.kek.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.read_secret_with(name, kek.as_ref())
    }

    /// A secret file's bytes: `<name>` as it is, or `<name>.sealed` opened with `kek`
    /// (no key: [`ClusterError::Locked`]; a key that does not open it:
    /// [`ClusterError::WrongUnlockKey`]).
    fn read_secret_with(
        &self,
        name: &str,
        kek: Option<&UnlockKey>,
    ) -> ClusterResult<Option<Vec<u8>>> {
        let read = |p: PathBuf| match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::internal(&format!("read {}", p.display()), e)),
        };
        if let Some(plain) = read(self.dir.join(name))? {
            return Ok(Some(plain));
        }
        let Some(sealed) = read(self.dir.join(format!("{name}.sealed")))? else {
            return Ok(None);
        };
        let kek = kek.ok_or(ClusterError::Locked)?;
        match ca::open(kek, &sealed) {
            Ok(plain) => Ok(Some(plain)),
            Err(CaError::WrongUnlockKey) => Err(ClusterError::WrongUnlockKey),
            Err(e) => Err(ClusterError::internal(&format!("open {name}.sealed"), e)),
        }
    }

    /// Stores a secret sealed with `kek`, or plain without one; the other form goes.
    fn write_secret(&self, name: &str, bytes: &[u8], kek: Option<&UnlockKey>) -> ClusterResult<()> {
        let sealed = format!("{name}.sealed");
        let other = match kek {
            Some(k) => {
                write_atomic(&self.dir, &sealed, &ca::seal(k, bytes))?;
                name.to_owned()
            }
            None => {
                write_atomic(&self.dir, name, bytes)?;
                sealed
            }
        };
        match std::fs::remove_file(self.dir.join(&other)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::internal(&format!("remove {other}"), e)),
        }
    }

    /// Removes a secret in either form.
    fn remove_secret(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.sealed")));
    }
}

/// Every half second, the secrets follow the cluster's autolock setting.
async fn keys_loop(swarm: std::sync::Weak<Swarm>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(s) = swarm.upgrade() else { return };
        if let Err(e) = s.sync_keys().await {
            tracing::warn!(error = %e, "re-storing the swarm keys for autolock");
        }
    }
}

async fn session_loop(swarm: std::sync::Weak<Swarm>) {
    loop {
        let Some(s) = swarm.upgrade() else { return };
        let wait = s.beat().await;
        drop(s);
        tokio::time::sleep(wait).await;
    }
}

fn parse_availability(s: &str) -> ClusterResult<Availability> {
    Availability::parse(s).ok_or_else(|| {
        ClusterError::InvalidArgument(format!(
            "invalid availability {s:?}: expected active, pause or drain"
        ))
    })
}

/// Writes `dir/name` through a temp file, fsync and rename (keys with mode 0600).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> ClusterResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)
        .map_err(|e| ClusterError::internal(&format!("create {}", dir.display()), e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dst)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    res.map_err(|e| ClusterError::internal(&format!("write {}", dst.display()), e))
}

/// dockerd's answer to every cluster call on a node that is not a manager.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// dockerd's answer to `swarm unlock` on a node that is not locked (409).
pub const NOT_LOCKED: &str = "swarm is not locked";
/// dockerd's answer to `swarm leave` outside a swarm.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
/// A worker's answer to manager calls (dockerd's wording).
pub const WORKER_NOT_MANAGER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
