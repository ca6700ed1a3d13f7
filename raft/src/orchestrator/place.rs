//! The scheduler's step: tasks waiting for a node get one from `berth-scheduler`'s pure
//! placement (filters, then spread or binpack), or stay pending with the reason.

use std::collections::BTreeMap;

use berth_scheduler::{
    Availability as SAvailability, Constraint, FilterFailure, NodeInfo, Platform, Preference,
    Role as SRole, Strategy, TaskRequest,
};

use super::reconcile::Plan;
use crate::ca::Role;
use crate::objects::{Availability, Node, NodeState};
use crate::state::State;
use crate::tasks::{Service, Task, TaskChange, TaskState};

/// The service label that selects binpack placement instead of Swarm's spread.
pub const STRATEGY_LABEL: &str = "com.berth.placement.strategy";

pub fn node_info(n: &Node) -> NodeInfo {
    NodeInfo {
        id: n.id.clone(),
        hostname: n.description.hostname.clone(),
        role: match n.spec.role {
            Role::Manager => SRole::Manager,
            Role::Worker => SRole::Worker,
        },
        os: n.description.os.clone(),
        arch: n.description.architecture.clone(),
        labels: n.spec.labels.clone(),
        engine_labels: n.description.engine_labels.clone(),
        ready: n.state == NodeState::Ready,
        availability: match n.spec.availability {
            Availability::Active => SAvailability::Active,
            Availability::Pause => SAvailability::Pause,
            Availability::Drain => SAvailability::Drain,
        },
        nano_cpus: n.description.nano_cpus,
        memory_bytes: n.description.memory_bytes,
        ..NodeInfo::default()
    }
}

/// What a service's tasks ask of a node. Constraints and preferences that do not parse
/// were refused by the API; here they are skipped.
pub fn request(svc: &Service) -> TaskRequest {
    let tt = &svc.spec.task_template;
    let placement = tt.placement.clone().unwrap_or_default();
    let reservations = tt
        .resources
        .as_ref()
        .and_then(|r| r.reservations.clone())
        .unwrap_or_default();
    let platforms = placement
        .platforms
        .iter()
        .map(|p| Platform {
            os: p
                .get("OS")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
            arch: p
                .get("Architecture")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        })
        .collect();
    TaskRequest {
        service_id: svc.id.clone(),
        constraints: placement
            .constraints
            .iter()
            .filter_map(|c| Constraint::parse(c).ok())
            .collect(),
        preferences: placement
            .spread_descriptors()
            .iter()
            .filter_map(|d| Preference::spread(d).ok())
            .collect(),
        platforms,
        reserve_nano_cpus: reservations.nano_cpus,
        reserve_memory: reservations.memory_bytes,
        host_ports: crate::tasks::host_ports(svc.spec.endpoint_spec.as_ref())
            .into_iter()
            .filter(|(_, published, _)| *published > 0)
            .map(|(proto, published, _)| {
                let p = if proto == "udp" {
                    berth_scheduler::Protocol::Udp
                } else if proto == "sctp" {
                    berth_scheduler::Protocol::Sctp
                } else {
                    berth_scheduler::Protocol::Tcp
                };
                (p, published)
            })
            .collect(),
        max_replicas_per_node: placement.max_replicas,
        strategy: match svc.spec.labels.get(STRATEGY_LABEL).map(String::as_str) {
            Some("binpack") => Strategy::Binpack,
            _ => Strategy::Spread,
        },
    }
}

/// Whether a node passes the filters that do not depend on what already runs there.
pub fn static_fit(n: &Node, req: &TaskRequest) -> bool {
    match berth_scheduler::filter_reason(&node_info(n), req) {
        None => true,
        Some(FilterFailure::Resources { .. }) | Some(FilterFailure::MaxReplicas { .. }) => true,
        Some(_) => false,
    }
}

/// Counts what each node already holds: its live tasks, their reservations.
fn nodes_with_load(state: &State, plan: &Plan) -> (Vec<NodeInfo>, BTreeMap<String, usize>) {
    let mut infos: Vec<NodeInfo> = state.nodes.values().map(node_info).collect();
    let index: BTreeMap<String, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), i))
        .collect();
    let stopping: std::collections::HashSet<&str> = plan
        .tasks
        .iter()
        .filter_map(|c| match c {
            TaskChange::Desire { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut count = |t: &Task| {
        let Some(&i) = index.get(&t.node_id) else {
            return;
        };
        let n = &mut infos[i];
        n.tasks_total += 1;
        *n.service_tasks.entry(t.service_id.clone()).or_default() += 1;
        if let Some(r) = t
            .spec
            .resources
            .as_ref()
            .and_then(|r| r.reservations.as_ref())
        {
            n.reserved_nano_cpus += r.nano_cpus;
            n.reserved_memory += r.memory_bytes;
        }
    };
    for t in state.tasks.values() {
        let placed = t.live() && !t.node_id.is_empty() && t.status.state >= TaskState::Assigned;
        if placed && !stopping.contains(t.id.as_str()) {
            count(t);
        }
    }
    (infos, index)
}

/// Places the plan's new tasks and the stored tasks still waiting for a node.
pub fn schedule(state: &State, plan: &mut Plan) {
    let (mut infos, index) = nodes_with_load(state, plan);
    let stopping: std::collections::HashSet<String> = plan
        .tasks
        .iter()
        .filter_map(|c| match c {
            TaskChange::Desire { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    // Waiting tasks per service: (stored task id | index into the plan, preassigned node).
    let mut waiting: BTreeMap<String, Vec<Waiting>> = BTreeMap::new();
    for t in state.tasks.values() {
        if t.desired_state <= TaskState::Running
            && t.status.state <= TaskState::Pending
            && !stopping.contains(&t.id)
        {
            waiting
                .entry(t.service_id.clone())
                .or_default()
                .push(Waiting::Stored {
                    id: t.id.clone(),
                    node_id: t.node_id.clone(),
                    state: t.status.state,
                    message: t.status.message.clone(),
                });
        }
    }
    for (i, c) in plan.tasks.iter().enumerate() {
        if let TaskChange::Create(t) = c {
            waiting
                .entry(t.service_id.clone())
                .or_default()
                .push(Waiting::New(i));
        }
    }
    let mut decisions: Vec<(Waiting, Result<String, String>)> = Vec::new();
    for (service_id, ws) in waiting {
        let Some(svc) = state.services.get(&service_id) else {
            continue;
        };
        let req = request(svc);
        let (pinned, free): (Vec<Waiting>, Vec<Waiting>) = ws.into_iter().partition(|w| {
            !match w {
                Waiting::Stored { node_id, .. } => node_id.clone(),
                Waiting::New(i) => match &plan.tasks[*i] {
                    TaskChange::Create(t) => t.node_id.clone(),
                    _ => String::new(),
                },
            }
            .is_empty()
        });
        for w in pinned {
            let node_id = match &w {
                Waiting::Stored { node_id, .. } => node_id.clone(),
                Waiting::New(i) => match &plan.tasks[*i] {
                    TaskChange::Create(t) => t.node_id.clone(),
                    _ => continue,
                },
            };
            let verdict = match index.get(&node_id) {
                None => Err(format!("node {node_id} is not in the swarm")),
                Some(&i) => match berth_scheduler::filter_reason(&infos[i], &req) {
                    None => {
                        commit(&mut infos[i], &req);
                        Ok(node_id)
                    }
                    Some(f) => Err(format!("no suitable node ({f})")),
                },
            };
            decisions.push((w, verdict));
        }
        if free.is_empty() {
            continue;
        }
        let placed = berth_scheduler::place(&mut infos, &req, free.len());
        let mut nodes = placed.assigned.into_iter();
        let reason = placed
            .reason
            .unwrap_or_else(|| "no suitable node".to_owned());
        for w in free {
            let verdict = match nodes.next() {
                Some(i) => Ok(infos[i].id.clone()),
                None => Err(reason.clone()),
            };
            decisions.push((w, verdict));
        }
    }
    for (w, verdict) in decisions {
        let (state_to, node_id, message) = match verdict {
            Ok(n) => (
                TaskState::Assigned,
                n,
                "scheduler assigned task to node".to_owned(),
            ),
            Err(why) => (TaskState::Pending, String::new(), why),
        };
        match w {
            Waiting::New(i) => {
                if let TaskChange::Create(t) = &mut plan.tasks[i] {
                    if !node_id.is_empty() || t.slot > 0 {
                        t.node_id = node_id;
                    }
                    t.status.state = state_to;
                    t.status.message = message;
                }
            }
            Waiting::Stored {
                id,
                node_id: was,
                state,
                message: old,
            } => {
                if state == state_to && old == message {
                    continue;
                }
                let node_id = if node_id.is_empty() { was } else { node_id };
                plan.tasks.push(TaskChange::Assign {
                    id,
                    node_id,
                    state: state_to,
                    message,
                });
            }
        }
    }
}

/// Records a task of `req` on a node (a pinned task, placed without `place`).
fn commit(n: &mut NodeInfo, req: &TaskRequest) {
    n.tasks_total += 1;
    *n.service_tasks.entry(req.service_id.clone()).or_default() += 1;
    n.reserved_nano_cpus += req.reserve_nano_cpus;
    n.reserved_memory += req.reserve_memory;
    n.host_ports.extend(req.host_ports.iter().copied());
}

enum Waiting {
    Stored {
        id: String,
        node_id: String,
        state: TaskState,
        message: String,
    },
    New(usize),
}
