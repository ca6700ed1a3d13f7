//! Containers: records, lifecycle, stdio, exec and everything read from a running container.
//!
//! ```text
//!  API ─► backend.rs (Docker JSON ⇄ model.rs types) ─┐
//!  builder, cluster task executor ─► executor.rs ─────┴─► Containers
//!
//!  Containers ─┬─ create.rs     create: validate, merge the image's config, write the record
//!              ├─ start.rs      start: rootfs, network, bundle, shim; teardown
//!              ├─ exit.rs       what an exit does: record, `die`, restart policy, `--rm`
//!              ├─ stop.rs       stop · restart · kill        (signal.rs: signal names)
//!              ├─ remove.rs     remove · prune
//!              ├─ wait.rs       wait for not-running, next exit or removal
//!              ├─ health.rs     healthchecks: config, merge, status rules (pure)
//!              ├─ probe.rs      the probes of running containers (one task each)
//!              ├─ restore.rs    re-adoption of what runs at daemon start
//!              ├─ paths.rs      a container's directories (data root, exec root)
//!              ├─ names.rs      names: validate, generate, rename
//!              ├─ attach.rs     attach and exec: splice the hijacked client to the shim
//!              ├─ logs.rs       `logs`: render and follow (logfiles.rs: the rotated set)
//!              ├─ logconfig.rs  log drivers and options: defaults, validation, shim args
//!              ├─ view.rs       inspect and list JSON
//!              ├─ fs.rs         cp (archive), export, changes
//!              ├─ cgroup/       stats, top, pause, update (v1.rs, v2.rs: each layout)
//!              ├─ spec.rs       the OCI spec (+ seccomp.rs, user.rs, etc_files.rs,
//!              │                exec_process.rs: an exec's process, the container's own)
//!              ├─ mounts.rs     -v, --mount, --volumes-from: parse, resolve, attach
//!              ├─ validate.rs   settings refused at create/update (ports, CPU limits,
//!              │                restart policies)
//!              ├─ netns.rs      the network namespace of each container
//!              ├─ model.rs      the engine's types: ContainerSpec, ContainerConfig, HostConfig, …
//!              └─ record.rs     the stored record, its format versions and their migration
//! ```
//! Invariants: a container's record in metadata.redb is written before the API answers; a
//! lifecycle operation on one container holds its `op` lock, so start/stop/remove never
//! interleave; the shim, not berthd, is the parent of the container, so berthd may die at any
//! point and a restart re-adopts what runs (`restore::restore`).

mod attach;
mod backend;
mod cgroup;
mod create;
mod etc_files;
mod exec_process;
pub mod executor;
mod exit;
#[cfg(test)]
pub(crate) mod fake;
mod fs;
mod fsview;
pub mod health;
mod leftovers;
mod links;
pub mod logconfig;
mod logfiles;
mod logs;
pub mod model;
pub mod mounts;
mod names;
mod net;
mod netns;
mod paths;
mod probe;
pub mod record;
mod remove;
mod restore;
pub mod seccomp;
mod shim;
mod signal;
pub mod spec;
mod start;
mod stop;
pub(crate) mod user;
mod validate;
mod view;
mod wait;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_api::{ApiError, ErrorKind};
use tokio::sync::watch;

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::image::ImageStore;
use crate::store::MetaStore;

pub use executor::{
    ContainerEvent, ContainerExecutor, Created, ExecRun, ExitStatus, HealthStatus, LogRecord,
    LogRecords, LogRequest, OutputStream, RemoveOptions, StopOptions, WaitUntil,
};
pub use model::{ContainerConfig, ContainerSpec, ExecSpec, HostConfig, ResourceUpdate};
pub use record::{Record, State, RECORD_VERSION};
pub use remove::Pruned;
pub use restore::restore;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(String),
    /// An internal failure: `message` is what the client sees, `source` what caused it (kept
    /// for the log written at the API edge).
    #[error("{message}")]
    Internal {
        message: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The container's configuration can't do this (logs with log driver `none`): 501.
    #[error("{0}")]
    NotImplemented(String),
    /// Nothing to do (start of a running container, stop of a stopped one): 304.
    #[error("not modified")]
    NotModified,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A record whose format version this berthd does not know (written by a newer one).
    #[error("container record {id} has format version {found}, which this berthd does not know (it reads versions up to {supported}): it was written by a newer berthd; start one at least as new", supported = record::RECORD_VERSION)]
    RecordVersion { id: String, found: String },
    /// A record that does not parse as its version's format.
    #[error("container record {id} (format version {version}) cannot be read")]
    RecordDecode {
        id: String,
        version: u32,
        source: serde_json::Error,
    },
}

impl ContainerError {
    pub fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        ContainerError::Io {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// An internal failure whose message is `source`'s own text.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::internal_with(source.to_string(), source)
    }

    /// An internal failure with its own message, keeping `source` as its cause.
    pub fn internal_with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ContainerError::Internal {
            message: message.into(),
            source: Box::new(source),
        }
    }
}

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        let kind = match &e {
            ContainerError::Invalid(_) => ErrorKind::InvalidArgument,
            ContainerError::NotFound(_) => ErrorKind::NotFound,
            ContainerError::Conflict(_) => ErrorKind::Conflict,
            ContainerError::NotModified => ErrorKind::NotModified,
            ContainerError::Forbidden(_) => ErrorKind::Forbidden,
            ContainerError::NotImplemented(_) => ErrorKind::NotImplemented,
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, e.to_string()).with_source(e)
    }
}

/// What waiters watch: the status and how many times the container has exited.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    pub running: bool,
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// One container in memory.
pub struct Ctr {
    pub id: String,
    pub rec: Mutex<Record>,
    /// Serialises lifecycle operations on this container.
    pub op: tokio::sync::Mutex<()>,
    pub watch: watch::Sender<Watch>,
    /// Attaches made before start, served once the shim exists.
    pub pending: Mutex<Vec<attach::Pending>>,
    /// A `restart` is stopping it: the exit does not remove a `--rm` container (as in Docker).
    pub restarting: std::sync::atomic::AtomicBool,
}

impl Ctr {
    pub fn record(&self) -> Record {
        self.rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }
    pub fn status(&self) -> String {
        self.rec
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .status
            .clone()
    }
    pub fn is_running(&self) -> bool {
        matches!(self.status().as_str(), "running" | "paused")
    }
}

/// An exec instance (kept in memory, like dockerd).
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecSpec,
    pub state: Mutex<ExecState>,
    pub done: watch::Sender<Option<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
    /// When it ended (execs are forgotten a while after).
    pub exited_at: Option<std::time::Instant>,
}

/// The container manager, cheap to clone.
#[derive(Clone)]
pub struct Containers {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: DaemonConfig,
    pub meta: Arc<MetaStore>,
    pub images: Arc<dyn ImageStore>,
    pub nets: crate::network::Networks,
    pub volumes: crate::volume::Volumes,
    pub events: Events,
    pub map: Mutex<HashMap<String, Arc<Ctr>>>,
    pub names: Mutex<HashMap<String, String>>,
    pub execs: Mutex<HashMap<String, Arc<Exec>>>,
    pub nofile_hard: u64,
}

impl Containers {
    pub fn new(
        cfg: DaemonConfig,
        meta: Arc<MetaStore>,
        images: Arc<dyn ImageStore>,
        nets: crate::network::Networks,
        volumes: crate::volume::Volumes,
        events: Events,
    ) -> Result<Self, ContainerError> {
        let nofile_hard =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(_, hard)| hard)
                .unwrap_or(1024);
        let inner = Arc::new(Inner {
            cfg,
            meta,
            images,
            nets,
            volumes,
            events,
            map: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            nofile_hard,
        });
        let c = Containers { inner };
        c.load_records()?;
        Ok(c)
    }

    fn load_records(&self) -> Result<(), ContainerError> {
        let recs = record::load_and_migrate(&self.inner.meta)?;
        let mut map = self.inner.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut names = self.inner.names.lock().unwrap_or_else(|p| p.into_inner());
        for rec in recs {
            names.insert(rec.name.clone(), rec.id.clone());
            map.insert(rec.id.clone(), Arc::new(Ctr::new(rec)));
        }
        Ok(())
    }

    /// Finds a container by full id, name (with or without `/`), or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Ctr>, ContainerError> {
        let key = key.trim_start_matches('/');
        let not_found = || ContainerError::NotFound(format!("No such container: {key}"));
        if key.is_empty() {
            return Err(not_found());
        }
        let map = self.inner.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        if let Some(id) = self
            .inner
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            if let Some(c) = map.get(id) {
                return Ok(c.clone());
            }
        }
        let mut found = map.iter().filter(|(id, _)| id.starts_with(key));
        match (found.next(), found.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(ContainerError::NotFound(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(not_found()),
        }
    }

    /// The daemon's runtime directory (`--exec-root`).
    pub fn exec_root(&self) -> &std::path::Path {
        &self.inner.cfg.exec_root
    }

    pub fn all(&self) -> Vec<Arc<Ctr>> {
        self.inner
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Ids of containers using an image (for image removal conflicts).
    pub fn users_of_image(&self, image_id: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| c.record().image_id == image_id)
            .map(|c| c.id.clone())
            .collect()
    }

    pub(crate) fn emit(&self, c: &Ctr, action: &str, extra: &[(&str, String)]) {
        let rec = c.record();
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_owned(), rec.name.clone());
        attrs.insert(
            "image".to_owned(),
            if rec.config.image.is_empty() {
                rec.image_id.clone()
            } else {
                rec.config.image.clone()
            },
        );
        for (k, v) in &rec.config.labels {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.inner.events.publish("container", action, &c.id, attrs);
    }

    pub(crate) fn persist(&self, c: &Ctr) -> Result<(), ContainerError> {
        record::write(&self.inner.meta, &c.record())
    }
}

impl Ctr {
    pub fn new(rec: Record) -> Self {
        let running = matches!(rec.state.status.as_str(), "running" | "paused");
        let (watch, _) = watch::channel(Watch {
            running,
            exits: 0,
            exit_code: rec.state.exit_code,
            removed: false,
        });
        Ctr {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            watch,
            pending: Mutex::new(Vec::new()),
            restarting: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// RFC 3339 with nanoseconds, as Docker prints times.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub use cgroup::Support as CgroupSupport;

/// Which limits this host's cgroups can enforce.
pub fn cgroup_support() -> CgroupSupport {
    cgroup::support()
}
