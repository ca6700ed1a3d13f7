//! Images between the swarm's nodes (beyond what Swarm does): this node serves its images
//! on the peer port ([`berth_raft::peer`]), and a task whose image is in no reachable
//! registry gets it from a node that has it (built or loaded there): the peer's `docker
//! save` archive, streamed over the swarm's mutual TLS, goes through this engine's `load`.

use std::sync::Arc;

use async_trait::async_trait;
use berth_api::backend::ImageBackend;
use berth_api::error::ApiError;
use berth_raft::error::ClusterError;
use berth_raft::peer::ExportError;
use berth_raft::swarm::Swarm;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

/// The engine's images, as the peer port serves them.
pub(super) struct EngineImages(pub Arc<dyn ImageBackend>);

#[async_trait]
impl berth_raft::peer::ImageSource for EngineImages {
    async fn export(
        &self,
        image: &str,
    ) -> Result<Option<BoxStream<'static, Vec<u8>>>, ExportError> {
        if self.0.inspect(image).await.is_err() {
            return Ok(None);
        }
        let archive = self.0.save(vec![image.to_owned()]).await?;
        Ok(Some(archive.stream.map(|b| b.to_vec()).boxed()))
    }
}

/// Why no peer could give this node an image.
#[derive(Debug, thiserror::Error)]
pub(super) enum PeerImageError {
    /// No ready peer has it, or none could be asked.
    #[error("{0}")]
    Fetch(#[source] ClusterError),
    /// This engine's `load` refused the peer's archive.
    #[error("{0}")]
    Load(#[source] ApiError),
    /// The load failed part way, with this message.
    #[error("loading {image} from a peer: {message}")]
    Loading { image: String, message: String },
    /// The archive loaded but did not hold the image.
    #[error("a peer's archive did not hold {0}")]
    NotInArchive(String),
}

/// Fetches `image` from a peer and loads it here; Err says why no peer could give it.
pub(super) async fn fetch(
    swarm: &Arc<Swarm>,
    images: &Arc<dyn ImageBackend>,
    image: &str,
) -> Result<(), PeerImageError> {
    let chunks = swarm
        .fetch_image(image)
        .await
        .map_err(PeerImageError::Fetch)?;
    let body = chunks
        .map(|c| c.map(Bytes::from).map_err(std::io::Error::other))
        .boxed();
    let mut progress = images
        .load(true, body)
        .await
        .map_err(PeerImageError::Load)?;
    while let Some(msg) = progress.next().await {
        if let Some(err) = msg.get("errorDetail").or_else(|| msg.get("error")) {
            let text = err.get("message").and_then(|m| m.as_str());
            return Err(PeerImageError::Loading {
                image: image.to_owned(),
                message: text.map(str::to_owned).unwrap_or_else(|| err.to_string()),
            });
        }
    }
    if images.inspect(image).await.is_err() {
        return Err(PeerImageError::NotInArchive(image.to_owned()));
    }
    Ok(())
}
