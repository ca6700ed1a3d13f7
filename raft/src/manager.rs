//! A manager: one Raft member with its replicated [`State`], the cluster port's server, and
//! the leader's duties (joins, membership changes, node liveness).
//!
//! ```text
//!  API (any manager) ──propose──► leader? ── yes ─► raft.client_write ─► committed ─► applied
//!                                   └─ no ──► Cluster.Call(Propose) on the leader ─┘
//!  nodes ──Heartbeat──► any manager ──(forwarded)──► leader: liveness map → NodeStatus
//! ```
//! Reads are served from this manager's applied state; a forwarded write returns once this
//! manager has applied it too, so a client reads its own writes wherever it sent them.

mod certs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openraft::{ChangeMembers, ServerState};
use tokio::sync::{oneshot, watch};

use crate::ca::{self, LiveConfig, NodeCert, PeerInfo, Role, RootCa};
use crate::error::{ClusterError, ClusterResult};
use crate::objects::{Availability, Node, NodeState, MISSED_HEARTBEATS};
use crate::rotation;
use crate::rpc::{
    ClusterClient, Heartbeat, HeartbeatReply, JoinReply, JoinRequest, Material, Peer, Reply,
    Request,
};
use crate::service;
use crate::state::{now, Command, Op, Outcome, State};
use crate::types::{Member, NodeId, Raft};

/// What a manager needs to run.
pub struct ManagerConfig {
    /// The node's swarm directory; the Raft database is `raft.redb` in it.
    pub dir: PathBuf,
    pub raft_id: NodeId,
    pub node_id: String,
    pub cluster_id: String,
    /// Where the cluster port listens.
    pub listen: SocketAddr,
    /// Where other members reach it (`ip:port`).
    pub advertise: String,
    pub ca: RootCa,
    /// The roots this manager trusts (PEM; old and new during a root rotation).
    pub trust_pem: String,
    pub cert: NodeCert,
    /// The key the Raft data is encrypted with at rest (this manager's own).
    pub dek: ca::UnlockKey,
    /// Answers automatic joins ([`Request::AutoJoin`]); none: they are refused.
    pub auto_join: Option<Arc<dyn AutoJoinResponder>>,
}

/// The engine's side of [`Request::AutoJoin`]: given what a node without a certificate sent
/// and the cluster object (its root CA and join tokens), what to answer. The protocol (how
/// the node proves it knows the cluster secret, how the answer proves the CA) is the
/// engine's; this crate only carries it.
pub trait AutoJoinResponder: Send + Sync {
    fn answer(
        &self,
        hello: &serde_json::Value,
        cluster: &crate::objects::Cluster,
        peer: Option<SocketAddr>,
    ) -> ClusterResult<serde_json::Value>;
}

/// How long a write may wait for a leader before it fails with dockerd's "no leader" error.
const WRITE_DEADLINE: Duration = Duration::from_secs(7);

/// Raft timing. After a leader dies, followers wait out its lease (`election_timeout_max`)
/// and then their own random election timeout: a new leader within 0.8 + 0.4..0.8 s, while
/// eight missed heartbeats in a row are needed before anyone stands.
fn raft_config(cluster_id: &str) -> openraft::Config {
    openraft::Config {
        cluster_name: cluster_id.to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        install_snapshot_timeout: 5_000,
        max_payload_entries: 1_000,
        // Snapshots and log purges follow the cluster spec's Raft settings, which can change
        // at run time (`Manager::compact`); openraft's own policies are off.
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..Default::default()
    }
}

pub struct Manager {
    pub raft: Raft,
    pub state: Arc<RwLock<State>>,
    applied: watch::Receiver<u64>,
    pub node_id: String,
    pub raft_id: NodeId,
    pub cluster_id: String,
    pub advertise: String,
    /// The root this manager was started with; certificates are signed by the cluster
    /// object's CA (`rotation::signer`), this is only the fallback before there is one.
    ca: RootCa,
    /// Client and server TLS, swapped in place when this node's certificate is renewed or
    /// the roots it trusts change (`set_tls`).
    client_tls: LiveConfig<rustls::ClientConfig>,
    server_tls: LiveConfig<rustls::ServerConfig>,
    /// Leader only: when each node was last heard from.
    liveness: Mutex<Liveness>,
    /// One client (one HTTP/2 connection) per manager this one talks to.
    clients: Mutex<HashMap<SocketAddr, ClusterClient>>,
    /// The snapshot index a new snapshot was last asked on top of (one request per step).
    snapshot_requested: Mutex<Option<u64>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    /// Service and task log subscriptions (in memory).
    pub(crate) logs: crate::logs::LogBroker,
    auto_join: Option<Arc<dyn AutoJoinResponder>>,
}

#[derive(Default)]
struct Liveness {
    /// The term this map was started in; a new leadership starts it afresh.
    term: u64,
    since: Option<Instant>,
    seen: HashMap<String, Instant>,
}

impl Manager {
    /// Opens the Raft database and serves the cluster port. The Raft member is not part of any
    /// cluster until [`Manager::bootstrap`] or a leader adds it.
    pub async fn start(cfg: ManagerConfig) -> ClusterResult<Arc<Manager>> {
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| ClusterError::internal(&format!("create {}", cfg.dir.display()), e))?;
        let db_path = cfg.dir.join("raft.redb");
        let (log, sm) = crate::storage::open(&db_path, &cfg.dek)
            .map_err(|e| ClusterError::internal(&format!("open {}", db_path.display()), e))?;
        let state = sm.state.clone();
        let applied = sm.applied_watch();
        let (client_tls, server_tls) = tls_configs(&cfg.trust_pem, &cfg.cert)?;
        let (client_tls, server_tls) = (LiveConfig::new(client_tls), LiveConfig::new(server_tls));
        let config = raft_config(&cfg.cluster_id)
            .validate()
            .map_err(|e| ClusterError::internal("raft config", e))?;
        let network = crate::network::Network {
            tls: client_tls.clone(),
        };
        let raft = Raft::new(cfg.raft_id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| ClusterError::internal("start raft", e))?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| {
                ClusterError::InvalidArgument(format!(
                    "failed to listen on the cluster port {}: {e}",
                    cfg.listen
                ))
            })?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let mgr = Arc::new(Manager {
            raft,
            state,
            applied,
            node_id: cfg.node_id,
            raft_id: cfg.raft_id,
            cluster_id: cfg.cluster_id,
            advertise: cfg.advertise,
            ca: cfg.ca,
            client_tls,
            server_tls: server_tls.clone(),
            liveness: Mutex::default(),
            clients: Mutex::default(),
            snapshot_requested: Mutex::default(),
            stop: Mutex::new(Some(stop_tx)),
            logs: crate::logs::LogBroker::default(),
            auto_join: cfg.auto_join,
        });
        service::serve(mgr.clone(), listener, server_tls, stop_rx);
        tokio::spawn(liveness_loop(Arc::downgrade(&mgr)));
        tokio::spawn(crate::orchestrator::run(Arc::downgrade(&mgr)));
        tracing::info!(node_id = %mgr.node_id, raft_id = mgr.raft_id, listen = %cfg.listen, "manager started");
        Ok(mgr)
    }

    /// Uses `cert` and trusts the roots of `trust_pem` from now on, for new connections in
    /// both directions (established ones keep theirs): after a renewal or a change of the
    /// trusted roots, without restarting the server or the Raft member.
    pub fn set_tls(&self, trust_pem: &str, cert: &NodeCert) -> ClusterResult<()> {
        let (client, server) = tls_configs(trust_pem, cert)?;
        self.client_tls.set(client);
        self.server_tls.set(server);
        Ok(())
    }

    /// Makes this member a one-member cluster and writes the first entry.
    pub async fn bootstrap(&self, op: Op) -> ClusterResult<u64> {
        let mut members = BTreeMap::new();
        members.insert(self.raft_id, Member::new(self.advertise.clone()));
        if let Err(e) = self.raft.initialize(members).await {
            // A re-run of a bootstrap that was interrupted after initialize is fine.
            tracing::debug!(error = %e, "raft initialize");
        }
        let (_, index) = self.propose(op).await?;
        Ok(index)
    }

    pub async fn shutdown(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
        let _ = self.raft.shutdown().await;
    }

    /// The index of the last applied entry, as it changes.
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Whether this manager has been shut down.
    pub fn stopped(&self) -> bool {
        self.stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.raft_id)
    }

    /// The leader's cluster port address, from the Raft membership.
    fn leader_addr(&self) -> Option<(NodeId, SocketAddr)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        crate::rpc::parse_addr(&node.addr).ok().map(|a| (id, a))
    }

    /// Managers as nodes know them: every manager-role node with a cluster address.
    pub fn managers(&self) -> Vec<Peer> {
        self.read(|s| {
            s.nodes
                .values()
                .filter(|n| n.spec.role == Role::Manager && !n.manager_addr.is_empty())
                .map(|n| Peer {
                    node_id: n.id.clone(),
                    addr: n.manager_addr.clone(),
                })
                .collect()
        })
    }

    /// Raft voters (manager nodes in the membership).
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// The (cached) client of the manager at `addr`.
    pub(crate) fn client(&self, addr: SocketAddr) -> ClusterClient {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(addr)
            .or_insert_with(|| ClusterClient::new_live(addr, self.client_tls.clone()))
            .clone()
    }

    /// Commits a change through the leader and waits until this manager has applied it.
    pub async fn propose(&self, op: Op) -> ClusterResult<(Outcome, u64)> {
        let cmd = Command { at: now(), op };
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClusterError::no_leader());
            }
            let attempt = if self.is_leader() {
                match tokio::time::timeout(left, self.raft.client_write(cmd.clone())).await {
                    Err(_) => Attempt::Fail(ClusterError::no_leader()),
                    Ok(Ok(r)) => Attempt::Done(r.data, r.log_id.index),
                    Ok(Err(e)) if e.forward_to_leader::<Member>().is_some() => Attempt::Retry,
                    Ok(Err(e)) => Attempt::Fail(ClusterError::internal("raft write", e)),
                }
            } else if let Some((_, addr)) = self.leader_addr() {
                let req = Request::Propose(cmd.clone());
                match self.client(addr).call_timeout(&req, left).await {
                    Ok(Reply::Proposed { outcome, index }) => Attempt::Done(outcome, index),
                    Ok(_) => {
                        Attempt::Fail(ClusterError::Internal("unexpected reply to a write".into()))
                    }
                    Err(ClusterError::Unavailable(_)) => Attempt::Retry,
                    Err(e) => Attempt::Fail(e),
                }
            } else {
                Attempt::Retry
            };
            match attempt {
                Attempt::Done(outcome, index) => {
                    self.wait_applied(index, deadline).await;
                    return match outcome {
                        Outcome::OutOfSequence => Err(ClusterError::OutOfSequence),
                        Outcome::NotFound { what } => {
                            Err(ClusterError::NotFound(format!("{what} not found")))
                        }
                        Outcome::AlreadyExists { what } => Err(ClusterError::AlreadyExists(
                            format!("{what} already exists"),
                        )),
                        Outcome::Refused { message } => {
                            Err(ClusterError::FailedPrecondition(message))
                        }
                        o => Ok((o, index)),
                    };
                }
                Attempt::Retry => tokio::time::sleep(Duration::from_millis(50)).await,
                Attempt::Fail(e) => return Err(e),
            }
        }
    }

    /// Proposes on this member, which must be the leader (a forwarded write).
    pub(crate) async fn propose_here(&self, cmd: Command) -> ClusterResult<Reply> {
        if !self.is_leader() {
            return Err(ClusterError::Unavailable("not the leader".into()));
        }
        match tokio::time::timeout(WRITE_DEADLINE, self.raft.client_write(cmd)).await {
            Err(_) => Err(ClusterError::no_leader()),
            Ok(Ok(r)) => Ok(Reply::Proposed {
                outcome: r.data,
                index: r.log_id.index,
            }),
            Ok(Err(e)) if e.forward_to_leader::<Member>().is_some() => {
                Err(ClusterError::Unavailable("not the leader".into()))
            }
            Ok(Err(e)) => Err(ClusterError::internal("raft write", e)),
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) {
        let mut rx = self.applied.clone();
        let wait = rx.wait_for(|a| *a >= index);
        let _ = tokio::time::timeout_at(deadline.into(), wait).await;
    }

    /// Sends a request to the leader (this manager when it leads).
    pub async fn to_leader(self: &Arc<Self>, req: Request) -> ClusterResult<Reply> {
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            if self.is_leader() {
                return self.handle_leader(req).await;
            }
            if let Some((_, addr)) = self.leader_addr() {
                let client = self.client(addr);
                let left = deadline.saturating_duration_since(Instant::now());
                match client
                    .call_timeout(&req, left.max(Duration::from_millis(100)))
                    .await
                {
                    Err(ClusterError::Unavailable(_)) if Instant::now() < deadline => {}
                    other => return other,
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::no_leader());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a leader request through the given managers (for a member that does not know
    /// the leader yet: each manager forwards it).
    pub async fn to_leader_via(
        self: &Arc<Self>,
        managers: &[Peer],
        req: Request,
    ) -> ClusterResult<Reply> {
        if self.leader_id().is_some() {
            return self.to_leader(req).await;
        }
        let deadline = Instant::now() + WRITE_DEADLINE;
        let mut last = ClusterError::no_leader();
        while Instant::now() < deadline {
            for p in managers.iter().filter(|p| p.node_id != self.node_id) {
                let Ok(addr) = crate::rpc::parse_addr(&p.addr) else {
                    continue;
                };
                let client = self.client(addr);
                match client.call(&req).await {
                    Err(e @ ClusterError::Unavailable(_)) => last = e,
                    other => return other,
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }

    /// Requests only the leader performs (membership changes, liveness).
    async fn handle_leader(self: &Arc<Self>, req: Request) -> ClusterResult<Reply> {
        match req {
            Request::AddManager { node_id } => self.add_voter(&node_id).await,
            Request::RemoveManager { node_id } => self.remove_voter(&node_id).await,
            Request::Heartbeat(hb) => self.heartbeat_here(hb).await,
            other => Err(ClusterError::Internal(format!(
                "not a leader request: {other:?}"
            ))),
        }
    }

    /// Serves one Cluster call from `peer`.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        peer: PeerInfo,
        req: Request,
    ) -> ClusterResult<Reply> {
        // Join is the one call made without a node certificate; every other is authorised
        // by the caller's node.
        let caller = || self.caller(&peer);
        match req {
            Request::Join(j) => self.join(j).await.map(|r| Reply::Joined(Box::new(r))),
            Request::AutoJoin(hello) => {
                let r = self.auto_join.clone().ok_or_else(|| {
                    ClusterError::Unavailable(
                        "this manager takes no automatic joins: it has no cluster secret".into(),
                    )
                })?;
                r.answer(&hello, &self.cluster()?, peer.remote)
                    .map(Reply::AutoJoin)
            }
            Request::Propose(cmd) => {
                require_manager(&caller()?)?;
                self.propose_here(cmd).await
            }
            Request::AddManager { .. } | Request::RemoveManager { .. } => {
                require_manager(&caller()?)?;
                self.to_leader(req).await
            }
            Request::Heartbeat(hb) => {
                let caller = caller()?;
                if hb.node_id != caller.id {
                    require_manager(&caller)?;
                }
                if self.is_leader() {
                    self.heartbeat_here(hb).await
                } else {
                    let role = self.read(|s| s.nodes.get(&hb.node_id).map(|n| n.spec.role));
                    match self.to_leader(Request::Heartbeat(hb)).await {
                        Ok(r) => Ok(r),
                        // No leader: the node keeps running what it runs; tell it who the
                        // managers are so it can keep trying.
                        // The roots are left out: only the leader's word changes them.
                        Err(ClusterError::Unavailable(_)) => Ok(Reply::Heartbeat(HeartbeatReply {
                            period_ms: self.period().as_millis() as u64,
                            role: role.unwrap_or(caller.spec.role),
                            managers: self.managers(),
                            trust_root: String::new(),
                            desired_root: String::new(),
                        })),
                        Err(e) => Err(e),
                    }
                }
            }
            Request::ManagerMaterial { csr } => self.material(&caller()?, &csr).await,
            Request::Assignments { known } => self.assignments(&caller()?.id, known).await,
            Request::TaskStatus(reports) => self.task_status(&caller()?.id, reports).await,
            Request::LogSubscribe(sub) => {
                require_manager(&caller()?)?;
                self.logs.add(sub);
                Ok(Reply::Done)
            }
            Request::LogCancel { id } => {
                require_manager(&caller()?)?;
                self.logs.remove(&id);
                Ok(Reply::Done)
            }
            Request::PublishLogs(batch) => self.publish_logs(&caller()?.id, batch).await,
            Request::PeerAddrs => Ok(Reply::PeerAddrs(self.peer_addrs(&caller()?.id))),
            Request::AttachNetwork {
                network,
                container_id,
            } => {
                self.attach_network(&caller()?.id, &network, &container_id)
                    .await
            }
            Request::DetachNetwork {
                network_id,
                container_id,
            } => {
                self.detach_network(&caller()?.id, &network_id, &container_id)
                    .await
            }
            Request::Renew { csr } => {
                let caller = caller()?;
                let cert_pem = self.sign(&csr, &caller.id, caller.spec.role, self.cert_expiry())?;
                tracing::info!(node_id = %caller.id, role = caller.spec.role.as_str(), "node certificate renewed");
                Ok(Reply::Renewed {
                    cert_pem,
                    trust_root: self.trust_bundle(),
                })
            }
        }
    }

    /// The node the caller's certificate names (its CN; TLS checked that it chains to the
    /// cluster root). A removed node is no longer in the table, so its certificate is refused;
    /// a renewed certificate names the same node, so connections made under the previous one
    /// stay valid until it expires.
    fn caller(&self, peer: &PeerInfo) -> ClusterResult<Node> {
        let id = peer.node_id.as_deref().ok_or_else(|| {
            ClusterError::PermissionDenied("a node certificate is required".into())
        })?;
        // A manager that has just joined knows no node until it catches up: that is not a
        // refusal (managers joining at once ask each other before they have caught up).
        self.read(|s| match s.nodes.get(id) {
            Some(n) => Ok(n.clone()),
            None if s.nodes.is_empty() => Err(ClusterError::Unavailable(
                "this manager has not caught up with the cluster yet".into(),
            )),
            None => Err(ClusterError::PermissionDenied(
                "this node's certificate is not valid in the swarm: the node was removed".into(),
            )),
        })
    }

    pub fn period(&self) -> Duration {
        self.read(|s| {
            s.cluster
                .as_ref()
                .map(|c| c.spec.dispatcher.period())
                .unwrap_or(Duration::from_secs(1))
        })
    }

    async fn add_voter(&self, node_id: &str) -> ClusterResult<Reply> {
        let node = self
            .read(|s| s.nodes.get(node_id).cloned())
            .ok_or_else(|| ClusterError::NotFound(format!("node {node_id} not found")))?;
        if node.spec.role != Role::Manager || node.raft_id == 0 || node.manager_addr.is_empty() {
            return Err(ClusterError::FailedPrecondition(format!(
                "node {node_id} is not a manager"
            )));
        }
        if self.voters().contains(&node.raft_id) {
            return Ok(Reply::Done);
        }
        let member = Member::new(node.manager_addr.clone());
        self.raft
            .add_learner(node.raft_id, member, true)
            .await
            .map_err(|e| ClusterError::internal("add raft learner", e))?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds([node.raft_id].into()), false)
            .await
            .map_err(|e| ClusterError::internal("add raft voter", e))?;
        tracing::info!(node_id, raft_id = node.raft_id, "manager added to raft");
        Ok(Reply::Done)
    }

    async fn remove_voter(&self, node_id: &str) -> ClusterResult<Reply> {
        let raft_id = self
            .read(|s| s.nodes.get(node_id).map(|n| n.raft_id))
            .ok_or_else(|| ClusterError::NotFound(format!("node {node_id} not found")))?;
        let voters = self.voters();
        if !voters.contains(&raft_id) {
            return Ok(Reply::Done);
        }
        if voters.len() == 1 {
            return Err(ClusterError::FailedPrecondition(
                "attempting to demote the last manager of the swarm".into(),
            ));
        }
        self.raft
            .change_membership(ChangeMembers::RemoveVoters([raft_id].into()), false)
            .await
            .map_err(|e| ClusterError::internal("remove raft voter", e))?;
        tracing::info!(node_id, raft_id, "manager removed from raft");
        Ok(Reply::Done)
    }

    async fn heartbeat_here(&self, hb: Heartbeat) -> ClusterResult<Reply> {
        let node = self
            .read(|s| s.nodes.get(&hb.node_id).cloned())
            .ok_or_else(|| {
                ClusterError::PermissionDenied(format!("node {} is not in the swarm", hb.node_id))
            })?;
        self.liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .insert(hb.node_id.clone(), Instant::now());
        let stale_desc = node.description != hb.description;
        if node.state != NodeState::Ready || node.addr != hb.addr || stale_desc {
            // Only what the node reports, applied to the node as it stands at apply time:
            // this manager's copy may lag (just restarted, not yet caught up), and a whole
            // node written back from it would undo acknowledged spec changes.
            let op = Op::NodeStatus {
                id: hb.node_id.clone(),
                state: NodeState::Ready,
                message: String::new(),
                addr: Some(hb.addr),
                description: stale_desc.then(|| Box::new(hb.description)),
            };
            let cmd = Command { at: now(), op };
            // Don't hold the node's heartbeat on the commit.
            let raft = self.raft.clone();
            tokio::spawn(async move {
                if let Err(e) = raft.client_write(cmd).await {
                    tracing::debug!(error = %e, "node status write");
                }
            });
        }
        let (trust_root, desired_root) = self
            .read(|s| {
                s.cluster.as_ref().map(|c| {
                    (
                        rotation::trust_bundle(c),
                        rotation::desired_root(c).to_owned(),
                    )
                })
            })
            .unwrap_or_default();
        Ok(Reply::Heartbeat(HeartbeatReply {
            period_ms: self.period().as_millis() as u64,
            role: node.spec.role,
            managers: self.managers(),
            trust_root,
            desired_root,
        }))
    }

    /// Log compaction, on every member: a snapshot every `Raft.SnapshotInterval` applied
    /// entries; entries older than the snapshot are purged except the last
    /// `Raft.LogEntriesForSlowFollowers` (a follower further behind gets the snapshot).
    async fn compact(&self) {
        let (interval, keep) = self.read(|s| {
            s.cluster
                .as_ref()
                .map(|c| {
                    (
                        c.spec.raft.snapshot_interval,
                        c.spec.raft.log_entries_for_slow_followers,
                    )
                })
                .unwrap_or((10_000, 500))
        });
        let (applied, snapshot, purged) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (
                m.last_applied.map(|l| l.index).unwrap_or(0),
                m.snapshot.map(|l| l.index).unwrap_or(0),
                m.purged.map(|l| l.index).unwrap_or(0),
            )
        };
        if interval > 0 && applied >= snapshot + interval {
            let first = {
                let mut pending = self
                    .snapshot_requested
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                pending.replace(snapshot) != Some(snapshot)
            };
            if first {
                tracing::debug!(applied, "raft snapshot");
                let _ = self.raft.trigger().snapshot().await;
            }
        }
        if snapshot > keep && snapshot - keep > purged {
            let _ = self.raft.trigger().purge_log(snapshot - keep).await;
        }
    }

    /// Leader only: nodes silent for MISSED_HEARTBEATS periods are marked down.
    async fn check_liveness(&self) {
        let (term, leading) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.current_term, m.state == ServerState::Leader)
        };
        if !leading {
            let mut l = self.liveness.lock().unwrap_or_else(|p| p.into_inner());
            l.since = None;
            l.seen.clear();
            return;
        }
        let grace = self.period() * MISSED_HEARTBEATS;
        let down: Vec<String> = {
            let mut l = self.liveness.lock().unwrap_or_else(|p| p.into_inner());
            if l.since.is_none() || l.term != term {
                // A new leadership: every node gets a full grace period from now.
                l.term = term;
                l.since = Some(Instant::now());
                l.seen.clear();
            }
            let since = l.since.unwrap_or_else(Instant::now);
            let nodes: Vec<(String, NodeState)> =
                self.read(|s| s.nodes.values().map(|n| (n.id.clone(), n.state)).collect());
            nodes
                .into_iter()
                .filter(|(id, state)| {
                    let last = l.seen.get(id).copied().unwrap_or(since);
                    *state != NodeState::Down && last.elapsed() > grace
                })
                .map(|(id, _)| id)
                .collect()
        };
        for id in down {
            tracing::info!(node_id = %id, "node down: heartbeat failure");
            let cmd = Command {
                at: now(),
                op: Op::NodeStatus {
                    id,
                    state: NodeState::Down,
                    message: "heartbeat failure".into(),
                    addr: None,
                    description: None,
                },
            };
            if let Err(e) = self.raft.client_write(cmd).await {
                tracing::debug!(error = %e, "node down write");
            }
        }
    }
}

/// The client and server TLS configurations of a manager holding `cert`, trusting the roots
/// of `trust_pem`.
fn tls_configs(
    trust_pem: &str,
    cert: &NodeCert,
) -> ClusterResult<(Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>)> {
    let client = ca::client_config(trust_pem, Some(cert))
        .map_err(|e| ClusterError::internal("client tls", e))?;
    let server =
        ca::server_config(trust_pem, cert).map_err(|e| ClusterError::internal("server tls", e))?;
    Ok((client, server))
}

/// One try of a write: done, worth another try (no leader yet, leadership moved), or failed.
enum Attempt {
    Done(Outcome, u64),
    Retry,
    Fail(ClusterError),
}

fn require_manager(node: &Node) -> ClusterResult<()> {
    if node.spec.role == Role::Manager {
        Ok(())
    } else {
        Err(ClusterError::PermissionDenied(format!(
            "node {} is not a manager",
            node.id
        )))
    }
}

async fn liveness_loop(mgr: std::sync::Weak<Manager>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(m) = mgr.upgrade() else { return };
        if m.stop.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return;
        }
        m.check_liveness().await;
        m.reconcile_rotation().await;
        m.compact().await;
    }
}

/// A new node ID: 25 random base36 characters, like Docker's.
pub fn new_node_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..25)
        .map(|_| DIGITS[rand::random_range(0..DIGITS.len())] as char)
        .collect()
}

pub fn new_raft_id() -> NodeId {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}
