//! What a user changes in a running container's cgroup: `pause`, `unpause` and `update`.

use std::path::Path;

use super::{apply_resources, fit_resources, freeze, is_v2, rel, support, ROOT};
use crate::container::model::ResourceUpdate;
use crate::container::{ContainerError, Containers};

impl Containers {
    pub async fn pause(&self, key: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        match c.status().as_str() {
            "running" => {}
            "paused" => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        freeze(&self.inner.cfg, &c.record(), true)?;
        c.update(|r| {
            r.state.status = "paused".into();
            super::super::probe::probes_stopped(r);
        });
        self.persist(&c)?;
        self.emit(&c, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(&self, key: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        if c.status() != "paused" {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        freeze(&self.inner.cfg, &c.record(), false)?;
        c.update(|r| r.state.status = "running".into());
        self.persist(&c)?;
        self.emit(&c, "unpause", &[]);
        Ok(())
    }

    /// Changes limits and the restart policy; returns Docker's warnings for what this host
    /// can't enforce.
    pub async fn update(
        &self,
        key: &str,
        u: ResourceUpdate,
    ) -> Result<Vec<String>, ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        let mut h = c.record().host_config;
        if let Some(v) = u.memory {
            h.memory = v;
        }
        if let Some(v) = u.memory_swap {
            h.memory_swap = v;
        }
        if let Some(v) = u.memory_reservation {
            h.memory_reservation = v;
        }
        if let Some(v) = u.nano_cpus {
            h.nano_cpus = v;
        }
        if let Some(v) = u.cpu_shares {
            h.cpu_shares = v;
        }
        if let Some(v) = u.cpu_period {
            h.cpu_period = v;
        }
        if let Some(v) = u.cpu_quota {
            h.cpu_quota = v;
        }
        if let Some(v) = u.cpuset_cpus.clone() {
            h.cpuset_cpus = v;
        }
        if let Some(v) = u.cpuset_mems.clone() {
            h.cpuset_mems = v;
        }
        if let Some(v) = u.pids_limit {
            h.pids_limit = Some(v);
        }
        if let Some(p) = u.restart_policy.clone() {
            crate::container::validate::validate_restart_policy(&p)?;
            if c.record().host_config.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(ContainerError::Invalid("Restart policy cannot be updated because AutoRemove is enabled for the container".into()));
            }
            h.restart_policy = p;
        }
        // Validate through the same code that builds the spec, then drop what this host's
        // cgroups can't enforce (with Docker's warnings).
        let config = c.record().config;
        crate::container::spec::check(&config, &h, self.inner.nofile_hard)?;
        let warnings = fit_resources(&mut h, support())?;
        crate::container::validate::resources(&h, &crate::container::validate::HostCpus::probe())?;
        let doc = crate::container::spec::check(&config, &h, self.inner.nofile_hard)?;
        if c.is_running() {
            let mut r = c.record();
            r.host_config = h.clone();
            let unlimit_pids = h.pids_limit.is_some_and(|p| p <= 0);
            apply_resources(
                Path::new(ROOT),
                is_v2(),
                &rel(&self.inner.cfg, &r),
                &doc["linux"]["resources"],
                unlimit_pids,
            )?;
        }
        c.update(|r| r.host_config = h);
        self.persist(&c)?;
        self.emit(&c, "update", &[]);
        Ok(warnings)
    }
}
