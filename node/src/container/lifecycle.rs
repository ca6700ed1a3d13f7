//! Create, start, stop, kill, restart and remove; what happens when a container exits
//! (events, `--rm`, restart policies); and re-adoption of running containers at daemon start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::ContainerCreateBody;
use serde_json::{json, Value};

use super::logconfig::{LogDriver, LogSettings};
use super::{
    etc_files, logconfig, names, net, netns, shim, spec, user, ContainerError, Containers, Ctr,
    Record, State, Watch, CONTAINERS,
};
use crate::image::ImageService;

/// Paths of one container.
pub struct Paths {
    /// `<data-root>/containers/<id>`: log, etc files, rw layer.
    pub dir: PathBuf,
    /// `<exec-root>/containers/<id>`: shim state, bundle.
    pub run: PathBuf,
}

impl Paths {
    /// The json-file driver's live log file (inspect's `LogPath`).
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}-json.log"))
    }
    /// The live log file for a driver, where Docker keeps it: `<id>-json.log` for
    /// json-file, `local-logs/container.log` for local; none for `none`.
    pub fn log_file(&self, id: &str, driver: LogDriver) -> Option<PathBuf> {
        match driver {
            LogDriver::JsonFile => Some(self.log(id)),
            LogDriver::Local => Some(self.dir.join("local-logs").join("container.log")),
            LogDriver::None => None,
        }
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
    pub fn bundle(&self) -> PathBuf {
        self.run.join("bundle")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }
    /// The init layer: the mount points and files the runtime needs (/dev, /proc, /sys,
    /// /etc/hosts, ...), a read-only layer between the image and the container's own layer,
    /// so they never show up in `diff`, `commit` or `export` as changes.
    pub fn init_layer(&self, with_init: bool) -> Result<PathBuf, ContainerError> {
        let init = self.dir.join("init");
        let ready = init.join(".dockerenv").exists()
            && (!with_init || init.join("sbin/docker-init").exists());
        if ready {
            return Ok(init);
        }
        let mut dirs = vec![
            "dev/pts",
            "dev/shm",
            "dev/mqueue",
            "proc",
            "sys/fs/cgroup",
            "etc",
        ];
        let mut files = vec![
            "etc/hostname",
            "etc/hosts",
            "etc/resolv.conf",
            "dev/console",
            ".dockerenv",
        ];
        if with_init {
            dirs.push("sbin");
            files.push("sbin/docker-init");
        }
        for d in dirs {
            let p = init.join(d);
            std::fs::create_dir_all(&p).map_err(|e| ContainerError::io("create", &p, e))?;
        }
        for f in files {
            let p = init.join(f);
            std::fs::write(&p, b"").map_err(|e| ContainerError::io("create", &p, e))?;
        }
        Ok(init)
    }
    /// The overlay lower layers of a container: the image's, then the init layer.
    pub fn lowers(
        &self,
        image_layers: &[PathBuf],
        with_init: bool,
    ) -> Result<Vec<PathBuf>, ContainerError> {
        let mut l = image_layers.to_vec();
        l.push(self.init_layer(with_init)?);
        Ok(l)
    }
}

/// Parses a signal given by name (`KILL`, `SIGKILL`, `kill`) or number.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let sig = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(ContainerError::Invalid(format!("Invalid signal: {s}"))),
    };
    Ok(sig)
}

/// How long `kill` with SIGKILL waits for the exit to be recorded.
const KILL_EXIT_WAIT: Duration = Duration::from_secs(30);

/// A restart policy as dockerd 20.10 checks it (same messages).
pub(crate) fn validate_restart_policy(
    p: &berth_api::models::RestartPolicy,
) -> Result<(), ContainerError> {
    match p.name.as_str() {
        "" => Ok(()),
        "no" | "always" | "unless-stopped" if p.maximum_retry_count == 0 => Ok(()),
        "no" | "always" | "unless-stopped" => Err(ContainerError::Invalid(format!(
            "maximum retry count cannot be used with restart policy '{}'",
            p.name
        ))),
        "on-failure" if p.maximum_retry_count >= 0 => Ok(()),
        "on-failure" => Err(ContainerError::Invalid(
            "maximum retry count cannot be negative".into(),
        )),
        other => Err(ContainerError::Invalid(format!(
            "invalid restart policy '{other}': expected no, always, unless-stopped or on-failure"
        ))),
    }
}

fn validate_restart(h: &berth_api::models::HostConfig) -> Result<(), ContainerError> {
    let p = &h.restart_policy;
    validate_restart_policy(p)?;
    if h.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(ContainerError::Invalid(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    Ok(())
}

impl Containers {
    pub fn paths(&self, id: &str) -> Paths {
        Paths {
            dir: self.inner.cfg.containers_dir().join(id),
            run: self.inner.cfg.run_dir(id),
        }
    }

    pub(crate) fn emit(&self, c: &Ctr, action: &str, extra: &[(&str, String)]) {
        let rec = c.record();
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), rec.name.clone());
        attrs.insert(
            "image".to_owned(),
            if rec.config.image.is_empty() {
                rec.image_id.clone()
            } else {
                rec.config.image.clone()
            },
        );
        for (k, v) in &rec.config.labels {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.inner.events.publish("container", action, &c.id, attrs);
    }

    pub async fn create(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<Value, ContainerError> {
        self.create_with(name, body, false).await
    }

    /// The container of a build's RUN step, marked as such in its record from the start.
    pub async fn create_for_build(
        &self,
        body: ContainerCreateBody,
    ) -> Result<Value, ContainerError> {
        self.create_with(None, body, true).await
    }

    async fn create_with(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
        build: bool,
    ) -> Result<Value, ContainerError> {
        let ContainerCreateBody {
            mut config,
            mut host_config,
            networking_config: body_networking,
        } = body;
        if config.image.is_empty() {
            return Err(ContainerError::Invalid(
                "No image specified: the create body needs Image".into(),
            ));
        }
        validate_restart(&host_config)?;
        logconfig::merge_and_validate(&mut host_config.log_config, &self.inner.cfg.log_config)
            .map_err(|e| ContainerError::Invalid(e.0))?;
        let image = self
            .inner
            .images
            .resolve(&config.image)
            .map_err(|e| match e.kind {
                // Not an image we have: a malformed reference is the user's mistake (400).
                berth_api::ErrorKind::NotFound => {
                    match crate::image::reference::Reference::parse(&config.image) {
                        Err(bad) => ContainerError::Invalid(berth_api::ApiError::from(bad).message),
                        Ok(_) => {
                            ContainerError::NotFound(format!("No such image: {}", config.image))
                        }
                    }
                }
                berth_api::ErrorKind::InvalidArgument => ContainerError::Invalid(e.message),
                _ => ContainerError::internal(e),
            })?;
        merge_image_config(&mut config, &image.config);
        let (path, args) = match config
            .entrypoint
            .iter()
            .chain(config.cmd.iter())
            .cloned()
            .collect::<Vec<_>>()
            .split_first()
        {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => return Err(ContainerError::Invalid("No command specified".into())),
        };
        if let Some(other) = host_config.network_mode.strip_prefix("container:") {
            self.get(other)?;
        }
        let networks = self.plan_networks(
            &host_config.network_mode,
            body_networking.as_ref(),
            host_config.port_bindings.is_some() || host_config.publish_all_ports,
        )?;
        let runtime = if host_config.runtime.is_empty() {
            self.inner.cfg.default_runtime.clone()
        } else {
            host_config.runtime.clone()
        };
        if runtime != "berth" && !self.inner.cfg.runtimes.contains_key(&runtime) {
            return Err(ContainerError::Invalid(format!(
                "unknown or invalid runtime name: {runtime}"
            )));
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
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
        let name = {
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
            names_map.insert(name.clone(), id.clone());
            name
        };
        let release_name = || {
            self.inner
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        };
        let made_volumes = match self.resolve_mounts(&mut mounts) {
            Ok(made) => made,
            Err(e) => {
                release_name();
                return Err(e);
            }
        };
        let rec = Record {
            id: id.clone(),
            name: name.clone(),
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
        };
        let paths = self.paths(&id);
        let made = (|| -> Result<(), ContainerError> {
            for d in [
                paths.dir.clone(),
                paths.upper(),
                paths.work(),
                paths.merged(),
            ] {
                std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
            }
            self.inner.meta.put(CONTAINERS, &id, &rec)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&paths.dir);
            release_name();
            self.unresolve_mounts(&made_volumes);
            return Err(e);
        }
        let c = Arc::new(Ctr::new(rec));
        self.inner
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), c.clone());
        self.emit(&c, "create", &[]);
        Ok(json!({ "Id": id, "Warnings": warnings }))
    }

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
                    };
                });
                self.persist(c)?;
                c.watch.send_modify(|w| w.running = true);
                self.emit(c, "start", &[]);
                self.monitor(c.clone(), Some(waiter));
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
        let image = self
            .inner
            .images
            .resolve(&rec.image_id)
            .map_err(ContainerError::internal)?;
        let merged = paths.merged();
        let _ = ImageService::unmount_rootfs(&merged);
        for d in [paths.upper(), paths.work(), merged.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
        }
        // A `--rm` container's writable layer never outlives its run: no syncs, so the
        // unmount at its exit does not wait for the file system's journal.
        let mount = if rec.host_config.auto_remove {
            ImageService::mount_rootfs_volatile
        } else {
            ImageService::mount_rootfs
        };
        mount(
            &paths.lowers(&image.layer_dirs, rec.host_config.init == Some(true))?,
            &paths.upper(),
            &paths.work(),
            &merged,
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
        self.attach_mounts(rec, &rootfs)?;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "rootfs mounted");
        let ids = user::resolve(&rootfs, &rec.config.user, &rec.host_config.group_add)?;
        drop(rootfs);
        let (netns, eps, published) = self.setup_network(rec).await?;
        if let Ok(c) = self.get(&rec.id) {
            c.update(|r| {
                r.networks = eps.clone();
                r.ports = published;
            });
        }
        let net_view = Record {
            networks: eps,
            ..rec.clone()
        };
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "network namespace ready");
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let own = net::primary_ip(&net_view);
        let files = etc_files::render(&etc_files::Input {
            hostname: &rec.config.hostname,
            domainname: &rec.config.domainname,
            extra_hosts: &rec.host_config.extra_hosts,
            dns: &rec.host_config.dns,
            dns_search: &rec.host_config.dns_search,
            dns_options: &rec.host_config.dns_options,
            host_resolv: &host_resolv,
            own_ip: own.as_ref().map(|(ip, _)| ip.as_str()),
            host_gateway: own.as_ref().map(|(_, gw)| gw.as_str()),
            embedded_dns: net::uses_embedded_dns(&self.inner.nets, &net_view),
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
        let doc = spec::build(&spec::SpecInput {
            config: &rec.config,
            host: &rec.host_config,
            rootfs: &merged.display().to_string(),
            args,
            uid: ids.uid,
            gid: ids.gid,
            additional_gids: ids.additional,
            netns,
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
        self.serve_pending(&rec.id, &paths.run).await;
        let waiter = shim::waiter(&paths.run).await?;
        shim::request(&paths.run, "start").await?;
        tracing::debug!(container_id = %rec.id, elapsed = ?t0.elapsed(), "container started");
        Ok((pid, waiter))
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
        if let Err(e) = ImageService::unmount_rootfs(&paths.merged()) {
            tracing::warn!(container_id = %rec.id, error = %e, "unmount rootfs");
        }
        self.inner.nets.detach(&rec.id);
        netns::remove(&netns::path(&self.inner.cfg.exec_root, &rec.id));
        self.detach_mounts(rec);
        let _ = std::fs::remove_dir_all(paths.bundle());
    }

    /// Follows a running container until it exits, then records the exit. `waiter`: one
    /// registered before the start (a re-adopted container has none yet).
    pub(crate) fn monitor(&self, c: Arc<Ctr>, waiter: Option<shim::Waiter>) {
        let me = self.clone();
        tokio::spawn(async move {
            let run = me.paths(&c.id).run;
            let exit = match waiter {
                Some(w) => w.exit().await,
                None => shim::wait(&run).await,
            };
            let exit = match exit {
                Some(e) => e,
                None => me.exit_without_shim(&c),
            };
            me.on_exit(&c, exit).await;
        });
    }

    /// The shim is gone: its exit file if it wrote one, otherwise it died (kill -9) and took
    /// the container's supervision with it, so the container's processes are killed and it
    /// is reported exited with 137.
    pub(crate) fn exit_without_shim(&self, c: &Ctr) -> shim::Exit {
        let run = self.paths(&c.id).run;
        if let Some(e) = shim::read_exit_file(&run) {
            return e;
        }
        tracing::warn!(container_id = %c.id, "shim died; killing what is left of the container");
        super::cgroup::kill_all(&self.inner.cfg, &c.record());
        shim::Exit {
            code: 137,
            at_nanos: crate::events::now_nanos(),
        }
    }

    pub(crate) async fn on_exit(&self, c: &Arc<Ctr>, exit: shim::Exit) {
        let ms_since_exit = || (crate::events::now_nanos() - exit.at_nanos) as f64 / 1e6;
        tracing::debug!(container_id = %c.id, ms_since_exit = ms_since_exit(), "exit reported");
        let _op = c.op.lock().await;
        if c.status() != "running" && c.status() != "paused" {
            return;
        }
        let rec = c.record();
        let paths = self.paths(&c.id);
        self.teardown(&rec, &paths);
        let finished = chrono::DateTime::from_timestamp_nanos(exit.at_nanos)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let oom = super::cgroup::oom_killed(&self.inner.cfg, &rec);
        c.update(|r| {
            r.state.status = "exited".into();
            r.state.exit_code = exit.code;
            r.state.pid = 0;
            r.state.finished_at = finished;
            r.state.oom_killed = oom;
            net::clear_runtime(r);
        });
        let restart = self.should_restart(&c.record(), exit.code);
        // A container removed right below needs no durable "exited" first: if berthd dies in
        // between, restore finds it running with its shim gone, reads the exit file and
        // removes it then.
        let removing_next = restart.is_none()
            && rec.host_config.auto_remove
            && !c.restarting.load(std::sync::atomic::Ordering::SeqCst);
        if !removing_next {
            if let Err(e) = self.persist(c) {
                tracing::error!(container_id = %c.id, error = %e, "record exit");
            }
        }
        tracing::info!(container_id = %c.id, exit_code = exit.code, ms_since_exit = ms_since_exit(), "container exited");
        self.emit(c, "die", &[("exitCode", exit.code.to_string())]);
        c.watch.send_modify(|w| {
            w.running = false;
            w.exits += 1;
            w.exit_code = exit.code;
        });
        drop(_op);
        if let Some(delay) = restart {
            let me = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _op = c.op.lock().await;
                let r = c.record();
                if r.state.status != "exited" || r.manually_stopped {
                    return;
                }
                c.update(|r| r.restart_count += 1);
                if let Err(e) = me.start_locked(&c).await {
                    tracing::warn!(container_id = %c.id, error = %e, "restart failed");
                }
            });
        } else if removing_next {
            self.remove_now(c).await;
            self.remove_anonymous_volumes(&rec);
        }
    }

    fn should_restart(&self, r: &Record, code: i64) -> Option<Duration> {
        if r.manually_stopped {
            return None;
        }
        let p = &r.host_config.restart_policy;
        let go = match p.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (p.maximum_retry_count == 0 || r.restart_count < p.maximum_retry_count)
            }
            _ => false,
        };
        // Docker's back-off: 100 ms doubling, capped at one minute.
        go.then(|| {
            Duration::from_millis((100u64 << r.restart_count.clamp(0, 10) as u32).min(60_000))
        })
    }

    pub async fn stop(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        // Set even when not running: a stop between two runs of a restart policy ends it.
        c.update(|r| r.manually_stopped = true);
        self.persist(&c)?;
        if !c.is_running() {
            return Err(ContainerError::NotModified);
        }
        c.update(|r| r.manually_stopped = true);
        self.persist(&c)?;
        self.stop_running(&c, timeout, signal).await
    }

    async fn stop_running(
        &self,
        c: &Arc<Ctr>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<(), ContainerError> {
        let rec = c.record();
        let sig = match signal.or(rec.config.stop_signal.clone()) {
            Some(s) => parse_signal(&s)?,
            None => 15,
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let mut w = c.watch.subscribe();
        let exits = w.borrow().exits;
        if rec.state.status == "paused" {
            let _ = super::cgroup::freeze(&self.inner.cfg, &rec, false);
        }
        let run = self.paths(&c.id).run;
        let _ = shim::request(&run, &format!("kill {sig}")).await;
        self.emit(c, "kill", &[("signal", sig.to_string())]);
        let exited = |w: &Watch| w.exits > exits || !w.running;
        let graceful = if t < 0 {
            w.wait_for(exited).await.is_ok()
        } else {
            tokio::time::timeout(Duration::from_secs(t as u64), w.wait_for(exited))
                .await
                .is_ok_and(|r| r.is_ok())
        };
        if !graceful {
            let _ = shim::request(&run, "kill 9").await;
            self.emit(c, "kill", &[("signal", "9".into())]);
            let _ = tokio::time::timeout(Duration::from_secs(30), w.wait_for(exited)).await;
        }
        self.emit(c, "stop", &[]);
        Ok(())
    }

    pub async fn restart(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        if c.is_running() {
            c.update(|r| r.manually_stopped = true);
            c.restarting
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let stopped = self.stop_running(&c, timeout, signal).await;
            if let Err(e) = stopped {
                c.restarting
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        }
        let _op = c.op.lock().await;
        c.restarting
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if c.is_running() {
            return Ok(());
        }
        c.update(|r| r.manually_stopped = false);
        self.start_locked(&c).await?;
        self.emit(&c, "restart", &[]);
        Ok(())
    }

    pub async fn kill(&self, key: &str, signal: Option<String>) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let sig = parse_signal(
            signal
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("KILL"),
        )?;
        if !c.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                key, c.id
            )));
        }
        if c.status() == "paused" && sig == 9 {
            let _ = super::cgroup::freeze(&self.inner.cfg, &c.record(), false);
        }
        if sig == 9 || sig == 15 {
            // An explicit kill of the main process counts as a stop for restart policies.
            c.update(|r| {
                r.manually_stopped = r.host_config.restart_policy.name != "always"
                    && r.host_config.restart_policy.name != "on-failure"
            });
        }
        let mut w = c.watch.subscribe();
        let exits = w.borrow().exits;
        shim::request(&self.paths(&c.id).run, &format!("kill {sig}")).await?;
        self.emit(&c, "kill", &[("signal", sig.to_string())]);
        if sig == 9 {
            // As dockerd: SIGKILL answers once the exit is recorded (inspect says exited);
            // other signals answer at once.
            let exited = |w: &Watch| w.exits > exits || !w.running;
            let waited = tokio::time::timeout(KILL_EXIT_WAIT, w.wait_for(exited)).await;
            if !waited.is_ok_and(|r| r.is_ok()) {
                return Err(ContainerError::Runtime(format!(
                    "tried to kill container {}, but did not receive an exit event",
                    c.id
                )));
            }
        }
        Ok(())
    }

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

    pub async fn wait(
        &self,
        key: &str,
        cond: berth_api::backend::WaitCondition,
    ) -> Result<
        futures_util::future::BoxFuture<'static, berth_api::backend::WaitResult>,
        ContainerError,
    > {
        use berth_api::backend::{WaitCondition, WaitResult};
        let c = self.get(key)?;
        let mut w = c.watch.subscribe();
        let start = w.borrow().clone();
        let fut = async move {
            let done = |now: &Watch| match cond {
                WaitCondition::NotRunning => !now.running,
                WaitCondition::NextExit => now.exits > start.exits || now.removed,
                WaitCondition::Removed => now.removed,
            };
            let res = w
                .wait_for(done)
                .await
                .map(|v| v.exit_code)
                .unwrap_or(start.exit_code);
            WaitResult {
                status_code: res,
                error: None,
            }
        };
        Ok(Box::pin(fut))
    }

    pub async fn rename(&self, key: &str, new: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let new = names::validate(new)?;
        let old = c.record().name;
        {
            let mut map = self.inner.names.lock().unwrap_or_else(|p| p.into_inner());
            if old == new {
                return Err(ContainerError::Invalid(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            if let Some(other) = map.get(&new) {
                return Err(ContainerError::Conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            map.remove(&old);
            map.insert(new.clone(), c.id.clone());
        }
        c.update(|r| r.name = new.clone());
        self.persist(&c)?;
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub async fn prune(
        &self,
        filters: berth_api::backend::Filters,
    ) -> Result<Value, ContainerError> {
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
        Ok(
            json!({ "ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed }),
        )
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

/// Fills what the user left empty from the image's config, as Docker does.
fn merge_image_config(
    c: &mut berth_api::models::ContainerConfig,
    img: &berth_api::models::ContainerConfig,
) {
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
    if c.healthcheck.is_none() {
        c.healthcheck = img.healthcheck.clone();
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

/// At daemon start: re-adopt containers whose shim still runs, record the exit of those whose
/// shim finished while we were away, and mark exited (137) those whose shim died with them.
/// Then apply restart policies as Docker does at boot.
pub async fn restore(cs: &Containers) {
    cs.discard_build_containers().await;
    for c in cs.all() {
        let rec = c.record();
        match rec.state.status.as_str() {
            "running" | "paused" => {
                let run = cs.paths(&c.id).run;
                if shim::connect(&run).await.is_ok() {
                    tracing::info!(container_id = %c.id, "re-adopted running container");
                    cs.restore_network(&c).await;
                    cs.monitor(c.clone(), None);
                } else {
                    let exit = cs.exit_without_shim(&c);
                    cs.on_exit(&c, exit).await;
                }
            }
            "removing" => cs.remove_now(&c).await,
            "created" | "exited" => {
                let p = &rec.host_config.restart_policy.name;
                let boot_restart = (p == "always"
                    || (p == "unless-stopped" && !rec.manually_stopped))
                    && !rec.state.started_at.is_empty();
                if boot_restart && rec.state.status == "exited" {
                    let _op = c.op.lock().await;
                    if let Err(e) = cs.start_locked(&c).await {
                        tracing::warn!(container_id = %c.id, error = %e, "restart at boot failed");
                    }
                }
            }
            _ => {}
        }
    }
    // Namespaces pinned for containers that no longer run (berthd died between steps):
    // removing them also removes their veths.
    let live: std::collections::HashSet<String> = cs
        .all()
        .into_iter()
        .filter(|c| c.is_running())
        .map(|c| c.id.clone())
        .collect();
    if let Ok(rd) = std::fs::read_dir(cs.inner.cfg.exec_root.join("netns")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                netns::remove(&e.path());
            }
        }
    }
    if let Err(e) = cs.inner.nets.rebuild_rules() {
        tracing::error!(error = %e, "install network rules");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").expect("kill"), 9);
        assert_eq!(parse_signal("sigterm").expect("term"), 15);
        assert_eq!(parse_signal("SIGUSR1").expect("usr1"), 10);
        assert_eq!(parse_signal("2").expect("int"), 2);
        assert!(parse_signal("BOGUS").is_err_and(|e| e.to_string().contains("BOGUS")));
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn image_config_fills_gaps() {
        let img = berth_api::models::ContainerConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: vec!["sh".into()],
            working_dir: "/app".into(),
            ..Default::default()
        };
        let mut c = berth_api::models::ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert_eq!(c.env, vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.cmd, vec!["sh"]);
        assert_eq!(c.working_dir, "/app");
        // An entrypoint from the user drops the image's cmd.
        let mut d = berth_api::models::ContainerConfig {
            entrypoint: vec!["echo".into()],
            ..Default::default()
        };
        merge_image_config(&mut d, &img);
        assert!(d.cmd.is_empty());
    }

    #[test]
    fn restart_policies_validate() {
        let mut h = berth_api::models::HostConfig::default();
        h.restart_policy.name = "on-failure".into();
        h.restart_policy.maximum_retry_count = 3;
        assert!(validate_restart(&h).is_ok());
        h.auto_remove = true;
        assert!(validate_restart(&h).is_err());
        h.auto_remove = false;
        h.restart_policy.name = "sometimes".into();
        assert!(validate_restart(&h).is_err_and(|e| e.to_string().contains("sometimes")));
    }
}
