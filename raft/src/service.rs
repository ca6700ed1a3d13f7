//! The cluster port's server: the Raft and Cluster gRPC services of a [`Manager`].

use std::sync::Arc;

use tokio::sync::oneshot;
use tonic::{Request as GrpcRequest, Response, Status};

use crate::ca::PeerInfo;
use crate::error::ClusterError;
use crate::manager::Manager;
use crate::rpc::{pb, Request};

/// Serves both services on `listener` until `stop` fires.
pub(crate) fn serve(
    mgr: Arc<Manager>,
    listener: tokio::net::TcpListener,
    tls: crate::ca::LiveConfig<rustls::ServerConfig>,
    stop: oneshot::Receiver<()>,
) {
    let raft = pb::raft_server::RaftServer::new(RaftService(mgr.clone()))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let cluster = pb::cluster_server::ClusterServer::new(ClusterService(mgr))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let incoming = crate::ca::incoming_live(listener, tls);
    tokio::spawn(async move {
        let res = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(raft)
            .add_service(cluster)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            })
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cluster port server stopped");
        }
    });
}

fn peer<T>(req: &GrpcRequest<T>) -> PeerInfo {
    req.extensions()
        .get::<PeerInfo>()
        .cloned()
        .unwrap_or(PeerInfo {
            remote: None,
            fingerprint: None,
            node_id: None,
        })
}

fn decode<T: serde::de::DeserializeOwned>(blob: &pb::Blob) -> Result<T, Status> {
    serde_json::from_slice(&blob.json)
        .map_err(|e| Status::invalid_argument(format!("malformed message: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Response<pb::Blob>, Status> {
    serde_json::to_vec(v)
        .map(|json| Response::new(pb::Blob { json }))
        .map_err(|e| Status::internal(e.to_string()))
}

struct RaftService(Arc<Manager>);

impl RaftService {
    /// Raft traffic comes from managers only; a member that is still empty (just joined,
    /// waiting for its first entries) accepts any certificate of the cluster's CA.
    fn authorize(&self, peer: &PeerInfo) -> Result<(), Status> {
        let Some(id) = peer.node_id.as_deref() else {
            return Err(Status::unauthenticated("a node certificate is required"));
        };
        let ok = self.0.read(|s| {
            s.nodes.is_empty()
                || s.nodes
                    .get(id)
                    .is_some_and(|n| n.spec.role == crate::ca::Role::Manager)
        });
        if ok {
            Ok(())
        } else {
            Err(Status::permission_denied("not a manager of this swarm"))
        }
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: GrpcRequest<pb::Blob>,
    ) -> Result<Response<pb::Blob>, Status> {
        self.authorize(&peer(&req))?;
        let rpc = decode(req.get_ref())?;
        encode(&self.0.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: GrpcRequest<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        self.authorize(&peer(&req))?;
        let rpc = decode(req.get_ref())?;
        encode(&self.0.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: GrpcRequest<pb::Blob>,
    ) -> Result<Response<pb::Blob>, Status> {
        self.authorize(&peer(&req))?;
        let rpc = decode(req.get_ref())?;
        encode(&self.0.raft.install_snapshot(rpc).await)
    }
}

struct ClusterService(Arc<Manager>);

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn call(&self, req: GrpcRequest<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        let peer = peer(&req);
        let request: Request = decode(req.get_ref())?;
        let reply = self.0.handle(peer, request).await;
        if let Err(ClusterError::PermissionDenied(m)) = &reply {
            return Err(Status::permission_denied(m.clone()));
        }
        encode(&reply)
    }
}
