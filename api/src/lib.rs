//! berth-api: the Docker Engine API surface of berthd.
//!
//! ```text
//!  request ─► version::middleware (strip /v1.xx/, reject out-of-range, stamp headers)
//!          ─► routes::<area> handler (parse query/body, 400 on bad input)
//!          ─► backend::<Area>Backend trait object (implemented by berth-node)
//!          ─► JSON | json-lines stream | raw/multiplexed stream | 101 hijack
//! ```
//! This crate keeps no state and makes one kernel call (in `hijack.rs`: how much of the 101
//! head a unix-socket client has read); errors map to statuses in one place (`error.rs`),
//! which also logs every internal one with its cause chain.

pub mod backend;
pub mod error;
pub mod hijack;
pub mod models;
pub mod params;
pub mod routes;
pub mod stream;
pub mod swarm;
pub mod version;

use axum::Router;

pub use backend::Backends;
pub use error::{ApiError, ApiResult, ErrorKind};

/// The whole API as one router, version handling included.
pub fn router(backends: Backends) -> Router {
    let inner = Router::new()
        .merge(routes::system::routes())
        .merge(routes::containers::routes())
        .merge(routes::exec::routes())
        .merge(routes::images::routes())
        .merge(routes::networks::routes())
        .merge(routes::volumes::routes())
        .merge(routes::build::routes())
        .merge(routes::swarm::routes())
        .fallback(|| async { ApiError::not_found("page not found") })
        .with_state(backends);
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(version::middleware))
        .layer(axum::middleware::from_fn(error::log_internal_errors))
}

/// Serves the router on a unix socket until `shutdown` resolves. Each request carries its
/// connection's descriptor ([`hijack::UnixClient`]) for the hijacks.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<hijack::UnixClient>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
