//! `/info`, `/version`, `/events` and `/system/df`.

use async_trait::async_trait;
use berth_api::backend::{Filters, SystemBackend};
use berth_api::ApiResult;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::config::DaemonConfig;
use crate::container::Containers;
use crate::events::{Event, Events};
use crate::image::ImageService;

pub struct System {
    pub cfg: DaemonConfig,
    pub containers: Containers,
    pub images: std::sync::Arc<ImageService>,
    pub events: Events,
    pub volumes: crate::volume::Volumes,
    pub id: String,
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

fn event_matches(e: &Event, f: &Filters) -> bool {
    let has = |k: &str, v: &str| f.get(k).is_none_or(|vals| vals.iter().any(|x| x == v));
    let name = e.attributes.get("name").map(String::as_str).unwrap_or("");
    // `health_status`, `exec_create` and `exec_start` carry a detail after a colon: a filter
    // matches the whole action or its name (dockerd's fuzzy match for those).
    let action = e.action.split(':').next().unwrap_or("");
    has("type", e.kind)
        && f.get("event")
            .is_none_or(|vals| vals.iter().any(|x| x == action || *x == e.action))
        && (f.get("container").is_none_or(|v| {
            e.kind == "container"
                && v.iter()
                    .any(|x| e.actor_id.starts_with(x.as_str()) || x == name)
        }))
        && (f.get("image").is_none_or(|v| {
            v.iter().any(|x| {
                e.attributes.get("image") == Some(x) || (e.kind == "image" && e.actor_id == *x)
            })
        }))
        && f.get("label").is_none_or(|ls| {
            ls.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => e.attributes.get(k).is_some_and(|x| x == v),
                None => e.attributes.contains_key(l.as_str()),
            })
        })
}

/// Docker's `docker info` warnings for limits this host's cgroups can't enforce.
fn cgroup_warnings(cg: &crate::container::CgroupSupport) -> Option<Vec<&'static str>> {
    let mut w = Vec::new();
    let mut add = |missing: bool, msg| {
        if missing {
            w.push(msg)
        }
    };
    add(!cg.memory, "WARNING: No memory limit support");
    add(!cg.swap, "WARNING: No swap limit support");
    add(
        !cg.v2 && !cg.oom_kill_disable,
        "WARNING: No oom kill disable support",
    );
    add(!cg.cpu, "WARNING: No cpu cfs quota support");
    add(!cg.cpu, "WARNING: No cpu cfs period support");
    add(!cg.cpu, "WARNING: No cpu shares support");
    add(!cg.cpuset, "WARNING: No cpuset support");
    add(cg.v2 && !cg.io, "WARNING: No io.weight support");
    add(
        cg.v2 && !cg.io,
        "WARNING: No io.weight (per device) support",
    );
    add(cg.v2 && !cg.io, "WARNING: No io.max (rbps) support");
    add(cg.v2 && !cg.io, "WARNING: No io.max (wbps) support");
    add(cg.v2 && !cg.io, "WARNING: No io.max (riops) support");
    add(cg.v2 && !cg.io, "WARNING: No io.max (wiops) support");
    (!w.is_empty()).then_some(w)
}

#[async_trait]
impl SystemBackend for System {
    async fn info(&self) -> ApiResult<Value> {
        let all = self.containers.all();
        let count = |s: &str| all.iter().filter(|c| c.status() == s).count();
        let running = count("running");
        let paused = count("paused");
        let images = self.images.image_ids().map(|v| v.len()).unwrap_or(0);
        let cg = crate::container::cgroup_support();
        let v2 = cg.v2;
        let mut runtimes = serde_json::Map::new();
        runtimes.insert("berth".into(), json!({"path": "berth-shim (libcontainer)"}));
        for (k, p) in &self.cfg.runtimes {
            runtimes.insert(k.clone(), json!({"path": p}));
        }
        let mem = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        Ok(json!({
            "ID": self.id,
            "Containers": all.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": all.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"]],
            "Plugins": { "Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": crate::container::logconfig::DRIVERS },
            "MemoryLimit": cg.memory, "SwapLimit": cg.swap, "KernelMemory": false, "KernelMemoryTCP": false,
            "CpuCfsPeriod": cg.cpu, "CpuCfsQuota": cg.cpu, "CPUShares": cg.cpu, "CPUSet": cg.cpuset, "PidsLimit": cg.pids,
            "IPv4Forwarding": true, "BridgeNfIptables": false, "BridgeNfIp6tables": false,
            "Debug": false, "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "OomKillDisable": cg.oom_kill_disable, "NGoroutines": 0,
            "SystemTime": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, false),
            "LoggingDriver": self.cfg.log_config.kind,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": if v2 { "2" } else { "1" },
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": { "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                                "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": [] },
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem,
            "GenericResources": null,
            "DockerRootDir": self.cfg.data_root,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": berth_api::version::ENGINE_VERSION,
            "Runtimes": runtimes,
            "DefaultRuntime": self.cfg.default_runtime,
            "LiveRestoreEnabled": self.cfg.live_restore,
            "Isolation": "",
            "InitBinary": "berth-init",
            "ContainerdCommit": { "ID": "", "Expected": "" },
            "RuncCommit": { "ID": "", "Expected": "" },
            "InitCommit": { "ID": "", "Expected": "" },
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": cgroup_warnings(&cg),
        }))
    }

    async fn version(&self) -> ApiResult<Value> {
        let v = berth_api::version::ENGINE_VERSION;
        Ok(json!({
            "Platform": { "Name": "Berth Engine" },
            "Components": [{ "Name": "Engine", "Version": v, "Details": {
                "GitCommit": "", "GoVersion": "", "KernelVersion": kernel_version(), "Os": "linux",
                "Arch": "amd64", "BuildTime": "", "Experimental": "false" } }],
            "Version": v,
            "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
            "GoVersion": "n/a (Rust)",
            "Os": "linux",
            "Arch": if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH },
            "KernelVersion": kernel_version(),
            "BuildTime": "",
        }))
    }

    async fn events(
        &self,
        since: Option<f64>,
        until: Option<f64>,
        filters: Filters,
    ) -> ApiResult<BoxStream<'static, Value>> {
        let (history, rx) = self.events.subscribe();
        let since_ns = since.map(|s| (s * 1e9) as i64);
        let until_ns = until.map(|u| (u * 1e9) as i64);
        let now = crate::events::now_nanos();
        let f2 = filters.clone();
        let replay: Vec<Value> = if since_ns.is_some() {
            history
                .into_iter()
                .filter(|e| {
                    since_ns.is_none_or(|s| e.time_nano >= s)
                        && until_ns.is_none_or(|u| e.time_nano <= u)
                })
                .filter(|e| event_matches(e, &filters))
                .map(|e| e.to_json())
                .collect()
        } else {
            Vec::new()
        };
        let replay = futures_util::stream::iter(replay);
        if until_ns.is_some_and(|u| u <= now) {
            return Ok(replay.boxed());
        }
        let live = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        })
        .filter(move |e| futures_util::future::ready(event_matches(e, &f2)))
        .map(|e| e.to_json());
        let live = match until_ns {
            Some(u) => {
                let deadline = tokio::time::Instant::now()
                    + std::time::Duration::from_nanos((u - now).max(0) as u64);
                live.take_until(tokio::time::sleep_until(deadline)).boxed()
            }
            None => live.boxed(),
        };
        Ok(replay.chain(live).boxed())
    }

    async fn df(&self) -> ApiResult<Value> {
        let images =
            berth_api::backend::ImageBackend::list(&*self.images, false, Default::default(), false)
                .await
                .unwrap_or_default();
        let layers: i64 = images.iter().filter_map(|i| i["Size"].as_i64()).sum();
        let containers = self
            .containers
            .list(berth_api::backend::ListOptions {
                all: true,
                size: true,
                ..Default::default()
            })
            .await?;
        let vols = self.volumes.clone();
        let volumes = tokio::task::spawn_blocking(move || vols.usage())
            .await
            .map_err(|e| {
                berth_api::ApiError::internal(format!("volume usage: {e}")).with_source(e)
            })?
            .map_err(berth_api::ApiError::from)?;
        Ok(
            json!({ "LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": [] }),
        )
    }
}
