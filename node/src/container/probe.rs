//! Healthcheck probes of running containers: one tokio task per container with a
//! healthcheck, alive while its run lasts, no thread of its own. Each probe is an ordinary
//! exec (`attach.rs`: its own shim, the runtime's `exec`), so it publishes `exec_create`,
//! `exec_start` and `exec_die` as dockerd's probes do.
//!
//! ```text
//!  start_locked / restore ─► watch_health ─► task: sleep next_delay ─► probe ─► record_probe
//!       probe: exec_create ─► exec_start (≤ 30 s) ─► output read into a 4 KiB buffer
//!              until the process ends or `Timeout` passes (then SIGKILL, result -1)
//!       record_probe (op lock): Health::record; a new status is persisted and published
//!  the run ends (exit, removal) ─► the task's next wake-up sees it and ends
//!  exit or pause ─► probes_stopped: `unhealthy` (dockerd's "compatibility" rule, no event)
//! ```
//! A run is named by the container's exit count when it started (`Watch::exits`), so a
//! probe that finishes after its run ended changes nothing. Health is written to the record
//! only when the status changes (the failing streak and log of a crash-interrupted run may
//! be a little older than what inspect showed); berthd restarted finds the status there and
//! resumes probing the containers it re-adopts.

use std::sync::Arc;
use std::time::Duration;

use berth_common::stream::Demux;
use tokio::io::AsyncReadExt;

use super::health::{go_duration, Health, HealthConfig, HealthStatus, OutputBuffer, ProbeResult};
use super::model::ExecSpec;
use super::{ContainerError, Containers, Ctr, Record};

/// How long starting a probe's exec may take before the probe counts as failed (the start
/// is not part of `Timeout`, as in dockerd).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// After SIGKILL of a probe that timed out, how long to wait for its exit to be recorded.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// What a container probes and how, when it has a healthcheck that probes something (a
/// build's RUN container never does: its step decides its fate).
pub(crate) fn probe_plan(rec: &Record) -> Option<(HealthConfig, Vec<String>)> {
    if rec.build {
        return None;
    }
    let cfg = HealthConfig::from_value(rec.config.healthcheck.as_ref()?).ok()?;
    let cmd = cfg.probe_command(rec.config.shell.as_deref())?;
    Some((cfg, cmd))
}

/// The health a new run of `rec` starts with: `starting` when it has probes, else as it was.
pub(crate) fn health_at_start(rec: &Record) -> Option<Health> {
    match probe_plan(rec) {
        Some(_) => Some(Health::starting(rec.state.health.clone())),
        None => rec.state.health.clone(),
    }
}

/// The probes of a run stop (it exited, or was paused): dockerd then calls the container
/// `unhealthy`, without an event, until a probe of a later run or after the unpause passes.
pub(crate) fn probes_stopped(rec: &mut Record) {
    if let Some(h) = rec.state.health.as_mut() {
        h.status = HealthStatus::Unhealthy;
    }
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl Containers {
    /// Probes the current run of a running container until it ends (nothing without a
    /// healthcheck). Called once per run: at start, and for a re-adopted container at
    /// restore, whose recorded health it continues from.
    pub(crate) fn watch_health(&self, c: &Arc<Ctr>) {
        let rec = c.record();
        let Some((cfg, cmd)) = probe_plan(&rec) else {
            return;
        };
        if rec.state.health.is_none() {
            // Started by a berthd that did not probe.
            c.update(|r| r.state.health = Some(Health::starting(None)));
        }
        let run = c.watch.borrow().exits;
        let started = parse_time(&rec.state.started_at).unwrap_or_else(chrono::Utc::now);
        let me = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let mut w = c.watch.subscribe();
            loop {
                let status = c.update(|r| r.state.health.as_ref().map(|h| h.status));
                let since = (chrono::Utc::now() - started).to_std().unwrap_or_default();
                let delay = cfg.next_delay(since, status.unwrap_or(HealthStatus::Starting));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = w.wait_for(|w| w.exits != run || w.removed) => return,
                }
                match c.status().as_str() {
                    "running" => {}
                    // dockerd does not probe a paused container.
                    "paused" => continue,
                    _ => return,
                }
                let result = me.probe(&c, cmd.clone(), cfg.timeout()).await;
                let in_start_period = parse_time(&result.start)
                    .and_then(|t| (t - started).to_std().ok())
                    .is_some_and(|d| d < cfg.start_period());
                if !me
                    .record_probe(&c, run, result, cfg.retries(), in_start_period)
                    .await
                {
                    return;
                }
            }
        });
    }

    /// Applies a probe's result to the run it was made for; false when that run is over.
    async fn record_probe(
        &self,
        c: &Arc<Ctr>,
        run: u64,
        result: ProbeResult,
        retries: i64,
        in_start_period: bool,
    ) -> bool {
        // Under the op lock, so an exit being recorded can't be overwritten by this write.
        let _op = c.op.lock().await;
        if c.watch.borrow().exits != run {
            return false;
        }
        if c.status() != "running" {
            // Paused since the probe started: its result no longer counts.
            return c.status() == "paused";
        }
        let changed = c.update(|r| {
            r.state
                .health
                .get_or_insert_with(|| Health::starting(None))
                .record(result, retries, in_start_period)
        });
        if let Some(status) = changed {
            if let Err(e) = self.persist(c) {
                tracing::warn!(container_id = %c.id, error = %e, "record health status");
            }
            tracing::info!(container_id = %c.id, status = status.as_str(), "health status changed");
            self.emit(c, &format!("health_status: {}", status.as_str()), &[]);
        }
        true
    }

    /// Runs one probe; any failure to run it is a failed result (exit code -1).
    async fn probe(&self, c: &Ctr, cmd: Vec<String>, timeout: Duration) -> ProbeResult {
        let start = super::now_rfc3339();
        let (exit_code, output) = match self.run_probe(c, cmd, timeout).await {
            Ok(done) => done,
            Err(e) => {
                tracing::debug!(container_id = %c.id, error = %e, "health check could not run");
                (-1, e.to_string())
            }
        };
        ProbeResult {
            start,
            end: super::now_rfc3339(),
            exit_code,
            output,
        }
    }

    async fn run_probe(
        &self,
        c: &Ctr,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<(i64, String), ContainerError> {
        let spec = ExecSpec {
            cmd,
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let exec_id = self.exec_create(&c.id, spec).await?;
        // The probe's exec is nobody else's business once it has ended.
        let _forget = ForgetExec {
            cs: self,
            id: &exec_id,
        };
        let handle = tokio::time::timeout(START_TIMEOUT, self.exec_start(&exec_id, false))
            .await
            .map_err(|_| {
                ContainerError::Runtime(format!(
                    "timed out starting health check for container {}",
                    c.id
                ))
            })??;
        let mut done = self.exec_done(&exec_id)?;
        let (mut mine, theirs) = tokio::io::duplex(16 * 1024);
        tokio::spawn((handle.serve)(Box::pin(theirs)));
        let mut out = OutputBuffer::default();
        let finished = tokio::time::timeout(timeout, read_output(&mut mine, &mut out))
            .await
            .is_ok();
        if !finished {
            tracing::debug!(container_id = %c.id, "health check taking too long");
            self.exec_signal(&exec_id, 9).await;
            // Wait for it to die, so dying probes don't pile up.
            let _ = tokio::time::timeout(KILL_GRACE, done.wait_for(Option::is_some)).await;
            let limit = go_duration(timeout.as_nanos().try_into().unwrap_or(i64::MAX));
            // dockerd 20.10's text: what the probe printed is not kept.
            return Ok((-1, format!("Health check exceeded timeout ({limit})")));
        }
        // The stream closes once the exit code is recorded (or after a bounded wait).
        let code = tokio::time::timeout(KILL_GRACE, done.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|v| *v))
            .ok_or_else(|| {
                ContainerError::Runtime(format!(
                    "healthcheck for container {} has no exit code",
                    c.id
                ))
            })?;
        Ok((code, out.text()))
    }
}

/// Reads a probe's multiplexed stdout and stderr until the stream ends.
async fn read_output(conn: &mut tokio::io::DuplexStream, out: &mut OutputBuffer) {
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                demux.push(&buf[..n]);
                while let Ok(Some((_, payload))) = demux.next_frame() {
                    out.push(&payload);
                }
            }
        }
    }
}

/// Drops an exec from the exec table when the probe that made it is done with it.
struct ForgetExec<'a> {
    cs: &'a Containers,
    id: &'a str,
}

impl Drop for ForgetExec<'_> {
    fn drop(&mut self) {
        self.cs.forget_exec(self.id);
    }
}
