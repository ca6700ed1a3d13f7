//! The traits the engine implements for the API, split by area.
//!
//! Handlers parse the request, call one of these, and render the result; they hold no state.
//! Responses that the engine builds as JSON objects (inspect, list) are passed through as
//! `serde_json::Value` so the engine owns their shape; what the API itself must interpret
//! (status, streams, hijacks) is typed here.

use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::ApiResult;
use crate::models::{ContainerCreateBody, ExecConfig, HostConfig, UpdateBody, VolumeCreateBody};
use crate::swarm::{
    InitRequest, JoinRequest, LocalNodeState, SwarmInfo, SwarmUpdateFlags, UnlockKey,
};

/// A request body as a stream of chunks (tar uploads: import, load, cp, build).
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The raw, bidirectional connection left after a `101 UPGRADED` hijack.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}
pub type Hijacked = Pin<Box<dyn Duplex>>;

/// What the engine hands back for attach and exec start: whether the stream is a TTY (raw) or
/// multiplexed, and the task that serves the hijacked connection.
pub struct AttachHandle {
    pub tty: bool,
    pub serve: Box<dyn FnOnce(Hijacked) -> BoxFuture<'static, ()> + Send>,
}

/// `filters` query, normalised: key → accepted values.
pub type Filters = HashMap<String, Vec<String>>;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// The body `wait` sends once its condition holds.
#[derive(Debug, Clone)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub timestamps: bool,
    pub tail: Option<usize>,
    /// `details`: service and task logs prefix each line with its task's node, service and
    /// task IDs (what `docker service logs` reads).
    pub details: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Option<String>,
}

/// A log or export stream; `tty` tells whether log bytes are raw or multiplexed.
pub struct ByteStream {
    pub tty: bool,
    pub stream: BoxStream<'static, Bytes>,
}

/// `stat` of a path inside a container, for `X-Docker-Container-Path-Stat` (shared with the
/// CLI, which reads it).
pub use berth_common::models::PathStat;

#[async_trait]
pub trait ContainerBackend: Send + Sync {
    async fn create(&self, name: Option<String>, body: ContainerCreateBody) -> ApiResult<Value>;
    async fn list(&self, opts: ListOptions) -> ApiResult<Vec<Value>>;
    async fn inspect(&self, id: &str, size: bool) -> ApiResult<Value>;
    /// `Err(NotModified)` when already running.
    async fn start(&self, id: &str) -> ApiResult<()>;
    async fn stop(&self, id: &str, timeout: Option<i64>, signal: Option<String>) -> ApiResult<()>;
    async fn restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> ApiResult<()>;
    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()>;
    async fn pause(&self, id: &str) -> ApiResult<()>;
    async fn unpause(&self, id: &str) -> ApiResult<()>;
    /// Checks the container exists (the error is sent as the status); the future resolves when
    /// the condition holds.
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> ApiResult<BoxFuture<'static, WaitResult>>;
    async fn remove(&self, id: &str, force: bool, volumes: bool) -> ApiResult<()>;
    /// `DELETE /containers/{name}?link=true`: `name` is a legacy link, `/parent/alias`.
    async fn remove_link(&self, name: &str) -> ApiResult<()> {
        Err(crate::ApiError::not_found(format!(
            "No such container: {name}"
        )))
    }
    async fn logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream>;
    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<AttachHandle>;
    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()>;
    async fn rename(&self, id: &str, new_name: &str) -> ApiResult<()>;
    async fn update(&self, id: &str, body: UpdateBody) -> ApiResult<Value>;
    async fn top(&self, id: &str, ps_args: Option<String>) -> ApiResult<Value>;
    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> ApiResult<BoxStream<'static, Value>>;
    async fn changes(&self, id: &str) -> ApiResult<Value>;
    async fn export(&self, id: &str) -> ApiResult<ByteStream>;
    async fn archive_stat(&self, id: &str, path: &str) -> ApiResult<PathStat>;
    async fn archive_get(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)>;
    async fn archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: BodyStream,
    ) -> ApiResult<()>;
    async fn prune(&self, filters: Filters) -> ApiResult<Value>;
    async fn exec_create(&self, id: &str, config: ExecConfig) -> ApiResult<String>;
    /// With `detach`, the exec runs in the background and the handle's `serve` is not used.
    async fn exec_start(&self, exec_id: &str, detach: bool) -> ApiResult<AttachHandle>;
    async fn exec_inspect(&self, exec_id: &str) -> ApiResult<Value>;
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> ApiResult<()>;
}

/// Options of `POST /images/create?fromSrc=-` (import).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
    pub platform: Option<String>,
}

#[async_trait]
pub trait ImageBackend: Send + Sync {
    /// Streams progress objects (`{"status": ...}`); an error after the stream started is an
    /// `{"errorDetail": ...}` object the backend emits itself.
    async fn import(
        &self,
        opts: ImportOptions,
        body: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>>;
    async fn load(&self, quiet: bool, body: BodyStream) -> ApiResult<BoxStream<'static, Value>>;
    async fn pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>>;
    async fn push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>>;
    /// `POST /auth`: checks the credentials against the registry they name.
    async fn auth(&self, body: Value) -> ApiResult<Value>;
    /// `GET /distribution/{name}/json`: the registry's descriptor and platforms of an image.
    async fn distribution(&self, name: &str, auth: Option<Value>) -> ApiResult<Value>;
    async fn list(&self, all: bool, filters: Filters, digests: bool) -> ApiResult<Vec<Value>>;
    async fn inspect(&self, name: &str) -> ApiResult<Value>;
    async fn history(&self, name: &str) -> ApiResult<Value>;
    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()>;
    async fn remove(&self, name: &str, force: bool, noprune: bool) -> ApiResult<Value>;
    async fn save(&self, names: Vec<String>) -> ApiResult<ByteStream>;
    async fn prune(&self, filters: Filters) -> ApiResult<Value>;
}

/// Query parameters of `POST /build` (classic builder), parsed by the router.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (`Dockerfile` when not given).
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub quiet: bool,
    pub no_cache: bool,
    /// `--build-arg`s; a `None` value means "take it from the daemon's environment".
    pub build_args: HashMap<String, Option<String>>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub network_mode: Option<String>,
    /// `extrahosts`, `shmsize`, `memory`, `cpushares`, ... for `RUN` containers' HostConfig.
    pub host: HostConfig,
    /// `--platform` (`os[/arch[/variant]]`): checked against the host, passed to FROM pulls.
    pub platform: Option<String>,
    /// `--pull`: FROM images are pulled even when present.
    pub pull: bool,
    /// `--cache-from`: images whose chains a cached step must belong to.
    pub cache_from: Vec<String>,
    /// `X-Registry-Config`: credentials per registry (`{"host": AuthConfig}`) for FROM pulls.
    pub registry_config: Option<Value>,
}

/// `POST /commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Pause a running container while its layer is read (default true).
    pub pause: bool,
    pub changes: Vec<String>,
    /// A container `Config` that overrides the committed image's config.
    pub config: Option<Value>,
}

/// Building images: the classic Dockerfile builder and `commit`.
#[async_trait]
pub trait BuildBackend: Send + Sync {
    /// Streams Docker's build messages (`{"stream":..}`, `{"aux":..}`); a failure after the
    /// stream started is an `{"errorDetail":..}` object the backend emits itself.
    async fn build(
        &self,
        opts: BuildOptions,
        body: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>>;
    /// `POST /build/prune`: `{"CachesDeleted": [...], "SpaceReclaimed": N}`.
    async fn prune(&self, all: bool, filters: Filters) -> ApiResult<Value>;
    /// `POST /commit`: `{"Id": "sha256:..."}`.
    async fn commit(&self, opts: CommitOptions) -> ApiResult<Value>;
}

#[async_trait]
pub trait SystemBackend: Send + Sync {
    async fn info(&self) -> ApiResult<Value>;
    /// `GET /version` without the API version fields, which the router adds.
    async fn version(&self) -> ApiResult<Value>;
    async fn events(
        &self,
        since: Option<f64>,
        until: Option<f64>,
        filters: Filters,
    ) -> ApiResult<BoxStream<'static, Value>>;
    async fn df(&self) -> ApiResult<Value>;
}

/// Which unused volumes `POST /volumes/prune` may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneScope {
    /// Only anonymous volumes (API 1.42 and later, without `all=true`).
    Anonymous,
    /// Every unused volume (`all=true`, or a client older than 1.42).
    All,
}

#[async_trait]
pub trait VolumeBackend: Send + Sync {
    /// The created volume, or the existing one when a volume of that name and driver exists.
    async fn create(&self, body: VolumeCreateBody) -> ApiResult<Value>;
    /// `{"Volumes": [..], "Warnings": null}` filtered by dangling, driver, label and name.
    async fn list(&self, filters: Filters) -> ApiResult<Value>;
    async fn inspect(&self, name: &str) -> ApiResult<Value>;
    /// `force` ignores a missing volume; a volume in use is never removed.
    async fn remove(&self, name: &str, force: bool) -> ApiResult<()>;
    /// `{"VolumesDeleted": [..], "SpaceReclaimed": n}`.
    async fn prune(&self, filters: Filters, scope: PruneScope) -> ApiResult<Value>;
}

/// Everything the router needs, one trait object per area.
#[derive(Clone)]
pub struct Backends {
    pub containers: std::sync::Arc<dyn ContainerBackend>,
    pub images: std::sync::Arc<dyn ImageBackend>,
    pub networks: std::sync::Arc<dyn NetworkBackend>,
    pub system: std::sync::Arc<dyn SystemBackend>,
    pub volumes: std::sync::Arc<dyn VolumeBackend>,
    pub build: std::sync::Arc<dyn BuildBackend>,
    pub swarm: std::sync::Arc<dyn SwarmBackend>,
}

/// Networks: bodies pass through as JSON objects; the engine validates them.
#[async_trait]
pub trait NetworkBackend: Send + Sync {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<Value>>;
    async fn inspect(&self, id: &str) -> ApiResult<Value>;
    /// 201 `{"Id","Warning"}`.
    async fn create(&self, body: Value) -> ApiResult<Value>;
    async fn remove(&self, id: &str) -> ApiResult<()>;
    async fn connect(&self, id: &str, body: Value) -> ApiResult<()>;
    async fn disconnect(&self, id: &str, body: Value) -> ApiResult<()>;
    async fn prune(&self, filters: Filters) -> ApiResult<Value>;
}

/// `POST /services/{id}/update` query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUpdateOptions {
    /// The service object's version the update is based on.
    pub version: u64,
    /// `spec` or `previous-spec`: where registry credentials come from when none are sent.
    pub registry_auth_from: Option<String>,
    /// `previous`: roll back to the previous spec instead of applying the body.
    pub rollback: Option<String>,
    /// `X-Registry-Auth`, as sent (base64url JSON).
    pub registry_auth: Option<String>,
}

/// The cluster: membership of this node (`/swarm*`) and the objects a manager holds
/// (`/nodes*`, `/services*`, `/tasks*`, `/secrets*`, `/configs*`). Cluster objects pass
/// through as JSON, owned by the implementation like inspect and list elsewhere.
///
/// Implemented by [`crate::swarm::InactiveSwarm`] on a node in no swarm, and by the control
/// plane once the node is a member.
#[async_trait]
pub trait SwarmBackend: Send + Sync {
    /// `Swarm.LocalNodeState` of `/info`; must be cheap.
    fn local_node_state(&self) -> LocalNodeState;
    /// The `Swarm` header of `/_ping`: the local node state, and for an active node its role
    /// (`active/manager`, `active/worker`); must be cheap.
    fn ping_header(&self) -> &'static str {
        self.local_node_state().as_str()
    }
    /// The `Swarm` object of `/info`.
    async fn info(&self) -> ApiResult<SwarmInfo>;
    /// `POST /swarm/init`: the new node's ID.
    async fn init(&self, req: InitRequest) -> ApiResult<String>;
    async fn join(&self, req: JoinRequest) -> ApiResult<()>;
    async fn leave(&self, force: bool) -> ApiResult<()>;
    /// `GET /swarm`: the cluster object with its join tokens.
    async fn inspect(&self) -> ApiResult<Value>;
    async fn update(&self, flags: SwarmUpdateFlags, spec: Value) -> ApiResult<()>;
    async fn unlock(&self, key: UnlockKey) -> ApiResult<()>;
    async fn unlock_key(&self) -> ApiResult<UnlockKey>;

    async fn node_list(&self, filters: Filters) -> ApiResult<Vec<Value>>;
    async fn node_inspect(&self, id: &str) -> ApiResult<Value>;
    async fn node_remove(&self, id: &str, force: bool) -> ApiResult<()>;
    async fn node_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()>;

    async fn service_list(&self, filters: Filters, status: bool) -> ApiResult<Vec<Value>>;
    /// 201 `{"ID", "Warnings"}`; `auth` is `X-Registry-Auth` as sent.
    async fn service_create(&self, spec: Value, auth: Option<String>) -> ApiResult<Value>;
    async fn service_inspect(&self, id: &str, insert_defaults: bool) -> ApiResult<Value>;
    async fn service_remove(&self, id: &str) -> ApiResult<()>;
    /// `{"Warnings": [...]}`.
    async fn service_update(
        &self,
        id: &str,
        opts: ServiceUpdateOptions,
        spec: Value,
    ) -> ApiResult<Value>;
    async fn service_logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream>;

    async fn task_list(&self, filters: Filters) -> ApiResult<Vec<Value>>;
    async fn task_inspect(&self, id: &str) -> ApiResult<Value>;
    async fn task_logs(&self, id: &str, opts: LogOptions) -> ApiResult<ByteStream>;

    async fn secret_list(&self, filters: Filters) -> ApiResult<Vec<Value>>;
    /// 201 `{"ID"}`.
    async fn secret_create(&self, spec: Value) -> ApiResult<Value>;
    async fn secret_inspect(&self, id: &str) -> ApiResult<Value>;
    async fn secret_remove(&self, id: &str) -> ApiResult<()>;
    async fn secret_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()>;

    async fn config_list(&self, filters: Filters) -> ApiResult<Vec<Value>>;
    /// 201 `{"ID"}`.
    async fn config_create(&self, spec: Value) -> ApiResult<Value>;
    async fn config_inspect(&self, id: &str) -> ApiResult<Value>;
    async fn config_remove(&self, id: &str) -> ApiResult<()>;
    async fn config_update(&self, id: &str, version: u64, spec: Value) -> ApiResult<()>;
}
