//! Services and their tasks: what the cluster is asked to run, and the units it runs it in.
//!
//! A service's spec is Docker's `ServiceSpec`, kept in Docker's field names because the
//! Engine API hands it in and out unchanged; the parts the orchestrators act on (mode,
//! placement, resources, restart, update and rollback settings) are typed, the rest is kept
//! as it came. A task is one run of a service's task template in a slot (replicated) or on a
//! node (global); it is never restarted in place: a restart is a new task in the same slot.
//!
//! ```text
//!  desired_state (managers only)     status.state (agents, after the scheduler)
//!  running ─► shutdown ─► remove     new ─► pending ─► assigned ─► accepted ─► preparing
//!                                      ─► starting ─► running ─► complete|failed|shutdown|rejected
//! ```
//! Both only ever move forward (`State::apply` ignores a step back).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::objects::Meta;

/// Docker's `ServiceSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub task_template: TaskTemplate,
    #[serde(default)]
    pub mode: ServiceMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<Value>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Docker's `TaskSpec` (a service's `TaskTemplate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskTemplate {
    /// Docker's `ContainerSpec`, turned into a container by the node that runs the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Bumped by `service update --force`: tasks are replaced although nothing else changed.
    #[serde(default)]
    pub force_update: u64,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl TaskTemplate {
    /// The ids of the secrets (or configs) the container refers to.
    pub fn data_refs(&self, kind: crate::objects::DataKind) -> Vec<&str> {
        let (list, id_key) = match kind {
            crate::objects::DataKind::Secret => ("Secrets", "SecretID"),
            crate::objects::DataKind::Config => ("Configs", "ConfigID"),
        };
        self.container_spec
            .as_ref()
            .and_then(|c| c.get(list))
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.get(id_key).and_then(|v| v.as_str()))
            .collect()
    }
}

/// `Mode`: exactly one of these is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<Replicated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_job: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Replicated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

/// A service's mode, as the orchestrators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replicated { replicas: u64 },
    Global,
    ReplicatedJob { max_concurrent: u64, total: u64 },
    GlobalJob,
}

impl ServiceMode {
    pub fn kind(&self) -> Mode {
        if let Some(j) = &self.replicated_job {
            let total = j.total_completions.unwrap_or(1);
            return Mode::ReplicatedJob {
                max_concurrent: j.max_concurrent.unwrap_or(1).max(1),
                total,
            };
        }
        if self.global_job.is_some() {
            return Mode::GlobalJob;
        }
        if self.global.is_some() {
            return Mode::Global;
        }
        Mode::Replicated {
            replicas: self
                .replicated
                .as_ref()
                .and_then(|r| r.replicas)
                .unwrap_or(1),
        }
    }

    pub fn is_job(&self) -> bool {
        matches!(self.kind(), Mode::ReplicatedJob { .. } | Mode::GlobalJob)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceAmounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceAmounts {
    #[serde(rename = "NanoCPUs", default, skip_serializing_if = "is_zero")]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_bytes: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pids: i64,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `RestartPolicy`: durations in nanoseconds, as Docker sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

/// When a task that ended is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

/// Docker's default restart delay.
pub const DEFAULT_RESTART_DELAY_NS: u64 = 5_000_000_000;

impl RestartPolicy {
    pub fn condition(&self) -> RestartCondition {
        match self.condition.as_deref() {
            Some("none") => RestartCondition::None,
            Some("on-failure") => RestartCondition::OnFailure,
            _ => RestartCondition::Any,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<Value>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub max_replicas: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Value>,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl Placement {
    /// The label each `{"Spread":{"SpreadDescriptor":"node.labels.zone"}}` spreads over.
    pub fn spread_descriptors(&self) -> Vec<String> {
        self.preferences
            .iter()
            .filter_map(|p| p.get("Spread")?.get("SpreadDescriptor")?.as_str())
            .map(str::to_owned)
            .collect()
    }
}

/// `UpdateConfig` / `RollbackConfig`: durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    /// Tasks replaced at once (0: all).
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// `pause` (default), `continue` or `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    /// `stop-first` (default) or `start-first`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// Docker's default update monitor period.
pub const DEFAULT_MONITOR_NS: u64 = 5_000_000_000;

impl UpdateConfig {
    pub fn start_first(&self) -> bool {
        self.order.as_deref() == Some("start-first")
    }
}

/// `UpdateStatus` of a service while (and after) it rolls out a new spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused`,
    /// `rollback_completed`.
    pub state: String,
    pub started_at: String,
    #[serde(default)]
    pub completed_at: String,
    #[serde(default)]
    pub message: String,
    /// Tasks of the new spec that failed during this rollout.
    #[serde(default)]
    pub failures: u64,
    /// When the last batch of tasks was started (RFC 3339), for the update delay.
    #[serde(default)]
    pub last_batch_at: String,
}

impl UpdateStatus {
    pub fn active(&self) -> bool {
        matches!(self.state.as_str(), "updating" | "rollback_started")
    }
    pub fn paused(&self) -> bool {
        matches!(self.state.as_str(), "paused" | "rollback_paused")
    }
    pub fn rolling_back(&self) -> bool {
        self.state.starts_with("rollback")
    }
}

/// A service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub meta: Meta,
    pub spec: ServiceSpec,
    /// The spec before the last update (`service rollback` goes back to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    /// The version of the spec tasks are made from: the Raft index of the change that last
    /// touched the task template or the mode. Tasks made from an older one are out of date.
    pub spec_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Jobs: bumped by each `service update` of a job, which runs it again.
    #[serde(default)]
    pub job_iteration: u64,
    /// One virtual IP per network (endpoint mode vip), kept by `State::apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ips: Vec<crate::networks::VirtualIp>,
    /// Its published ports as they are (Docker's `Endpoint.Ports`): ingress ports given
    /// without a number have one from the dynamic range. Kept by `State::apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::ingress::PortConfig>,
}

/// Task states in Docker's order (`api/types.proto`): a task's status and desired state only
/// move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "new" => TaskState::New,
            "pending" => TaskState::Pending,
            "assigned" => TaskState::Assigned,
            "accepted" => TaskState::Accepted,
            "preparing" => TaskState::Preparing,
            "ready" => TaskState::Ready,
            "starting" => TaskState::Starting,
            "running" => TaskState::Running,
            "complete" => TaskState::Complete,
            "shutdown" => TaskState::Shutdown,
            "failed" => TaskState::Failed,
            "rejected" => TaskState::Rejected,
            "remove" => TaskState::Remove,
            "orphaned" => TaskState::Orphaned,
            _ => return None,
        })
    }

    /// The task has ended (or will never run).
    pub fn terminal(self) -> bool {
        self > TaskState::Running
    }
}

/// A task's observed status (`Status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// RFC 3339.
    pub timestamp: String,
    pub state: TaskState,
    pub message: String,
    #[serde(default)]
    pub err: String,
    #[serde(default)]
    pub container_id: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub meta: Meta,
    pub service_id: String,
    /// Replicated services: the slot (1..=replicas) it fills; 0 for global ones.
    pub slot: u64,
    /// The node it is assigned to ("" until the scheduler places it; set at creation for
    /// global services).
    pub node_id: String,
    pub spec: TaskTemplate,
    /// The service's [`Service::spec_version`] it was made from.
    pub spec_version: u64,
    /// The service's labels when it was made (its container gets them).
    #[serde(default)]
    pub service_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub service_name: String,
    pub desired_state: TaskState,
    pub status: TaskStatus,
    /// Jobs: the iteration it belongs to.
    #[serde(default)]
    pub job_iteration: u64,
    /// The service's `EndpointSpec` when it was made (its host-mode ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<Value>,
    /// Its address on each of its networks, given when it is created (`State::apply`) and
    /// held until it ends or is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::networks::NetworkAttachment>,
}

/// Host-mode published ports of an `EndpointSpec`: (protocol, published, target).
pub fn host_ports(endpoint_spec: Option<&Value>) -> Vec<(String, u16, u16)> {
    endpoint_spec
        .and_then(|e| e.get("Ports"))
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter(|p| p.get("PublishMode").and_then(|m| m.as_str()) == Some("host"))
        .filter_map(|p| {
            let proto = p.get("Protocol").and_then(|v| v.as_str()).unwrap_or("tcp");
            let target = p.get("TargetPort").and_then(|v| v.as_u64())? as u16;
            let published = p.get("PublishedPort").and_then(|v| v.as_u64()).unwrap_or(0) as u16;
            Some((proto.to_owned(), published, target))
        })
        .collect()
}

impl Task {
    /// Still meant to run (or to be run): neither ended nor told to stop.
    pub fn live(&self) -> bool {
        self.desired_state <= TaskState::Running && !self.status.state.terminal()
    }
}

/// A change to tasks, several of which commit as one Raft entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskChange {
    /// A new task (its id must be new).
    Create(Box<Task>),
    /// Raise its desired state (never lowered).
    Desire {
        id: String,
        state: TaskState,
    },
    /// The scheduler's decision for a task still waiting for one: a node (state
    /// `assigned`), or none (state `pending`, with the reason).
    Assign {
        id: String,
        node_id: String,
        state: TaskState,
        message: String,
    },
    /// What an agent observed; ignored unless it moves the state forward (or, at the same
    /// state, adds details such as the container id).
    Status {
        id: String,
        node_id: String,
        status: TaskStatus,
    },
    Remove {
        id: String,
    },
}

/// The change to a service's rollout made by the orchestrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutChange {
    pub service_id: String,
    /// The service's version this decision was based on.
    pub version: u64,
    pub status: UpdateStatus,
    /// Go back to the previous spec (an automatic rollback).
    pub rollback: bool,
}
