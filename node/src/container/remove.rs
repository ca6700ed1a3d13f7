//! `remove` and `prune`: a stopped container's state deleted everywhere.

use std::sync::Arc;

use super::record::CONTAINERS;
use super::{ContainerError, Containers, Ctr};

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    /// Ids of the removed containers.
    pub deleted: Vec<String>,
    /// Bytes their writable layers held.
    pub reclaimed: u64,
}

impl Containers {
    pub async fn remove(
        &self,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        if c.is_running() {
            if !force {
                let verb = if c.status() == "paused" {
                    "paused"
                } else {
                    "running"
                };
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {verb}: stop the container before removing or force remove",
                    c.record().name
                )));
            }
            c.update(|r| r.manually_stopped = true);
            self.stop_running(&c, Some(0), Some("KILL".into())).await?;
        }
        self.remove_now(&c).await;
        if volumes {
            self.remove_anonymous_volumes(&c.record());
        }
        Ok(())
    }

    /// Deletes a stopped container's state everywhere and tells `wait --condition removed`.
    pub(crate) async fn remove_now(&self, c: &Arc<Ctr>) {
        let rec = c.record();
        if rec.state.status == "removing" {
            return;
        }
        c.update(|r| r.state.status = "removing".into());
        let paths = self.paths(&c.id);
        self.teardown(&rec, &paths);
        if let Err(e) = self.inner.meta.delete(CONTAINERS, &c.id) {
            tracing::error!(container_id = %c.id, error = %e, "remove record");
        }
        self.inner
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        {
            let mut names = self.inner.names.lock().unwrap_or_else(|p| p.into_inner());
            if names.get(&rec.name) == Some(&c.id) {
                names.remove(&rec.name);
            }
        }
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container_id != c.id);
        super::cgroup::remove(&self.inner.cfg, &rec);
        self.release_swarm_addresses(&rec);
        // Renamed away at once (the API answers without waiting for the unlinks), deleted in
        // the background; leftovers from a crash are swept at the next start.
        let trash = [
            (
                paths.dir.clone(),
                self.inner.cfg.tmp_dir().join(format!("trash-{}", c.id)),
            ),
            (
                paths.run.clone(),
                self.inner.cfg.exec_root.join(format!("trash-{}", c.id)),
            ),
        ];
        let mut doomed = Vec::new();
        for (from, to) in trash {
            match std::fs::rename(&from, &to) {
                Ok(()) => doomed.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => doomed.push(from),
            }
        }
        tokio::task::spawn_blocking(move || {
            for d in doomed {
                let _ = std::fs::remove_dir_all(&d);
            }
        });
        self.emit(c, "destroy", &[]);
        c.watch.send_modify(|w| {
            w.removed = true;
            w.running = false;
        });
    }

    /// A standalone container's addresses on swarm networks go back to the managers (in
    /// the background: `rm` does not wait on the cluster); a task's are its task's.
    fn release_swarm_addresses(&self, rec: &super::Record) {
        if rec.config.is_swarm_task() {
            return;
        }
        let nets = self.inner.nets.clone();
        let ids: Vec<String> = rec
            .networks
            .values()
            .filter(|ep| {
                nets.find(&ep.network_id)
                    .is_ok_and(|n| n.driver == "overlay")
            })
            .map(|ep| ep.network_id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        nets.release_swarm(&rec.id, ids);
    }

    pub async fn prune(
        &self,
        filters: berth_api::backend::Filters,
    ) -> Result<Pruned, ContainerError> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for c in self.all() {
            let r = c.record();
            if c.is_running() || !super::view::matches_labels(&r, filters.get("label")) {
                continue;
            }
            if let Some(until) = filters.get("until").and_then(|u| u.first()) {
                if !super::view::created_before(&r, until) {
                    continue;
                }
            }
            reclaimed += crate::container::fs::dir_size(&self.paths(&c.id).upper());
            self.remove_now(&c).await;
            deleted.push(c.id.clone());
        }
        Ok(Pruned { deleted, reclaimed })
    }
}
