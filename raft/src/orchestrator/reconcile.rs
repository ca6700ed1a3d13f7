//! The orchestrators as one pure function: from the replicated state and the time, the task
//! changes that bring every service closer to its spec.
//!
//! ```text
//!  per service ─► groups (replicated: slots 1..=N; global: eligible nodes; jobs: slots/nodes)
//!    per group: end what ended, replace what was lost or stopped, restart what failed
//!               (restart policy: condition, delay, attempts in window), roll out a new spec
//!               (update.rs), scale down
//! ```
//! A task is never restarted in place: its replacement is a new task in the same group.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::update;
use crate::objects::{Availability, Node, NodeState};
use crate::state::State;
use crate::tasks::{
    Mode, RestartCondition, RolloutChange, Service, Task, TaskChange, TaskState, TaskStatus,
    DEFAULT_RESTART_DELAY_NS,
};

/// What one round decided.
#[derive(Debug, Default)]
pub struct Plan {
    pub tasks: Vec<TaskChange>,
    pub rollouts: Vec<RolloutChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.rollouts.is_empty()
    }
}

/// Where tasks are grouped: a slot of a replicated service or job, a node of a global one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Slot(u64),
    Node(String),
}

/// The planning context of one round.
pub struct Round<'a> {
    pub state: &'a State,
    pub now: DateTime<Utc>,
    pub new_id: &'a mut dyn FnMut() -> String,
    pub plan: Plan,
}

/// Whether a node can keep the tasks it has: known, not down, not drained.
pub fn node_keeps(nodes: &BTreeMap<String, Node>, node_id: &str) -> bool {
    if node_id.is_empty() {
        return true;
    }
    nodes
        .get(node_id)
        .is_some_and(|n| n.state != NodeState::Down && n.spec.availability != Availability::Drain)
}

/// Nodes that take new tasks of a global service: ready and active, and meeting its
/// constraints and platforms.
fn global_nodes<'a>(state: &'a State, svc: &Service) -> Vec<&'a Node> {
    let req = super::place::request(svc);
    state
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Ready && n.spec.availability == Availability::Active)
        .filter(|n| super::place::static_fit(n, &req))
        .collect()
}

/// The tasks of the service's current job iteration by group, oldest first in each.
fn groups_of<'t>(svc: &Service, tasks: &[&'t Task]) -> BTreeMap<Group, Vec<&'t Task>> {
    let mut groups: BTreeMap<Group, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        if t.job_iteration != svc.job_iteration {
            continue;
        }
        let g = if t.slot > 0 {
            Group::Slot(t.slot)
        } else {
            Group::Node(t.node_id.clone())
        };
        groups.entry(g).or_default().push(t);
    }
    for g in groups.values_mut() {
        g.sort_by(|a, b| a.meta.created_at.cmp(&b.meta.created_at));
    }
    groups
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Round<'_> {
    /// Plans every service and the reaping of tasks no longer needed.
    pub fn run(mut self) -> Plan {
        let mut by_service: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
        for t in self.state.tasks.values() {
            by_service.entry(&t.service_id).or_default().push(t);
        }
        let state = self.state;
        for svc in state.services.values() {
            let tasks = by_service.remove(svc.id.as_str()).unwrap_or_default();
            self.service(svc, &tasks);
        }
        super::reaper::reap(state, &mut self.plan);
        self.plan
    }

    /// Plans one service: ends the tasks of groups it no longer wants, settles and fills
    /// the ones it wants, then rolls out a new spec.
    fn service(&mut self, svc: &Service, tasks: &[&Task]) {
        let groups = groups_of(svc, tasks);
        let wanted = self.wanted_groups(svc, &groups);
        self.end_unwanted(&groups, &wanted);
        let replaced = self.fill(svc, &groups, &wanted);
        update::roll(self, svc, &wanted, &groups, &replaced);
    }

    /// The groups the service wants now: its slots, or the nodes that take its global
    /// tasks (and paused nodes still running one).
    fn wanted_groups(&self, svc: &Service, groups: &BTreeMap<Group, Vec<&Task>>) -> Vec<Group> {
        let mut wanted: Vec<Group> = match svc.spec.mode.kind() {
            Mode::Replicated { replicas } => (1..=replicas).map(Group::Slot).collect(),
            Mode::Global | Mode::GlobalJob => global_nodes(self.state, svc)
                .into_iter()
                .map(|n| Group::Node(n.id.clone()))
                .collect(),
            Mode::ReplicatedJob { total, .. } => (1..=total).map(Group::Slot).collect(),
        };
        if matches!(svc.spec.mode.kind(), Mode::Global | Mode::GlobalJob) {
            // A paused node takes no new tasks but keeps the ones it runs.
            for (g, ts) in groups {
                let Group::Node(n) = g else { continue };
                let paused = self
                    .state
                    .nodes
                    .get(n)
                    .is_some_and(|x| x.spec.availability == Availability::Pause);
                if paused && !wanted.contains(g) && ts.iter().any(|t| t.live()) {
                    wanted.push(g.clone());
                }
            }
        }
        wanted
    }

    /// Groups no longer wanted: scale-down (remove) or a node that no longer qualifies
    /// (its task stops; a down node keeps its global tasks until it returns).
    fn end_unwanted(&mut self, groups: &BTreeMap<Group, Vec<&Task>>, wanted: &[Group]) {
        for (g, ts) in groups {
            if wanted.contains(g) {
                continue;
            }
            for t in ts.iter().filter(|t| t.desired_state <= TaskState::Running) {
                let state = match g {
                    Group::Slot(_) => TaskState::Remove,
                    Group::Node(n) => {
                        let down = self
                            .state
                            .nodes
                            .get(n)
                            .is_some_and(|n| n.state == NodeState::Down);
                        if down && self.state.nodes.contains_key(n) {
                            continue;
                        }
                        TaskState::Shutdown
                    }
                };
                self.desire(t, state);
            }
        }
    }

    /// Settles every wanted group and creates the tasks they need (a job's within its
    /// concurrency limit); the groups that got a new task.
    fn fill(
        &mut self,
        svc: &Service,
        groups: &BTreeMap<Group, Vec<&Task>>,
        wanted: &[Group],
    ) -> Vec<Group> {
        let job = svc.spec.mode.is_job();
        let max_concurrent = match svc.spec.mode.kind() {
            Mode::ReplicatedJob { max_concurrent, .. } => max_concurrent as usize,
            _ => usize::MAX,
        };
        let mut active_job_groups = groups
            .iter()
            .filter(|(g, ts)| wanted.contains(g) && ts.iter().any(|t| t.live()))
            .count();
        let empty = Vec::new();
        let mut replaced = Vec::new();
        for g in wanted {
            let ts = groups.get(g).unwrap_or(&empty);
            if job && ts.iter().any(|t| t.status.state == TaskState::Complete) {
                // A job's group is done once one of its tasks completed.
                for t in ts.iter().filter(|t| t.desired_state <= TaskState::Running) {
                    if t.status.state.terminal() {
                        self.desire(t, TaskState::Shutdown);
                    }
                }
                continue;
            }
            let had_live = ts.iter().any(|t| t.live());
            let needs_new = self.group(svc, ts);
            if needs_new {
                if job && !had_live {
                    if active_job_groups >= max_concurrent {
                        continue;
                    }
                    active_job_groups += 1;
                }
                replaced.push(g.clone());
                self.create(svc, g);
            }
        }
        replaced
    }

    /// Settles one group; whether it needs a new task now.
    fn group(&mut self, svc: &Service, ts: &[&Task]) -> bool {
        let nodes = &self.state.nodes;
        let mut live = 0;
        for t in ts.iter().filter(|t| t.desired_state <= TaskState::Running) {
            if t.status.state.terminal() {
                // It ended on its own: record that it is over.
                self.desire(t, TaskState::Shutdown);
            } else if !node_keeps(nodes, &t.node_id) {
                // Its node died or is drained: stop it there, replace it elsewhere.
                self.desire(t, TaskState::Shutdown);
            } else {
                live += 1;
            }
        }
        if live > 0 {
            return false;
        }
        let Some(last) = ts.last() else {
            return true;
        };
        // Still stopping on a node that keeps it (an update's stop-first step): wait.
        if !last.status.state.terminal() && node_keeps(nodes, &last.node_id) {
            return false;
        }
        // Stopped by the cluster (update, node lost, drain): replace it now.
        let stopped_by_us =
            last.status.state == TaskState::Shutdown || !last.status.state.terminal();
        if stopped_by_us {
            return true;
        }
        self.restart_allowed(svc, ts, last)
    }

    /// The restart policy's verdict on a task that ended on its own.
    fn restart_allowed(&self, svc: &Service, ts: &[&Task], last: &Task) -> bool {
        let job = svc.spec.mode.is_job();
        let policy = svc
            .spec
            .task_template
            .restart_policy
            .clone()
            .unwrap_or_default();
        let condition = match (policy.condition.as_deref(), job) {
            (None, true) => RestartCondition::OnFailure,
            _ => policy.condition(),
        };
        let failed = matches!(last.status.state, TaskState::Failed | TaskState::Rejected);
        let ok = match condition {
            RestartCondition::None => false,
            RestartCondition::OnFailure => failed,
            RestartCondition::Any => true,
        };
        if !ok {
            return false;
        }
        let delay = policy.delay.unwrap_or(DEFAULT_RESTART_DELAY_NS);
        let ended = parse_time(&last.status.timestamp).unwrap_or(self.now);
        if self.now < ended + chrono::Duration::nanoseconds(delay as i64) {
            return false;
        }
        if let Some(max) = policy.max_attempts.filter(|m| *m > 0) {
            let window = policy.window.unwrap_or(0);
            let since =
                (window > 0).then(|| self.now - chrono::Duration::nanoseconds(window as i64));
            let attempts = ts
                .iter()
                .filter(|t| {
                    matches!(
                        t.status.state,
                        TaskState::Complete | TaskState::Failed | TaskState::Rejected
                    )
                })
                .filter(|t| {
                    since.is_none_or(|s| parse_time(&t.status.timestamp).is_some_and(|x| x >= s))
                })
                .count() as u64;
            // The first run is not a restart.
            if attempts > max {
                return false;
            }
        }
        true
    }

    pub(super) fn desire(&mut self, t: &Task, state: TaskState) {
        if t.desired_state >= state {
            return;
        }
        let dup = self.plan.tasks.iter().any(
            |c| matches!(c, TaskChange::Desire { id, state: s } if *id == t.id && *s >= state),
        );
        if !dup {
            self.plan.tasks.push(TaskChange::Desire {
                id: t.id.clone(),
                state,
            });
        }
    }

    /// A new task of the service's current spec in a group.
    pub(super) fn create(&mut self, svc: &Service, g: &Group) {
        let (slot, node_id) = match g {
            Group::Slot(s) => (*s, String::new()),
            Group::Node(n) => (0, n.clone()),
        };
        let now = rfc3339(self.now);
        let task = Task {
            id: (self.new_id)(),
            meta: Default::default(),
            service_id: svc.id.clone(),
            slot,
            node_id,
            spec: svc.spec.task_template.clone(),
            spec_version: svc.spec_version,
            service_labels: svc.spec.labels.clone(),
            service_name: svc.spec.name.clone(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                timestamp: now,
                state: TaskState::New,
                message: "created".into(),
                err: String::new(),
                container_id: String::new(),
                pid: 0,
                exit_code: 0,
            },
            job_iteration: svc.job_iteration,
            endpoint_spec: svc.spec.endpoint_spec.clone(),
            networks: Vec::new(),
        };
        self.plan.tasks.push(TaskChange::Create(Box::new(task)));
    }

    pub(super) fn now_string(&self) -> String {
        rfc3339(self.now)
    }
}
