//! The peer port: node-to-node service on every swarm member (TCP [`PEER_PORT`], mutual TLS
//! under node certificates of the swarm). A node whose task needs an image that is in no
//! reachable registry (built or loaded on another node) fetches it from a peer that has it.
//!
//! ```text
//!  agent: pull fails ─► Swarm::fetch_image ─► manager: PeerAddrs (ready nodes but me)
//!                                   └─► each peer in turn: Peer.ImageExport ─► docker-save chunks
//!  peer:  serve_loop (bound to the advertise address) ─► ImageSource::export (the engine's save)
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tonic::{Request as GrpcRequest, Response, Status};

use crate::ca::{self, LiveConfig, PeerInfo};
use crate::error::{ClusterError, ClusterResult};
use crate::rpc::pb;

/// Docker's node-to-node port (its gossip's); Berth has no gossip and serves peer requests
/// there, so the firewall rules Swarm users already have fit.
pub const PEER_PORT: u16 = 7946;

/// Where a peer is reached: its node id (what its certificate must name) and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    pub node_id: String,
    /// `ip:port` of its peer port.
    pub addr: String,
}

/// Why an image source could not export an image (the engine's error, with its causes).
pub type ExportError = Box<dyn std::error::Error + Send + Sync>;

/// What this node can hand its peers: the engine's images.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// A `docker save` archive of `image` in chunks, or None when this node has no image
    /// by that reference.
    async fn export(&self, image: &str)
        -> Result<Option<BoxStream<'static, Vec<u8>>>, ExportError>;
}

#[derive(Serialize, Deserialize)]
struct ExportRequest {
    image: String,
}

struct PeerService(Arc<dyn ImageSource>);

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::Chunk, Status>> + Send>>;

#[async_trait]
impl pb::peer_server::Peer for PeerService {
    type ImageExportStream = ChunkStream;

    async fn image_export(
        &self,
        req: GrpcRequest<pb::Blob>,
    ) -> Result<Response<ChunkStream>, Status> {
        let peer = req.extensions().get::<PeerInfo>().cloned();
        let Some(caller) = peer.and_then(|p| p.node_id) else {
            return Err(Status::unauthenticated("a node certificate is required"));
        };
        let ask: ExportRequest = serde_json::from_slice(&req.get_ref().json)
            .map_err(|e| Status::invalid_argument(format!("malformed message: {e}")))?;
        match self.0.export(&ask.image).await {
            Ok(Some(chunks)) => {
                tracing::info!(image = %ask.image, node_id = %caller, "serving an image to a peer");
                Ok(Response::new(
                    chunks.map(|data| Ok(pb::Chunk { data })).boxed(),
                ))
            }
            Ok(None) => Err(Status::not_found(format!("no such image: {}", ask.image))),
            Err(e) => {
                // The client gets the message; the log keeps the causes too.
                tracing::warn!(image = %ask.image, node_id = %caller, error = ?e, "exporting an image for a peer");
                Err(Status::internal(e.to_string()))
            }
        }
    }
}

/// Serves the peer port at `ip` (the node's advertise address; every interface when that
/// is not local) until aborted, with the node's certificate as `tls` reads it (renewals are
/// picked up: `tls` is re-read every minute).
pub(crate) async fn serve(
    ip: std::net::IpAddr,
    source: Arc<dyn ImageSource>,
    tls: impl Fn() -> ClusterResult<Arc<rustls::ServerConfig>> + Send + 'static,
) {
    let listener = loop {
        let bound = match tokio::net::TcpListener::bind(SocketAddr::new(ip, PEER_PORT)).await {
            Ok(l) => Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                let any = SocketAddr::new([0, 0, 0, 0].into(), PEER_PORT);
                tokio::net::TcpListener::bind(any).await
            }
            Err(e) => Err(e),
        };
        match bound {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(error = %e, port = PEER_PORT, "peer port: cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let cfg = loop {
        match tls() {
            Ok(c) => break LiveConfig::new(c),
            Err(e) => {
                tracing::warn!(error = %e, "peer port: no certificate yet");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let refresh = {
        let cfg = cfg.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if let Ok(c) = tls() {
                    cfg.set(c);
                }
            }
        }
    };
    let svc = pb::peer_server::PeerServer::new(PeerService(source));
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(svc)
        .serve_with_incoming(ca::incoming_live(listener, cfg));
    tokio::select! {
        res = server => {
            if let Err(e) = res {
                tracing::error!(error = %e, "peer port server stopped");
            }
        }
        _ = refresh => {}
    }
}

/// Asks `peers` in turn for `image`: the first that has it streams its archive.
pub(crate) async fn fetch(
    peers: &[PeerAddr],
    image: &str,
    tls: Arc<rustls::ClientConfig>,
) -> ClusterResult<BoxStream<'static, Result<Vec<u8>, String>>> {
    let ask = serde_json::to_vec(&ExportRequest {
        image: image.to_owned(),
    })
    .map_err(|e| ClusterError::internal("encode", e))?;
    let mut tried = Vec::new();
    for p in peers {
        let Ok(addr) = crate::rpc::parse_addr(&p.addr) else {
            continue;
        };
        let channel = match ca::node_channel(addr, &p.node_id, tls.clone()) {
            Ok(c) => c,
            Err(e) => {
                tried.push(format!("{}: {e}", p.addr));
                continue;
            }
        };
        let mut client = pb::peer_client::PeerClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let call = client.image_export(pb::Blob { json: ask.clone() });
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(resp)) => {
                tracing::info!(image, peer = %p.node_id, "fetching an image from a peer");
                let chunks = resp
                    .into_inner()
                    .map(|c| c.map(|c| c.data).map_err(|s| s.message().to_owned()));
                return Ok(chunks.boxed());
            }
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => {}
            Ok(Err(s)) => tried.push(format!("{}: {}", p.addr, s.message())),
            Err(_) => tried.push(format!("{}: timed out", p.addr)),
        }
    }
    let why = if tried.is_empty() {
        String::new()
    } else {
        format!(" ({})", tried.join("; "))
    };
    Err(ClusterError::NotFound(format!(
        "no node of the swarm has image {image}{why}"
    )))
}
