//! The network half of the Engine API: network objects come from `Networks`; connect and
//! disconnect change containers, so they go through `Containers`. The edge of the network
//! area: `NetworkError` becomes `ApiError` here (`From` in `error.rs`), nowhere else.
//!
//! Swarm-scoped networks live in the cluster's replicated store: on a manager, `create -d
//! overlay` and `ls`, `inspect` and `rm` of a swarm network go to [`SwarmNetworks`] (the
//! cluster backend); everything else is local.

use std::sync::Arc;

use async_trait::async_trait;
use berth_api::backend::{Filters, NetworkBackend};
use berth_api::{ApiError, ApiResult};
use serde_json::Value;

use super::Networks;
use crate::container::Containers;

/// The swarm's networks as the network API sees them (implemented by the cluster backend).
/// Each call answers `None`/empty/false when this node is not an active manager: then only
/// local networks exist for it.
#[async_trait]
pub trait SwarmNetworks: Send + Sync {
    /// `network create -d overlay`: `{"Id", "Warning"}`, or None when not a manager.
    async fn create(&self, body: Value) -> ApiResult<Option<Value>>;
    /// The swarm networks matching `filters`, in Docker's JSON; None when not a manager.
    async fn list(&self, filters: &Filters) -> ApiResult<Option<Vec<Value>>>;
    /// A swarm network by id, name or id prefix.
    async fn inspect(&self, key: &str) -> ApiResult<Option<Value>>;
    /// Removes a swarm network; false when `key` names none.
    async fn remove(&self, key: &str) -> ApiResult<bool>;
}

pub struct NetworkApi {
    pub nets: Networks,
    pub containers: Containers,
    pub swarm: Option<Arc<dyn SwarmNetworks>>,
}

#[async_trait]
impl NetworkBackend for NetworkApi {
    async fn list(&self, filters: Filters) -> ApiResult<Vec<Value>> {
        let mut out = self.nets.list(&filters)?;
        if let Some(s) = &self.swarm {
            // On a manager the swarm's list is the truth for overlay networks: one this node
            // also has locally (a task of it runs here) is shown once, as the swarm has it,
            // and a local one the swarm no longer has (removed, its tasks still ending here)
            // is not shown at all. A worker shows its local instances, as Docker's do.
            if let Some(swarm) = s.list(&filters).await? {
                out.retain(|l| {
                    l["Driver"] != "overlay" && !swarm.iter().any(|v| v["Id"] == l["Id"])
                });
                out.extend(swarm);
                out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            }
        }
        Ok(out)
    }
    async fn inspect(&self, id: &str) -> ApiResult<Value> {
        let local = self.nets.inspect(id);
        let Some(s) = &self.swarm else {
            return Ok(local?);
        };
        match s.inspect(id).await? {
            Some(mut v) => {
                // The containers of this node on it, as Docker shows them.
                if let Ok(l) = &local {
                    if l["Id"] == v["Id"] {
                        v["Containers"] = l["Containers"].clone();
                    }
                }
                Ok(v)
            }
            None => Ok(local?),
        }
    }
    async fn create(&self, body: Value) -> ApiResult<Value> {
        let overlay = body.get("Driver").and_then(Value::as_str) == Some("overlay");
        if overlay {
            if let Some(s) = &self.swarm {
                let name = body.get("Name").and_then(Value::as_str).unwrap_or("");
                if self.nets.find(name.trim()).is_ok() {
                    return Err(ApiError::conflict(format!(
                        "network with name {} already exists",
                        name.trim()
                    )));
                }
                if let Some(v) = s.create(body.clone()).await? {
                    return Ok(v);
                }
            }
        }
        Ok(self.nets.create(body).await?)
    }
    async fn remove(&self, id: &str) -> ApiResult<()> {
        if let Some(s) = &self.swarm {
            if s.remove(id).await? {
                return Ok(());
            }
        }
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
