//! The cluster routes: `/swarm*` (this node's membership) and the objects a manager holds,
//! `/nodes*`, `/services*`, `/tasks*`, `/secrets*`, `/configs*`. Each handler parses its
//! query and body as dockerd does (a bad `version` or JSON body is a 400 before the cluster is
//! asked) and hands the call to [`SwarmBackend`](crate::backend::SwarmBackend).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::containers::{log_options, parse_json};
use crate::backend::{Backends, ByteStream, ServiceUpdateOptions};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::stream;
use crate::swarm::{InitRequest, JoinRequest, SwarmUpdateFlags, UnlockKey};

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/swarm", get(inspect))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/swarm/update", post(update))
        .route("/swarm/unlockkey", get(unlock_key))
        .route("/swarm/unlock", post(unlock))
        .route("/nodes", get(node_list))
        .route("/nodes/{id}", get(node_inspect).delete(node_remove))
        .route("/nodes/{id}/update", post(node_update))
        .route("/services", get(service_list))
        .route("/services/create", post(service_create))
        .route(
            "/services/{id}",
            get(service_inspect).delete(service_remove),
        )
        .route("/services/{id}/update", post(service_update))
        .route("/services/{id}/logs", get(service_logs))
        .route("/tasks", get(task_list))
        .route("/tasks/{id}", get(task_inspect))
        .route("/tasks/{id}/logs", get(task_logs))
        .route("/secrets", get(secret_list))
        .route("/secrets/create", post(secret_create))
        .route("/secrets/{id}", get(secret_inspect).delete(secret_remove))
        .route("/secrets/{id}/update", post(secret_update))
        .route("/configs", get(config_list))
        .route("/configs/create", post(config_create))
        .route("/configs/{id}", get(config_inspect).delete(config_remove))
        .route("/configs/{id}/update", post(config_update))
}

/// The `version` query of an update: the object's version the change is based on.
fn version(p: &Params, what: &str) -> ApiResult<u64> {
    let raw = p.get("version").unwrap_or("");
    raw.parse().map_err(|_| {
        ApiError::invalid(format!(
            "invalid {what} version '{raw}': expected an unsigned integer"
        ))
    })
}

/// A spec body: a JSON object (an empty body is an empty spec).
fn spec(body: &Bytes) -> ApiResult<Value> {
    match parse_json::<Value>(body)? {
        Value::Null => Ok(Value::Object(Default::default())),
        v @ Value::Object(_) => Ok(v),
        _ => Err(ApiError::invalid("invalid JSON body: expected an object")),
    }
}

fn logs_response(s: ByteStream) -> Response {
    let ct = if s.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    stream::bytes(ct, s.stream)
}

async fn inspect(State(b): State<Backends>) -> ApiResult<Response> {
    Ok(Json(b.swarm.inspect().await?).into_response())
}

async fn init(State(b): State<Backends>, body: Bytes) -> ApiResult<Response> {
    let req: InitRequest = parse_json(&body)?;
    Ok(Json(b.swarm.init(req).await?).into_response())
}

async fn join(State(b): State<Backends>, body: Bytes) -> ApiResult<StatusCode> {
    let req: JoinRequest = parse_json(&body)?;
    b.swarm.join(req).await?;
    Ok(StatusCode::OK)
}

async fn leave(State(b): State<Backends>, p: Params) -> ApiResult<StatusCode> {
    b.swarm.leave(p.flag("force")).await?;
    Ok(StatusCode::OK)
}

async fn update(State(b): State<Backends>, p: Params, body: Bytes) -> ApiResult<StatusCode> {
    let flags = SwarmUpdateFlags {
        version: version(&p, "swarm")?,
        rotate_worker_token: p.flag("rotateWorkerToken"),
        rotate_manager_token: p.flag("rotateManagerToken"),
        rotate_manager_unlock_key: p.flag("rotateManagerUnlockKey"),
    };
    b.swarm.update(flags, spec(&body)?).await?;
    Ok(StatusCode::OK)
}

async fn unlock_key(State(b): State<Backends>) -> ApiResult<Response> {
    Ok(Json(b.swarm.unlock_key().await?).into_response())
}

async fn unlock(State(b): State<Backends>, body: Bytes) -> ApiResult<StatusCode> {
    let key: UnlockKey = parse_json(&body)?;
    b.swarm.unlock(key).await?;
    Ok(StatusCode::OK)
}

async fn node_list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.swarm.node_list(p.filters()?).await?).into_response())
}

async fn node_inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.swarm.node_inspect(&id).await?).into_response())
}

async fn node_remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    b.swarm.node_remove(&id, p.flag("force")).await?;
    Ok(StatusCode::OK)
}

async fn node_update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let v = version(&p, "node")?;
    b.swarm.node_update(&id, v, spec(&body)?).await?;
    Ok(StatusCode::OK)
}

async fn service_list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    let out = b.swarm.service_list(p.filters()?, p.flag("status")).await?;
    Ok(Json(out).into_response())
}

fn registry_auth(h: &HeaderMap) -> Option<String> {
    let raw = h.get("x-registry-auth")?.to_str().ok()?;
    Some(raw.to_owned()).filter(|s| !s.is_empty())
}

async fn service_create(
    State(b): State<Backends>,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let out = b
        .swarm
        .service_create(spec(&body)?, registry_auth(&h))
        .await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn service_inspect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let out = b
        .swarm
        .service_inspect(&id, p.flag("insertDefaults"))
        .await?;
    Ok(Json(out).into_response())
}

async fn service_remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    b.swarm.service_remove(&id).await?;
    Ok(StatusCode::OK)
}

async fn service_update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    h: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let opts = ServiceUpdateOptions {
        version: version(&p, "service")?,
        registry_auth_from: p.value("registryAuthFrom"),
        rollback: p.value("rollback"),
        registry_auth: registry_auth(&h),
    };
    let out = b.swarm.service_update(&id, opts, spec(&body)?).await?;
    Ok(Json(out).into_response())
}

async fn service_logs(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let opts = log_options(&p)?;
    Ok(logs_response(b.swarm.service_logs(&id, opts).await?))
}

async fn task_list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.swarm.task_list(p.filters()?).await?).into_response())
}

async fn task_inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.swarm.task_inspect(&id).await?).into_response())
}

async fn task_logs(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let opts = log_options(&p)?;
    Ok(logs_response(b.swarm.task_logs(&id, opts).await?))
}

async fn secret_list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.swarm.secret_list(p.filters()?).await?).into_response())
}

async fn secret_create(State(b): State<Backends>, body: Bytes) -> ApiResult<Response> {
    let out = b.swarm.secret_create(spec(&body)?).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn secret_inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.swarm.secret_inspect(&id).await?).into_response())
}

async fn secret_remove(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.swarm.secret_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn secret_update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let v = version(&p, "secret")?;
    b.swarm.secret_update(&id, v, spec(&body)?).await?;
    Ok(StatusCode::OK)
}

async fn config_list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.swarm.config_list(p.filters()?).await?).into_response())
}

async fn config_create(State(b): State<Backends>, body: Bytes) -> ApiResult<Response> {
    let out = b.swarm.config_create(spec(&body)?).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn config_inspect(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.swarm.config_inspect(&id).await?).into_response())
}

async fn config_remove(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.swarm.config_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config_update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let v = version(&p, "config")?;
    b.swarm.config_update(&id, v, spec(&body)?).await?;
    Ok(StatusCode::OK)
}
