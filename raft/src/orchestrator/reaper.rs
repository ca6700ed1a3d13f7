//! The task reaper: tasks told to go are deleted once they have stopped (or their node is
//! gone or down), and each slot (or node, for global services) keeps at most the cluster's
//! `TaskHistoryRetentionLimit` tasks, oldest ended ones deleted first.

use std::collections::BTreeMap;

use super::reconcile::Plan;
use crate::objects::NodeState;
use crate::state::State;
use crate::tasks::{Task, TaskChange, TaskState};

pub fn reap(state: &State, plan: &mut Plan) {
    let limit = state
        .cluster
        .as_ref()
        .map(|c| c.spec.orchestration.task_history_retention_limit)
        .unwrap_or(5)
        .max(1) as usize;
    let gone_or_down = |t: &Task| {
        t.node_id.is_empty()
            || state
                .nodes
                .get(&t.node_id)
                .is_none_or(|n| n.state == NodeState::Down)
    };
    let mut groups: BTreeMap<(&str, u64, &str), Vec<&Task>> = BTreeMap::new();
    for t in state.tasks.values() {
        if t.desired_state >= TaskState::Remove {
            if t.status.state.terminal() || gone_or_down(t) {
                plan.tasks.push(TaskChange::Remove { id: t.id.clone() });
            }
            continue;
        }
        let node = if t.slot == 0 { t.node_id.as_str() } else { "" };
        groups
            .entry((&t.service_id, t.slot, node))
            .or_default()
            .push(t);
    }
    for ts in groups.values_mut() {
        if ts.len() <= limit {
            continue;
        }
        ts.sort_by(|a, b| a.meta.created_at.cmp(&b.meta.created_at));
        let mut extra = ts.len() - limit;
        for t in ts.iter() {
            if extra == 0 {
                break;
            }
            let ended = t.desired_state >= TaskState::Shutdown
                && (t.status.state.terminal() || gone_or_down(t));
            if ended {
                plan.tasks.push(TaskChange::Remove { id: t.id.clone() });
                extra -= 1;
            }
        }
    }
}
