//! `stop`, `restart` and `kill`.

use std::sync::Arc;
use std::time::Duration;

use berth_common::shim_protocol::Request;

use super::signal::parse_signal;
use super::{shim, ContainerError, Containers, Ctr, Watch};

/// How long `kill` with SIGKILL waits for the exit to be recorded.
const KILL_EXIT_WAIT: Duration = Duration::from_secs(30);

impl Containers {
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

    pub(crate) async fn stop_running(
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
        let _ = shim::request(&run, Request::Kill(sig)).await;
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
            let _ = shim::request(&run, Request::Kill(9)).await;
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
        shim::request(&self.paths(&c.id).run, Request::Kill(sig)).await?;
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
}
