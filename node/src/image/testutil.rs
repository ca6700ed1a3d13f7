//! Helpers shared by the image store's tests: a service on a temporary data root, and tars.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::DaemonConfig;
use crate::events::Events;
use crate::image::service::ImageService;
use crate::store::MetaStore;

pub struct TestService {
    pub svc: ImageService,
    pub events: Events,
    pub dir: tempfile::TempDir,
}

pub fn config_for(root: &std::path::Path) -> DaemonConfig {
    DaemonConfig {
        data_root: root.to_owned(),
        exec_root: root.join("run"),
        cgroup_parent: "berth-test".into(),
        default_runtime: "berth".into(),
        runtimes: BTreeMap::new(),
        shim_path: root.to_owned(),
        live_restore: false,
        bridge: "berth0".into(),
        bip: None,
        default_address_pools: Vec::new(),
        default_address_pools6: Vec::new(),
        ipv6: false,
        fixed_cidr_v6: None,
        insecure_registries: Vec::new(),
        registry_certs_dir: root.join("certs.d"),
        max_concurrent_downloads: 3,
        max_concurrent_uploads: 5,
        log_config: Default::default(),
        cluster: None,
    }
}

/// A fresh image service on its own temporary data root.
pub fn service() -> TestService {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path());
    let meta = Arc::new(MetaStore::open(&cfg.metadata_path()).expect("metadata store"));
    let events = Events::new();
    let svc = ImageService::new(&cfg, meta, events.clone()).expect("image service");
    TestService { svc, events, dir }
}

/// A tar of regular files (mode 0644, owned by root).
pub fn file_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, *data).expect("append");
    }
    b.into_inner().expect("finish tar")
}

/// A tar of named in-memory files, for building outer archives (load tests).
pub fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    file_tar(&refs)
}
