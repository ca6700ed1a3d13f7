//! The classic Dockerfile builder (`POST /build`, `version=1`) and `commit`.
//!
//! ```text
//!  POST /build ─► context.rs   tar (plain/gzip) → tmp dir, .dockerignore applied
//!              ─► parser.rs    Dockerfile → instructions      expand.rs  ${VAR:-x}, words
//!              ─► run.rs       stages, one step at a time:
//!                   config-only step  → child image, no layer
//!                   RUN               → container (create/start/wait, engine runtime and
//!                                       limits) → commit.rs (upper dir → layer) → removed
//!                   COPY/ADD          → copy.rs: overlay on the parent, files copied, the
//!                                       upper dir becomes the layer
//!              ─► cache.rs     (parent id, step, content checksums) → image id, in redb
//!  POST /commit ─► commit.rs   container upper dir → layer + config
//! ```
//! Invariants: a failed build tags nothing and leaves no container, mount or temporary
//! directory behind (the images of the steps that succeeded stay, as the cache); nor does a
//! build berthd was killed in, once berthd restarts (leftovers.rs, and the RUN containers
//! marked `build` in container::leftovers); a cache hit is only taken when its image still
//! exists.

mod cache;
mod commit;
mod context;
mod copy;
pub mod expand;
mod fetch;
mod leftovers;
pub mod parser;
mod plan;
mod run;
mod stages;
mod step_config;
mod step_files;
mod step_run;

pub use leftovers::sweep as sweep_leftovers;

use std::sync::Arc;

use async_trait::async_trait;
use berth_api::backend::{BodyStream, BuildBackend, BuildOptions, CommitOptions, Filters};
use berth_api::error::{ApiError, ApiResult, ErrorKind};
use futures_util::stream::{BoxStream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::DaemonConfig;
use crate::container::{ContainerError, Containers};
use crate::image::{ImageError, ImageStore};
use crate::store::MetaStore;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile, an option or an instruction's arguments are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Something the build refers to does not exist (image, stage, file).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
    /// A RUN step's command exited non-zero: `code` goes into the stream's `errorDetail`.
    #[error("{message}")]
    RunFailed { message: String, code: i64 },
}

impl BuildError {
    pub fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.as_ref().display().to_string();
        move |source| BuildError::Io { what, path, source }
    }

    /// dockerd's `errorDetail.code`: a failed RUN's exit code, else none.
    pub fn code(&self) -> Option<i64> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The text shown to the user (the full chain for I/O errors).
    pub fn message(&self) -> String {
        match self {
            BuildError::Image(e) => berth_common::errors::cause_chain(e),
            e => e.to_string(),
        }
    }
}

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Invalid(m) | BuildError::RunFailed { message: m, .. } => {
                ApiError::new(ErrorKind::InvalidArgument, m)
            }
            BuildError::NotFound(m) => ApiError::new(ErrorKind::NotFound, m),
            BuildError::Image(e) => e.into(),
            BuildError::Container(e) => e.into(),
            e => ApiError::internal(e.message()).with_source(e),
        }
    }
}

/// The builder of one daemon. Cheap to clone.
#[derive(Clone)]
pub struct Builder {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: DaemonConfig,
    pub containers: Containers,
    pub images: Arc<dyn ImageStore>,
    pub cache: cache::BuildCache,
}

impl Builder {
    pub fn new(
        cfg: DaemonConfig,
        meta: Arc<MetaStore>,
        containers: Containers,
        images: Arc<dyn ImageStore>,
    ) -> Self {
        Builder {
            inner: Arc::new(Inner {
                cfg,
                containers,
                images,
                cache: cache::BuildCache::new(meta),
            }),
        }
    }
}

#[async_trait]
impl BuildBackend for Builder {
    async fn build(
        &self,
        opts: BuildOptions,
        body: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>> {
        let plan = match plan::Plan::new(opts) {
            Ok(p) => p,
            Err(e) => {
                berth_api::stream::drain(body).await;
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::channel::<Value>(64);
        let me = self.clone();
        tokio::spawn(async move { me.run_build(plan, body, tx).await });
        Ok(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|v| (v, rx)) },
        )
        .boxed())
    }

    async fn prune(&self, all: bool, filters: Filters) -> ApiResult<Value> {
        if let Some(k) = filters.keys().find(|k| !matches!(k.as_str(), "until")) {
            return Err(ApiError::invalid(format!("Invalid filter '{k}'")));
        }
        let _ = all;
        let (deleted, reclaimed) = self.prune_cache().await?;
        Ok(json!({ "CachesDeleted": deleted, "SpaceReclaimed": reclaimed }))
    }

    async fn commit(&self, opts: CommitOptions) -> ApiResult<Value> {
        let id = Builder::commit(self, opts).await?;
        Ok(json!({ "Id": id }))
    }
}
