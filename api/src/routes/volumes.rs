//! `/volumes/...`: create, list, inspect, remove and prune.
//!
//! Prune's scope depends on the client's API version: since 1.42 it removes only anonymous
//! volumes unless the `all=true` filter is given.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use super::containers::parse_json;
use crate::backend::{Backends, PruneScope};
use crate::error::{ApiError, ApiResult};
use crate::models::VolumeCreateBody;
use crate::params::Params;
use crate::version::ApiVersion;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

async fn create(State(b): State<Backends>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateBody = parse_json(&body)?;
    let out = b.volumes.create(req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.volumes.list(p.filters()?).await?).into_response())
}

async fn inspect(State(b): State<Backends>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.volumes.inspect(&name).await?).into_response())
}

async fn remove(
    State(b): State<Backends>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    b.volumes.remove(&name, p.flag("force")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(
    State(b): State<Backends>,
    version: Option<Extension<ApiVersion>>,
    p: Params,
) -> ApiResult<Response> {
    let mut filters = p.filters()?;
    let all = match filters.remove("all").as_deref() {
        None => false,
        Some([v]) if matches!(v.as_str(), "1" | "true" | "True") => true,
        Some([v]) if matches!(v.as_str(), "0" | "false" | "False") => false,
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "invalid filter 'all={}': expected true or false",
                v.join(",")
            )))
        }
    };
    let modern = version.is_none_or(|Extension(v)| v >= ApiVersion(1, 42));
    let scope = if all || !modern {
        PruneScope::All
    } else {
        PruneScope::Anonymous
    };
    Ok(Json(b.volumes.prune(filters, scope).await?).into_response())
}
