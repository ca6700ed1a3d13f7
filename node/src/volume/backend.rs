//! The API's `VolumeBackend`, a pass-through to [`Volumes`]; the blocking file work runs off
//! the async threads.

use async_trait::async_trait;
use berth_api::backend::{Filters, PruneScope, VolumeBackend};
use berth_api::models::VolumeCreateBody;
use berth_api::{ApiError, ApiResult};
use serde_json::{json, Value};

use super::{VolumeError, Volumes};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VolumeError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("volume task: {e}")).with_source(e))?
        .map_err(ApiError::from)
}

#[async_trait]
impl VolumeBackend for Volumes {
    async fn create(&self, body: VolumeCreateBody) -> ApiResult<Value> {
        let me = self.clone();
        blocking(move || {
            let (v, _) = me.create(&body.name, &body.driver, body.driver_opts, body.labels)?;
            Ok(me.to_json(&v, false))
        })
        .await
    }

    async fn list(&self, filters: Filters) -> ApiResult<Value> {
        let me = self.clone();
        let vols = blocking(move || me.list(&filters)).await?;
        Ok(json!({ "Volumes": vols, "Warnings": null }))
    }

    async fn inspect(&self, name: &str) -> ApiResult<Value> {
        let v = self.get(name)?;
        Ok(self.to_json(&v, false))
    }

    async fn remove(&self, name: &str, force: bool) -> ApiResult<()> {
        let me = self.clone();
        let name = name.to_owned();
        blocking(move || me.remove(&name, force)).await
    }

    async fn prune(&self, filters: Filters, scope: PruneScope) -> ApiResult<Value> {
        let me = self.clone();
        blocking(move || me.prune(&filters, scope)).await
    }
}
