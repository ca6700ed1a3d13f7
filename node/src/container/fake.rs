//! `FakeExecutor`: an in-memory [`ContainerExecutor`] for the unit tests of its callers (the
//! cluster task executor's first of all). It keeps the specs it was given, runs nothing, and
//! lets a test end a run ([`FakeExecutor::exit`]) or see what was asked ([`FakeExecutor::spec`],
//! [`FakeExecutor::running`]), or set a container's health ([`FakeExecutor::set_health`],
//! which publishes `health_status` as a probe would; a start of a container whose spec has a
//! healthcheck makes it `starting`). It answers like `Containers` where a caller can tell: a start
//! of a running container is `NotModified`, removing a running one without `force` is a
//! conflict, an unknown id is `NotFound`, waiters and events see exits and removals.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use super::executor::{
    ContainerEvent, ContainerExecutor, Created, ExecRun, ExitStatus, HealthStatus, LogRecord,
    LogRecords, LogRequest, OutputStream, RemoveOptions, StopOptions, WaitUntil,
};
use super::health::HealthConfig;
use super::model::{ContainerSpec, ExecSpec};
use super::{ContainerError, Watch};

struct FakeContainer {
    spec: ContainerSpec,
    watch: watch::Sender<Watch>,
    logs: Vec<LogRecord>,
    health: Option<HealthStatus>,
}

/// An in-memory container executor.
pub struct FakeExecutor {
    containers: Mutex<HashMap<String, FakeContainer>>,
    events: broadcast::Sender<ContainerEvent>,
    next_id: Mutex<u64>,
}

impl Default for FakeExecutor {
    fn default() -> Self {
        FakeExecutor {
            containers: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
            next_id: Mutex::new(1),
        }
    }
}

impl FakeExecutor {
    /// The spec a container was created from.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().get(id).map(|c| c.spec.clone())
    }

    /// Whether it runs.
    pub fn running(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|c| c.watch.borrow().running)
    }

    /// Ids of the containers that exist.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Ends the current run of `id` with `code`, as if its process had exited.
    pub fn exit(&self, id: &str, code: i64) {
        if self.end_run(id, code) {
            self.publish("die", id, &[("exitCode", code.to_string())]);
        }
    }

    /// Sets the health of `id` as its probes would, with a `health_status` event when it
    /// changes.
    pub fn set_health(&self, id: &str, status: HealthStatus) {
        let changed = self
            .lock()
            .get_mut(id)
            .is_some_and(|c| c.health.replace(status) != Some(status));
        if changed {
            self.publish(&format!("health_status: {}", status.as_str()), id, &[]);
        }
    }

    /// What `logs` returns for `id`.
    pub fn set_logs(&self, id: &str, records: Vec<LogRecord>) {
        if let Some(c) = self.lock().get_mut(id) {
            c.logs = records;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FakeContainer>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn not_found(id: &str) -> ContainerError {
        ContainerError::NotFound(format!("No such container: {id}"))
    }

    fn watch(&self, id: &str) -> Result<watch::Receiver<Watch>, ContainerError> {
        self.lock()
            .get(id)
            .map(|c| c.watch.subscribe())
            .ok_or_else(|| Self::not_found(id))
    }

    /// Marks the run ended; false if it was not running.
    fn end_run(&self, id: &str, code: i64) -> bool {
        let map = self.lock();
        let Some(c) = map.get(id) else {
            return false;
        };
        c.watch.send_if_modified(|w| {
            if !w.running {
                return false;
            }
            w.running = false;
            w.exits += 1;
            w.exit_code = code;
            true
        })
    }

    fn publish(&self, action: &str, id: &str, extra: &[(&str, String)]) {
        let attributes: BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let _ = self.events.send(ContainerEvent {
            action: action.to_owned(),
            container_id: id.to_owned(),
            attributes,
            time_nanos: crate::events::now_nanos(),
        });
    }
}

#[async_trait]
impl ContainerExecutor for FakeExecutor {
    async fn create(&self, spec: ContainerSpec) -> Result<Created, ContainerError> {
        if spec.config.image.is_empty() {
            return Err(ContainerError::Invalid(
                "No image specified: the create body needs Image".into(),
            ));
        }
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("{:064x}", *n)
        };
        self.lock().insert(
            id.clone(),
            FakeContainer {
                spec,
                watch: watch::channel(Watch::default()).0,
                logs: Vec::new(),
                health: None,
            },
        );
        self.publish("create", &id, &[]);
        Ok(Created {
            id,
            warnings: Vec::new(),
        })
    }

    async fn start(&self, id: &str) -> Result<(), ContainerError> {
        let started = {
            let mut map = self.lock();
            let c = map.get_mut(id).ok_or_else(|| Self::not_found(id))?;
            let started = c
                .watch
                .send_if_modified(|w| !std::mem::replace(&mut w.running, true));
            let probes = c
                .spec
                .config
                .healthcheck
                .as_ref()
                .and_then(|v| HealthConfig::from_value(v).ok())
                .and_then(|h| h.probe_command(None))
                .is_some();
            if started && probes {
                c.health = Some(HealthStatus::Starting);
            }
            started
        };
        if !started {
            return Err(ContainerError::NotModified);
        }
        self.publish("start", id, &[]);
        Ok(())
    }

    async fn wait(
        &self,
        id: &str,
        until: WaitUntil,
    ) -> Result<BoxFuture<'static, ExitStatus>, ContainerError> {
        Ok(super::wait::wait_on(self.watch(id)?, until))
    }

    async fn stop(&self, id: &str, _opts: StopOptions) -> Result<(), ContainerError> {
        self.watch(id)?;
        if !self.end_run(id, 143) {
            return Err(ContainerError::NotModified);
        }
        self.publish("die", id, &[("exitCode", "143".into())]);
        self.publish("stop", id, &[]);
        Ok(())
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ContainerError> {
        self.watch(id)?;
        let signal = super::signal::parse_signal(signal.as_deref().unwrap_or("KILL"))?;
        if !self.running(id) {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {id}: Container {id} is not running"
            )));
        }
        self.publish("kill", id, &[("signal", signal.to_string())]);
        if signal == 9 || signal == 15 {
            self.end_run(id, 128 + i64::from(signal));
            self.publish("die", id, &[("exitCode", (128 + signal).to_string())]);
        }
        Ok(())
    }

    async fn remove(&self, id: &str, opts: RemoveOptions) -> Result<(), ContainerError> {
        if self.running(id) {
            if !opts.force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"{id}\": container is running: stop the container before removing or force remove"
                )));
            }
            self.end_run(id, 137);
        }
        let c = self.lock().remove(id).ok_or_else(|| Self::not_found(id))?;
        c.watch.send_modify(|w| {
            w.removed = true;
            w.running = false;
        });
        self.publish("destroy", id, &[]);
        Ok(())
    }

    async fn logs(&self, id: &str, req: LogRequest) -> Result<LogRecords, ContainerError> {
        let records: Vec<LogRecord> = self
            .lock()
            .get(id)
            .ok_or_else(|| Self::not_found(id))?
            .logs
            .iter()
            .filter(|r| match r.stream {
                OutputStream::Stdout => req.stdout,
                OutputStream::Stderr => req.stderr,
            })
            .cloned()
            .collect();
        let skip = req.tail.map_or(0, |t| records.len().saturating_sub(t));
        Ok(futures_util::stream::iter(records.into_iter().skip(skip)).boxed())
    }

    async fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecRun, ContainerError> {
        if !self.running(id) {
            self.watch(id)?;
            return Err(ContainerError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        self.publish(&format!("exec_create: {}", spec.cmd.join(" ")), id, &[]);
        Ok(ExecRun {
            id: format!("exec-{id}"),
            exit: Box::pin(async { 0 }),
        })
    }

    async fn health(&self, id: &str) -> Result<Option<HealthStatus>, ContainerError> {
        self.lock()
            .get(id)
            .map(|c| c.health)
            .ok_or_else(|| Self::not_found(id))
    }

    fn events(&self) -> BoxStream<'static, ContainerEvent> {
        let rx = self.events.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::model::ContainerConfig;

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            config: ContainerConfig {
                image: image.into(),
                cmd: vec!["true".into()],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A task executor holds the executor as a trait object: the flow a task goes through.
    #[tokio::test]
    async fn a_task_runs_through_a_dyn_executor() {
        let fake = std::sync::Arc::new(FakeExecutor::default());
        let ex: std::sync::Arc<dyn ContainerExecutor> = fake.clone();
        let mut events = ex.events();
        let created = ex.create(spec("busybox")).await.expect("create");
        assert_eq!(
            fake.spec(&created.id).map(|s| s.config.image),
            Some("busybox".into())
        );
        let exited = ex
            .wait(&created.id, WaitUntil::NextExit)
            .await
            .expect("wait");
        let line = |stream, line: &str| LogRecord {
            stream,
            time: chrono::Utc::now(),
            line: line.into(),
        };
        fake.set_logs(
            &created.id,
            vec![
                line(OutputStream::Stdout, "one\n"),
                line(OutputStream::Stderr, "two\n"),
                line(OutputStream::Stdout, "three\n"),
            ],
        );
        let req = LogRequest {
            stdout: true,
            tail: Some(1),
            ..Default::default()
        };
        let lines: Vec<String> = ex
            .logs(&created.id, req)
            .await
            .expect("logs")
            .map(|r| r.line)
            .collect()
            .await;
        assert_eq!(lines, ["three\n"]);
        ex.start(&created.id).await.expect("start");
        assert!(matches!(
            ex.start(&created.id).await,
            Err(ContainerError::NotModified)
        ));
        assert!(matches!(
            ex.remove(&created.id, RemoveOptions::default()).await,
            Err(ContainerError::Conflict(_))
        ));
        fake.exit(&created.id, 3);
        assert_eq!(exited.await.code, 3);
        ex.remove(&created.id, RemoveOptions::default())
            .await
            .expect("remove");
        let actions: Vec<String> = events.by_ref().take(4).map(|e| e.action).collect().await;
        assert_eq!(actions, ["create", "start", "die", "destroy"]);
        assert!(matches!(
            ex.start(&created.id).await,
            Err(ContainerError::NotFound(_))
        ));
        assert!(ex.create(spec("")).await.is_err());
        assert!(fake.ids().is_empty());
    }

    /// A caller waiting for `healthy` reads the status, then follows the events.
    #[tokio::test]
    async fn health_is_read_and_followed() {
        let fake = std::sync::Arc::new(FakeExecutor::default());
        let ex: std::sync::Arc<dyn ContainerExecutor> = fake.clone();
        let mut with_check = spec("busybox");
        with_check.config.healthcheck = Some(serde_json::json!({"Test": ["CMD", "true"]}));
        let id = ex.create(with_check).await.expect("create").id;
        let plain = ex.create(spec("busybox")).await.expect("create").id;
        let mut events = ex.events();
        assert_eq!(ex.health(&id).await.expect("health"), None);
        ex.start(&id).await.expect("start");
        ex.start(&plain).await.expect("start");
        assert_eq!(
            ex.health(&id).await.expect("health"),
            Some(HealthStatus::Starting)
        );
        assert_eq!(ex.health(&plain).await.expect("health"), None);
        fake.set_health(&id, HealthStatus::Healthy);
        fake.set_health(&id, HealthStatus::Healthy);
        let healthy = events
            .by_ref()
            .filter_map(|e| futures_util::future::ready(e.health_status()))
            .next()
            .await;
        assert_eq!(healthy, Some(HealthStatus::Healthy));
        assert_eq!(
            ex.health(&id).await.expect("health"),
            Some(HealthStatus::Healthy)
        );
        assert!(ex.health("nope").await.is_err());
    }
}
