//! tonic over the cluster's TLS: a stream of accepted TLS connections for
//! `Server::serve_with_incoming`, and a lazy client `Channel` that dials with TLS.
//!
//! ```text
//! TcpListener ─accept─► spawn(handshake, 10 s) ─ok─► channel ─► incoming() ─► tonic Server
//!                                   └─fail─► debug log, dropped
//! handler: request.extensions().get::<PeerInfo>()  (remote address, leaf fingerprint)
//! ```
//!
//! The accept loop never waits on a handshake, so a slow or silent peer cannot stall it;
//! at most [`MAX_PENDING_HANDSHAKES`] run at once. The loop ends when the stream is dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::{server::TlsStream, TlsAcceptor, TlsConnector};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

use super::tls::peer_fingerprint;
use super::MANAGER_SERVER_NAME;

/// How long a peer has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; further connections wait in the listen backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// How long a client has to connect and finish TLS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A TLS configuration that can be replaced while it is in use: new connections take the
/// current one, established ones keep theirs. A manager swaps its configurations when its
/// certificate is renewed or the roots it trusts change (a root rotation), without
/// restarting its server or its Raft member.
#[derive(Debug)]
pub struct LiveConfig<T>(Arc<std::sync::RwLock<Arc<T>>>);

impl<T> Clone for LiveConfig<T> {
    fn clone(&self) -> Self {
        LiveConfig(self.0.clone())
    }
}

impl<T> LiveConfig<T> {
    pub fn new(cfg: Arc<T>) -> LiveConfig<T> {
        LiveConfig(Arc::new(std::sync::RwLock::new(cfg)))
    }

    /// The configuration new connections use.
    pub fn get(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration for connections made from now on.
    pub fn set(&self, cfg: Arc<T>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cfg;
    }
}

/// Who is calling: what a handler finds in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    /// SHA-256 of the caller's leaf certificate, lowercase hex; `None` for a caller without
    /// a certificate (a node that is joining).
    pub fingerprint: Option<String>,
    /// The node id (CN) of the caller's leaf certificate, which TLS checked chains to the
    /// cluster root; `None` without a certificate.
    pub node_id: Option<String>,
}

/// An accepted, handshaken TLS connection.
pub struct TlsConn {
    inner: TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl TlsConn {
    /// Who is on the other end.
    pub fn peer_info(&self) -> &PeerInfo {
        &self.peer
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Accepted TLS connections from `listener`, for `Server::serve_with_incoming`.
///
/// Must be called inside a tokio runtime (it spawns the accept loop). The stream never
/// yields an error and never ends on its own: failed handshakes and accept errors are
/// logged and skipped. Dropping the stream stops the accept loop and closes the listener.
pub fn incoming(
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
    incoming_live(listener, LiveConfig::new(cfg))
}

/// [`incoming`] with a configuration that may change: each handshake uses the current one.
pub fn incoming_live(
    listener: TcpListener,
    cfg: LiveConfig<ServerConfig>,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(accept_loop(listener, cfg, tx));
    Incoming {
        rx,
        _accept: AbortOnDrop(task),
    }
}

struct Incoming {
    rx: mpsc::Receiver<TlsConn>,
    _accept: AbortOnDrop,
}

impl Stream for Incoming {
    type Item = Result<TlsConn, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx).map(|conn| conn.map(Ok))
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    cfg: LiveConfig<ServerConfig>,
    tx: mpsc::Sender<TlsConn>,
) {
    let slots = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = tx.closed() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return, // the semaphore is never closed
            },
        };
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) {
                    tracing::debug!(error = %e, "accepting a control-plane connection");
                } else {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a control-plane connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(cfg.get());
        let tx = tx.clone();
        tokio::spawn(async move {
            let conn = handshake(&acceptor, tcp, remote).await;
            drop(permit);
            if let Some(conn) = conn {
                // A send error means the server is gone; the connection just closes.
                let _ = tx.send(conn).await;
            }
        });
    }
}

async fn handshake(acceptor: &TlsAcceptor, tcp: TcpStream, remote: SocketAddr) -> Option<TlsConn> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%remote, error = %e, "setting TCP_NODELAY");
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            let certs = tls.get_ref().1.peer_certificates().unwrap_or(&[]);
            let peer = PeerInfo {
                remote: Some(remote),
                fingerprint: peer_fingerprint(certs),
                node_id: certs
                    .first()
                    .and_then(|leaf| super::node::leaf_node_id(leaf)),
            };
            Some(TlsConn { inner: tls, peer })
        }
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "control-plane tls handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "control-plane tls handshake timed out");
            None
        }
    }
}

/// A lazy gRPC channel to the manager at `addr` over TLS with `cfg`.
///
/// Nothing is dialled until the first call; a broken connection is re-dialled on the next
/// call. The server is verified under the name [`MANAGER_SERVER_NAME`]. HTTP/2 pings every
/// second (also when idle) notice a dead peer within about three seconds.
pub fn channel(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Channel {
    channel_live(addr, LiveConfig::new(cfg))
}

/// [`channel`] with a configuration that may change: each dial uses the current one.
pub fn channel_live(addr: SocketAddr, cfg: LiveConfig<ClientConfig>) -> Channel {
    // The scheme only names the HTTP/2 `:scheme`; TLS is done by the connector below.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid uri authority")
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true);
    let name = rustls::pki_types::ServerName::try_from(MANAGER_SERVER_NAME)
        .expect("swarm-manager is a valid dns name");
    lazy(endpoint, addr, name, cfg)
}

/// A lazy channel to the node `node_id` at `addr` (its peer port), verified under its id:
/// every node certificate carries its node id as a DNS name, so the answer comes from that
/// node and no other. Streams are long (image archives): no keep-alive timeout beyond TCP's.
pub fn node_channel(
    addr: SocketAddr,
    node_id: &str,
    cfg: Arc<ClientConfig>,
) -> io::Result<Channel> {
    let name = rustls::pki_types::ServerName::try_from(node_id.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("node id {node_id:?}: {e}"),
        )
    })?;
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address is a valid uri authority")
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    Ok(lazy(endpoint, addr, name, LiveConfig::new(cfg)))
}

fn lazy(
    endpoint: Endpoint,
    addr: SocketAddr,
    name: rustls::pki_types::ServerName<'static>,
    cfg: LiveConfig<ClientConfig>,
) -> Channel {
    endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let connector = TlsConnector::from(cfg.get());
        let name = name.clone();
        async move { dial(addr, name, connector).await }
    }))
}

async fn dial(
    addr: SocketAddr,
    name: rustls::pki_types::ServerName<'static>,
    connector: TlsConnector,
) -> io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>> {
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        connector.connect(name, tcp).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(result) => result.map(TokioIo::new),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to {addr} timed out"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::StreamExt;
    use tonic::codegen::{http, BoxFuture, Service};
    use tonic::server::NamedService;
    use tonic_prost::ProstCodec;

    use super::*;
    use crate::ca::{
        client_config, new_token, pinned_client_config, server_config, JoinToken, NodeCert, Role,
        RootCa, DEFAULT_NODE_CERT_VALIDITY,
    };

    const PATH: &str = "/berth.test.WhoAmI/Get";

    /// A one-method gRPC service, written by hand (no proto): it answers with the
    /// fingerprint tonic handed it in the request's `PeerInfo`, or "-" when there is none.
    #[derive(Clone)]
    struct WhoAmI;

    impl NamedService for WhoAmI {
        const NAME: &'static str = "berth.test.WhoAmI";
    }

    impl Service<http::Request<tonic::body::Body>> for WhoAmI {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            Box::pin(async move {
                assert_eq!(req.uri().path(), PATH);
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<String, ()>::default());
                let answer = tower::service_fn(|req: tonic::Request<()>| async move {
                    let peer = req.extensions().get::<PeerInfo>().cloned();
                    let who = peer
                        .and_then(|p| p.fingerprint)
                        .unwrap_or_else(|| "-".to_string());
                    Ok::<_, tonic::Status>(tonic::Response::new(who))
                });
                Ok(grpc.unary(Unary(answer), req).await)
            })
        }
    }

    /// Adapts a tower service to tonic's `UnaryService`.
    struct Unary<S>(S);

    impl<S> tonic::server::UnaryService<()> for Unary<S>
    where
        S: Service<tonic::Request<()>, Response = tonic::Response<String>, Error = tonic::Status>,
    {
        type Response = String;
        type Future = S::Future;

        fn call(&mut self, request: tonic::Request<()>) -> Self::Future {
            self.0.call(request)
        }
    }

    async fn who_am_i(channel: Channel) -> Result<String, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(PATH);
        let reply = grpc
            .unary(
                tonic::Request::new(()),
                path,
                ProstCodec::<(), String>::default(),
            )
            .await?;
        Ok(reply.into_inner())
    }

    struct Cluster {
        root: RootCa,
        manager: NodeCert,
        worker: NodeCert,
    }

    fn cluster() -> Cluster {
        let root = RootCa::generate().expect("root");
        let manager = root
            .issue("mgr1", Role::Manager, "c1", DEFAULT_NODE_CERT_VALIDITY)
            .expect("manager");
        let worker = root
            .issue("wrk1", Role::Worker, "c1", DEFAULT_NODE_CERT_VALIDITY)
            .expect("worker");
        Cluster {
            root,
            manager,
            worker,
        }
    }

    async fn loopback() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    /// Serves `WhoAmI` with the manager's certificate; the server stops when the task is
    /// aborted.
    async fn serve(c: &Cluster) -> (SocketAddr, AbortOnDrop) {
        let (listener, addr) = loopback().await;
        let cfg = server_config(c.root.cert_pem(), &c.manager).expect("server config");
        let server = tonic::transport::Server::builder()
            .add_service(WhoAmI)
            .serve_with_incoming(incoming(listener, cfg));
        let task = tokio::spawn(async move {
            server.await.expect("server");
        });
        (addr, AbortOnDrop(task))
    }

    #[tokio::test]
    async fn incoming_yields_connections_with_the_peer_fingerprint() {
        let c = cluster();
        let (listener, addr) = loopback().await;
        let cfg = server_config(c.root.cert_pem(), &c.manager).expect("server config");
        let mut conns = Box::pin(incoming(listener, cfg));

        // A failed handshake (plain garbage) is dropped, not yielded, and not fatal.
        let mut junk = TcpStream::connect(addr).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut junk, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .expect("write");

        let client = client_config(c.root.cert_pem(), Some(&c.worker)).expect("client");
        let name = rustls::pki_types::ServerName::try_from(MANAGER_SERVER_NAME).expect("name");
        let dial = tokio::spawn(dial(addr, name, TlsConnector::from(client)));
        let conn = tokio::time::timeout(Duration::from_secs(5), conns.next())
            .await
            .expect("a connection in time")
            .expect("stream continues")
            .expect("never an error");
        let info = conn.connect_info();
        assert_eq!(info.fingerprint, Some(c.worker.fingerprint.clone()));
        let client_tls = dial.await.expect("join").expect("client handshake");
        assert_eq!(
            info.remote,
            client_tls.inner().get_ref().0.local_addr().ok()
        );
    }

    #[tokio::test]
    async fn grpc_call_sees_the_callers_fingerprint() {
        let c = cluster();
        let (addr, _server) = serve(&c).await;
        let worker = client_config(c.root.cert_pem(), Some(&c.worker)).expect("client");
        let seen = who_am_i(channel(addr, worker)).await.expect("call");
        assert_eq!(seen, c.worker.fingerprint);

        let joiner = client_config(c.root.cert_pem(), None).expect("client");
        let seen = who_am_i(channel(addr, joiner)).await.expect("call");
        assert_eq!(seen, "-");
    }

    #[tokio::test]
    async fn grpc_over_a_pinned_config_learns_the_ca() {
        let c = cluster();
        let (addr, _server) = serve(&c).await;
        let token = JoinToken::parse(&new_token(&c.root)).expect("token");
        let (cfg, pinned) = pinned_client_config(&token);
        let seen = who_am_i(channel(addr, cfg)).await.expect("call");
        assert_eq!(seen, "-");
        assert_eq!(pinned.der().as_ref(), Some(c.root.cert_der()));

        let other = cluster();
        let token = JoinToken::parse(&new_token(&other.root)).expect("token");
        let (cfg, pinned) = pinned_client_config(&token);
        let err = who_am_i(channel(addr, cfg)).await.expect_err("wrong ca");
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
        assert!(pinned.der().is_none());
    }

    #[tokio::test]
    async fn grpc_refuses_a_foreign_client_and_survives_it() {
        let c = cluster();
        let other = cluster();
        let (addr, _server) = serve(&c).await;
        let intruder = client_config(c.root.cert_pem(), Some(&other.worker)).expect("client");
        assert!(who_am_i(channel(addr, intruder)).await.is_err());
        // The server keeps serving after a refused handshake.
        let worker = client_config(c.root.cert_pem(), Some(&c.worker)).expect("client");
        let seen = who_am_i(channel(addr, worker)).await.expect("call");
        assert_eq!(seen, c.worker.fingerprint);
    }

    #[tokio::test]
    async fn channel_to_nobody_fails_fast() {
        let (listener, addr) = loopback().await;
        drop(listener);
        let c = cluster();
        let cfg = client_config(c.root.cert_pem(), None).expect("client");
        let started = std::time::Instant::now();
        let err = who_am_i(channel(addr, cfg))
            .await
            .expect_err("nobody listens");
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn silent_peer_times_out_the_connect() {
        // A listener that never answers the TLS handshake.
        let (listener, addr) = loopback().await;
        let c = cluster();
        let cfg = client_config(c.root.cert_pem(), None).expect("client");
        let started = std::time::Instant::now();
        let err = who_am_i(channel(addr, cfg))
            .await
            .expect_err("no handshake");
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
            "{took:?}"
        );
        drop(listener);
    }
}
