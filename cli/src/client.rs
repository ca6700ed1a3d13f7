//! The Engine API client: HTTP/1.1 over a unix socket or TCP, one connection per request.
//!
//! ```text
//!  Client::get/post/... ──► negotiate once (HEAD /_ping, GET on failure; Api-Version header)
//!                        ──► "/v<min(1.45, daemon)>" + path ──► hyper http1 ──► Response
//!  Client::hijack ───────► "POST ... Upgrade: tcp" written by hand ──► 101 ──► raw duplex socket
//! ```
//!
//! Requests that must not wait on each other (`wait` then `start` during `run`) each get their
//! own connection, so a response whose body arrives much later never blocks another request.
//! Error statuses become [`DaemonError`] with the daemon's `{"message"}`.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{anyhow, bail, Context as _, Result};
use berth_common::percent::encode;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OnceCell;

use crate::error::DaemonError;

/// The highest API version this client speaks.
pub const API_VERSION: &str = "1.45";
/// Where `berthd` listens unless `-H`/`$BERTH_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// Used when the daemon's ping carries no `Api-Version` header.
const FALLBACK_VERSION: &str = "1.24";
const USER_AGENT: &str = concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// Parses `unix:///path`, `tcp://host[:port]` or a bare socket path.
    pub fn parse(s: &str) -> Result<Endpoint> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                bail!("invalid host {s:?}: empty socket path");
            }
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                bail!("invalid host {s:?}: empty address");
            }
            let has_port = match a.rfind(':') {
                Some(i) => !a[i..].contains(']'),
                None => false,
            };
            let addr = if has_port {
                a.to_string()
            } else {
                format!("{a}:2375")
            };
            return Ok(Endpoint::Tcp(addr));
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(s)));
        }
        bail!("invalid host {s:?}: expected unix:///path or tcp://host:port")
    }
}

/// A connected socket of either kind.
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    /// Splits into independently owned halves; shutting down the writer half-closes the socket.
    pub fn into_split(self) -> (BoxRead, BoxWrite) {
        match self {
            Conn::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Conn::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        }
    }
}

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A request body.
pub enum Body {
    Empty,
    Json(Bytes),
    /// A streamed body with its content type (`application/x-tar`).
    Stream(UnsyncBoxBody<Bytes, io::Error>, &'static str),
}

impl Body {
    pub fn json(v: &Value) -> Body {
        Body::Json(Bytes::from(v.to_string()))
    }

    /// Streams everything `reader` yields, read on a helper thread (works for stdin and files).
    pub fn from_reader<R: io::Read + Send + 'static>(
        mut reader: R,
        content_type: &'static str,
    ) -> Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx
                            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item.map(Frame::data), rx))
        });
        Body::Stream(BodyExt::boxed_unsync(StreamBody::new(stream)), content_type)
    }

    /// A complete in-memory body with a content type.
    pub fn bytes(data: Vec<u8>, content_type: &'static str) -> Body {
        let full = Full::new(Bytes::from(data)).map_err(|never| match never {});
        Body::Stream(BodyExt::boxed_unsync(full), content_type)
    }
}

/// What `/_ping` told us.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    pub api_version: Option<String>,
    pub os_type: Option<String>,
    pub experimental: bool,
}

/// A response whose status has not been checked yet (see [`Response::ok`]).
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Turns an error status into a [`DaemonError`] carrying the daemon's message.
    pub async fn ok(self) -> Result<Response> {
        if self.status.is_client_error() || self.status.is_server_error() {
            return Err(self.into_error().await);
        }
        Ok(self)
    }

    /// Reads the body of an error response into a [`DaemonError`].
    pub async fn into_error(self) -> anyhow::Error {
        let status = self.status;
        let body = match self.body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return anyhow!(e).context(format!("reading error response ({status})")),
        };
        anyhow::Error::new(DaemonError::from_body(status.as_u16(), &body))
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(anyhow!(e).context("reading response")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    pub async fn bytes(self) -> Result<Bytes> {
        Ok(self
            .body
            .collect()
            .await
            .context("reading response")?
            .to_bytes())
    }

    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let body = self.bytes().await?;
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "decoding daemon response: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })
    }
}

/// The read half of a hijacked connection, starting with bytes read past the 101 head.
pub struct HijackReader {
    leftover: Bytes,
    inner: BoxRead,
}

impl AsyncRead for HijackReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.leftover.is_empty() {
            let n = self.leftover.len().min(buf.remaining());
            let chunk = self.leftover.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// A hijacked attach/exec connection: container output from `reader`, stdin into `writer`.
pub struct Hijacked {
    pub reader: HijackReader,
    pub writer: BoxWrite,
}

/// The Engine API client. Cloning is cheap and clones share the negotiated version.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    host: String,
    version: Arc<OnceCell<String>>,
}

impl Client {
    /// `host` is what the user gave (`-H`), kept for messages.
    pub fn new(host: &str) -> Result<Client> {
        Ok(Client {
            endpoint: Endpoint::parse(host)?,
            host: host.to_string(),
            version: Arc::new(OnceCell::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn host_header(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(_) => "api.moby.localhost".to_string(),
            Endpoint::Tcp(a) => a.clone(),
        }
    }

    /// Opens a new connection to the daemon.
    pub async fn connect(&self) -> Result<Conn> {
        let res = match &self.endpoint {
            Endpoint::Unix(p) => UnixStream::connect(p).await.map(Conn::Unix),
            Endpoint::Tcp(a) => TcpStream::connect(a).await.map(Conn::Tcp),
        };
        res.map_err(|_| {
            anyhow!(
                "Cannot connect to the Berth daemon at {}. Is the berth daemon running?",
                self.host
            )
        })
    }

    /// Sends `path` exactly as given (no version prefix) and returns the unchecked response.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response> {
        let conn = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .context("HTTP handshake with the daemon")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", self.host_header())
            .header("User-Agent", USER_AGENT);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let body = match body {
            Body::Empty => {
                BodyExt::boxed_unsync(Full::new(Bytes::new()).map_err(|never| match never {}))
            }
            Body::Json(b) => {
                builder = builder.header("Content-Type", "application/json");
                BodyExt::boxed_unsync(Full::new(b).map_err(|never| match never {}))
            }
            Body::Stream(s, content_type) => {
                builder = builder.header("Content-Type", content_type);
                s
            }
        };
        let req = builder.body(body).context("building request")?;
        let resp = sender.send_request(req).await.map_err(|e| {
            if e.is_incomplete_message() || e.is_closed() {
                anyhow!("the daemon closed the connection during {path}")
            } else {
                anyhow!(e).context(format!("request {path}"))
            }
        })?;
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `HEAD /_ping`, falling back to `GET /_ping`.
    pub async fn ping(&self) -> Result<Ping> {
        let mut resp = self.raw(Method::HEAD, "/_ping", Body::Empty, &[]).await?;
        if !resp.status.is_success() && resp.status != StatusCode::INTERNAL_SERVER_ERROR {
            resp = self.raw(Method::GET, "/_ping", Body::Empty, &[]).await?;
        }
        Ok(Ping {
            api_version: resp.header("Api-Version").map(str::to_string),
            os_type: resp.header("Ostype").map(str::to_string),
            experimental: resp.header("Docker-Experimental") == Some("true"),
        })
    }

    /// The negotiated API version (pings once per process).
    pub async fn version(&self) -> Result<&str> {
        let v = self
            .version
            .get_or_try_init(|| async {
                let ping = self.ping().await?;
                Ok::<String, anyhow::Error>(negotiate(ping.api_version.as_deref()))
            })
            .await?;
        Ok(v.as_str())
    }

    /// Sends a request under the negotiated `/v1.xx` prefix; the status is not checked.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response> {
        let prefixed = format!("/v{}{}", self.version().await?, path);
        self.raw(method, &prefixed, body, headers).await
    }

    pub async fn get(&self, path: &str) -> Result<Response> {
        self.request(Method::GET, path, Body::Empty, &[])
            .await?
            .ok()
            .await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get(path).await?.json().await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Response> {
        let body = body.map(Body::json).unwrap_or(Body::Empty);
        self.request(Method::POST, path, body, &[])
            .await?
            .ok()
            .await
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        self.post(path, body).await?.json().await
    }

    pub async fn delete(&self, path: &str) -> Result<Response> {
        self.request(Method::DELETE, path, Body::Empty, &[])
            .await?
            .ok()
            .await
    }

    /// `DELETE`s each of `names` (its path from `path`), printing each one removed; the
    /// failures are reported together, exit status 1, as the docker CLI's `rm` commands do.
    pub async fn delete_each(&self, names: &[String], path: impl Fn(&str) -> String) -> Result<()> {
        let mut errors = Vec::new();
        for name in names {
            match self.delete(&path(name)).await {
                Ok(_) => println!("{name}"),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            return Err(crate::error::StatusError::new(1, errors.join("\n")).into());
        }
        Ok(())
    }

    /// Opens a hijacked connection (`attach`, `exec start`): the request is written by hand with
    /// `Connection: Upgrade` / `Upgrade: tcp` and the socket is handed over after the 101.
    pub async fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let prefixed = format!("/v{}{}", self.version().await?, path);
        let mut conn = self.connect().await?;
        let (payload, content_type) = match body {
            Some(v) => (v.to_string().into_bytes(), "application/json"),
            None => (Vec::new(), "text/plain"),
        };
        let head = format!(
            "POST {prefixed} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nContent-Length: {}\r\n\
             Content-Type: {content_type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            self.host_header(),
            payload.len()
        );
        conn.write_all(head.as_bytes())
            .await
            .context("sending hijack request")?;
        conn.write_all(&payload)
            .await
            .context("sending hijack request")?;
        conn.flush().await.context("sending hijack request")?;

        let mut buf = Vec::with_capacity(1024);
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            if buf.len() > 64 * 1024 {
                bail!("response head from the daemon is too large");
            }
            let mut tmp = [0u8; 4096];
            let n = conn
                .read(&mut tmp)
                .await
                .context("reading hijack response")?;
            if n == 0 {
                bail!("the daemon closed the connection before answering {path}");
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = parse_head(&buf[..head_end])?;
        let leftover = Bytes::copy_from_slice(&buf[head_end + 4..]);
        if head.status == 101 || head.status == 200 {
            let (r, w) = conn.into_split();
            return Ok(Hijacked {
                reader: HijackReader { leftover, inner: r },
                writer: w,
            });
        }
        let body = read_error_body(&mut conn, leftover, &head).await;
        Err(anyhow::Error::new(DaemonError::from_body(
            head.status,
            &body,
        )))
    }
}

/// `min(ours, theirs)`, or the fallback when the daemon did not say.
pub fn negotiate(server: Option<&str>) -> String {
    let Some(server) = server.filter(|s| !s.is_empty()) else {
        return FALLBACK_VERSION.to_string();
    };
    let parse = |v: &str| -> (u32, u32) {
        let (a, b) = v.split_once('.').unwrap_or((v, "0"));
        (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
    };
    if parse(server) < parse(API_VERSION) {
        server.to_string()
    } else {
        API_VERSION.to_string()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(head: &[u8]) -> Result<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("malformed response from the daemon: {status_line:?}"))?;
    let mut out = Head {
        status,
        content_length: None,
        chunked: false,
    };
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                out.content_length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                out.chunked = true;
            }
        }
    }
    Ok(out)
}

async fn read_error_body(conn: &mut Conn, leftover: Bytes, head: &Head) -> Vec<u8> {
    let mut body = leftover.to_vec();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(n) = head.content_length {
            if body.len() >= n {
                body.truncate(n);
                return body;
            }
        } else if head.chunked && find(&body, b"0\r\n\r\n").is_some() {
            return decode_chunked(&body);
        }
        match conn.read(&mut tmp).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&tmp[..n]),
        }
    }
    if head.chunked {
        decode_chunked(&body)
    } else {
        body
    }
}

fn decode_chunked(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..i]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[i + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Builds `?a=1&b=x` query strings.
#[derive(Debug, Default)]
pub struct Query {
    parts: Vec<String>,
}

impl Query {
    pub fn new() -> Query {
        Query::default()
    }

    pub fn add(&mut self, key: &str, value: impl AsRef<str>) -> &mut Query {
        self.parts
            .push(format!("{}={}", encode(key), encode(value.as_ref())));
        self
    }

    /// Adds `key=1` when `flag` is set.
    pub fn flag(&mut self, key: &str, flag: bool) -> &mut Query {
        if flag {
            self.add(key, "1");
        }
        self
    }

    /// Adds `key=value` when `value` is present and non-empty.
    pub fn opt(&mut self, key: &str, value: Option<impl AsRef<str>>) -> &mut Query {
        if let Some(v) = value {
            if !v.as_ref().is_empty() {
                self.add(key, v);
            }
        }
        self
    }

    /// Adds `filters=<json>` unless the filter map is empty.
    pub fn filters(&mut self, filters: &Value) -> &mut Query {
        if filters.as_object().is_some_and(|m| !m.is_empty()) {
            self.add("filters", filters.to_string());
        }
        self
    }

    /// `path?query` (or just `path`).
    pub fn to_path(&self, path: &str) -> String {
        if self.parts.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.parts.join("&"))
        }
    }
}

/// `/containers/{id}...` with the id or name encoded as one path segment.
pub fn seg(s: &str) -> String {
    encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///run/berth/berth.sock").expect("unix"),
            Endpoint::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2376").expect("tcp"),
            Endpoint::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://example.com").expect("tcp"),
            Endpoint::Tcp("example.com:2375".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]").expect("tcp"),
            Endpoint::Tcp("[::1]:2375".into())
        );
        assert_eq!(
            Endpoint::parse("/tmp/x.sock").expect("path"),
            Endpoint::Unix("/tmp/x.sock".into())
        );
        assert!(Endpoint::parse("ssh://host").is_err());
        assert!(Endpoint::parse("unix://").is_err());
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate(Some("1.41")), "1.41");
        assert_eq!(negotiate(Some("1.50")), "1.45");
        assert_eq!(negotiate(Some("1.45")), "1.45");
        assert_eq!(negotiate(Some("1.9")), "1.9");
        assert_eq!(negotiate(None), "1.24");
    }

    #[test]
    fn queries() {
        let mut q = Query::new();
        q.add("fromImage", "127.0.0.1:5000/bb")
            .add("tag", "1")
            .flag("all", false)
            .flag("force", true);
        assert_eq!(
            q.to_path("/images/create"),
            "/images/create?fromImage=127.0.0.1%3A5000%2Fbb&tag=1&force=1"
        );
        assert_eq!(Query::new().to_path("/x"), "/x");
        let mut q = Query::new();
        q.filters(&serde_json::json!({}))
            .opt("since", None::<String>)
            .opt("until", Some(""));
        assert_eq!(q.to_path("/events"), "/events");
    }

    #[test]
    fn response_heads() {
        let h = parse_head(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 42",
        )
        .expect("head");
        assert_eq!(h.status, 404);
        assert_eq!(h.content_length, Some(42));
        let h = parse_head(b"HTTP/1.1 101 UPGRADED\r\nTransfer-Encoding: chunked").expect("head");
        assert_eq!(h.status, 101);
        assert!(h.chunked);
        assert!(parse_head(b"garbage").is_err());
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
    }
}
