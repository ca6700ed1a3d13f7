//! `create`: validate the request, resolve the image and merge its config, plan networks and
//! mounts, reserve the name, write the record and make the container's directories.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::executor::Created;
use super::model::{ContainerConfig, ContainerSpec};
use super::validate::validate_restart;
use super::{health, logconfig, names, spec, ContainerError, Containers, Ctr, Record, State};
use crate::network::{ports, Endpoint};

impl Containers {
    /// Makes a container (not started) from its spec.
    pub async fn create(&self, spec: ContainerSpec) -> Result<Created, ContainerError> {
        self.create_with(spec, false).await
    }

    /// The container of a build's RUN step, marked as such in its record from the start.
    pub async fn create_for_build(&self, spec: ContainerSpec) -> Result<Created, ContainerError> {
        self.create_with(spec, true).await
    }

    async fn create_with(
        &self,
        spec: ContainerSpec,
        build: bool,
    ) -> Result<Created, ContainerError> {
        let ContainerSpec {
            name,
            mut config,
            mut host_config,
            endpoints,
        } = spec;
        if config.image.is_empty() {
            return Err(ContainerError::Invalid(
                "No image specified: the create body needs Image".into(),
            ));
        }
        validate_restart(&host_config)?;
        logconfig::merge_and_validate(&mut host_config.log_config, &self.inner.cfg.log_config)
            .map_err(|e| ContainerError::Invalid(e.0))?;
        let image = self.image_for_create(&config.image)?;
        let image_config = ContainerConfig::from(image.config.clone());
        config.healthcheck = health::merge_for_create(
            config.healthcheck.as_ref(),
            image_config.healthcheck.as_ref(),
        )?;
        merge_image_config(&mut config, &image_config);
        let (path, args) = command_line(&config)?;
        if let Some(other) = host_config.network_mode.strip_prefix("container:") {
            self.get(other)?;
        }
        let task = config.is_swarm_task();
        let id = hex::encode(rand::random::<[u8; 32]>());
        let endpoints = self
            .create_endpoints(&mut host_config.network_mode, endpoints, &id, task)
            .await?;
        // Anything that fails from here on gives back the swarm addresses just given.
        let made: Result<Created, ContainerError> = async {
            let ports_wanted = ports::bindings(
                host_config.port_bindings.as_ref(),
                config.exposed_ports.as_ref(),
                host_config.publish_all_ports,
            )
            .is_ok_and(|b| !b.is_empty());
            let mut networks =
                self.plan_networks(&host_config.network_mode, &endpoints, ports_wanted)?;
            let links = self.register_links(&mut host_config, &mut networks)?;
            let runtime = self.runtime_for_create(&host_config.runtime)?;
            if config.hostname.is_empty() {
                config.hostname = id[..12].to_owned();
            }
            // Check the spec now, so bad limits, capabilities or ulimits fail create, not start;
            // then drop the limits this host's cgroups can't enforce, with Docker's warnings.
            spec::check(&config, &host_config, self.inner.nofile_hard)?;
            let support = super::cgroup::support();
            let warnings = super::cgroup::fit_resources(&mut host_config, support)?;
            super::validate::create_settings(&host_config)?;
            host_config.cgroupns_mode =
                super::cgroup::cgroupns_mode(&host_config.cgroupns_mode, support.v2)?;
            let mut mounts = self.plan_mounts(&config, &host_config)?;
            let name = self.reserve_name(name, &id)?;
            let made_volumes = match self.resolve_mounts(&mut mounts) {
                Ok(made) => made,
                Err(e) => {
                    self.release_name(&name);
                    return Err(e);
                }
            };
            let rec = Record {
                id: id.clone(),
                name,
                created: super::now_rfc3339(),
                path,
                args,
                config,
                host_config,
                image_id: image.id.clone(),
                state: State {
                    status: "created".into(),
                    ..Default::default()
                },
                restart_count: 0,
                manually_stopped: false,
                runtime,
                networks,
                ports: Vec::new(),
                mounts,
                build,
                links,
            };
            self.write_new(rec, &made_volumes)?;
            Ok(Created {
                id: id.clone(),
                warnings,
            })
        }
        .await;
        if made.is_err() && !task {
            self.inner.nets.release_swarm(&id, Vec::new());
        }
        made
    }

    /// A new container's endpoints before its networks are planned. Under `--bridge none`
    /// a container without a network mode has none, and a swarm task its first network
    /// (`task_primary`). A task's endpoints come with their addresses from its assignment;
    /// a standalone container's swarm networks get theirs from the managers, all given
    /// back if one of them refuses.
    async fn create_endpoints(
        &self,
        network_mode: &mut String,
        endpoints: BTreeMap<String, Endpoint>,
        id: &str,
        task: bool,
    ) -> Result<BTreeMap<String, Endpoint>, ContainerError> {
        let default = self.inner.nets.default_network();
        if matches!(network_mode.as_str(), "" | "default") && default != "bridge" {
            *network_mode = match task {
                true => task_primary(&endpoints).unwrap_or(default).to_owned(),
                false => default.to_owned(),
            };
        }
        if task {
            return Ok(endpoints);
        }
        let made = self.swarm_endpoints(network_mode, endpoints, id).await;
        if made.is_err() {
            self.inner.nets.release_swarm(id, Vec::new());
        }
        made
    }

    /// The image a new container runs: a malformed reference is the user's mistake (400), a
    /// well-formed one we lack is a 404.
    fn image_for_create(
        &self,
        reference: &str,
    ) -> Result<crate::image::ResolvedImage, ContainerError> {
        self.inner
            .images
            .resolve(reference)
            .map_err(|e| match e.kind() {
                berth_api::ErrorKind::NotFound => {
                    match crate::image::reference::Reference::parse(reference) {
                        Err(bad) => ContainerError::Invalid(berth_api::ApiError::from(bad).message),
                        Ok(_) => ContainerError::NotFound(format!("No such image: {reference}")),
                    }
                }
                berth_api::ErrorKind::InvalidArgument => {
                    ContainerError::Invalid(berth_common::errors::cause_chain(&e))
                }
                _ => ContainerError::internal_with(berth_common::errors::cause_chain(&e), e),
            })
    }

    /// The runtime asked for (the daemon's default when empty), if it is one we know.
    fn runtime_for_create(&self, asked: &str) -> Result<String, ContainerError> {
        let runtime = if asked.is_empty() {
            self.inner.cfg.default_runtime.clone()
        } else {
            asked.to_owned()
        };
        if runtime != "berth" && !self.inner.cfg.runtimes.contains_key(&runtime) {
            return Err(ContainerError::Invalid(format!(
                "unknown or invalid runtime name: {runtime}"
            )));
        }
        Ok(runtime)
    }

    /// Takes `name` (or a generated one) for container `id`; a name in use is a conflict.
    fn reserve_name(&self, name: Option<String>, id: &str) -> Result<String, ContainerError> {
        let mut names_map = self.inner.names.lock().unwrap_or_else(|p| p.into_inner());
        let name = match name {
            Some(n) => names::validate(&n)?,
            None => names::generate(|n| names_map.contains_key(n)),
        };
        if let Some(other) = names_map.get(&name) {
            return Err(ContainerError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        names_map.insert(name.clone(), id.to_owned());
        Ok(name)
    }

    fn release_name(&self, name: &str) {
        self.inner
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Makes the new container's directories and writes its record; on failure undoes that,
    /// the name reservation and the volumes `create` made.
    fn write_new(&self, rec: Record, made_volumes: &[String]) -> Result<(), ContainerError> {
        let paths = self.paths(&rec.id);
        let made = (|| -> Result<(), ContainerError> {
            for d in [
                paths.dir.clone(),
                paths.upper(),
                paths.work(),
                paths.merged(),
            ] {
                std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
            }
            super::record::write(&self.inner.meta, &rec)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&paths.dir);
            self.release_name(&rec.name);
            self.unresolve_mounts(made_volumes);
            return Err(e);
        }
        let c = Arc::new(Ctr::new(rec));
        self.inner
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone(), c.clone());
        self.emit(&c, "create", &[]);
        Ok(())
    }
}

/// Under `--bridge none`, a swarm task's primary network: the first of its networks by
/// name, the routing mesh's `ingress` only when it has no other.
fn task_primary(endpoints: &BTreeMap<String, Endpoint>) -> Option<&str> {
    let mut names = endpoints.keys().map(String::as_str);
    names
        .clone()
        .find(|n| *n != "ingress")
        .or_else(|| names.next())
}

/// The process a container runs: its entrypoint then its cmd.
fn command_line(config: &ContainerConfig) -> Result<(String, Vec<String>), ContainerError> {
    match config
        .entrypoint
        .iter()
        .chain(config.cmd.iter())
        .cloned()
        .collect::<Vec<_>>()
        .split_first()
    {
        Some((p, a)) => Ok((p.clone(), a.to_vec())),
        None => Err(ContainerError::Invalid("No command specified".into())),
    }
}

/// Fills what the user left empty from the image's config, as Docker does (the healthcheck
/// is merged field by field before, by `health::merge_for_create`).
fn merge_image_config(c: &mut ContainerConfig, img: &ContainerConfig) {
    if c.user.is_empty() {
        c.user = img.user.clone();
    }
    let mut env = img.env.clone();
    for e in &c.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    c.env = env;
    if c.entrypoint.is_empty() {
        c.entrypoint = img.entrypoint.clone();
        if c.cmd.is_empty() {
            c.cmd = img.cmd.clone();
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir.clone();
    }
    if c.stop_signal.is_none() {
        c.stop_signal = img.stop_signal.clone();
    }
    if c.shell.is_none() {
        c.shell = img.shell.clone();
    }
    let mut labels = img.labels.clone();
    labels.extend(c.labels.clone());
    c.labels = labels;
    match (&mut c.exposed_ports, &img.exposed_ports) {
        (Some(mine), Some(theirs)) => mine.extend(theirs.clone()),
        (None, Some(theirs)) => c.exposed_ports = Some(theirs.clone()),
        _ => {}
    }
    match (&mut c.volumes, &img.volumes) {
        (Some(mine), Some(theirs)) => mine.extend(theirs.clone()),
        (None, Some(theirs)) => c.volumes = Some(theirs.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_fills_gaps() {
        let img = ContainerConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: vec!["sh".into()],
            working_dir: "/app".into(),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert_eq!(c.env, vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.cmd, vec!["sh"]);
        assert_eq!(c.working_dir, "/app");
        // An entrypoint from the user drops the image's cmd.
        let mut d = ContainerConfig {
            entrypoint: vec!["echo".into()],
            ..Default::default()
        };
        merge_image_config(&mut d, &img);
        assert!(d.cmd.is_empty());
    }

    #[test]
    fn a_bridgeless_task_is_primary_on_its_first_network_but_ingress() {
        let eps = |names: &[&str]| -> BTreeMap<String, Endpoint> {
            names
                .iter()
                .map(|n| (n.to_string(), Endpoint::default()))
                .collect()
        };
        assert_eq!(task_primary(&eps(&["ingress", "web"])), Some("web"));
        assert_eq!(task_primary(&eps(&["a", "b"])), Some("a"));
        assert_eq!(task_primary(&eps(&["ingress"])), Some("ingress"));
        assert_eq!(task_primary(&eps(&[])), None);
    }
}
