//! The managers' side of agent sessions: the tasks assigned to a node (long-polled), and
//! the status reports of the nodes that run them (batched into one Raft entry each).
//!
//! ```text
//!  agent ──Assignments{known}──► any manager: its applied state, waited on until the node's
//!                                 tasks change or ~4 s pass
//!  agent ──TaskStatus[..]──────► any manager ──propose Op::Tasks(Status…)──► leader
//! ```
//! Any manager answers from its own applied state, so agents keep their session through a
//! leader change; a manager that lags only answers later.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::error::ClusterResult;
use crate::manager::Manager;
use crate::objects::DataKind;
use crate::rpc::{Assignments, Reply, TaskReport};
use crate::state::{Op, State};
use crate::tasks::{TaskChange, TaskState};

/// How long an assignments request waits for a change before it answers anyway.
const LONG_POLL: Duration = Duration::from_secs(4);

/// The tasks of `node_id` an agent must know about: every task on it that is not deleted.
fn assigned(
    state: &State,
    node_id: &str,
    log_subscriptions: Vec<crate::logs::LogSubscription>,
) -> Assignments {
    let tasks: Vec<_> = state
        .tasks
        .values()
        .filter(|t| t.node_id == node_id && t.status.state >= TaskState::Assigned)
        .cloned()
        .collect();
    let mut h = DefaultHasher::new();
    let mut secrets = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for t in &tasks {
        t.id.hash(&mut h);
        t.desired_state.hash(&mut h);
        if t.desired_state <= TaskState::Running {
            let spec = t.spec.container_spec.as_ref();
            for (key, id_key, set) in [
                ("Secrets", "SecretID", &mut secrets),
                ("Configs", "ConfigID", &mut configs),
            ] {
                for r in spec
                    .and_then(|c| c.get(key))
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = r.get(id_key).and_then(|v| v.as_str()) {
                        set.insert(id.to_owned());
                    }
                }
            }
        }
    }
    for s in &log_subscriptions {
        s.id.hash(&mut h);
    }
    let pick = |kind: DataKind, ids: &BTreeSet<String>| {
        ids.iter()
            .filter_map(|id| state.data(kind).get(id).cloned())
            .collect::<Vec<_>>()
    };
    Assignments {
        fingerprint: h.finish(),
        secrets: pick(DataKind::Secret, &secrets),
        configs: pick(DataKind::Config, &configs),
        tasks,
        log_subscriptions,
    }
}

impl Manager {
    /// Answers an agent's assignments request once its tasks differ from `known`.
    pub(crate) async fn assignments(&self, node_id: &str, known: u64) -> ClusterResult<Reply> {
        let mut applied = self.applied_watch();
        let mut logs = self.logs.watch();
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        loop {
            let subs = self.logs.for_node(node_id);
            let a = self.read(|s| assigned(s, node_id, subs));
            if a.fingerprint != known {
                return Ok(Reply::Assignments(Box::new(a)));
            }
            let changed = async {
                tokio::select! {
                    r = applied.changed() => r.is_ok(),
                    r = logs.changed() => r.is_ok(),
                }
            };
            match tokio::time::timeout_at(deadline, changed).await {
                Ok(true) => {}
                _ => return Ok(Reply::Assignments(Box::new(a))),
            }
        }
    }

    /// Commits a node's status reports about its own tasks.
    pub(crate) async fn task_status(
        &self,
        node_id: &str,
        reports: Vec<TaskReport>,
    ) -> ClusterResult<Reply> {
        let changes: Vec<TaskChange> = reports
            .into_iter()
            .map(|r| TaskChange::Status {
                id: r.task_id,
                node_id: node_id.to_owned(),
                status: r.status,
            })
            .collect();
        if !changes.is_empty() {
            self.propose(Op::Tasks(changes)).await?;
        }
        Ok(Reply::Done)
    }
}
