//! `POST /build` (the classic builder, `version=1`) and `POST /build/prune`.
//!
//! The body is the build context as a tar (plain or gzip, the engine sniffs which); query
//! parameters are parsed here so bad ones are a 400 before any byte of the context is read.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::containers::body_stream;
use crate::backend::{Backends, BuildOptions};
use crate::error::{ApiError, ApiResult};
use crate::models::{HostConfig, Ulimit};
use crate::params::Params;
use crate::stream;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

/// A JSON map parameter (`buildargs`, `labels`); empty or absent is an empty map.
fn json_map<T: serde::de::DeserializeOwned>(
    p: &Params,
    key: &str,
) -> ApiResult<HashMap<String, T>> {
    match p.value(key) {
        None => Ok(HashMap::new()),
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| ApiError::invalid(format!("invalid {key} {raw:?}: {e}"))),
    }
}

pub fn build_options(p: &Params) -> ApiResult<BuildOptions> {
    match p.get("version") {
        None | Some("") | Some("1") => {}
        Some("2") => {
            return Err(ApiError::invalid(
                "BuildKit (version=2) is not supported by this daemon; use the classic builder (DOCKER_BUILDKIT=0)",
            ))
        }
        Some(v) => return Err(ApiError::invalid(format!("unknown builder version {v:?}"))),
    }
    if let Some(r) = p.value("remote") {
        return Err(ApiError::invalid(format!(
            "remote build contexts ({r}) are not supported; send the context as a tar"
        )));
    }
    if p.flag("squash") {
        return Err(ApiError::invalid(
            "squash is only supported with experimental mode",
        ));
    }
    let network_mode = p.value("networkmode").filter(|m| m != "default");
    let nonneg = |key: &str, what: &str| -> ApiResult<i64> {
        match p.int(key)? {
            Some(v) if v < 0 => Err(ApiError::invalid(format!("{what} can not be less than 0"))),
            v => Ok(v.unwrap_or(0)),
        }
    };
    let ulimits = match p.value("ulimits").filter(|u| !u.is_empty()) {
        None => Vec::new(),
        Some(raw) => serde_json::from_str::<Option<Vec<Ulimit>>>(&raw)
            .map_err(|e| ApiError::invalid(format!("invalid ulimits {raw:?}: {e}")))?
            .unwrap_or_default(),
    };
    let cache_from = match p.value("cachefrom").filter(|c| !c.is_empty()) {
        None => Vec::new(),
        Some(raw) => serde_json::from_str::<Option<Vec<String>>>(&raw)
            .map_err(|e| ApiError::invalid(format!("invalid cachefrom {raw:?}: {e}")))?
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect(),
    };
    let host = HostConfig {
        extra_hosts: p
            .all("extrahosts")
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        shm_size: nonneg("shmsize", "SHM size")?,
        memory: nonneg("memory", "memory")?,
        memory_swap: p.int("memswap")?.unwrap_or(0),
        cpu_shares: nonneg("cpushares", "CPU shares")?,
        cpu_period: nonneg("cpuperiod", "CPU period")?,
        cpu_quota: p.int("cpuquota")?.unwrap_or(0),
        cpuset_cpus: p.value("cpusetcpus").unwrap_or_default(),
        cpuset_mems: p.value("cpusetmems").unwrap_or_default(),
        cgroup_parent: p.value("cgroupparent").unwrap_or_default(),
        ulimits,
        ..Default::default()
    };
    Ok(BuildOptions {
        dockerfile: p.value("dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        quiet: p.flag("q"),
        no_cache: p.flag("nocache"),
        build_args: json_map(p, "buildargs")?,
        labels: json_map(p, "labels")?,
        target: p.value("target").filter(|t| !t.is_empty()),
        network_mode,
        host,
        platform: p.value("platform").filter(|v| !v.trim().is_empty()),
        pull: p.flag("pull"),
        cache_from,
        registry_config: None,
    })
}

async fn build(
    State(b): State<Backends>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut opts = match build_options(&p) {
        Ok(o) => o,
        Err(e) => {
            stream::drain(body_stream(body)).await;
            return Err(e);
        }
    };
    // The credentials the CLI sends for every registry it knows, for FROM pulls.
    opts.registry_config = super::images::json_header(&headers, "x-registry-config");
    let s = b.build.build(opts, body_stream(body)).await?;
    Ok(stream::json_lines(s))
}

async fn prune(State(b): State<Backends>, p: Params) -> ApiResult<Response> {
    Ok(Json(b.build.prune(p.flag("all"), p.filters()?).await?).into_response())
}
