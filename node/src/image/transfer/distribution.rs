//! What pulls and pushes share: the registry client, the download and upload limits, and one
//! lock per blob being fetched, so two pulls never download the same blob at once.
//!
//! ```text
//!  content/ingest/<hex>         a layer blob being downloaded (kept across restarts: resumed)
//! ```
//! Which blob holds which layer, and the garbage collection of blobs, belong to the store
//! (`store/blobs.rs`); a pull pins its blobs there until it has registered the image.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::DaemonConfig;
use crate::image::digest::Digest;
use crate::image::transfer::registry::{Registries, RegistryConfig};

pub struct Distribution {
    pub registries: Registries,
    pub max_downloads: usize,
    pub max_uploads: usize,
    /// `content/ingest`: partial layer downloads, resumed with `Range`.
    pub ingest: PathBuf,
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl Distribution {
    /// `ingest` is the content store's directory of partial downloads.
    pub fn new(cfg: &DaemonConfig, ingest: PathBuf) -> Self {
        Distribution {
            registries: Registries::new(RegistryConfig {
                insecure: cfg.insecure_registries.clone(),
                certs_dir: cfg.registry_certs_dir.clone(),
            }),
            max_downloads: cfg.max_concurrent_downloads.max(1),
            max_uploads: cfg.max_concurrent_uploads.max(1),
            ingest,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The lock a fetch of `blob` holds, so two pulls never download the same blob at once.
    pub fn blob_lock(&self, blob: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(blob.clone()).or_default().clone()
    }
}
