//! `/networks`: list, inspect, create, remove, connect, disconnect, prune.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::containers::parse_json;
use crate::backend::Backends;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// A JSON object body; anything else is the client's mistake.
fn object(body: &Bytes) -> ApiResult<Value> {
    let v: Value = parse_json(body)?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Default::default())),
        _ => Err(ApiError::invalid("invalid JSON body: expected an object")),
    }
}

async fn list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.networks.list(p.filters()?).await?).into_response())
}

async fn inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.networks.inspect(&id).await?).into_response())
}

async fn create(State(b): State<Backends>, body: Bytes) -> ApiResult<Response> {
    let out = b.networks.create(object(&body)?).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn remove(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.networks.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn connect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    b.networks.connect(&id, object(&body)?).await?;
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    b.networks.disconnect(&id, object(&body)?).await?;
    Ok(StatusCode::OK)
}

async fn prune(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.networks.prune(p.filters()?).await?).into_response())
}
