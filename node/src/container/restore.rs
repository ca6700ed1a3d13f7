//! Re-adoption at daemon start: running containers whose shim survived, exits that happened
//! while berthd was away, restart policies at boot, and namespaces left behind.

use super::{netns, shim, Containers};

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
                    // Probing resumes from the recorded health.
                    cs.watch_health(&c);
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
