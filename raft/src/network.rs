//! openraft's network: Raft RPCs to other managers over the Raft gRPC service.

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rpc::pb;
use crate::types::{Member, NodeId, TypeConfig};

/// Makes a [`PeerClient`] per Raft member.
#[derive(Clone)]
pub struct Network {
    /// Follows the manager's certificate and trusted roots as they change.
    pub tls: crate::ca::LiveConfig<rustls::ClientConfig>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        let client = crate::rpc::parse_addr(&node.addr).ok().map(|addr| {
            pb::raft_client::RaftClient::new(crate::ca::channel_live(addr, self.tls.clone()))
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20)
        });
        PeerClient {
            target,
            addr: node.addr.clone(),
            client,
        }
    }
}

pub struct PeerClient {
    target: NodeId,
    addr: String,
    client: Option<pb::raft_client::RaftClient<tonic::transport::Channel>>,
}

type RpcErr<E> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

#[derive(Debug, thiserror::Error)]
#[error("raft rpc to {addr}: {msg}")]
struct TransportError {
    addr: String,
    msg: String,
}

impl PeerClient {
    async fn send<Req, Resp, E>(
        &mut self,
        kind: Kind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let fail = |msg: String| {
            RPCError::Network(NetworkError::new(&TransportError {
                addr: self.addr.clone(),
                msg,
            }))
        };
        let Some(client) = self.client.as_mut() else {
            return Err(fail("invalid member address".into()));
        };
        let json = serde_json::to_vec(req).map_err(|e| fail(e.to_string()))?;
        let blob = pb::Blob { json };
        let call = async {
            match kind {
                Kind::Append => client.append_entries(blob).await,
                Kind::Vote => client.vote(blob).await,
                Kind::Snapshot => client.install_snapshot(blob).await,
            }
        };
        let resp = match tokio::time::timeout(option.hard_ttl(), call).await {
            Err(_) => return Err(fail(format!("timed out after {:?}", option.hard_ttl()))),
            Ok(Err(status)) => return Err(fail(status.message().to_owned())),
            Ok(Ok(r)) => r.into_inner(),
        };
        let res: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&resp.json).map_err(|e| fail(e.to_string()))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.send(Kind::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.send(Kind::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.send(Kind::Vote, &rpc, &option).await
    }
}
