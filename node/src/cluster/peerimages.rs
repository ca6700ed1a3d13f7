//! Images between the swarm's nodes (beyond what Swarm does): this node serves its images
//! on the peer port ([`berth_raft::peer`]), and a task whose image is in no reachable
//! registry gets it from a node that has it (built or loaded there): the peer's `docker
//! save` archive, streamed over the swarm's mutual TLS, goes through this engine's `load`.

use std::sync::Arc;

use async_trait::async_trait;
use berth_api::backend::ImageBackend;
use berth_raft::swarm::Swarm;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

/// The engine's images, as the peer port serves them.
pub(super) struct EngineImages(pub Arc<dyn ImageBackend>);

#[async_trait]
impl berth_raft::peer::ImageSource for EngineImages {
    async fn export(&self, image: &str) -> Result<Option<BoxStream<'static, Vec<u8>>>, String> {
        if self.0.inspect(image).await.is_err() {
            return Ok(None);
        }
        let archive = self
            .0
            .save(vec![image.to_owned()])
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(archive.stream.map(|b| b.to_vec()).boxed()))
    }
}

/// Fetches `image` from a peer and loads it here; Err says why no peer could give it.
pub(super) async fn fetch(
    swarm: &Arc<Swarm>,
    images: &Arc<dyn ImageBackend>,
    image: &str,
) -> Result<(), String> {
    let chunks = swarm.fetch_image(image).await.map_err(|e| e.to_string())?;
    let body = chunks
        .map(|c| c.map(Bytes::from).map_err(std::io::Error::other))
        .boxed();
    let mut progress = images.load(true, body).await.map_err(|e| e.to_string())?;
    while let Some(msg) = progress.next().await {
        if let Some(err) = msg.get("errorDetail").or_else(|| msg.get("error")) {
            let text = err.get("message").and_then(|m| m.as_str());
            return Err(format!(
                "loading {image} from a peer: {}",
                text.map(str::to_owned).unwrap_or_else(|| err.to_string())
            ));
        }
    }
    if images.inspect(image).await.is_err() {
        return Err(format!("a peer's archive did not hold {image}"));
    }
    Ok(())
}
