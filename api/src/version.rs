//! API version handling: `/v1.xx/` prefixes, the bounds we accept, and the headers every
//! response carries.
//!
//! The prefix is stripped before routing, so each route is declared once; the negotiated
//! version travels in the request extensions as [`ApiVersion`].

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The highest API version Berth implements.
pub const MAX_API_VERSION: &str = "1.45";
/// The lowest API version Berth accepts.
pub const MIN_API_VERSION: &str = "1.24";
/// The engine version reported in `Server` and `/version`.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A parsed `major.minor` API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn max() -> Self {
        Self::parse(MAX_API_VERSION).expect("constant is a valid version")
    }
    pub fn min() -> Self {
        Self::parse(MIN_API_VERSION).expect("constant is a valid version")
    }
}

/// Splits `/v1.41/containers/json` into (Some("1.41"), "/containers/json").
pub fn split_prefix(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let ver = &rest[..end];
        if !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let tail = &rest[end..];
            return (Some(ver), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// Strips the version prefix, rejects versions out of range, and stamps the common headers.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let (ver, rest) = split_prefix(&path);
    let version = match ver {
        None => ApiVersion::max(),
        Some(v) => match ApiVersion::parse(v) {
            Some(parsed) if parsed > ApiVersion::max() => {
                return with_headers(
                    ApiError::invalid(format!(
                        "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
                    ))
                    .into_response(),
                );
            }
            Some(parsed) if parsed < ApiVersion::min() => {
                return with_headers(
                    ApiError::invalid(format!(
                        "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                    ))
                    .into_response(),
                );
            }
            Some(parsed) => parsed,
            None => {
                return with_headers(
                    ApiError::invalid(format!("invalid API version {v}")).into_response(),
                )
            }
        },
    };
    let link_path = link_removal_path(req.method(), rest);
    if ver.is_some() || link_path.is_some() {
        let rest = link_path.as_deref().unwrap_or(rest);
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

/// `docker rm --link /web/db` sends `DELETE /containers//web/db`: the name's slashes are
/// escaped so the one-segment `{id}` route takes it whole.
fn link_removal_path(method: &axum::http::Method, rest: &str) -> Option<String> {
    if method != axum::http::Method::DELETE {
        return None;
    }
    let name = rest.strip_prefix("/containers/")?;
    name.contains('/')
        .then(|| format!("/containers/{}", name.replace('/', "%2F")))
}

fn with_headers(mut resp: Response) -> Response {
    // A hijacked attach answers with only its own headers, as dockerd does.
    if resp.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(MAX_API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        "server",
        HeaderValue::from_str(&format!("Berth/{ENGINE_VERSION} (linux)"))
            .unwrap_or(HeaderValue::from_static("Berth (linux)")),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split() {
        assert_eq!(
            split_prefix("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(split_prefix("/containers/json"), (None, "/containers/json"));
        assert_eq!(split_prefix("/volumes"), (None, "/volumes"));
        assert_eq!(split_prefix("/v1.45"), (Some("1.45"), "/"));
    }

    #[test]
    fn versions_order() {
        assert!(ApiVersion::parse("1.9").expect("v") < ApiVersion::parse("1.41").expect("v"));
        assert!(ApiVersion::parse("1.99").expect("v") > ApiVersion::max());
    }
}
