//! `/containers/...` routes.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::backend::{AttachOptions, Backends, BodyStream, ListOptions, LogOptions, WaitCondition};
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::models::{ContainerCreateBody, UpdateBody};
use crate::params::Params;
use crate::stream;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}", axum::routing::delete(remove))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
}

/// Parses a JSON body, answering 400 (not Docker's 500) for malformed input.
pub fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

async fn create(State(b): State<Backends>, p: Params, body: Bytes) -> ApiResult<Response> {
    let req: ContainerCreateBody = parse_json(&body)?;
    let out = b.containers.create(p.value("name"), req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    let opts = ListOptions {
        all: p.flag("all"),
        limit: p.int("limit")?.filter(|n| *n > 0).map(|n| n as usize),
        size: p.flag("size"),
        filters: p.filters()?,
    };
    Ok(Json(b.containers.list(opts).await?).into_response())
}

async fn prune(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.containers.prune(p.filters()?).await?).into_response())
}

async fn inspect(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    Ok(Json(b.containers.inspect(&id, p.flag("size")).await?).into_response())
}

async fn remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    if p.flag("link") {
        b.containers.remove_link(&id).await?;
    } else {
        b.containers
            .remove(&id, p.flag("force"), p.flag("v"))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn start(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.containers.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    b.containers
        .stop(&id, p.int("t")?, p.value("signal"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    b.containers
        .restart(&id, p.int("t")?, p.value("signal"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    b.containers.kill(&id, p.value("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.containers.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    b.containers.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn wait_condition(p: &Params) -> ApiResult<WaitCondition> {
    match p.get("condition").unwrap_or("") {
        "" | "not-running" => Ok(WaitCondition::NotRunning),
        "next-exit" => Ok(WaitCondition::NextExit),
        "removed" => Ok(WaitCondition::Removed),
        other => Err(ApiError::invalid(format!(
            "invalid condition: {other:?}: expected not-running, next-exit or removed"
        ))),
    }
}

/// Sends the 200 headers at once; the body follows when the condition holds.
async fn wait(State(b): State<Backends>, Path(id): Path<String>, p: Params) -> ApiResult<Response> {
    let fut = b.containers.wait(&id, wait_condition(&p)?).await?;
    let body = futures_util::stream::once(async move {
        let r = fut.await;
        let err = r.error.map(|m| json!({ "Message": m }));
        let mut line = json!({ "StatusCode": r.status_code, "Error": err }).to_string();
        line.push('\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// The query of a logs request (containers, services, tasks); at least one stream is required.
pub fn log_options(p: &Params) -> ApiResult<LogOptions> {
    let tail = match p.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("invalid tail value {t:?}")))?
                .max(0) as usize,
        ),
    };
    let opts = LogOptions {
        follow: p.flag("follow"),
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr"),
        since: p.time("since")?,
        until: p.time("until")?,
        timestamps: p.flag("timestamps"),
        tail,
        details: p.flag("details"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    Ok(opts)
}

async fn logs(State(b): State<Backends>, Path(id): Path<String>, p: Params) -> ApiResult<Response> {
    let opts = log_options(&p)?;
    let s = b.containers.logs(&id, opts).await?;
    let ct = if s.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(stream::bytes(ct, s.stream))
}

async fn attach(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    mut req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stream: p.flag("stream"),
        logs: p.flag("logs"),
        stdin: p.flag("stdin"),
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr"),
        detach_keys: p.value("detachKeys"),
    };
    let handle = b.containers.attach(&id, opts).await?;
    if !hijack::wants_upgrade(&req) {
        return Err(ApiError::invalid(
            "attach needs a hijacked connection: send Connection: Upgrade and Upgrade: tcp",
        ));
    }
    Ok(hijack::upgrade(&mut req, handle))
}

pub fn dims(p: &Params) -> ApiResult<(u16, u16)> {
    let h = p.int("h")?.unwrap_or(0);
    let w = p.int("w")?.unwrap_or(0);
    let ok = |v: i64| {
        u16::try_from(v).map_err(|_| ApiError::invalid(format!("invalid terminal size {v}")))
    };
    Ok((ok(h)?, ok(w)?))
}

async fn resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = dims(&p)?;
    b.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

async fn rename(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let name = p
        .value("name")
        .ok_or_else(|| ApiError::invalid("Neither old nor new names may be empty"))?;
    b.containers.rename(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: UpdateBody = parse_json(&body)?;
    Ok(Json(b.containers.update(&id, req).await?).into_response())
}

async fn top(State(b): State<Backends>, Path(id): Path<String>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.containers.top(&id, p.value("ps_args")).await?).into_response())
}

async fn stats(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let streaming = p.flag_or("stream", true);
    let s = b
        .containers
        .stats(&id, streaming, p.flag("one-shot"))
        .await?;
    if streaming {
        return Ok(stream::json_lines(s));
    }
    let first = s.into_future().await.0.unwrap_or(serde_json::Value::Null);
    Ok(Json(first).into_response())
}

async fn changes(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(b.containers.changes(&id).await?).into_response())
}

async fn export(State(b): State<Backends>, Path(id): Path<String>) -> ApiResult<Response> {
    let s = b.containers.export(&id).await?;
    Ok(stream::bytes("application/x-tar", s.stream))
}

fn path_param(p: &Params) -> ApiResult<String> {
    p.value("path")
        .ok_or_else(|| ApiError::invalid("path is required"))
}

fn stat_header(stat: &crate::backend::PathStat) -> HeaderMap {
    let mut h = HeaderMap::new();
    let raw = serde_json::to_vec(stat).unwrap_or_default();
    let enc = base64::engine::general_purpose::STANDARD.encode(raw);
    if let Ok(v) = HeaderValue::from_str(&enc) {
        h.insert("x-docker-container-path-stat", v);
    }
    h
}

async fn archive_head(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stat = b.containers.archive_stat(&id, &path_param(&p)?).await?;
    Ok((StatusCode::OK, stat_header(&stat)).into_response())
}

async fn archive_get(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let (stat, s) = b.containers.archive_get(&id, &path_param(&p)?).await?;
    let mut resp = stream::bytes("application/x-tar", s.stream);
    resp.headers_mut().extend(stat_header(&stat));
    Ok(resp)
}

pub fn body_stream(body: Body) -> BodyStream {
    body.into_data_stream()
        .map_err(std::io::Error::other)
        .boxed()
}

async fn archive_put(
    State(b): State<Backends>,
    Path(id): Path<String>,
    p: Params,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = path_param(&p)?;
    b.containers
        .archive_put(
            &id,
            &path,
            p.flag("noOverwriteDirNonDir"),
            p.flag("copyUIDGID"),
            body_stream(body),
        )
        .await?;
    Ok(StatusCode::OK)
}
