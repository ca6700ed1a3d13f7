//! The HTTP transport of the registry client: one HTTP/1.1 connection per request, over plain
//! TCP or rustls (ring), with per-registry CA files and Docker's "insecure registry" rule
//! (TLS without certificate verification).
//!
//! ```text
//!  send(method, url, headers, body) ─► TcpStream ─┬─ http:  hyper http1 handshake
//!                                                 └─ https: tokio-rustls (roots: system bundle
//!                                                    + <certs-dir>/<host:port>/*.crt) ─► hyper
//! ```
//! A connection per request keeps the transport small; registry traffic is a handful of
//! manifest requests and a few long blob streams, so the handshakes are not what costs time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use super::RegistryError;

/// Request bodies: empty, a buffer, or a stream of file chunks.
pub type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Opens connections; caches one TLS configuration per registry host.
pub struct Transport {
    certs_dir: PathBuf,
    tls: Mutex<HashMap<(String, bool), Arc<rustls::ClientConfig>>>,
}

impl Transport {
    pub fn new(certs_dir: PathBuf) -> Self {
        Transport {
            certs_dir,
            tls: Mutex::new(HashMap::new()),
        }
    }

    /// Sends one request to an absolute `url`. With `verify` false, a TLS certificate is
    /// accepted without checking (insecure registries only).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: ReqBody,
        verify: bool,
    ) -> Result<Response<Incoming>, RegistryError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| RegistryError::Protocol(format!("invalid registry URL {url:?}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(RegistryError::Protocol(format!(
                    "unsupported URL scheme in {url:?}"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| RegistryError::Protocol(format!("no host in {url:?}")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let what = |e: String| RegistryError::Unreachable {
            url: format!("{method} {url:?}"),
            detail: e,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| what("dial tcp: i/o timeout".into()))?
            .map_err(|e| what(format!("dial tcp {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let mut req = Request::builder().method(method.clone()).uri(path);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let mut req = req
            .body(body)
            .map_err(|e| RegistryError::Protocol(format!("building request: {e}")))?;
        let h = req.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(&authority)
                .map_err(|_| RegistryError::Protocol(format!("bad host in {url:?}")))?,
        );
        h.entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "berth/",
                env!("CARGO_PKG_VERSION")
            )));
        let fut = async {
            if https {
                let cfg = self.tls_config(&authority, verify)?;
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| what(format!("invalid TLS server name {host:?}")))?;
                let handshake = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp);
                let tls = tokio::time::timeout(TLS_TIMEOUT, handshake)
                    .await
                    .map_err(|_| what("net/http: TLS handshake timeout".into()))?
                    .map_err(|e| what(format!("tls: {e}")))?;
                exchange(TokioIo::new(tls), req).await.map_err(&what)
            } else {
                exchange(TokioIo::new(tcp), req).await.map_err(&what)
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, fut)
            .await
            .map_err(|_| what("timed out waiting for the response".into()))?
    }

    fn tls_config(
        &self,
        authority: &str,
        verify: bool,
    ) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
        let key = (authority.to_owned(), verify);
        let mut cache = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Protocol(format!("TLS setup: {e}")))?;
        let cfg = if verify {
            let mut roots = rustls::RootCertStore::empty();
            let mut files = vec![PathBuf::from(SYSTEM_ROOTS)];
            if let Ok(rd) = std::fs::read_dir(self.certs_dir.join(authority)) {
                files.extend(
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "crt")),
                );
            }
            for f in files {
                let Ok(iter) = CertificateDer::pem_file_iter(&f) else {
                    continue;
                };
                for cert in iter.flatten() {
                    if let Err(e) = roots.add(cert) {
                        tracing::debug!(file = %f.display(), error = %e, "skipping a CA certificate");
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth()
        };
        let cfg = Arc::new(cfg);
        cache.insert(key, cfg.clone());
        Ok(cfg)
    }
}

async fn exchange<I>(io: I, req: Request<ReqBody>) -> Result<Response<Incoming>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "registry connection ended");
        }
    });
    sender.send_request(req).await.map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    })
}

/// The certificate check of insecure registries: any certificate is accepted, but the
/// handshake signatures are still verified (the connection is encrypted, not authenticated).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
