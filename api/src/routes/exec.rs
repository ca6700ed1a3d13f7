//! `/containers/{id}/exec` and `/exec/...` routes.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::json;

use super::containers::{dims, parse_json};
use crate::backend::Backends;
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::models::{ExecConfig, ExecStartBody};
use crate::params::Params;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg: ExecConfig = parse_json(&body)?;
    if cfg.cmd.is_empty() {
        return Err(ApiError::invalid("No exec command specified"));
    }
    let exec_id = b.containers.exec_create(&id, cfg).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))).into_response())
}

async fn start(
    State(b): State<Backends>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| ApiError::invalid(format!("reading body: {e}")))?
        .to_bytes();
    let start: ExecStartBody = parse_json(&bytes)?;
    let mut req = Request::from_parts(parts, axum::body::Body::empty());
    let handle = b.containers.exec_start(&id, start.detach).await?;
    if start.detach {
        return Ok(StatusCode::OK.into_response());
    }
    if !hijack::wants_upgrade(&req) {
        return Err(ApiError::invalid(
            "exec start needs a hijacked connection: send Connection: Upgrade and Upgrade: tcp",
        ));
    }
    Ok(hijack::upgrade(&mut req, handle))
}

async fn resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = dims(&p)?;
    b.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

async fn inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.containers.exec_inspect(&id).await?).into_response())
}
