//! The leader's orchestration loop: after every applied change (and at least four times a
//! second, for restart delays and rollout timing) it plans from the replicated state
//! ([`reconcile`], [`update`], [`reaper`]), places what waits for a node ([`place`]), and
//! commits the plan through Raft. Only the leader plans; a new leader picks up from the
//! committed state, so nothing of a rollout lives outside the store.

mod place;
mod reaper;
pub mod reconcile;
mod update;

use std::sync::Weak;
use std::time::Duration;

pub use place::{request, STRATEGY_LABEL};
pub use reconcile::Plan;

use crate::manager::{new_node_id, Manager};
use crate::state::{Op, State};

/// At most this many task changes per Raft entry.
const BATCH: usize = 500;

/// One planning round over `state` at `now` (pure: for tests and the loop alike).
pub fn plan(state: &State, now: chrono::DateTime<chrono::Utc>) -> Plan {
    let mut new_id = new_node_id;
    let round = reconcile::Round {
        state,
        now,
        new_id: &mut new_id,
        plan: Plan::default(),
    };
    let mut plan = round.run();
    place::schedule(state, &mut plan);
    plan
}

pub(crate) async fn run(mgr: Weak<Manager>) {
    let mut applied = match mgr.upgrade() {
        Some(m) => m.applied_watch(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = applied.changed() => {
                // Let a burst of entries (status reports) land before planning.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let Some(m) = mgr.upgrade() else { return };
        if m.stopped() {
            return;
        }
        if !m.is_leader() || m.read(|s| s.services.is_empty() && s.tasks.is_empty()) {
            continue;
        }
        let plan = m.read(|s| plan(s, chrono::Utc::now()));
        if plan.is_empty() {
            continue;
        }
        for r in plan.rollouts {
            if let Err(e) = m.propose(Op::Rollout(Box::new(r))).await {
                tracing::debug!(error = %e, "rollout step");
            }
        }
        let mut tasks = plan.tasks;
        while !tasks.is_empty() {
            let rest = tasks.split_off(tasks.len().min(BATCH));
            if let Err(e) = m.propose(Op::Tasks(tasks)).await {
                tracing::warn!(error = %e, "committing the orchestrators' task changes");
                break;
            }
            tasks = rest;
        }
    }
}

#[cfg(test)]
mod tests;
