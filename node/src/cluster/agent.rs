//! The agent: runs this node's tasks through the engine's container executor, the same path
//! as `docker run`, and reports what they do.
//!
//! ```text
//!  manager ──Assignments (long poll)──► reconcile ─► run_task: pull? ─► create ─► start ─► watch exit
//!                                                 └► stop_task (desired shutdown)
//!                                                 └► remove containers of deleted tasks
//!  reports (accepted … running, complete/failed/shutdown/rejected) ─► batched ─► TaskStatus
//! ```
//! A task's container is never restarted here: when it ends the agent reports it, and the
//! managers decide (a new task, maybe elsewhere). Cut off from every manager, the agent keeps
//! its tasks running and keeps its reports until a manager answers again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::backend::ImageBackend;
use berth_api::error::{cause_chain, ApiError};
use berth_raft::logs::LogSubscription;
use berth_raft::rpc::{Assignments, Reply, Request, TaskReport};
use berth_raft::state::now;
use berth_raft::swarm::Swarm;
use berth_raft::tasks::{Task, TaskState, TaskStatus};
use futures_util::StreamExt;

use super::taskdata::{files_for, TaskData, TaskFile};
use super::taskspec::{container_name, container_spec, LABEL_TASK_ID};
use crate::container::executor::{ContainerExecutor, RemoveOptions, StopOptions, WaitUntil};
use crate::container::health::HealthStatus;

use crate::container::model::ContainerSpec;
use crate::container::Containers;

/// How often a starting task's health is looked at (a memory read; probes run on their own).
const HEALTH_POLL: Duration = Duration::from_millis(100);

/// Resolves when a task's container exits.
type Exit = futures_util::future::BoxFuture<'static, crate::container::executor::ExitStatus>;

/// Why a task is rejected before its container exists; the message becomes the task's
/// error.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    /// Its secrets and configs could not be read or mounted.
    #[error("{0}")]
    Files(String),
    /// Its image is not here and could not be pulled (nor fetched from a peer).
    #[error(transparent)]
    Image(#[from] PullError),
}

/// Why pulling a task's image failed.
#[derive(Debug, thiserror::Error)]
enum PullError {
    /// The engine refused to start the pull.
    #[error("{0}")]
    Start(#[source] ApiError),
    /// The registry's error, as the pull's progress reported it.
    #[error("{0}")]
    Registry(String),
}

/// What this node does with a task.
#[derive(Debug, Clone, PartialEq)]
enum Local {
    /// Being pulled, created or started.
    Preparing,
    /// Told to stop while being prepared: stop as soon as it exists.
    Cancelled,
    Running {
        container: String,
    },
    Stopping,
    /// Ended (and reported).
    Done,
}

pub struct Agent {
    swarm: Arc<Swarm>,
    /// Task containers on swarm networks (`netattach.rs`).
    net: Arc<super::netattach::NetAttach>,
    /// The routing mesh of this node (`ingress.rs`).
    mesh: super::ingress::Mesh,
    /// Standalone containers on attachable overlays (`attachable.rs`).
    attachable: Arc<super::attachable::Attachable>,
    containers: Containers,
    images: Arc<dyn ImageBackend>,
    local: Mutex<HashMap<String, Local>>,
    reports: Mutex<Vec<TaskReport>>,
    wake: tokio::sync::Notify,
    /// The tmpfs files (secrets, configs) of this node's tasks.
    data: TaskData,
    /// Log subscriptions being served, by ID.
    log_streams: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// The WireGuard tunnels of encrypted networks (`wireguard.rs`).
    tunnels: Arc<super::wireguard::NodeTunnels>,
}

impl Agent {
    pub fn start(
        swarm: Arc<Swarm>,
        containers: Containers,
        images: Arc<dyn ImageBackend>,
        tunnels: Arc<super::wireguard::NodeTunnels>,
    ) {
        let exec_root = containers.exec_root().to_path_buf();
        let attachable = super::attachable::Attachable::new(swarm.clone(), containers.clone());
        containers
            .networks()
            .set_swarm_attacher(Some(attachable.hook()));
        let agent = Arc::new(Agent {
            swarm,
            net: super::netattach::NetAttach::new(&containers),
            mesh: super::ingress::Mesh::default(),
            attachable,
            containers,
            images,
            local: Mutex::new(HashMap::new()),
            reports: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            data: TaskData::new(&exec_root),
            log_streams: Mutex::new(HashMap::new()),
            tunnels,
        });
        tokio::spawn(agent.clone().assignments_loop());
        tokio::spawn(agent.report_loop());
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn assignments_loop(self: Arc<Self>) {
        let mut known = 0u64;
        let mut was_active = false;
        loop {
            let st = self.swarm.status();
            if !st.active || st.locked {
                if was_active && !st.active {
                    // Left the swarm: its task containers go, as with dockerd.
                    self.remove_task_containers(&HashSet::new()).await;
                    self.mesh.clear().await;
                    self.local().clear();
                    self.data.sweep(&HashSet::new());
                    self.tunnels.update(None, &[]).await;
                }
                was_active = st.active;
                known = 0;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            was_active = true;
            let req = Request::Assignments { known };
            match self.swarm.call(&req, Duration::from_secs(10)).await {
                Ok(Reply::Assignments(a)) => {
                    known = a.fingerprint;
                    self.tunnels.update(a.tunnels.clone(), &a.networks).await;
                    self.net.update(&st.addr, &a.networks).await;
                    self.mesh.update(&st.node_id, &a.networks).await;
                    self.attachable.gc(&st.node_id, &a.networks).await;
                    self.reconcile(&st.node_id, *a).await;
                }
                Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                Err(e) => {
                    tracing::debug!(error = %e, "task assignments");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn reconcile(self: &Arc<Self>, node_id: &str, a: Assignments) {
        let ids: HashSet<String> = a.tasks.iter().map(|t| t.id.clone()).collect();
        self.serve_logs(node_id, a.log_subscriptions);
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in a.tasks {
            let local = self.local().get(&t.id).cloned();
            if t.desired_state <= TaskState::Running {
                if t.status.state.terminal() || local.is_some() {
                    continue;
                }
                self.local().insert(t.id.clone(), Local::Preparing);
                let (me, node) = (self.clone(), node_id.to_owned());
                if t.status.state >= TaskState::Starting {
                    tokio::spawn(async move { me.adopt(t).await });
                } else {
                    let files = files_for(&t, &a.secrets, &a.configs, &hostname);
                    tokio::spawn(async move { me.run_task(t, node, files).await });
                }
                continue;
            }
            match local {
                Some(Local::Running { container }) => {
                    self.local().insert(t.id.clone(), Local::Stopping);
                    let me = self.clone();
                    tokio::spawn(async move { me.stop_task(t, container).await });
                }
                Some(Local::Preparing) => {
                    self.local().insert(t.id.clone(), Local::Cancelled);
                }
                None if !t.status.state.terminal() => {
                    // Not started here, or started before a restart of this daemon.
                    self.local().insert(t.id.clone(), Local::Stopping);
                    let me = self.clone();
                    let container = container_name(&t);
                    tokio::spawn(async move { me.stop_task(t, container).await });
                }
                _ => {}
            }
        }
        self.local().retain(|id, _| ids.contains(id));
        self.remove_task_containers(&ids).await;
        // Files stay only for tasks that run or are about to.
        let live: HashSet<String> = self
            .local()
            .iter()
            .filter(|(_, l)| !matches!(l, Local::Done))
            .map(|(id, _)| id.clone())
            .collect();
        self.data.sweep(&live);
    }

    /// Starts reading logs for new subscriptions, stops those that ended.
    fn serve_logs(self: &Arc<Self>, node_id: &str, subs: Vec<LogSubscription>) {
        let mut running = self.log_streams.lock().unwrap_or_else(|p| p.into_inner());
        let ids: HashSet<&str> = subs.iter().map(|s| s.id.as_str()).collect();
        running.retain(|id, h| {
            let keep = ids.contains(id.as_str());
            if !keep {
                h.abort();
            }
            keep
        });
        for sub in subs {
            if running.contains_key(&sub.id) {
                continue;
            }
            let id = sub.id.clone();
            let task = tokio::spawn(super::logs::publish(
                self.swarm.clone(),
                self.containers.clone(),
                node_id.to_owned(),
                sub,
            ));
            running.insert(id, task.abort_handle());
        }
    }

    /// Removes the containers of tasks this node no longer has (deleted by the managers).
    async fn remove_task_containers(&self, keep: &HashSet<String>) {
        let gone: Vec<String> = self
            .containers
            .all()
            .into_iter()
            .filter_map(|c| {
                let rec = c.record();
                let task = rec.config.labels.get(LABEL_TASK_ID)?;
                (!keep.contains(task)).then(|| c.id.clone())
            })
            .collect();
        // All at once: a removed service's containers go together, not one after another.
        let removals = gone.into_iter().map(|id| async move {
            let opts = RemoveOptions {
                force: true,
                volumes: false,
            };
            if let Err(e) = ContainerExecutor::remove(&self.containers, &id, opts).await {
                tracing::debug!(container = %id, error = %e, "removing a task's container");
            }
        });
        futures_util::future::join_all(removals).await;
    }

    fn report(&self, t: &Task, state: TaskState, message: &str, f: impl FnOnce(&mut TaskStatus)) {
        let mut status = TaskStatus {
            timestamp: now(),
            state,
            message: message.to_owned(),
            err: String::new(),
            container_id: String::new(),
            pid: 0,
            exit_code: 0,
        };
        f(&mut status);
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(TaskReport {
                task_id: t.id.clone(),
                status,
            });
        self.wake.notify_one();
    }

    async fn report_loop(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(Duration::from_millis(200), self.wake.notified()).await;
            // Let reports made together go together.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let batch: Vec<TaskReport> =
                std::mem::take(&mut *self.reports.lock().unwrap_or_else(|p| p.into_inner()));
            if batch.is_empty() {
                continue;
            }
            let req = Request::TaskStatus(batch.clone());
            if let Err(e) = self.swarm.call(&req, Duration::from_secs(8)).await {
                tracing::debug!(error = %e, "task status reports; keeping them");
                self.requeue(batch);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Puts reports that could not be delivered back in front of newer ones.
    fn requeue(&self, batch: Vec<TaskReport>) {
        let mut q = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let newer = std::mem::take(&mut *q);
        *q = batch;
        q.extend(newer);
    }

    fn cancelled(&self, t: &Task) -> bool {
        matches!(self.local().get(&t.id), Some(Local::Cancelled) | None)
    }

    /// Marks the task ended here and lets its secrets and configs go.
    fn done(&self, t: &Task) {
        self.local().insert(t.id.clone(), Local::Done);
        self.data.release(&t.id);
    }

    /// Runs one assigned task: its container is prepared (secrets and configs, networks,
    /// image), created and started; a task with a healthcheck waits for its first passing
    /// probe before it is reported running, then it is watched until it ends.
    async fn run_task(
        self: Arc<Self>,
        t: Task,
        node_id: String,
        files: Result<Vec<TaskFile>, String>,
    ) {
        self.report(&t, TaskState::Accepted, "accepted", |_| {});
        self.report(&t, TaskState::Preparing, "preparing", |_| {});
        let spec = match self.prepare(&t, &node_id, files).await {
            Ok(spec) => spec,
            Err(e) => {
                tracing::debug!(task = %t.id, error = %cause_chain(&e), "task rejected");
                self.done(&t);
                self.report(&t, TaskState::Rejected, "preparing", |s| {
                    s.err = e.to_string()
                });
                return;
            }
        };
        if self.cancelled(&t) {
            self.done(&t);
            self.report(&t, TaskState::Shutdown, "shutdown", |_| {});
            return;
        }
        let Some((id, mut exit)) = self.create_and_start(&t, spec).await else {
            return;
        };
        if !self.mark_running(&t, &id) {
            self.local().insert(t.id.clone(), Local::Stopping);
            self.clone().stop_task(t, id).await;
            return;
        }
        // A task with a healthcheck stays "starting" until its first passing probe.
        let gated = matches!(
            ContainerExecutor::health(&self.containers, &id).await,
            Ok(Some(_))
        );
        if gated && !self.until_healthy(&t, &id, &mut exit).await {
            return;
        }
        let pid = self.pid_of(&id);
        self.report(&t, TaskState::Running, "started", |s| {
            s.container_id = id.clone();
            s.pid = pid;
        });
        self.watch(t, id, exit, gated).await;
    }

    /// The spec of the task's container, with its secret and config files mounted, its
    /// network endpoints and the image as this node knows it (pulled first if need be);
    /// Err: why the task is rejected.
    async fn prepare(
        &self,
        t: &Task,
        node_id: &str,
        files: Result<Vec<TaskFile>, String>,
    ) -> Result<ContainerSpec, Rejection> {
        let mut spec = container_spec(t, node_id);
        let mounts = files
            .and_then(|f| {
                self.data
                    .mount(&t.id, &f)
                    .map_err(|e| format!("secrets and configs: {e}"))
            })
            .map_err(Rejection::Files)?;
        spec.host_config.mounts.extend(mounts);
        spec.endpoints = self.net.endpoints(t);
        let auth = super::services::registry_auth(&t.spec)
            .and_then(|a| berth_api::routes::images::decode_json_b64(&a));
        spec.config.image = self.ensure_image(&spec.config.image, auth).await?;
        Ok(spec)
    }

    /// Creates the task's container and starts it, with its exit watched from before the
    /// start; the container and that exit, or None once the failure is reported.
    async fn create_and_start(&self, t: &Task, spec: ContainerSpec) -> Option<(String, Exit)> {
        let created = match ContainerExecutor::create(&self.containers, spec).await {
            Ok(c) => c,
            Err(e) => {
                self.done(t);
                self.report(t, TaskState::Rejected, "preparing", |s| {
                    s.err = e.to_string()
                });
                return None;
            }
        };
        let id = created.id;
        self.report(t, TaskState::Starting, "starting", |s| {
            s.container_id = id.clone()
        });
        let exit = match ContainerExecutor::wait(&self.containers, &id, WaitUntil::NextExit).await {
            Ok(f) => f,
            Err(e) => {
                self.done(t);
                self.report(t, TaskState::Failed, "starting", |s| s.err = e.to_string());
                return None;
            }
        };
        if let Err(e) = ContainerExecutor::start(&self.containers, &id).await {
            self.done(t);
            self.report(t, TaskState::Failed, "starting", |s| {
                s.err = e.to_string();
                s.container_id = id.clone();
            });
            return None;
        }
        Some((id, exit))
    }

    /// Records the task as running in `container`, unless it was told to stop meanwhile
    /// (false).
    fn mark_running(&self, t: &Task, container: &str) -> bool {
        let mut l = self.local();
        if matches!(l.get(&t.id), Some(Local::Cancelled) | None) {
            return false;
        }
        l.insert(
            t.id.clone(),
            Local::Running {
                container: container.to_owned(),
            },
        );
        true
    }

    /// Polls a starting task's health until its first passing probe (true); false when it
    /// ended or turned unhealthy first (already reported).
    async fn until_healthy(&self, t: &Task, id: &str, exit: &mut Exit) -> bool {
        loop {
            tokio::select! {
                e = &mut *exit => {
                    self.ended(t, id, e.code);
                    return false;
                }
                _ = tokio::time::sleep(HEALTH_POLL) => {}
            }
            match ContainerExecutor::health(&self.containers, id).await {
                Ok(Some(HealthStatus::Healthy)) | Ok(None) | Err(_) => return true,
                Ok(Some(HealthStatus::Unhealthy)) => {
                    self.unhealthy(t, id).await;
                    return false;
                }
                Ok(Some(HealthStatus::Starting)) => {}
            }
        }
    }

    /// Waits for a running task's container to end; with a healthcheck, fails the task
    /// when it turns unhealthy.
    async fn watch(self: Arc<Self>, t: Task, id: String, mut exit: Exit, gated: bool) {
        if !gated {
            let code = exit.await.code;
            self.ended(&t, &id, code);
            return;
        }
        loop {
            tokio::select! {
                e = &mut exit => {
                    self.ended(&t, &id, e.code);
                    return;
                }
                _ = tokio::time::sleep(HEALTH_POLL * 5) => {}
            }
            if let Ok(Some(HealthStatus::Unhealthy)) =
                ContainerExecutor::health(&self.containers, &id).await
            {
                self.unhealthy(&t, &id).await;
                return;
            }
        }
    }

    /// The task's container failed its healthcheck: stopped, and the task failed (the
    /// managers replace it, or roll an update back).
    async fn unhealthy(&self, t: &Task, id: &str) {
        {
            let mut l = self.local();
            if matches!(l.get(&t.id), Some(Local::Stopping) | Some(Local::Done)) {
                return;
            }
            l.insert(t.id.clone(), Local::Stopping);
        }
        let opts = StopOptions::default();
        if let Err(e) = ContainerExecutor::stop(&self.containers, id, opts).await {
            tracing::debug!(task = %t.id, error = %e, "stopping an unhealthy task");
        }
        self.done(t);
        self.report(t, TaskState::Failed, "unhealthy", |s| {
            s.err = "task: container unhealthy".into();
            s.container_id = id.to_owned();
        });
    }

    /// After a restart of this daemon: a task that was starting or running here.
    async fn adopt(self: Arc<Self>, t: Task) {
        let name = container_name(&t);
        let Ok(ctr) = self.containers.get(&name) else {
            self.done(&t);
            self.report(&t, TaskState::Failed, "failed", |s| {
                s.err = "task container is missing".into()
            });
            return;
        };
        let id = ctr.id.clone();
        if !ctr.is_running() {
            let code = ctr.record().state.exit_code;
            self.ended(&t, &id, code);
            return;
        }
        self.local().insert(
            t.id.clone(),
            Local::Running {
                container: id.clone(),
            },
        );
        let gated = matches!(
            ContainerExecutor::health(&self.containers, &id).await,
            Ok(Some(_))
        );
        match ContainerExecutor::wait(&self.containers, &id, WaitUntil::NotRunning).await {
            Ok(exit) => self.watch(t, id, exit, gated).await,
            Err(e) => tracing::debug!(task = %t.id, error = %e, "watching an adopted task"),
        }
    }

    /// The task's container exited on its own (unless it was being stopped).
    fn ended(&self, t: &Task, id: &str, code: i64) {
        {
            let mut l = self.local();
            if matches!(l.get(&t.id), Some(Local::Stopping) | Some(Local::Done)) {
                return;
            }
            l.insert(t.id.clone(), Local::Done);
        }
        self.data.release(&t.id);
        if code == 0 {
            self.report(t, TaskState::Complete, "finished", |s| {
                s.container_id = id.to_owned();
            });
        } else {
            self.report(t, TaskState::Failed, "failed", |s| {
                s.container_id = id.to_owned();
                s.exit_code = code;
                s.err = format!("task: non-zero exit ({code})");
            });
        }
    }

    async fn stop_task(self: Arc<Self>, t: Task, container: String) {
        let opts = StopOptions::default();
        let code = match ContainerExecutor::stop(&self.containers, &container, opts).await {
            Ok(()) | Err(crate::container::ContainerError::NotModified) => self
                .containers
                .get(&container)
                .map(|c| c.record().state.exit_code)
                .unwrap_or(0),
            Err(crate::container::ContainerError::NotFound(_)) => 0,
            Err(e) => {
                tracing::warn!(task = %t.id, error = %e, "stopping a task");
                0
            }
        };
        self.done(&t);
        self.report(&t, TaskState::Shutdown, "shutdown", |s| {
            s.container_id = container.clone();
            s.exit_code = code;
        });
    }

    fn pid_of(&self, id: &str) -> i64 {
        self.containers
            .get(id)
            .map(|c| c.record().state.pid)
            .unwrap_or(0)
    }

    /// The reference this node knows the image by, pulled first unless it has it.
    async fn ensure_image(
        &self,
        image: &str,
        auth: Option<serde_json::Value>,
    ) -> Result<String, PullError> {
        // A digest-pinned reference from the CLI (`repo:tag@sha256:…`) is known locally by
        // its digest or, when it was built or loaded here, by its tag.
        let (name, tag) = split_reference(image);
        let by_tag = match image.split_once('@') {
            Some((named, _)) => named.to_owned(),
            None => image.to_owned(),
        };
        for candidate in [image.to_owned(), name.clone(), by_tag] {
            if self.images.inspect(&candidate).await.is_ok() {
                return Ok(candidate);
            }
        }
        // What the engine knows the image by once it is here (a pull by tag stores the tag).
        let wanted = match &tag {
            Some(t) => format!("{name}:{t}"),
            None => name.clone(),
        };
        let pulled = match self.pull(&name, tag.as_deref(), auth).await {
            Ok(()) => return Ok(wanted),
            Err(e) => e,
        };
        // In no reachable registry: maybe built or loaded on another node of the swarm.
        match super::peerimages::fetch(&self.swarm, &self.images, &wanted).await {
            Ok(()) => Ok(wanted),
            Err(peer) => {
                tracing::debug!(image, error = %cause_chain(&peer), "no peer has the image either");
                Err(pulled)
            }
        }
    }

    /// Pulls `name` (`tag`) from its registry; Err carries the registry's message.
    async fn pull(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<serde_json::Value>,
    ) -> Result<(), PullError> {
        let mut progress = self
            .images
            .pull(name, tag, None, auth)
            .await
            .map_err(PullError::Start)?;
        while let Some(msg) = progress.next().await {
            if let Some(err) = msg.get("errorDetail").or_else(|| msg.get("error")) {
                let text = err
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| err.to_string());
                return Err(PullError::Registry(text));
            }
        }
        Ok(())
    }
}

/// `repo:tag@sha256:x` → (`repo@sha256:x`, None); `repo:tag` → (`repo`, `tag`).
fn split_reference(r: &str) -> (String, Option<String>) {
    if let Some((name, digest)) = r.split_once('@') {
        let repo = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => name,
        };
        return (format!("{repo}@{digest}"), None);
    }
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), Some(tag.to_owned())),
        _ => (r.to_owned(), None),
    }
}
