//! RUN containers of builds that berthd died in.
//!
//! A build removes its RUN container when the step ends; if berthd is killed mid-step, the
//! container (marked `build` in its record) stays behind with its shim, its process, its
//! rootfs mount, network namespace and cgroup. Nothing will ever commit it, so at restart,
//! before anything is re-adopted, each one is killed and removed with all it holds:
//!
//! ```text
//!  record.build ─► shim "kill 9" ─► wait for the exit, then for the shim to be gone
//!               ─► kill what is left in its cgroup ─► remove_now (rootfs, netns, cgroup,
//!                  record, dirs) ─► its anonymous volumes
//! ```

use std::time::Duration;

use berth_common::shim_protocol::Request;

use super::{shim, Containers};

impl Containers {
    /// Kills and removes every build container a previous berthd left behind.
    pub(crate) async fn discard_build_containers(&self) {
        for c in self.all() {
            let rec = c.record();
            if !rec.build {
                continue;
            }
            tracing::info!(container_id = %c.id, "removing the container of an interrupted build");
            let run = self.paths(&c.id).run;
            if matches!(rec.state.status.as_str(), "running" | "paused") {
                if rec.state.status == "paused" {
                    let _ = super::cgroup::freeze(&self.inner.cfg, &rec, false);
                }
                if shim::request(&run, Request::Kill(9)).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(10), shim::wait(&run)).await;
                    // The shim deletes the runtime's state after reporting the exit.
                    shim::wait_gone(&run).await;
                }
            }
            // Whatever escaped the shim (or outlived a dead one).
            super::cgroup::kill_all(&self.inner.cfg, &rec);
            self.remove_now(&c).await;
            self.remove_anonymous_volumes(&rec);
        }
    }
}
