//! The container executor: the narrow, typed interface through which containers are run —
//! by the API backend (`backend.rs`, which converts Docker's JSON at the edge), by the
//! builder's RUN steps (`crate::build`), and by the cluster's task executor (issue 17).
//!
//! ```text
//!  api::ContainerBackend ─► backend.rs ─┐
//!  build::run (RUN steps) ──────────────┼─► dyn ContainerExecutor ─► Containers (create.rs, start.rs, …)
//!  cluster task executor (planned) ─────┘                         └► a fake in callers' unit tests
//! ```
//!
//! Everything here speaks the engine's own types ([`ContainerSpec`], [`ExecSpec`],
//! [`LogRecord`], [`ContainerEvent`], [`HealthStatus`]), never `serde_json::Value` or
//! `berth_api` models.
//!
//! Health: a caller that must wait for a container to be healthy (the cluster agent before it
//! reports a task running) reads [`ContainerExecutor::health`] and follows [`events`]
//! (`ContainerEvent::health_status`), subscribing to the events first so no change falls
//! between the two.
//!
//! [`events`]: ContainerExecutor::events
//! Containers are named by id, name or unique id prefix, as everywhere in the engine.

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

pub use super::health::HealthStatus;
use super::model::{ContainerSpec, ExecSpec};
use super::{ContainerError, Containers};

/// A container just made.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub id: String,
    /// Settings this host can't enforce and dropped (Docker's create warnings).
    pub warnings: Vec<String>,
}

/// What [`ContainerExecutor::wait`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// The container is not running (at once if it is not).
    NotRunning,
    /// Its current (or next) run ends, or it is removed.
    NextExit,
    /// It is removed.
    Removed,
}

/// How a run ended: the exit code of the container's process (137 when it was killed, or
/// when its supervisor died with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i64,
}

/// How to stop a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopOptions {
    /// Grace period before SIGKILL; `None`: the container's stop timeout, else 10 s. A
    /// negative value waits forever.
    pub timeout_secs: Option<i64>,
    /// By name or number; `None`: the container's stop signal, else SIGTERM.
    pub signal: Option<String>,
}

/// How to remove a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill it first if it runs (otherwise a running container is a conflict).
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
}

/// Which log records to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRequest {
    /// Keep reading while the container runs.
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Only records at or after / before these times (seconds since the epoch).
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// Only the last n records of the backlog.
    pub tail: Option<usize>,
}

/// Which output a log record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One record of a container's log: a line of output (with its newline) or a partial line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub stream: OutputStream,
    pub time: chrono::DateTime<chrono::Utc>,
    pub line: String,
}

/// A container's log, in order.
pub type LogRecords = BoxStream<'static, LogRecord>;

/// An exec started detached: its id (for `exec inspect`) and its exit.
pub struct ExecRun {
    pub id: String,
    /// Resolves with the exec's exit code (126/127 when it could not be started, 137 when
    /// its supervisor died).
    pub exit: BoxFuture<'static, i64>,
}

/// Something that happened to a container (create, start, die, kill, stop, destroy, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEvent {
    /// Docker's action name, e.g. `start`, `die`, `exec_create: ls`.
    pub action: String,
    pub container_id: String,
    /// Docker's event attributes: name, image, labels, exitCode, signal, ….
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nanos: i64,
}

impl ContainerEvent {
    /// The status a `health_status: …` event reports (`None` for any other event).
    pub fn health_status(&self) -> Option<HealthStatus> {
        HealthStatus::parse(self.action.strip_prefix("health_status: ")?)
    }
}

/// The container operations every caller needs, in the engine's own types.
#[async_trait]
pub trait ContainerExecutor: Send + Sync {
    /// Makes a container from a spec (validated, image resolved and merged); not started.
    async fn create(&self, spec: ContainerSpec) -> Result<Created, ContainerError>;
    /// Starts it; `NotModified` if it runs.
    async fn start(&self, id: &str) -> Result<(), ContainerError>;
    /// A future that resolves once the condition holds (register it before `start` to see
    /// that run's exit).
    async fn wait(
        &self,
        id: &str,
        until: WaitUntil,
    ) -> Result<BoxFuture<'static, ExitStatus>, ContainerError>;
    /// Signals it, waits the grace period, then kills it; `NotModified` if it isn't running.
    async fn stop(&self, id: &str, opts: StopOptions) -> Result<(), ContainerError>;
    /// Sends a signal (`None`: SIGKILL, answered once the exit is recorded).
    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ContainerError>;
    /// Deletes it and everything it holds on this host.
    async fn remove(&self, id: &str, opts: RemoveOptions) -> Result<(), ContainerError>;
    /// Its log records (`NotImplemented` for log driver `none`).
    async fn logs(&self, id: &str, req: LogRequest) -> Result<LogRecords, ContainerError>;
    /// Runs a process in the running container, detached.
    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecRun, ContainerError>;
    /// Container events from now on. A healthcheck's status changes are events too
    /// ([`ContainerEvent::health_status`]).
    fn events(&self) -> BoxStream<'static, ContainerEvent>;
    /// Its health as its healthcheck last reported it: `None` when it has no healthcheck
    /// (or `NONE`); `Starting` from each start until a probe passes. Kept after it stops.
    async fn health(&self, id: &str) -> Result<Option<HealthStatus>, ContainerError>;
}

#[async_trait]
impl ContainerExecutor for Containers {
    async fn create(&self, spec: ContainerSpec) -> Result<Created, ContainerError> {
        Containers::create(self, spec).await
    }

    async fn start(&self, id: &str) -> Result<(), ContainerError> {
        Containers::start(self, id).await
    }

    async fn wait(
        &self,
        id: &str,
        until: WaitUntil,
    ) -> Result<BoxFuture<'static, ExitStatus>, ContainerError> {
        Containers::wait(self, id, until).await
    }

    async fn stop(&self, id: &str, opts: StopOptions) -> Result<(), ContainerError> {
        Containers::stop(self, id, opts.timeout_secs, opts.signal).await
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ContainerError> {
        Containers::kill(self, id, signal).await
    }

    async fn remove(&self, id: &str, opts: RemoveOptions) -> Result<(), ContainerError> {
        Containers::remove(self, id, opts.force, opts.volumes).await
    }

    async fn logs(&self, id: &str, req: LogRequest) -> Result<LogRecords, ContainerError> {
        self.filtered_log_records(id, req)
    }

    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecRun, ContainerError> {
        let exec_id = self.exec_create(id, spec).await?;
        // Detached: the handle serves no connection.
        let _ = self.exec_start(&exec_id, true).await?;
        let mut done = self.exec_done(&exec_id)?;
        let exit = Box::pin(async move {
            match done.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(137),
                Err(_) => 137,
            }
        });
        Ok(ExecRun { id: exec_id, exit })
    }

    async fn health(&self, id: &str) -> Result<Option<HealthStatus>, ContainerError> {
        let c = self.get(id)?;
        Ok(c.update(|r| r.state.health.as_ref().map(|h| h.status)))
    }

    fn events(&self) -> BoxStream<'static, ContainerEvent> {
        let (_, rx) = self.inner.events.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.kind == "container" => {
                        let ev = ContainerEvent {
                            action: e.action.clone(),
                            container_id: e.actor_id.clone(),
                            attributes: e.attributes.clone(),
                            time_nanos: e.time_nano,
                        };
                        return Some((ev, rx));
                    }
                    Ok(_) => continue,
                    // A slow reader misses events rather than stalling everyone.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
