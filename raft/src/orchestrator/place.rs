//! The scheduler's step: tasks waiting for a node get one from `berth-scheduler`'s pure
//! placement (filters, then spread or binpack), or stay pending with the reason.

use std::collections::{BTreeMap, HashSet};

use berth_scheduler::{
    Availability as SAvailability, Constraint, FilterFailure, NodeInfo, Platform, Preference,
    Protocol, Role as SRole, Strategy, TaskRequest,
};

use super::reconcile::Plan;
use crate::ca::Role;
use crate::objects::{Availability, Node, NodeState};
use crate::state::State;
use crate::tasks::{Service, TaskChange, TaskState};

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
        host_ports: ports(svc.spec.endpoint_spec.as_ref()),
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

/// Host-mode ports of an endpoint spec, as the scheduler counts them.
fn ports(endpoint_spec: Option<&serde_json::Value>) -> Vec<(Protocol, u16)> {
    crate::tasks::host_ports(endpoint_spec)
        .into_iter()
        .filter(|(_, published, _)| *published > 0)
        .map(|(proto, published, _)| {
            let p = match proto.as_str() {
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            (p, published)
        })
        .collect()
}

/// Records one task of `service_id` on a node: what `place` does for the tasks it places,
/// done here for tasks already there and for tasks pinned to a node (global services).
fn load(n: &mut NodeInfo, service_id: &str, cpus: i64, memory: i64, ports: &[(Protocol, u16)]) {
    n.tasks_total += 1;
    *n.service_tasks.entry(service_id.to_owned()).or_default() += 1;
    n.reserved_nano_cpus += cpus;
    n.reserved_memory += memory;
    n.host_ports.extend(ports.iter().copied());
}

/// Every node with what it already holds: its placed live tasks (minus those this plan
/// stops), their reservations and host ports.
fn nodes_with_load(
    state: &State,
    stopping: &HashSet<&str>,
) -> (Vec<NodeInfo>, BTreeMap<String, usize>) {
    let mut infos: Vec<NodeInfo> = state.nodes.values().map(node_info).collect();
    let index: BTreeMap<String, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), i))
        .collect();
    for t in state.tasks.values() {
        let placed = t.live() && t.status.state >= TaskState::Assigned;
        let Some(&i) = index.get(&t.node_id) else {
            continue;
        };
        if !placed || stopping.contains(t.id.as_str()) {
            continue;
        }
        let r = t
            .spec
            .resources
            .as_ref()
            .and_then(|r| r.reservations.clone())
            .unwrap_or_default();
        let p = ports(t.endpoint_spec.as_ref());
        load(
            &mut infos[i],
            &t.service_id,
            r.nano_cpus,
            r.memory_bytes,
            &p,
        );
    }
    (infos, index)
}

/// A task waiting for a node: stored (with its current pending state and message) or new
/// in this plan (its index in `plan.tasks`); `node_id` is set for a task pinned to a node.
struct Waiting {
    stored: Option<(TaskState, String)>,
    id: String,
    plan_index: Option<usize>,
    node_id: String,
}

/// Places the plan's new tasks and the stored tasks still waiting for a node.
pub fn schedule(state: &State, plan: &mut Plan) {
    let stopping: HashSet<&str> = plan
        .tasks
        .iter()
        .filter_map(|c| match c {
            TaskChange::Desire { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let (mut infos, index) = nodes_with_load(state, &stopping);
    let waiting = waiting_by_service(state, plan, &stopping);
    let mut decisions: Vec<(Waiting, Result<String, String>)> = Vec::new();
    for (service_id, ws) in waiting {
        let Some(svc) = state.services.get(&service_id) else {
            continue;
        };
        let req = request(svc);
        let (pinned, free): (Vec<Waiting>, Vec<Waiting>) =
            ws.into_iter().partition(|w| !w.node_id.is_empty());
        for w in pinned {
            let verdict = place_pinned(&mut infos, &index, &req, &w.node_id);
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
        record_decision(plan, w, verdict);
    }
}

/// The tasks waiting for a node, by service: stored ones not yet assigned (and not being
/// stopped by this plan), then the plan's new ones.
fn waiting_by_service(
    state: &State,
    plan: &Plan,
    stopping: &HashSet<&str>,
) -> BTreeMap<String, Vec<Waiting>> {
    let mut waiting: BTreeMap<String, Vec<Waiting>> = BTreeMap::new();
    for t in state.tasks.values() {
        if t.desired_state <= TaskState::Running
            && t.status.state <= TaskState::Pending
            && !stopping.contains(t.id.as_str())
        {
            waiting
                .entry(t.service_id.clone())
                .or_default()
                .push(Waiting {
                    stored: Some((t.status.state, t.status.message.clone())),
                    id: t.id.clone(),
                    plan_index: None,
                    node_id: t.node_id.clone(),
                });
        }
    }
    for (i, c) in plan.tasks.iter().enumerate() {
        if let TaskChange::Create(t) = c {
            waiting
                .entry(t.service_id.clone())
                .or_default()
                .push(Waiting {
                    stored: None,
                    id: t.id.clone(),
                    plan_index: Some(i),
                    node_id: t.node_id.clone(),
                });
        }
    }
    waiting
}

/// A task already bound to `node_id`: that node if it is in the swarm and
/// passes the filters, counting the task's load on it; else why not.
fn place_pinned(
    infos: &mut [NodeInfo],
    index: &BTreeMap<String, usize>,
    req: &TaskRequest,
    node_id: &str,
) -> Result<String, String> {
    match index.get(node_id) {
        None => Err(format!("node {node_id} is not in the swarm")),
        Some(&i) => match berth_scheduler::filter_reason(&infos[i], req) {
            None => {
                let (cpus, mem) = (req.reserve_nano_cpus, req.reserve_memory);
                load(&mut infos[i], &req.service_id, cpus, mem, &req.host_ports);
                Ok(node_id.to_owned())
            }
            Some(f) => Err(format!("no suitable node ({f})")),
        },
    }
}

/// Writes a placement into the plan: a new task gets its node and state in place; a stored
/// task gets an `Assign` change, only when its state or message changes.
fn record_decision(plan: &mut Plan, w: Waiting, verdict: Result<String, String>) {
    let (state_to, node_id, message) = match verdict {
        Ok(n) => (
            TaskState::Assigned,
            n,
            "scheduler assigned task to node".to_owned(),
        ),
        // A pinned task keeps its node while it waits.
        Err(why) => (TaskState::Pending, w.node_id.clone(), why),
    };
    match (w.plan_index, w.stored) {
        (Some(i), _) => {
            if let TaskChange::Create(t) = &mut plan.tasks[i] {
                t.node_id = node_id;
                t.status.state = state_to;
                t.status.message = message;
            }
        }
        (None, Some((state, old))) => {
            if state != state_to || old != message {
                plan.tasks.push(TaskChange::Assign {
                    id: w.id,
                    node_id,
                    state: state_to,
                    message,
                });
            }
        }
        (None, None) => {}
    }
}
