//! `service logs` and `task logs`: the API edge on a manager, and the agent's side that
//! reads its task containers' logs for a subscription (the broker is `berth_raft::logs`).
//!
//! ```text
//!  GET /services/{id}/logs ─► subscription (tasks, their nodes) ─► Manager::subscribe_logs
//!     ◄── LogBatch per node ◄── agent: ContainerExecutor::logs of each task container
//!  each line: [timestamp ] [com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,
//!             com.docker.swarm.task.id=… ]text, framed per stream unless the service has a TTY
//! ```
//! Without `follow` the answer ends once every node asked has sent all it has (a node that
//! is down is not asked; one that stops answering is given up on after a while).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_api::backend::{ByteStream, LogOptions};
use berth_api::error::ApiResult;
use berth_raft::logs::{LogBatch, LogLine, LogSubscription};
use berth_raft::manager::Manager;
use berth_raft::objects::NodeState;
use berth_raft::rpc::Request;
use berth_raft::swarm::Swarm;
use berth_raft::tasks::Task;
use bytes::Bytes;
use futures_util::StreamExt;

use super::taskspec::LABEL_TASK_ID;
use crate::container::executor::{ContainerExecutor, LogRequest, OutputStream};
use crate::container::Containers;

/// How long a non-follow request waits for a node that has not sent everything yet.
const NODE_SILENCE: Duration = Duration::from_secs(10);

/// The logs of `tasks` (all of one service), as Docker answers them.
pub async fn stream(m: &Arc<Manager>, tasks: Vec<Task>, opts: LogOptions) -> ApiResult<ByteStream> {
    let tty = tasks.iter().any(|t| {
        t.spec
            .container_spec
            .as_ref()
            .and_then(|c| c.get("TTY"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    });
    let ready: HashSet<String> = m.read(|s| {
        s.nodes
            .values()
            .filter(|n| n.state == NodeState::Ready)
            .map(|n| n.id.clone())
            .collect()
    });
    let node_ids: BTreeSet<String> = tasks
        .iter()
        .filter(|t| !t.node_id.is_empty() && ready.contains(&t.node_id))
        .map(|t| t.node_id.clone())
        .collect();
    let service_of: HashMap<String, String> = tasks
        .iter()
        .map(|t| (t.id.clone(), t.service_id.clone()))
        .collect();
    let sub = LogSubscription {
        id: berth_raft::manager::new_node_id(),
        origin: String::new(),
        node_ids: node_ids.iter().cloned().collect(),
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
        follow: opts.follow,
        stdout: opts.stdout,
        stderr: opts.stderr,
        since: opts.since,
        until: opts.until,
        tail: opts.tail,
    };
    let id = sub.id.clone();
    let rx = if node_ids.is_empty() {
        None
    } else {
        Some(m.subscribe_logs(sub).await)
    };
    let state = Reader {
        rx,
        waiting: node_ids,
        guard: Cancel { m: m.clone(), id },
        opts,
        tty,
        service_of,
    };
    let s = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.waiting.is_empty() && !st.opts.follow {
                return None;
            }
            let rx = st.rx.as_mut()?;
            let batch = if st.opts.follow {
                rx.recv().await?
            } else {
                match tokio::time::timeout(NODE_SILENCE, rx.recv()).await {
                    Ok(Some(b)) => b,
                    Ok(None) | Err(_) => return None,
                }
            };
            if batch.close {
                st.waiting.remove(&batch.node_id);
            }
            if !batch.error.is_empty() {
                tracing::debug!(node = %batch.node_id, error = %batch.error, "task logs");
            }
            if batch.lines.is_empty() {
                continue;
            }
            let bytes = st.render(&batch);
            return Some((bytes, st));
        }
    });
    Ok(ByteStream {
        tty,
        stream: s.boxed(),
    })
}

struct Reader {
    rx: Option<tokio::sync::mpsc::Receiver<LogBatch>>,
    /// Nodes that have not sent everything yet.
    waiting: BTreeSet<String>,
    #[allow(dead_code)] // held for its Drop
    guard: Cancel,
    opts: LogOptions,
    tty: bool,
    service_of: HashMap<String, String>,
}

impl Reader {
    fn render(&self, batch: &LogBatch) -> Bytes {
        let mut out = Vec::new();
        for l in &batch.lines {
            let mut text = String::new();
            if self.opts.timestamps {
                text.push_str(&l.time);
                text.push(' ');
            }
            if self.opts.details {
                let service = self.service_of.get(&l.task_id).map_or("", String::as_str);
                text.push_str(&format!(
                    "com.docker.swarm.node.id={},com.docker.swarm.service.id={service},com.docker.swarm.task.id={} ",
                    batch.node_id, l.task_id
                ));
            }
            text.push_str(&l.line);
            if self.tty {
                out.extend_from_slice(text.as_bytes());
            } else {
                let stream = berth_common::stream::StreamId::from_u8(l.stream)
                    .unwrap_or(berth_common::stream::StreamId::Stdout);
                out.extend_from_slice(&berth_common::stream::frame(stream, text.as_bytes()));
            }
        }
        Bytes::from(out)
    }
}

/// Ends the subscription on every manager when the client's stream goes.
struct Cancel {
    m: Arc<Manager>,
    id: String,
}

impl Drop for Cancel {
    fn drop(&mut self) {
        let (m, id) = (self.m.clone(), std::mem::take(&mut self.id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { m.cancel_logs(&id).await });
        }
    }
}

/// The agent's side: sends the logs of this node's containers of `sub`'s tasks, as they
/// come when following, and then says it is done.
pub async fn publish(
    swarm: Arc<Swarm>,
    containers: Containers,
    node_id: String,
    sub: LogSubscription,
) {
    let wanted: HashSet<&str> = sub.task_ids.iter().map(String::as_str).collect();
    let mine: Vec<(String, String)> = containers
        .all()
        .into_iter()
        .filter_map(|c| {
            let rec = c.record();
            let task = rec.config.labels.get(LABEL_TASK_ID)?;
            wanted
                .contains(task.as_str())
                .then(|| (task.clone(), c.id.clone()))
        })
        .collect();
    let req = LogRequest {
        follow: sub.follow,
        stdout: sub.stdout,
        stderr: sub.stderr,
        since: sub.since,
        until: sub.until,
        tail: sub.tail,
    };
    let mut streams = Vec::new();
    let mut error = String::new();
    for (task, id) in mine {
        match ContainerExecutor::logs(&containers, &id, req.clone()).await {
            Ok(s) => streams.push(s.map(move |r| (task.clone(), r)).boxed()),
            Err(e) => error = e.to_string(),
        }
    }
    let mut merged = futures_util::stream::select_all(streams);
    let mut lines: Vec<LogLine> = Vec::new();
    let send = |lines: Vec<LogLine>, close: bool, error: String| {
        let batch = LogBatch {
            subscription: sub.id.clone(),
            node_id: node_id.clone(),
            lines,
            close,
            error,
        };
        let swarm = swarm.clone();
        async move {
            swarm
                .call(&Request::PublishLogs(batch), Duration::from_secs(10))
                .await
                .is_ok()
        }
    };
    loop {
        match tokio::time::timeout(Duration::from_millis(100), merged.next()).await {
            Ok(Some((task_id, rec))) => {
                lines.push(LogLine {
                    task_id,
                    stream: match rec.stream {
                        OutputStream::Stdout => 1,
                        OutputStream::Stderr => 2,
                    },
                    time: rec.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    line: rec.line,
                });
                if lines.len() >= 500
                    && !send(std::mem::take(&mut lines), false, String::new()).await
                {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => {
                if !lines.is_empty()
                    && !send(std::mem::take(&mut lines), false, String::new()).await
                {
                    return;
                }
            }
        }
    }
    send(lines, true, error).await;
}
