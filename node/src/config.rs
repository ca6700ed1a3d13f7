//! Daemon configuration: the paths and settings every part of the engine reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Settings that reach the engine once flags and `--config-file` are merged.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Persistent state (`--data-root`, default /var/lib/berth).
    pub data_root: PathBuf,
    /// Runtime state: shim sockets, bundles (`--exec-root`, default /run/berth).
    pub exec_root: PathBuf,
    /// Parent cgroup of every container (`--cgroup-parent`, default `berth`).
    pub cgroup_parent: String,
    /// Name of the default runtime: `berth` (built-in libcontainer) or a key of `runtimes`.
    pub default_runtime: String,
    /// Extra OCI runtimes by name → binary path (`--add-runtime NAME=PATH`).
    pub runtimes: BTreeMap<String, PathBuf>,
    /// Directory holding `berth-shim` (defaults to berthd's own directory).
    pub shim_path: PathBuf,
    /// Restore running containers at start (default true).
    pub live_restore: bool,
    /// Device of the default `bridge` network (`--bridge`, default `berth0`).
    pub bridge: String,
    /// Address and prefix of the default bridge (`--bip`, e.g. 172.30.0.1/16).
    pub bip: Option<String>,
    /// Where networks created without `--subnet` get theirs (`--default-address-pool`).
    pub default_address_pools: Vec<crate::network::ipam::Pool>,
    /// IPv6 default address pools (`--default-address-pool` with an IPv6 base).
    pub default_address_pools6: Vec<crate::network::ipam6::Pool6>,
    /// IPv6 on the default bridge (`--ipv6`), in `--fixed-cidr-v6` when given.
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
    /// Registries reached without TLS verification, or over plain HTTP
    /// (`--insecure-registry`, daemon.json `insecure-registries`): `host[:port]` or CIDR.
    /// Loopback registries are always treated so.
    pub insecure_registries: Vec<String>,
    /// Per-registry CA certificates: `<dir>/<host:port>/*.crt` (default /etc/berth/certs.d).
    pub registry_certs_dir: PathBuf,
    /// Layers downloaded at once per pull (`--max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once per push (`--max-concurrent-uploads`, default 5).
    pub max_concurrent_uploads: usize,
    /// Log driver and options of containers that name none (`--log-driver`, `--log-opt`,
    /// daemon.json `log-driver`, `log-opts`); validated at daemon start.
    pub log_config: crate::container::model::LogConfig,
    /// Join or form a cluster by itself at start (daemon.json `cluster`, `--cluster-*`).
    pub cluster: Option<crate::cluster::autojoin::AutoJoinConfig>,
}

impl DaemonConfig {
    pub fn content_dir(&self) -> PathBuf {
        self.data_root.join("content")
    }
    pub fn overlay_dir(&self) -> PathBuf {
        self.data_root.join("overlay")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_root.join("volumes")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_root.join("tmp")
    }
    pub fn metadata_path(&self) -> PathBuf {
        self.data_root.join("metadata.redb")
    }
    /// Per-container runtime state: shim socket, pid and exit files, bundle. Kept short
    /// (16 hex digits of the id) because unix socket paths inside it are limited to 108 bytes.
    pub fn run_dir(&self, container_id: &str) -> PathBuf {
        self.exec_root
            .join("c")
            .join(&container_id[..container_id.len().min(16)])
    }
}
