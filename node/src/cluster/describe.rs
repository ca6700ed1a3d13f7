//! What this host reports about itself to the cluster (`Description` of `docker node
//! inspect`): hostname, platform, resources, engine version and labels, and the public key
//! of its WireGuard tunnels.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_raft::objects::Description;

/// A describer for the swarm session (read afresh for every heartbeat: cheap, and a
/// hostname change shows up).
pub fn describer(
    engine_labels: Vec<String>,
    tunnels: Arc<super::wireguard::NodeTunnels>,
) -> Arc<dyn Fn() -> Description + Send + Sync> {
    let labels: BTreeMap<String, String> = engine_labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let memory = mem_total();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    Arc::new(move || Description {
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        architecture: std::env::consts::ARCH.to_owned(),
        os: std::env::consts::OS.to_owned(),
        nano_cpus: cpus * 1_000_000_000,
        memory_bytes: memory,
        engine_version: berth_api::version::ENGINE_VERSION.to_owned(),
        engine_labels: labels.clone(),
        // The swarm session adds what it knows of this node's certificate.
        tls_info: None,
        wireguard: Some(tunnels.published()),
    })
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
