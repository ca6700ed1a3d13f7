//! The engine's side of cluster mode: [`ClusterBackend`], the `SwarmBackend` of the API over
//! this host's [`Swarm`] membership (crate `berth-raft`), and the Docker JSON of cluster
//! objects ([`view`]).
//!
//! ```text
//!  /swarm*, /nodes*, /info Swarm, /_ping Swarm ─► ClusterBackend ─► berth_raft::swarm::Swarm
//!                                                       └─ reads/writes ─► Manager (managers)
//! ```
//! Outside a swarm nothing of the cluster runs: `Swarm` holds no task and no socket until
//! `init`, `join`, or a restart of a node that was a member.

mod addr;
mod agent;
mod attachable;
pub mod autojoin;
mod data;
mod describe;
mod ingress;
mod logs;
mod netattach;
mod networks;
mod peerimages;
mod services;
mod taskdata;
mod taskspec;
pub mod view;
mod wireguard;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use berth_api::backend::{ByteStream, Filters, LogOptions, ServiceUpdateOptions, SwarmBackend};
use berth_api::error::{ApiError, ApiResult, ErrorKind};
use berth_api::swarm::{
    InitRequest, JoinRequest, LocalNodeState, Peer, SwarmInfo, SwarmUpdateFlags, UnlockKey,
};
use berth_raft::ca::{self, Role, RootCa};
use berth_raft::manager::Manager;
use berth_raft::objects::{Availability, ClusterSpec, DataKind, Node, NodeSpec};
use berth_raft::rpc::Request;
use berth_raft::state::Op;
use berth_raft::swarm::{InitParams, JoinParams, Swarm};
use berth_raft::ClusterError;
use serde_json::Value;

/// The swarm backend of a berthd.
pub struct ClusterBackend {
    swarm: Arc<Swarm>,
}

impl ClusterBackend {
    /// `dir` is `<data-root>/swarm`; a membership recorded there is resumed.
    /// Tasks assigned to this node run in `containers`, with images from `images`.
    /// With `auto_join` (the daemon's `cluster` settings) a node in no swarm inits or joins
    /// by itself, in the background ([`autojoin`]).
    pub async fn open(
        dir: PathBuf,
        engine_labels: Vec<String>,
        containers: crate::container::Containers,
        images: Arc<dyn berth_api::backend::ImageBackend>,
        auto_join: Option<autojoin::AutoJoinConfig>,
    ) -> anyhow::Result<ClusterBackend> {
        let tunnels = wireguard::NodeTunnels::new()?;
        tunnels.start_rotation();
        let describe = describe::describer(engine_labels, tunnels.clone());
        let swarm = Swarm::new(dir, describe);
        let backend = ClusterBackend { swarm };
        let auto_join = match auto_join {
            Some(cfg) => {
                let secret = cfg.secret.clone();
                let keys = tokio::task::spawn_blocking(move || autojoin::Keys::derive(&secret))
                    .await
                    .map(Arc::new)?;
                autojoin::install(&backend, keys.clone());
                Some((cfg, keys))
            }
            None => None,
        };
        backend
            .swarm
            .set_image_source(Arc::new(peerimages::EngineImages(images.clone())));
        if let Err(e) = backend.swarm.restore().await {
            // The engine still serves; the swarm side reports the error.
            tracing::error!(error = %e, "could not resume the swarm membership");
        }
        agent::Agent::start(backend.swarm.clone(), containers, images, tunnels);
        if let Some((cfg, keys)) = auto_join {
            let b = ClusterBackend {
                swarm: backend.swarm.clone(),
            };
            tokio::spawn(autojoin::run(b, cfg, keys));
        }
        Ok(backend)
    }

    async fn manager(&self) -> ApiResult<Arc<Manager>> {
        let st = self.swarm.status();
        if st.locked {
            return Err(api_error(ClusterError::Locked));
        }
        if st.active && !st.manager {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                berth_raft::swarm::WORKER_NOT_MANAGER,
            ));
        }
        self.swarm.manager().await.map_err(api_error)
    }

    /// A node by full ID, unique ID prefix, or hostname (dockerd's lookup).
    fn find_node(&self, m: &Manager, key: &str) -> ApiResult<Node> {
        m.read(|s| {
            if let Some(n) = s.nodes.get(key) {
                return Ok(n.clone());
            }
            let hits: Vec<&Node> = s
                .nodes
                .values()
                .filter(|n| {
                    n.id.starts_with(key) || n.description.hostname == key || n.spec.name == key
                })
                .collect();
            match hits.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(ApiError::not_found(format!("node {key} not found"))),
                _ => Err(ApiError::invalid(format!(
                    "node {key} is ambiguous ({} matches found)",
                    hits.len()
                ))),
            }
        })
    }
}

/// The control plane's errors as Engine API errors.
pub(crate) fn api_error(e: ClusterError) -> ApiError {
    let kind = match &e {
        ClusterError::InvalidArgument(_) | ClusterError::FailedPrecondition(_) => {
            ErrorKind::InvalidArgument
        }
        ClusterError::NotFound(_) => ErrorKind::NotFound,
        ClusterError::Unavailable(_) | ClusterError::NotAllowed(_) => ErrorKind::Unavailable,
        ClusterError::PermissionDenied(_) => ErrorKind::Forbidden,
        ClusterError::AlreadyExists(_) => ErrorKind::Conflict,
        ClusterError::OutOfSequence | ClusterError::Internal(_) => ErrorKind::Internal,
        ClusterError::Locked => ErrorKind::Unavailable,
        ClusterError::WrongUnlockKey => ErrorKind::Unauthorized,
    };
    ApiError::new(kind, e.to_string())
}

/// A cluster spec from the API: Docker's zero values mean "the default".
fn parse_spec(v: Value) -> ApiResult<ClusterSpec> {
    let mut v = v;
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
        if let Some(raft) = o.get_mut("Raft").and_then(|r| r.as_object_mut()) {
            raft.retain(|_, x| !x.is_null() && x.as_u64() != Some(0));
        }
        for (sect, field) in [
            ("Dispatcher", "HeartbeatPeriod"),
            ("CAConfig", "NodeCertExpiry"),
        ] {
            if let Some(s) = o.get_mut(sect).and_then(|r| r.as_object_mut()) {
                if s.get(field).and_then(|x| x.as_u64()) == Some(0)
                    || s.get(field).is_some_and(|x| x.is_null())
                {
                    s.remove(field);
                }
            }
        }
    }
    let mut spec: ClusterSpec = serde_json::from_value(v)
        .map_err(|e| ApiError::invalid(format!("invalid swarm spec: {e}")))?;
    if spec.name.is_empty() {
        spec.name = "default".into();
    }
    if spec.ca_config.node_cert_expiry < berth_raft::objects::MIN_CERT_EXPIRY_NS {
        return Err(ApiError::invalid(
            "rpc error: code = InvalidArgument desc = minimum certificate expiry time is 1h0m0s",
        ));
    }
    Ok(spec)
}

fn matches_filters(n: &Node, f: &Filters) -> bool {
    use services::{any_match as any, label_match};
    any(f, "id", &|v| n.id.starts_with(v))
        && any(f, "name", &|v| {
            n.description.hostname == v || n.spec.name == v
        })
        && any(f, "role", &|v| v == n.spec.role.as_str())
        && any(f, "membership", &|v| v == "accepted")
        && any(f, "node.label", &|v| label_match(&n.spec.labels, v))
        && any(f, "label", &|v| {
            label_match(&n.description.engine_labels, v)
        })
}

#[async_trait]
impl SwarmBackend for ClusterBackend {
    fn local_node_state(&self) -> LocalNodeState {
        let st = self.swarm.status();
        if st.locked {
            return LocalNodeState::Locked;
        }
        match (st.active, st.error.is_empty()) {
            (false, _) => LocalNodeState::Inactive,
            (true, true) => LocalNodeState::Active,
            (true, false) => LocalNodeState::Error,
        }
    }

    fn ping_header(&self) -> &'static str {
        let st = self.swarm.status();
        if st.locked {
            return "locked";
        }
        match (st.active, st.error.is_empty(), st.manager) {
            (false, _, _) => "inactive",
            (true, false, _) => "error",
            (true, true, true) => "active/manager",
            (true, true, false) => "active/worker",
        }
    }

    async fn info(&self) -> ApiResult<SwarmInfo> {
        let st = self.swarm.status();
        if !st.active {
            return Ok(SwarmInfo::default());
        }
        let mut info = SwarmInfo {
            node_id: st.node_id.clone(),
            node_addr: st.addr.clone(),
            local_node_state: self.local_node_state(),
            control_available: st.manager,
            error: st.error.clone(),
            remote_managers: Some(
                st.managers
                    .iter()
                    .map(|p| Peer {
                        node_id: p.node_id.clone(),
                        addr: p.addr.clone(),
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        if st.manager {
            if let Ok(m) = self.swarm.manager().await {
                let (nodes, managers, cluster) = m.read(|s| {
                    let managers = s
                        .nodes
                        .values()
                        .filter(|n| n.spec.role == Role::Manager)
                        .count();
                    (
                        s.nodes.len(),
                        managers,
                        s.cluster.as_ref().map(|c| view::cluster(c, false)),
                    )
                });
                info.nodes = Some(nodes as u64);
                info.managers = Some(managers as u64);
                info.cluster = cluster;
            }
        }
        Ok(info)
    }

    async fn init(&self, req: InitRequest) -> ApiResult<String> {
        let listen = addr::listen(&req.listen_addr).map_err(api_error)?;
        let advertise = addr::advertise(&req.advertise_addr, listen).map_err(api_error)?;
        let mut spec = parse_spec(req.spec)?;
        // `AutoLockManagers` of the request is the init-time form of the spec's setting.
        let autolock = req.auto_lock_managers || spec.encryption_config.auto_lock_managers;
        spec.encryption_config.auto_lock_managers = autolock;
        let p = InitParams {
            listen,
            advertise,
            force_new_cluster: req.force_new_cluster,
            spec,
            availability: req.availability,
            default_addr_pool: req.default_addr_pool,
            subnet_size: if req.subnet_size == 0 {
                24
            } else {
                req.subnet_size
            },
            data_path_port: if req.data_path_port == 0 {
                4789
            } else {
                req.data_path_port
            },
            unlock_key: autolock.then(ca::UnlockKey::generate),
        };
        self.swarm.init(p).await.map_err(api_error)
    }

    async fn join(&self, req: JoinRequest) -> ApiResult<()> {
        if self.swarm.status().active {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                berth_raft::swarm::ALREADY_IN_SWARM,
            ));
        }
        if req.remote_addrs.is_empty() {
            return Err(ApiError::invalid(
                "at least 1 RemoteAddr is required to join",
            ));
        }
        let listen = addr::listen(&req.listen_addr).map_err(api_error)?;
        let advertise = addr::advertise(&req.advertise_addr, listen).map_err(api_error)?;
        let mut remote = Vec::new();
        for r in &req.remote_addrs {
            remote.push(addr::remote(r).await.map_err(api_error)?);
        }
        let p = JoinParams {
            remote,
            token: req.join_token,
            listen,
            advertise,
            availability: req.availability,
        };
        self.swarm.join(p).await.map_err(api_error)
    }

    async fn leave(&self, force: bool) -> ApiResult<()> {
        self.swarm.leave(force).await.map_err(api_error)
    }

    async fn inspect(&self) -> ApiResult<Value> {
        let m = self.manager().await?;
        m.read(|s| s.cluster.as_ref().map(|c| view::cluster(c, true)))
            .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, berth_raft::error::NO_LEADER))
    }

    async fn update(&self, flags: SwarmUpdateFlags, spec: Value) -> ApiResult<()> {
        let m = self.manager().await?;
        let spec = parse_spec(spec)?;
        let mut cluster = m
            .read(|s| s.cluster.clone())
            .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, berth_raft::error::NO_LEADER))?;
        let root = RootCa::from_pem(&cluster.ca_cert, None)
            .map_err(|e| ApiError::internal(format!("root CA: {e}")))?;
        let was_locked = cluster.spec.encryption_config.auto_lock_managers;
        // `swarm ca --rotate`: ForceRotate or SigningCACert/Key ask for a new root; the key
        // is taken out of the spec here.
        let mut spec = spec;
        let rotation = berth_raft::rotation::plan(&cluster, &mut spec).map_err(api_error)?;
        let rotating = !matches!(rotation, berth_raft::rotation::Plan::Keep);
        berth_raft::rotation::apply(&mut cluster, rotation);
        cluster.spec = spec;
        // swarmkit's rule: autolock off drops the key; turning it on, or a rotation while it
        // is on, makes a new one.
        if !cluster.spec.encryption_config.auto_lock_managers {
            cluster.unlock_key = None;
        } else if !was_locked || flags.rotate_manager_unlock_key || cluster.unlock_key.is_none() {
            cluster.unlock_key = Some(ca::UnlockKey::generate().to_text());
        }
        if flags.rotate_worker_token {
            cluster.worker_token = ca::new_token(&root);
        }
        if flags.rotate_manager_token {
            cluster.manager_token = ca::new_token(&root);
        }
        m.propose(Op::UpdateCluster {
            version: Some(flags.version),
            cluster: Box::new(cluster),
        })
        .await
        .map_err(api_error)?;
        if rotating {
            tracing::info!("root CA rotation started");
        }
        // This manager re-stores its keys now (the others within half a second), so the
        // key `swarm update` just printed is the one a restart of this node asks for.
        if let Err(e) = self.swarm.sync_keys().await {
            tracing::warn!(error = %e, "re-storing the swarm keys for autolock");
        }
        Ok(())
    }

    async fn unlock(&self, key: UnlockKey) -> ApiResult<()> {
        let st = self.swarm.status();
        if !st.active {
            return Err(berth_api::swarm::not_a_manager());
        }
        if !st.locked {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                berth_raft::swarm::NOT_LOCKED,
            ));
        }
        self.swarm.unlock(&key.unlock_key).await.map_err(api_error)
    }

    async fn unlock_key(&self) -> ApiResult<UnlockKey> {
        let m = self.manager().await?;
        let key = m.read(|s| {
            s.cluster
                .as_ref()
                .filter(|c| c.spec.encryption_config.auto_lock_managers)
                .and_then(|c| c.unlock_key.clone())
        });
        Ok(UnlockKey {
            unlock_key: key.unwrap_or_default(),
        })
    }

    async fn node_list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        let m = self.manager().await?;
        let leader = m.leader_id();
        Ok(m.read(|s| {
            s.nodes
                .values()
                .filter(|n| matches_filters(n, &filters))
                .map(|n| view::node(n, s.cluster.as_ref(), leader))
                .collect()
        }))
    }

    async fn node_inspect(&self, id: &str) -> ApiResult<Value> {
        let m = self.manager().await?;
        let n = self.find_node(&m, id)?;
        let leader = m.leader_id();
        Ok(m.read(|s| view::node(&n, s.cluster.as_ref(), leader)))
    }

    async fn node_remove(&self, id: &str, force: bool) -> ApiResult<()> {
        let m = self.manager().await?;
        let n = self.find_node(&m, id)?;
        if n.spec.role == Role::Manager {
            return Err(api_error(ClusterError::FailedPrecondition(format!(
                "node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
                n.id
            ))));
        }
        if !force && n.state != berth_raft::objects::NodeState::Down {
            return Err(api_error(ClusterError::FailedPrecondition(format!(
                "node {} is not down and can't be removed",
                n.id
            ))));
        }
        m.propose(Op::RemoveNode { id: n.id.clone() })
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn node_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()> {
        let m = self.manager().await?;
        let n = self.find_node(&m, id)?;
        let new: NodeSpec = parse_node_spec(spec)?;
        if n.spec.role == Role::Manager && new.role == Role::Worker {
            if n.meta.version != version {
                return Err(api_error(ClusterError::OutOfSequence));
            }
            let managers = m.read(|s| {
                s.nodes
                    .values()
                    .filter(|x| x.spec.role == Role::Manager)
                    .count()
            });
            if managers <= 1 {
                return Err(api_error(ClusterError::FailedPrecondition(
                    "attempting to demote the last manager of the swarm".into(),
                )));
            }
            m.to_leader(Request::RemoveManager {
                node_id: n.id.clone(),
            })
            .await
            .map_err(api_error)?;
        }
        let mut node = n.clone();
        node.spec = new;
        m.propose(Op::PutNode {
            version: Some(version),
            node: Box::new(node),
        })
        .await
        .map_err(api_error)?;
        Ok(())
    }

    async fn service_list(&self, filters: Filters, status: bool) -> ApiResult<Vec<Value>> {
        let m = self.manager().await?;
        Ok(services::list(&m, &filters, status))
    }
    async fn service_create(&self, spec: Value, auth: Option<String>) -> ApiResult<Value> {
        let m = self.manager().await?;
        services::create(&m, spec, auth).await
    }
    async fn service_inspect(&self, id: &str, _insert_defaults: bool) -> ApiResult<Value> {
        let m = self.manager().await?;
        services::inspect(&m, id)
    }
    async fn service_remove(&self, id: &str) -> ApiResult<()> {
        let m = self.manager().await?;
        services::remove(&m, id).await
    }
    async fn service_update(
        &self,
        id: &str,
        opts: ServiceUpdateOptions,
        spec: Value,
    ) -> ApiResult<Value> {
        let m = self.manager().await?;
        services::update(&m, id, opts, spec).await
    }
    async fn service_logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream> {
        let m = self.manager().await?;
        let svc = services::find(&m, id)?;
        let tasks = m.read(|s| {
            s.tasks
                .values()
                .filter(|t| t.service_id == svc.id)
                .cloned()
                .collect()
        });
        logs::stream(&m, tasks, opts).await
    }
    async fn task_list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        let m = self.manager().await?;
        Ok(services::list_tasks(&m, &filters))
    }
    async fn task_inspect(&self, id: &str) -> ApiResult<Value> {
        let m = self.manager().await?;
        services::inspect_task(&m, id)
    }
    async fn task_logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream> {
        let m = self.manager().await?;
        let t = services::find_task(&m, id)?;
        logs::stream(&m, vec![t], opts).await
    }
    async fn secret_list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        let m = self.manager().await?;
        Ok(data::list(&m, DataKind::Secret, &filters))
    }
    async fn secret_create(&self, spec: Value) -> ApiResult<Value> {
        let m = self.manager().await?;
        data::create(&m, DataKind::Secret, spec).await
    }
    async fn secret_inspect(&self, id: &str) -> ApiResult<Value> {
        let m = self.manager().await?;
        Ok(data::view(
            DataKind::Secret,
            &data::find(&m, DataKind::Secret, id)?,
        ))
    }
    async fn secret_remove(&self, id: &str) -> ApiResult<()> {
        let m = self.manager().await?;
        data::remove(&m, DataKind::Secret, id).await
    }
    async fn secret_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()> {
        let m = self.manager().await?;
        data::update(&m, DataKind::Secret, id, version, spec).await
    }
    async fn config_list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        let m = self.manager().await?;
        Ok(data::list(&m, DataKind::Config, &filters))
    }
    async fn config_create(&self, spec: Value) -> ApiResult<Value> {
        let m = self.manager().await?;
        data::create(&m, DataKind::Config, spec).await
    }
    async fn config_inspect(&self, id: &str) -> ApiResult<Value> {
        let m = self.manager().await?;
        Ok(data::view(
            DataKind::Config,
            &data::find(&m, DataKind::Config, id)?,
        ))
    }
    async fn config_remove(&self, id: &str) -> ApiResult<()> {
        let m = self.manager().await?;
        data::remove(&m, DataKind::Config, id).await
    }
    async fn config_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()> {
        let m = self.manager().await?;
        data::update(&m, DataKind::Config, id, version, spec).await
    }
}

/// `POST /nodes/{id}/update` body.
fn parse_node_spec(v: Value) -> ApiResult<NodeSpec> {
    let o = v.as_object().cloned().unwrap_or_default();
    let role = match o.get("Role").and_then(|r| r.as_str()).unwrap_or("") {
        "manager" => Role::Manager,
        "worker" => Role::Worker,
        other => {
            return Err(ApiError::invalid(format!(
                "invalid role {other:?}: expected manager or worker"
            )))
        }
    };
    let av = o.get("Availability").and_then(|r| r.as_str()).unwrap_or("");
    let availability = Availability::parse(av).ok_or_else(|| {
        ApiError::invalid(format!(
            "invalid availability {av:?}: expected active, pause or drain"
        ))
    })?;
    let labels = match o.get("Labels") {
        None | Some(Value::Null) => Default::default(),
        Some(l) => serde_json::from_value(l.clone())
            .map_err(|e| ApiError::invalid(format!("invalid node labels: {e}")))?,
    };
    let name = o
        .get("Name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    Ok(NodeSpec {
        name,
        labels,
        role,
        availability,
    })
}
