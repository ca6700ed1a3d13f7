//! Service and task logs: the managers' log broker.
//!
//! ```text
//!  API (any manager M) ─subscribe─► M's broker ──LogSubscribe──► every other manager
//!  agents' Assignments long poll ◄── subscriptions naming their node (from any manager)
//!  agent ──PublishLogs{lines, close}──► its manager ──(forwarded to M unless it is M)──► API stream
//!  API stream dropped ─► cancel ─► LogCancel to every manager ─► agents stop streaming
//! ```
//! Subscriptions live in memory only: they are as long-lived as the client that reads
//! them, and a manager that restarts simply no longer forwards (its agents find the
//! subscription on another manager on their next long poll).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::error::{ClusterError, ClusterResult};
use crate::manager::Manager;
use crate::rpc::{Reply, Request};

/// What a `service logs`/`task logs` client asked for, and of which nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSubscription {
    pub id: String,
    /// The cluster address of the manager that serves the client (`ip:port`).
    pub origin: String,
    /// The nodes asked to send logs, and the tasks whose containers they read.
    pub node_ids: Vec<String>,
    pub task_ids: Vec<String>,
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Seconds since the epoch.
    #[serde(default)]
    pub since: Option<f64>,
    #[serde(default)]
    pub until: Option<f64>,
    #[serde(default)]
    pub tail: Option<usize>,
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub task_id: String,
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub line: String,
}

/// Lines a node sends for a subscription; `close` once it has sent all it will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub subscription: String,
    pub node_id: String,
    pub lines: Vec<LogLine>,
    #[serde(default)]
    pub close: bool,
    /// Why the node could not send (a task's container is gone, …).
    #[serde(default)]
    pub error: String,
}

/// A manager's subscriptions: all it knows of (for its agents) and the ones it serves.
#[derive(Default)]
pub struct LogBroker {
    subs: Mutex<HashMap<String, LogSubscription>>,
    local: Mutex<HashMap<String, mpsc::Sender<LogBatch>>>,
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl LogBroker {
    fn notify(&self) {
        let mut c = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        let tx = c.get_or_insert_with(|| watch::channel(0).0);
        tx.send_modify(|n| *n += 1);
    }

    /// Changes to the subscriptions, as they happen.
    pub fn watch(&self) -> watch::Receiver<u64> {
        let mut c = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        c.get_or_insert_with(|| watch::channel(0).0).subscribe()
    }

    pub fn add(&self, sub: LogSubscription) {
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sub.id.clone(), sub);
        self.notify();
    }

    pub fn remove(&self, id: &str) {
        let had = self
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some();
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if had {
            self.notify();
        }
    }

    /// The subscriptions that ask `node_id` for logs.
    pub fn for_node(&self, node_id: &str) -> Vec<LogSubscription> {
        let mut v: Vec<LogSubscription> = self
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| s.node_ids.iter().any(|n| n == node_id))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn origin(&self, id: &str) -> Option<String> {
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|s| s.origin.clone())
    }

    fn local_sender(&self, id: &str) -> Option<mpsc::Sender<LogBatch>> {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

impl Manager {
    /// Starts a subscription served by this manager: every manager learns of it (so the
    /// agents of the nodes it names see it, whichever manager they poll), and the nodes'
    /// batches arrive on the receiver. [`Manager::cancel_logs`] ends it.
    pub async fn subscribe_logs(
        self: &Arc<Self>,
        mut sub: LogSubscription,
    ) -> mpsc::Receiver<LogBatch> {
        sub.origin = self.advertise.clone();
        let (tx, rx) = mpsc::channel(64);
        self.logs
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sub.id.clone(), tx);
        self.logs.add(sub.clone());
        self.broadcast(Request::LogSubscribe(sub)).await;
        rx
    }

    /// Ends a subscription this manager serves, on every manager.
    pub async fn cancel_logs(self: &Arc<Self>, id: &str) {
        self.logs.remove(id);
        self.broadcast(Request::LogCancel { id: id.to_owned() })
            .await;
    }

    /// Sends `req` to every other manager, best effort (a manager that is down has no
    /// agents to tell).
    async fn broadcast(self: &Arc<Self>, req: Request) {
        let calls = self
            .managers()
            .into_iter()
            .filter(|p| p.node_id != self.node_id)
            .filter_map(|p| crate::rpc::parse_addr(&p.addr).ok())
            .map(|addr| {
                let client = self.client(addr);
                let req = req.clone();
                async move {
                    if let Err(e) = client.call_timeout(&req, Duration::from_secs(2)).await {
                        tracing::debug!(manager = %addr, error = %e, "log subscription broadcast");
                    }
                }
            });
        futures_util::future::join_all(calls).await;
    }

    /// A node's batch: to the client when this manager serves the subscription, else on to
    /// the manager that does.
    pub(crate) async fn publish_logs(
        self: &Arc<Self>,
        caller: &str,
        batch: LogBatch,
    ) -> ClusterResult<Reply> {
        if batch.node_id != caller {
            return Err(ClusterError::PermissionDenied(
                "a node publishes only its own logs".into(),
            ));
        }
        if let Some(tx) = self.logs.local_sender(&batch.subscription) {
            if tx.send(batch).await.is_err() {
                return Err(ClusterError::NotFound("log subscription ended".into()));
            }
            return Ok(Reply::Done);
        }
        let origin = self
            .logs
            .origin(&batch.subscription)
            .filter(|o| *o != self.advertise)
            .ok_or_else(|| ClusterError::NotFound("log subscription not found".into()))?;
        let addr = crate::rpc::parse_addr(&origin)?;
        self.client(addr)
            .call_timeout(&Request::PublishLogs(batch), Duration::from_secs(5))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, nodes: &[&str]) -> LogSubscription {
        LogSubscription {
            id: id.into(),
            origin: "10.0.0.1:2377".into(),
            node_ids: nodes.iter().map(|n| n.to_string()).collect(),
            task_ids: vec![],
            follow: false,
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            tail: None,
        }
    }

    #[test]
    fn nodes_see_only_the_subscriptions_that_name_them() {
        let b = LogBroker::default();
        let mut w = b.watch();
        b.add(sub("b", &["n1", "n2"]));
        b.add(sub("a", &["n2"]));
        assert!(w.has_changed().expect("watch"));
        w.mark_unchanged();
        let ids = |n: &str| -> Vec<String> { b.for_node(n).into_iter().map(|s| s.id).collect() };
        assert_eq!(ids("n1"), vec!["b"]);
        assert_eq!(ids("n2"), vec!["a", "b"]);
        assert!(ids("n3").is_empty());
        b.remove("b");
        assert!(w.has_changed().expect("watch"));
        assert!(ids("n1").is_empty());
        assert_eq!(b.origin("a").as_deref(), Some("10.0.0.1:2377"));
    }
}
