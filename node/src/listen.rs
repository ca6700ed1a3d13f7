//! The API's TCP listener: mutual TLS only (`--tlsverify`), like dockerd's `-H tcp://` with
//! `--tlsverify --tlscacert --tlscert --tlskey`. A client must present a certificate signed by
//! the CA; the API gives root on the host, so plain TCP is never offered.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The PEM files of `--tlscacert`, `--tlscert` and `--tlskey`.
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

pub fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(files.ca)
        .with_context(|| format!("read {}", files.ca.display()))?
    {
        roots
            .add(ca.with_context(|| format!("parse {}", files.ca.display()))?)
            .context("add CA certificate")?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .context("client certificate verifier")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(files.cert)
        .with_context(|| format!("read {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parse {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(files.key)
        .with_context(|| format!("read key {}", files.key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("server certificate and key")?;
    Ok(cfg)
}

/// A TCP listener whose connections are TLS streams with a verified client.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    pub async fn bind(addr: &str, cfg: rustls::ServerConfig) -> anyhow::Result<Self> {
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        Ok(TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(cfg)),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::info!(peer = %addr, error = %e, "TLS handshake refused"),
                Err(_) => tracing::info!(peer = %addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
