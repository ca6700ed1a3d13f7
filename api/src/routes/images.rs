//! `/images/...`, `/commit` and `/distribution/...` routes. Image names contain slashes
//! (`127.0.0.1:5000/bb`), so the per-image routes are matched by their suffix.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine as _;

use super::containers::body_stream;
use crate::backend::{Backends, CommitOptions, ImportOptions};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::stream;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/images/create", post(create))
        .route("/images/json", get(list))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/prune", post(prune))
        .route("/images/{*rest}", any(per_image))
        .route("/commit", post(commit))
        .route("/auth", post(auth))
        .route("/distribution/{*rest}", get(distribution))
}

/// Decodes `X-Registry-Auth` (base64url JSON); `e30=` is `{}`.
fn registry_auth(h: &HeaderMap) -> Option<serde_json::Value> {
    json_header(h, "x-registry-auth")
}

/// A header holding base64url JSON (`X-Registry-Auth`, `X-Registry-Config`); an empty object
/// is `None`.
pub(crate) fn json_header(h: &HeaderMap, name: &str) -> Option<serde_json::Value> {
    decode_json_b64(h.get(name)?.to_str().ok()?)
}

/// base64url JSON as `X-Registry-Auth` carries it (padded or not; plain base64 too); an
/// empty object is `None`.
pub fn decode_json_b64(raw: &str) -> Option<serde_json::Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw.trim()))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.as_object().filter(|o| !o.is_empty())?;
    Some(v)
}

async fn create(
    State(b): State<Backends>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(src) = p.value("fromSrc") {
        if src != "-" {
            return Err(ApiError::invalid(format!("importing from a URL ({src}) is not supported; send the tar as the body with fromSrc=-")));
        }
        let opts = ImportOptions {
            repo: p.value("repo"),
            tag: p.value("tag"),
            message: p.value("message"),
            changes: p.all("changes"),
            platform: p.value("platform"),
        };
        let s = b.images.import(opts, body_stream(body)).await?;
        return Ok(stream::json_lines(s));
    }
    let from = p
        .value("fromImage")
        .ok_or_else(|| ApiError::invalid("fromImage or fromSrc is required"))?;
    let tag = p.value("tag");
    let platform = p.value("platform");
    let s = b
        .images
        .pull(
            &from,
            tag.as_deref(),
            platform.as_deref(),
            registry_auth(&headers),
        )
        .await?;
    Ok(stream::json_lines(s))
}

async fn list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(
        b.images
            .list(p.flag("all"), p.filters()?, p.flag("digests"))
            .await?,
    )
    .into_response())
}

/// As dockerd: a load that fails (the body is not an image archive, …) is still a 200, with
/// the error inside the JSON stream, where the SDKs look for it (`ImageLoadError`).
async fn load(State(b): State<Backends>, p: Params, body: Body) -> ApiResult<Response> {
    let s: futures_util::stream::BoxStream<'static, serde_json::Value> =
        match b.images.load(p.flag("quiet"), body_stream(body)).await {
            Ok(s) => s,
            Err(e) => {
                if e.kind == crate::error::ErrorKind::Internal {
                    tracing::error!(error = %e, "image load failed");
                }
                let msg = e.message;
                let line = serde_json::json!({"errorDetail": {"message": msg}, "error": msg});
                Box::pin(futures_util::stream::once(async move { line }))
            }
        };
    Ok(stream::json_lines(s))
}

async fn save_many(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    let s = b.images.save(p.all("names")).await?;
    Ok(stream::bytes("application/x-tar", s.stream))
}

async fn prune(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.images.prune(p.filters()?).await?).into_response())
}

async fn per_image(
    State(b): State<Backends>,
    method: Method,
    Path(rest): Path<String>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (name, verb) = match rest.rsplit_once('/') {
        Some((n, v)) if matches!(v, "json" | "history" | "tag" | "push" | "get") => {
            (n.to_owned(), v)
        }
        _ => (rest.clone(), ""),
    };
    match (method, verb) {
        (Method::GET, "json") => Ok(Json(b.images.inspect(&name).await?).into_response()),
        (Method::GET, "history") => Ok(Json(b.images.history(&name).await?).into_response()),
        (Method::GET, "get") => {
            let s = b.images.save(vec![name]).await?;
            Ok(stream::bytes("application/x-tar", s.stream))
        }
        (Method::POST, "tag") => {
            let repo = p
                .value("repo")
                .ok_or_else(|| ApiError::invalid("repo is required"))?;
            b.images
                .tag(&name, &repo, p.value("tag").as_deref())
                .await?;
            Ok(StatusCode::CREATED.into_response())
        }
        (Method::POST, "push") => {
            let s = b
                .images
                .push(&name, p.value("tag").as_deref(), registry_auth(&headers))
                .await?;
            Ok(stream::json_lines(s))
        }
        (Method::DELETE, "") => Ok(Json(
            b.images
                .remove(&name, p.flag("force"), p.flag("noprune"))
                .await?,
        )
        .into_response()),
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn auth(State(b): State<Backends>, body: axum::body::Bytes) -> ApiResult<Response> {
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    Ok(Json(b.images.auth(v).await?).into_response())
}

async fn distribution(
    State(b): State<Backends>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let name = rest
        .strip_suffix("/json")
        .ok_or_else(|| ApiError::not_found("page not found"))?;
    Ok(Json(b.images.distribution(name, registry_auth(&headers)).await?).into_response())
}

async fn commit(
    State(b): State<Backends>,
    p: Params,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?,
        )
    };
    let container = p
        .value("container")
        .ok_or_else(|| ApiError::invalid("container is required"))?;
    let opts = CommitOptions {
        container,
        repo: p.value("repo"),
        tag: p.value("tag"),
        comment: p.value("comment"),
        author: p.value("author"),
        pause: p.flag_or("pause", true),
        changes: p.all("changes"),
        config,
    };
    let out = b.build.commit(opts).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}
