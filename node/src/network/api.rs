//! The network half of the Engine API: network objects come from `Networks`; connect and
//! disconnect change containers, so they go through `Containers`. The edge of the network
//! area: `NetworkError` becomes `ApiError` here (`From` in `error.rs`), nowhere else.

use async_trait::async_trait;
use berth_api::backend::{Filters, NetworkBackend};
use berth_api::ApiResult;
use serde_json::Value;

use super::Networks;
use crate::container::Containers;

pub struct NetworkApi {
    pub nets: Networks,
    pub containers: Containers,
}

#[async_trait]
impl NetworkBackend for NetworkApi {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        Ok(self.nets.list(&filters)?)
    }
    async fn inspect(&self, id: &str) -> ApiResult<Value> {
        Ok(self.nets.inspect(id)?)
    }
    async fn create(&self, body: Value) -> ApiResult<Value> {
        Ok(self.nets.create(body).await?)
    }
    async fn remove(&self, id: &str) -> ApiResult<()> {
        Ok(self.nets.remove(id).await?)
    }
    async fn connect(&self, id: &str, body: Value) -> ApiResult<()> {
        Ok(self.containers.connect(id, body).await?)
    }
    async fn disconnect(&self, id: &str, body: Value) -> ApiResult<()> {
        Ok(self.containers.disconnect(id, body).await?)
    }
    async fn prune(&self, filters: Filters) -> ApiResult<Value> {
        Ok(self.nets.prune(&filters).await?)
    }
}
