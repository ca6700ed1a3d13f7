//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`, and the plugin routes that must
//! answer 404 for `docker inspect` fallbacks.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::backend::Backends;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::stream;
use crate::version::{MAX_API_VERSION, MIN_API_VERSION};

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/system/df", get(df))
        .route("/plugins", get(plugins))
        .route("/plugins/{*name}", get(plugin))
}

async fn ping(State(b): State<Backends>) -> Response {
    let mut resp = (StatusCode::OK, "OK").into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static(b.swarm.ping_header()));
    resp
}

async fn version(State(b): State<Backends>) -> ApiResult<Response> {
    let mut v = b.system.version().await?;
    v["ApiVersion"] = json!(MAX_API_VERSION);
    v["MinAPIVersion"] = json!(MIN_API_VERSION);
    if let Some(comps) = v["Components"].as_array_mut() {
        for c in comps {
            c["Details"]["ApiVersion"] = json!(MAX_API_VERSION);
            c["Details"]["MinAPIVersion"] = json!(MIN_API_VERSION);
        }
    }
    Ok(Json(v).into_response())
}

/// The engine's `/info`, with the `Swarm` object from the swarm backend.
async fn info(State(b): State<Backends>) -> ApiResult<Response> {
    let (mut v, swarm) = tokio::try_join!(b.system.info(), b.swarm.info())?;
    v["Swarm"] = serde_json::to_value(swarm)
        .map_err(|e| ApiError::internal(format!("encode swarm info: {e}")))?;
    Ok(Json(v).into_response())
}

async fn events(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    let s = b
        .system
        .events(p.time("since")?, p.time("until")?, p.filters()?)
        .await?;
    Ok(stream::json_lines(s))
}

async fn df(State(b): State<Backends>) -> ApiResult<Response> {
    Ok(Json(b.system.df().await?).into_response())
}

async fn plugins() -> Json<serde_json::Value> {
    Json(json!([]))
}

async fn plugin(axum::extract::Path(name): axum::extract::Path<String>) -> ApiError {
    let name = name.trim_end_matches("/json");
    ApiError::not_found(format!("plugin \"{name}\" not found"))
}
