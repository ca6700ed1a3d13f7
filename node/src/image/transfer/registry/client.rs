//! [`Session`]: authenticated requests to one repository of one registry.
//!
//! Opening a session pings `GET /v2/`; a 401 there names the scheme. For Bearer the token is
//! fetched once for the session's scopes (`repository:<repo>:pull[,push]`), with Basic
//! credentials when the user gave some, and used by every request of the session until it
//! nears the end of its `expires_in` (at least 60 s, as Docker reckons it); then the next
//! request fetches a fresh one. For Basic the credentials go on every request.
//! Redirects (blob storage elsewhere) are followed for GET and HEAD without the credentials
//! when the host changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_common::percent::encode;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Response, StatusCode};

use super::auth::{parse_challenge, refusal, Challenge, Credentials, Refusal, TokenResponse};
use super::http::{empty, full, ReqBody, Transport};
use super::RegistryError;
use crate::image::digest::Digest;

/// Manifest media types berthd asks for, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
const MAX_MANIFEST: usize = 4 << 20;
const MAX_CONFIG: usize = 32 << 20;

pub struct Session {
    transport: Arc<Transport>,
    /// `host[:port]` as requests name it.
    pub host: String,
    /// `https://host` or `http://host`.
    base: String,
    verify: bool,
    pub repo: String,
    auth: tokio::sync::Mutex<Auth>,
}

/// The `Authorization` a session sends, and how to renew it when it is a fetched token.
#[derive(Default)]
struct Auth {
    header: Option<HeaderValue>,
    renew: Option<Renewal>,
}

#[derive(Clone)]
struct Renewal {
    at: Instant,
    realm: String,
    service: String,
    scopes: Vec<String>,
    creds: Option<Credentials>,
}

/// Tokens are treated as living at least this long (Docker's minimum), whatever the token
/// server says.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is renewed this long before it expires, so no request carries one at its edge.
const RENEW_MARGIN: Duration = Duration::from_secs(10);

/// When a token fetched at `fetched` with `expires_in` seconds (if the server said) should
/// be replaced.
fn renew_at(fetched: Instant, expires_in: Option<u64>) -> Instant {
    let life = Duration::from_secs(expires_in.unwrap_or(0)).max(MIN_TOKEN_LIFETIME);
    fetched + (life - RENEW_MARGIN)
}

/// A blob download: the body starts at `offset` of the blob.
pub struct BlobResponse {
    pub offset: u64,
    pub body: Incoming,
}

impl Session {
    pub(super) async fn open(
        transport: Arc<Transport>,
        host: &str,
        insecure: bool,
        repo: &str,
        creds: Option<Credentials>,
        scopes: Vec<String>,
    ) -> Result<Session, RegistryError> {
        let (base, verify, challenge) = ping(&transport, host, insecure).await?;
        let mut s = Session {
            transport,
            host: host.to_owned(),
            base,
            verify,
            repo: repo.to_owned(),
            auth: Default::default(),
        };
        let auth = s
            .authorize(challenge.as_ref(), creds.as_ref(), &scopes)
            .await?;
        s.auth = tokio::sync::Mutex::new(auth);
        Ok(s)
    }

    /// Checks credentials: a token must be granted (Bearer) or `/v2/` must accept them (Basic).
    pub(super) async fn login(
        transport: Arc<Transport>,
        host: &str,
        insecure: bool,
        creds: &Credentials,
    ) -> Result<(), RegistryError> {
        let (base, verify, challenge) = ping(&transport, host, insecure).await?;
        let mut s = Session {
            transport,
            host: host.to_owned(),
            base,
            verify,
            repo: String::new(),
            auth: Default::default(),
        };
        if challenge.is_none() {
            return Ok(());
        }
        // The token (Bearer) or the credentials (Basic) must then open `/v2/` itself: a token
        // server may hand out tokens the registry does not trust.
        let auth = s.authorize(challenge.as_ref(), Some(creds), &[]).await?;
        s.auth = tokio::sync::Mutex::new(auth);
        let resp = s
            .request(Method::GET, "/v2/", HeaderMap::new(), empty())
            .await?;
        match resp.status() {
            st if st.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let e = refused(resp).await;
                let text = match &e {
                    RegistryError::Unauthorized(t) | RegistryError::Denied(t) => t.clone(),
                    other => other.to_string(),
                };
                Err(RegistryError::Unauthorized(match challenge {
                    Some(Challenge::Basic) => format!(
                        "login attempt to {}/v2/ failed with status: 401 Unauthorized: {text}",
                        s.base
                    ),
                    _ => format!("Get \"{}/v2/\": {text}", s.base),
                }))
            }
            other => Err(RegistryError::Protocol(format!(
                "login to {}/v2/: unexpected status {other}",
                s.base
            ))),
        }
    }

    async fn authorize(
        &self,
        challenge: Option<&Challenge>,
        creds: Option<&Credentials>,
        scopes: &[String],
    ) -> Result<Auth, RegistryError> {
        let value = match challenge {
            None => return Ok(Auth::default()),
            Some(Challenge::Basic) => match creds.and_then(Credentials::basic) {
                Some(b) => b,
                None => return Ok(Auth::default()),
            },
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(t) = creds.map(|c| &c.registrytoken).filter(|t| !t.is_empty()) {
                    format!("Bearer {t}")
                } else {
                    let renewal = Renewal {
                        at: Instant::now(),
                        realm: realm.clone(),
                        service: service.clone(),
                        scopes: scopes.to_vec(),
                        creds: creds.cloned(),
                    };
                    return self.fetch(renewal).await;
                }
            }
        };
        Ok(Auth {
            header: Some(header(&value)?),
            renew: None,
        })
    }

    /// Fetches a token as `r` says and notes when to renew it.
    async fn fetch(&self, mut r: Renewal) -> Result<Auth, RegistryError> {
        let started = Instant::now();
        let (token, expires_in) = self
            .token(&r.realm, &r.service, &r.scopes, r.creds.as_ref())
            .await
            // Docker names the request the token was fetched for.
            .map_err(|e| match e {
                RegistryError::Unauthorized(m) => {
                    RegistryError::Unauthorized(format!("Get \"{}/v2/\": {m}", self.base))
                }
                e => e,
            })?;
        r.at = renew_at(started, expires_in);
        Ok(Auth {
            header: Some(header(&format!("Bearer {token}"))?),
            renew: Some(r),
        })
    }

    /// The `Authorization` for the next request, renewing an expiring token first (one
    /// renewal at a time: concurrent requests wait for it and share the new token).
    async fn authorization(&self) -> Result<Option<HeaderValue>, RegistryError> {
        let mut auth = self.auth.lock().await;
        if let Some(r) = auth.renew.clone().filter(|r| Instant::now() >= r.at) {
            *auth = self.fetch(r).await?;
        }
        Ok(auth.header.clone())
    }

    /// `GET <realm>?service=…&scope=…[&account=…]`, with Basic credentials when there are
    /// some; `service` and the scopes are passed back exactly as the challenge and the caller
    /// name them.
    async fn token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<(String, Option<u64>), RegistryError> {
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut params = Vec::new();
        if !service.is_empty() {
            params.push(("service", service));
        }
        for s in scopes {
            params.push(("scope", s.as_str()));
        }
        let user = creds
            .filter(|c| c.basic().is_some())
            .map(|c| c.username.as_str());
        if let Some(u) = user {
            params.push(("account", u));
        }
        for (k, v) in params {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
            sep = '&';
        }
        let mut headers = HeaderMap::new();
        if let Some(b) = creds.and_then(Credentials::basic) {
            if let Ok(v) = HeaderValue::from_str(&b) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        let verify = self.verify || !url.contains(&self.host);
        let resp = self
            .transport
            .send(Method::GET, &url, &headers, empty(), verify)
            .await?;
        match resp.status() {
            s if s.is_success() => {
                let body = read_limited(resp.into_body(), MAX_MANIFEST).await?;
                let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                    RegistryError::Protocol(format!("token from {realm}: invalid JSON: {e}"))
                })?;
                let expires_in = t.expires_in();
                let token = t.into_token().ok_or_else(|| {
                    RegistryError::Protocol(format!("token server {realm} returned no token"))
                })?;
                Ok((token, expires_in))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(RegistryError::Unauthorized(error_text(resp).await))
            }
            other => Err(RegistryError::Protocol(format!(
                "token server {realm}: unexpected status {other}"
            ))),
        }
    }

    /// Sends a request to a path of this registry (or an absolute URL it handed out).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        body: ReqBody,
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let follow = method == Method::GET || method == Method::HEAD;
        let mut body = Some(body);
        let authorization = self.authorization().await?;
        for _ in 0..6 {
            let ours = same_origin(&url, &self.base);
            if ours {
                if let Some(a) = &authorization {
                    headers.insert(AUTHORIZATION, a.clone());
                }
            } else {
                headers.remove(AUTHORIZATION);
            }
            let verify = if ours { self.verify } else { true };
            let b = body.take().unwrap_or_else(empty);
            let resp = self
                .transport
                .send(method.clone(), &url, &headers, b, verify)
                .await?;
            if follow && resp.status().is_redirection() {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                    url = resolve(&url, loc);
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(RegistryError::Protocol(format!(
            "too many redirects at {url}"
        )))
    }

    fn url_of(&self, kind: &str, reference: &str) -> String {
        format!("/v2/{}/{kind}/{reference}", self.repo)
    }

    /// Fetches a manifest by tag or digest. Returns its bytes, media type and digest; a
    /// manifest asked for by digest must hash to it.
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Bytes, String, Digest), RegistryError> {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let resp = self
            .request(
                Method::GET,
                &self.url_of("manifests", reference),
                h,
                empty(),
            )
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.status_error(resp, "manifest").await);
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let bytes = read_limited(resp.into_body(), MAX_MANIFEST).await?;
        let digest = Digest::of_bytes(&bytes);
        if reference.starts_with("sha256:") && reference != digest.to_string() {
            return Err(RegistryError::Protocol(format!(
                "manifest verification failed for digest {reference}: got {digest}"
            )));
        }
        Ok((bytes, ctype, digest))
    }

    /// The repository's tags (`GET /v2/<repo>/tags/list`).
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let path = format!("/v2/{}/tags/list", self.repo);
        let resp = self
            .request(Method::GET, &path, HeaderMap::new(), empty())
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, "repository").await);
        }
        let body = read_limited(resp.into_body(), MAX_MANIFEST).await?;
        let t: Tags = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("tags of {}: {e}", self.repo)))?;
        Ok(t.tags.unwrap_or_default())
    }

    /// A small blob (an image config), verified against its digest.
    pub async fn blob_bytes(&self, digest: &Digest) -> Result<Bytes, RegistryError> {
        let resp = self.blob(digest, 0).await?;
        let bytes = read_limited(resp.body, MAX_CONFIG).await?;
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(RegistryError::Protocol(format!(
                "blob {digest}: digest mismatch: got {actual}"
            )));
        }
        Ok(bytes)
    }

    /// Starts a blob download at `offset` (a `Range` request when not 0). The registry may
    /// ignore the range; `offset` of the answer says where its body starts.
    pub async fn blob(&self, digest: &Digest, offset: u64) -> Result<BlobResponse, RegistryError> {
        let mut h = HeaderMap::new();
        if offset > 0 {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes={offset}-")) {
                h.insert(RANGE, v);
            }
        }
        let path = self.url_of("blobs", &digest.to_string());
        let resp = self.request(Method::GET, &path, h, empty()).await?;
        match resp.status() {
            StatusCode::OK => Ok(BlobResponse {
                offset: 0,
                body: resp.into_body(),
            }),
            StatusCode::PARTIAL_CONTENT => Ok(BlobResponse {
                offset,
                body: resp.into_body(),
            }),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let resp = self
                    .request(Method::GET, &path, HeaderMap::new(), empty())
                    .await?;
                if !resp.status().is_success() {
                    return Err(self.status_error(resp, "blob").await);
                }
                Ok(BlobResponse {
                    offset: 0,
                    body: resp.into_body(),
                })
            }
            _ => Err(self.status_error(resp, "blob").await),
        }
    }

    /// Whether the repository already has a blob.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let path = self.url_of("blobs", &digest.to_string());
        let resp = self
            .request(Method::HEAD, &path, HeaderMap::new(), empty())
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, "blob").await),
        }
    }

    /// Tries to mount a blob from another repository of the registry.
    pub async fn mount(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={}&from={}",
            self.repo,
            encode(&digest.to_string()),
            encode(from)
        );
        let resp = self
            .request(Method::POST, &path, content_length(0), empty())
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            s if s.is_success() => {
                // The registry opened an upload instead; abandon it.
                if let Some(loc) = location(&resp) {
                    let _ = self
                        .request(Method::DELETE, &loc, HeaderMap::new(), empty())
                        .await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Uploads a blob in one PUT (`body` yields exactly `size` bytes).
    pub async fn upload(
        &self,
        digest: &Digest,
        size: u64,
        body: ReqBody,
    ) -> Result<(), RegistryError> {
        let start = format!("/v2/{}/blobs/uploads/", self.repo);
        let resp = self
            .request(Method::POST, &start, content_length(0), empty())
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(resp, "upload").await);
        }
        let loc = location(&resp)
            .ok_or_else(|| RegistryError::Protocol("upload started without a Location".into()))?;
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={}", encode(&digest.to_string()));
        let mut h = content_length(size);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let resp = self.request(Method::PUT, &put, h, body).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(resp, "upload").await);
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<(), RegistryError> {
        let mut h = content_length(bytes.len() as u64);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type)
                .map_err(|_| RegistryError::Protocol("bad media type".into()))?,
        );
        let resp = self
            .request(
                Method::PUT,
                &self.url_of("manifests", reference),
                h,
                full(bytes),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, "manifest").await);
        }
        Ok(())
    }

    /// Turns a non-success answer into an error naming what was asked for.
    async fn status_error(&self, resp: Response<Incoming>, what: &str) -> RegistryError {
        let status = resp.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return refused(resp).await;
        }
        let text = error_text(resp).await;
        let name = format!("{}/{}", self.host, self.repo);
        match status {
            StatusCode::NOT_FOUND => RegistryError::NotFound(format!("{what} not found: {text}")),
            s => RegistryError::Protocol(format!("{what} of {name}: {s}: {text}")),
        }
    }
}

/// `GET /v2/` over HTTPS, or plain HTTP for an insecure registry that does not speak TLS.
async fn ping(
    transport: &Transport,
    host: &str,
    insecure: bool,
) -> Result<(String, bool, Option<Challenge>), RegistryError> {
    let mut first_err = None;
    let schemes: &[&str] = if insecure {
        &["https", "http"]
    } else {
        &["https"]
    };
    for scheme in schemes {
        let base = format!("{scheme}://{host}");
        let url = format!("{base}/v2/");
        match transport
            .send(Method::GET, &url, &HeaderMap::new(), empty(), !insecure)
            .await
        {
            Ok(resp) => {
                let status = resp.status();
                let challenge = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(parse_challenge);
                if status == StatusCode::UNAUTHORIZED || status.is_success() {
                    let challenge = if status.is_success() { None } else { challenge };
                    return Ok((base, !insecure, challenge));
                }
                let err = RegistryError::Protocol(format!(
                    "Get \"{url}\": unexpected status {status} (is this an OCI registry?)"
                ));
                first_err.get_or_insert(err);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| RegistryError::Protocol(format!("no endpoint for {host}"))))
}

fn header(value: &str) -> Result<HeaderValue, RegistryError> {
    HeaderValue::from_str(value)
        .map_err(|_| RegistryError::Protocol("credentials are not a valid header".into()))
}

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, RegistryError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RegistryError::Protocol(format!("reading response: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(RegistryError::Protocol(format!(
                    "response larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// A 401 or 403 as Docker reports it: the Bearer challenge's `error` first (a token without
/// the scope is "denied"), then the `DENIED` error code, else "unauthorized" with the
/// registry's text.
async fn refused(resp: Response<Incoming>) -> RegistryError {
    let from_challenge = resp
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(refusal);
    let status = resp.status();
    let body = read_limited(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    match from_challenge {
        Some(Refusal::Denied(m)) => RegistryError::Denied(m),
        Some(Refusal::Unauthorized(m)) => RegistryError::Unauthorized(m),
        None => {
            let text = format_errors(status, &body);
            if text.starts_with("denied") {
                RegistryError::Denied(text)
            } else {
                RegistryError::Unauthorized(text)
            }
        }
    }
}

/// The registry's `{"errors":[{"code","message"}]}` as Docker prints it
/// (`manifest unknown: manifest unknown`), or the status text.
async fn error_text(resp: Response<Incoming>) -> String {
    let status = resp.status();
    let body = read_limited(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    format_errors(status, &body)
}

fn format_errors(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Item>,
        /// Token servers (Docker Hub's among them) answer `{"details": "…"}`.
        #[serde(default)]
        details: String,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| {
                let code = i.code.to_lowercase().replace('_', " ");
                if i.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", i.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
        if !e.details.is_empty() {
            return match status {
                StatusCode::UNAUTHORIZED => format!("unauthorized: {}", e.details),
                StatusCode::TOO_MANY_REQUESTS => format!("toomanyrequests: {}", e.details),
                _ => e.details,
            };
        }
    }
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized: authentication required".into(),
        _ => reason,
    }
}

fn content_length(n: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from(n));
    h
}

fn location(resp: &Response<Incoming>) -> Option<String> {
    resp.headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
}

fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

fn same_origin(url: &str, base: &str) -> bool {
    origin(url) == origin(base)
}

/// Resolves a `Location` against the URL it came from.
fn resolve(from: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_owned()
    } else if loc.starts_with('/') {
        format!("{}{loc}", origin(from))
    } else {
        let dir = from.rsplit_once('/').map_or(from, |(d, _)| d);
        format!("{dir}/{loc}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            format_errors(StatusCode::NOT_FOUND, body),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            format_errors(StatusCode::UNAUTHORIZED, b""),
            "unauthorized: authentication required"
        );
        assert_eq!(format_errors(StatusCode::NOT_FOUND, b"<html>"), "not found");
        assert_eq!(
            format_errors(
                StatusCode::UNAUTHORIZED,
                br#"{"details":"incorrect username or password"}"#
            ),
            "unauthorized: incorrect username or password"
        );
        assert_eq!(
            format_errors(
                StatusCode::FORBIDDEN,
                br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
            ),
            "denied: requested access to the resource is denied"
        );
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let t0 = Instant::now();
        assert_eq!(renew_at(t0, Some(300)), t0 + Duration::from_secs(290));
        // Missing or shorter than a minute: a minute, as Docker reckons it.
        assert_eq!(renew_at(t0, None), t0 + Duration::from_secs(50));
        assert_eq!(renew_at(t0, Some(5)), t0 + Duration::from_secs(50));
    }

    #[test]
    fn urls() {
        assert_eq!(origin("https://h:5000/v2/x"), "https://h:5000");
        assert!(same_origin("http://h/v2/a?x", "http://h"));
        assert!(!same_origin("https://s3.example/b", "https://h"));
        assert_eq!(
            resolve(
                "http://h:1/v2/a/blobs/uploads/",
                "/v2/a/blobs/uploads/u1?x=1"
            ),
            "http://h:1/v2/a/blobs/uploads/u1?x=1"
        );
        assert_eq!(resolve("http://h/a/b", "https://o/p"), "https://o/p");
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
