//! Wires the engine together: stores, images, containers, the system backend, and the
//! restore pass that runs before the API opens.

use std::sync::Arc;

use berth_api::Backends;

use crate::build::Builder;
use crate::config::DaemonConfig;
use crate::container::{self, Containers};
use crate::events::Events;
use crate::image::ImageService;
use crate::network::api::NetworkApi;
use crate::network::{NetConfig, Networks};
use crate::store::MetaStore;
use crate::system::System;
use crate::volume::Volumes;

pub struct Engine {
    pub containers: Containers,
    pub images: Arc<ImageService>,
    pub backends: Backends,
}

impl Engine {
    pub async fn open(cfg: DaemonConfig) -> anyhow::Result<Engine> {
        for d in [
            cfg.data_root.clone(),
            cfg.exec_root.clone(),
            cfg.containers_dir(),
            cfg.tmp_dir(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", d.display()))?;
        }
        sweep_trash(&cfg);
        let meta = Arc::new(MetaStore::open(&cfg.metadata_path())?);
        let events = Events::new();
        let images = Arc::new(ImageService::new(&cfg, meta.clone(), events.clone())?);
        let nets = {
            let (c, m, e) = (NetConfig::from_daemon(&cfg), meta.clone(), events.clone());
            tokio::task::spawn_blocking(move || Networks::open(&c, m, e)).await??
        };
        let volumes = Volumes::new(cfg.volumes_dir(), meta.clone(), events.clone())?;
        let containers = Containers::new(
            cfg.clone(),
            meta.clone(),
            images.clone(),
            nets.clone(),
            volumes.clone(),
            events.clone(),
        )?;
        let users = containers.clone();
        images.set_users(Arc::new(move |image_id: &str| {
            users.users_of_image(image_id)
        }));
        let users = containers.clone();
        volumes.set_users(Arc::new(move |name: &str| users.users_of_volume(name)));
        containers.adopt_volumes();
        container::restore(&containers).await;
        crate::build::sweep_leftovers(&cfg.tmp_dir());
        volumes.sweep_mounts();
        let id = engine_id(&cfg)?;
        let system = System {
            cfg: cfg.clone(),
            containers: containers.clone(),
            images: images.clone(),
            events,
            volumes: volumes.clone(),
            id,
        };
        let swarm = Arc::new(
            crate::cluster::ClusterBackend::open(
                cfg.data_root.join("swarm"),
                Vec::new(),
                containers.clone(),
                images.clone(),
                cfg.cluster.clone(),
            )
            .await?,
        );
        let builder = Builder::new(cfg.clone(), meta, containers.clone(), images.clone());
        let backends = Backends {
            containers: Arc::new(containers.clone()),
            images: images.clone(),
            networks: Arc::new(NetworkApi {
                nets,
                containers: containers.clone(),
                swarm: Some(swarm.clone() as Arc<dyn crate::network::api::SwarmNetworks>),
            }),
            system: Arc::new(system),
            volumes: Arc::new(volumes),
            build: Arc::new(builder),
            swarm,
        };
        Ok(Engine {
            containers,
            images,
            backends,
        })
    }
}

/// Deletes what removed containers left in `trash-*` when the daemon stopped mid-delete.
fn sweep_trash(cfg: &DaemonConfig) {
    for dir in [cfg.tmp_dir(), cfg.exec_root.clone()] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("trash-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// A stable identity for `/info`'s `ID`, made once per data root.
fn engine_id(cfg: &DaemonConfig) -> anyhow::Result<String> {
    let p = cfg.data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_owned());
        }
    }
    let id = uuid_like();
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &p)?;
    Ok(id)
}

fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
