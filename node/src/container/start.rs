//! `start`: mount the root file system, set up the network, write the OCI bundle, spawn the
//! shim and start the process; and `teardown`, which undoes that on the host.

use std::path::PathBuf;
use std::sync::Arc;

use berth_common::shim_protocol::Request;

use super::logconfig::LogSettings;
use super::paths::Paths;
use super::{
    etc_files, net, netns, probe, shim, spec, user, ContainerError, Containers, Ctr, Record, State,
};

impl Containers {
    pub async fn start(&self, key: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let _op = c.op.lock().await;
        match c.status().as_str() {
            "running" | "paused" => return Err(ContainerError::NotModified),
            "removing" | "dead" => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        c.update(|r| r.manually_stopped = false);
        self.start_locked(&c).await
    }

    /// Starts a container whose op lock the caller holds.
    pub(crate) async fn start_locked(&self, c: &Arc<Ctr>) -> Result<(), ContainerError> {
        let rec = c.record();
        let paths = self.paths(&c.id);
        match self.launch(&rec, &paths).await {
            Ok((pid, waiter)) => {
                c.update(|r| {
                    r.state = State {
                        status: "running".into(),
                        pid,
                        exit_code: 0,
                        error: String::new(),
                        started_at: super::now_rfc3339(),
                        finished_at: r.state.finished_at.clone(),
                        oom_killed: false,
                        health: probe::health_at_start(r),
                    };
                });
                self.persist(c)?;
                c.watch.send_modify(|w| w.running = true);
                self.emit(c, "start", &[]);
                self.monitor(c.clone(), Some(waiter));
                self.watch_health(c);
                Ok(())
            }
            Err(e) => {
                self.teardown(&rec, &paths);
                // A runtime that failed half-way can leave its init behind: nothing would
                // ever reap or report it.
                super::cgroup::kill_all(&self.inner.cfg, &rec);
                super::cgroup::remove(&self.inner.cfg, &rec);
                let e = docker_start_error(e, &rec.path);
                let msg = e.to_string();
                c.update(|r| {
                    r.state.status = if r.state.started_at.is_empty() {
                        "created".into()
                    } else {
                        "exited".into()
                    };
                    r.state.error = msg.clone();
                    r.state.exit_code = if msg.contains("executable file not found")
                        || msg.contains("No such file")
                    {
                        127
                    } else {
                        126
                    };
                    r.state.pid = 0;
                    net::clear_runtime(r);
                });
                let _ = self.persist(c);
                // Anyone waiting for this run to end (`docker run`) hears that it did.
                c.watch.send_modify(|w| {
                    w.exits += 1;
                    w.exit_code = c.record().state.exit_code;
                });
                for p in c
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .drain(..)
                {
                    drop(p);
                }
                if rec.host_config.auto_remove {
                    let me = self.clone();
                    let cc = c.clone();
                    tokio::spawn(async move {
                        me.remove_now(&cc).await;
                        me.remove_anonymous_volumes(&cc.record());
                    });
                }
                Err(e)
            }
        }
    }

    /// Mounts the rootfs, writes the bundle, spawns the shim, serves pending attaches and
    /// starts the process. Returns the init's pid and a waiter registered before the start.
    async fn launch(
        &self,
        rec: &Record,
        paths: &Paths,
    ) -> Result<(i64, shim::Waiter), ContainerError> {
        let t0 = std::time::Instant::now();
        super::cgroup::prime_attach();
        let (ids, staged) = self.prepare_rootfs(rec, paths)?;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "rootfs mounted");
        let (netns, eps, published) = self.setup_network(rec).await?;
        if let Ok(c) = self.get(&rec.id) {
            c.update(|r| {
                r.networks = eps.clone();
                r.ports = published;
            });
        }
        let mut net_view = Record {
            networks: eps,
            ..rec.clone()
        };
        for (i, source) in staged {
            if let Some(m) = net_view.mounts.get_mut(i) {
                m.source = source;
            }
        }
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "network namespace ready");
        let bundle = self.write_bundle(&net_view, paths, ids, netns.as_deref())?;
        let _ = std::fs::remove_file(paths.run.join("exit"));
        let runtime_bin = self.runtime_path(&rec.runtime);
        let mut extra = vec![("--bundle", bundle.display().to_string())];
        extra.extend(log_args(rec, paths)?);
        shim::wait_gone(&paths.run).await;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "bundle written");
        let pid = shim::spawn(shim::Spawn {
            shim: &self.inner.cfg.shim_path,
            mode: "init",
            id: &rec.id,
            state: &paths.run,
            root: &paths.runtime_root(),
            runtime: runtime_bin.as_deref(),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            extra,
        })
        .await?;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "container created");
        // The runtime has made its mounts: the staged subpaths are no longer needed.
        super::mounts::unstage_subpaths(&paths.run);
        self.serve_pending(&rec.id, &paths.run).await;
        let waiter = shim::waiter(&paths.run).await?;
        shim::request(&paths.run, Request::Start).await?;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "container started");
        Ok((pid, waiter))
    }

    /// Mounts the container's root file system (image layers, init layer, rw layer), makes
    /// its working directory and attaches its mounts; returns the ids its user runs as and
    /// the staged sources of volume subpaths (index in `rec.mounts`, path).
    fn prepare_rootfs(
        &self,
        rec: &Record,
        paths: &Paths,
    ) -> Result<(user::Ids, Vec<(usize, String)>), ContainerError> {
        let image =
            self.inner.images.resolve(&rec.image_id).map_err(|e| {
                ContainerError::internal_with(berth_common::errors::cause_chain(&e), e)
            })?;
        let merged = paths.merged();
        let _ = self.inner.images.unmount_rootfs(&merged);
        for d in [paths.upper(), paths.work(), merged.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
        }
        // A `--rm` container's writable layer never outlives its run: no syncs, so the
        // unmount at its exit does not wait for the file system's journal.
        let volatile = rec.host_config.auto_remove;
        self.inner
            .images
            .mount_rootfs(
                &paths.lowers(&image.layer_dirs, rec.host_config.init == Some(true))?,
                &paths.upper(),
                &paths.work(),
                &merged,
                volatile,
            )
            .map_err(|e| ContainerError::internal_with(format!("mount rootfs: {e}"), e))?;
        let rootfs = crate::fsroot::Root::open(&merged).map_err(ContainerError::internal)?;
        if !rec.config.working_dir.is_empty() {
            // Made inside the root: `..` and the image's symlinks cannot point it at the host.
            let wd = &rec.config.working_dir;
            if let Err(e) = rootfs.mkdir_all(wd, 0o755, None) {
                return Err(ContainerError::Runtime(
                    if e.errno() == Some(libc::ENOTDIR) {
                        format!("Cannot mkdir: {wd} is not a directory")
                    } else {
                        format!("Cannot mkdir {wd}: {e}")
                    },
                ));
            }
        }
        let staged = self.attach_mounts(rec, &rootfs)?;
        let ids = user::resolve(&rootfs, &rec.config.user, &rec.host_config.group_add)?;
        Ok((ids, staged))
    }

    /// Writes the /etc files and the OCI bundle of `rec`, whose endpoints are those of this
    /// run; returns the bundle's directory.
    fn write_bundle(
        &self,
        rec: &Record,
        paths: &Paths,
        ids: user::Ids,
        netns: Option<&str>,
    ) -> Result<PathBuf, ContainerError> {
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let own = net::primary_ip(rec);
        let own6 = net::primary_ip6(rec);
        let links = self.resolve_links(rec)?;
        let files = etc_files::render(&etc_files::Input {
            hostname: &rec.config.hostname,
            domainname: &rec.config.domainname,
            extra_hosts: &rec.host_config.extra_hosts,
            dns: &rec.host_config.dns,
            dns_search: &rec.host_config.dns_search,
            dns_options: &rec.host_config.dns_options,
            host_resolv: &host_resolv,
            own_ip: own.as_ref().map(|(ip, _)| ip.as_str()),
            own_ip6: own6.as_deref(),
            host_gateway: own.as_ref().map(|(_, gw)| gw.as_str()),
            embedded_dns: net::uses_embedded_dns(&self.inner.nets, rec),
            links: &links.hosts,
        })?;
        let etc = etc_files::write(&paths.dir, &files)?;
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let init_binary = self.init_binary(rec)?;
        if init_binary.is_some() {
            args.splice(0..0, ["/sbin/docker-init".to_owned(), "--".to_owned()]);
        }
        let cgroup_parent = if rec.host_config.cgroup_parent.is_empty() {
            &self.inner.cfg.cgroup_parent
        } else {
            &rec.host_config.cgroup_parent
        };
        // The links' variables come first: the container's own override them (dockerd).
        let config = super::model::ContainerConfig {
            env: super::links::merge_env(links.env, &rec.config.env),
            ..rec.config.clone()
        };
        let doc = spec::build(&spec::SpecInput {
            config: &config,
            host: &rec.host_config,
            rootfs: &paths.merged().display().to_string(),
            args,
            uid: ids.uid,
            gid: ids.gid,
            additional_gids: ids.additional,
            netns: netns.map(str::to_owned),
            cgroups_path: format!("/{}/{}", cgroup_parent.trim_matches('/'), rec.id),
            etc_files: etc,
            nofile_hard: self.inner.nofile_hard,
            init_binary,
            mounts: &rec.mounts,
        })?;
        let _: oci_spec::runtime::Spec = serde_json::from_value(doc.clone()).map_err(|e| {
            ContainerError::Runtime(format!("generated an invalid runtime spec: {e}"))
        })?;
        let bundle = paths.bundle();
        std::fs::create_dir_all(&bundle).map_err(|e| ContainerError::io("create", &bundle, e))?;
        let cfg_path = bundle.join("config.json");
        std::fs::write(&cfg_path, serde_json::to_vec(&doc).unwrap_or_default())
            .map_err(|e| ContainerError::io("write", &cfg_path, e))?;
        Ok(bundle)
    }

    fn runtime_path(&self, name: &str) -> Option<PathBuf> {
        self.inner.cfg.runtimes.get(name).cloned()
    }

    /// `--init`: the static `berth-init` beside berthd, mounted at /sbin/docker-init.
    fn init_binary(&self, rec: &Record) -> Result<Option<String>, ContainerError> {
        if rec.host_config.init != Some(true) {
            return Ok(None);
        }
        let p = self.inner.cfg.shim_path.with_file_name("berth-init");
        if !p.exists() {
            return Err(ContainerError::Runtime(format!(
                "--init needs {} (not found)",
                p.display()
            )));
        }
        Ok(Some(p.display().to_string()))
    }

    /// Undoes what `launch` set up on the host (rootfs mount, network namespace).
    pub(crate) fn teardown(&self, rec: &Record, paths: &Paths) {
        if let Err(e) = self.inner.images.unmount_rootfs(&paths.merged()) {
            tracing::warn!(container_id = %rec.id, error = %e, "unmount rootfs");
        }
        self.inner.nets.detach(&rec.id);
        netns::remove(&netns::path(&self.inner.cfg.exec_root, &rec.id));
        self.detach_mounts(rec);
        super::mounts::unstage_subpaths(&paths.run);
        let _ = std::fs::remove_dir_all(paths.bundle());
    }
}

/// The shim's log arguments for the record's (merged, validated at create) log config.
fn log_args(rec: &Record, paths: &Paths) -> Result<Vec<(&'static str, String)>, ContainerError> {
    let settings = LogSettings::from_config(&rec.host_config.log_config)
        .map_err(|e| ContainerError::Invalid(e.0))?;
    let Some(file) = paths.log_file(&rec.id, settings.driver) else {
        return Ok(Vec::new());
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("create", dir, e))?;
    }
    Ok(settings.shim_args(&file))
}

/// Rewrites a runtime's "command not found" into Docker's wording, which clients turn into
/// exit codes (127 for `executable file not found`, 126 for `permission denied`).
fn docker_start_error(e: ContainerError, cmd: &str) -> ContainerError {
    let msg = e.to_string();
    if msg.contains("not found in $PATH")
        || (msg.contains("executable") && msg.contains("not found"))
    {
        return ContainerError::Invalid(format!(
            "failed to create task for container: exec: \"{cmd}\": executable file not found in $PATH: unknown"
        ));
    }
    if msg.contains("Permission denied") || msg.contains("EACCES") {
        return ContainerError::Invalid(format!(
            "failed to create task for container: exec: \"{cmd}\": permission denied: unknown"
        ));
    }
    e
}
