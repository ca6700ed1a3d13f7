//! What happens when a container's process exits: the exit is recorded, `die` is published,
//! waiters are told, and the restart policy or `--rm` runs.

use std::sync::Arc;
use std::time::Duration;

use super::{net, probe, shim, Containers, Ctr, Record};

impl Containers {
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
            probe::probes_stopped(r);
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
}
