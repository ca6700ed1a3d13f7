//! The container record in the `containers` table of metadata.redb.

use serde::{Deserialize, Serialize};

use super::model::{ContainerConfig, HostConfig};
use super::ContainerError;
use crate::store::{MetaStore, Table};

/// The `containers` table: container id → record.
pub(super) const CONTAINERS: Table = Table::new("containers");

/// `State` of a container as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// created, running, paused, restarting, removing, exited, dead
    pub status: String,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

/// What is stored of a container; everything else is derived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub image_id: String,
    pub state: State,
    pub restart_count: i64,
    /// Set by an explicit stop, cleared by start: `unless-stopped` and daemon-restart
    /// behaviour depend on it.
    pub manually_stopped: bool,
    /// Name of the runtime (`berth` = built-in) that runs it.
    pub runtime: String,
    /// Networks by name: what was asked and, while running, the address each gave.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, crate::network::Endpoint>,
    /// Ports published on the host while running.
    #[serde(default)]
    pub ports: Vec<crate::network::PortMapping>,
    /// Binds, volumes and `--mount` tmpfs, resolved at create.
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
    /// The container of a build's RUN step: its build removes it, and a restart removes it
    /// if berthd died mid-build (`leftovers.rs`).
    #[serde(default)]
    pub build: bool,
}

/// Writes one record.
pub(super) fn write(meta: &MetaStore, rec: &Record) -> Result<(), ContainerError> {
    Ok(meta.put(CONTAINERS, &rec.id, rec)?)
}

/// Every container record.
pub(super) fn load_all(meta: &MetaStore) -> Result<Vec<Record>, ContainerError> {
    let stored: Vec<(String, Record)> = meta.list(CONTAINERS)?;
    Ok(stored.into_iter().map(|(_, r)| r).collect())
}
