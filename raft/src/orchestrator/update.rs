//! Rolling updates and rollbacks: tasks whose spec differs from the service's are replaced
//! group by group, `Parallelism` at a time with `Delay` between batches, stop-first or
//! start-first; failures of new tasks beyond `MaxFailureRatio` pause the rollout, roll it
//! back, or are ignored (`FailureAction`).

use std::collections::BTreeMap;

use super::reconcile::{node_keeps, parse_time, Group, Round};
use crate::tasks::{RolloutChange, Service, Task, TaskState, UpdateConfig, UpdateStatus};

/// Docker's defaults for a service created without an update config.
fn config(svc: &Service, rolling_back: bool) -> UpdateConfig {
    let given = if rolling_back {
        svc.spec.rollback_config.clone()
    } else {
        svc.spec.update_config.clone()
    };
    given.unwrap_or(UpdateConfig {
        parallelism: 1,
        ..Default::default()
    })
}

/// A task made from the service's current spec: its template, and its endpoint (a task
/// carries the ingress address and host ports it was made with; swarmkit's dirty-task rule).
fn up_to_date(t: &Task, svc: &Service) -> bool {
    t.spec == svc.spec.task_template && t.endpoint_spec == svc.spec.endpoint_spec
}

/// One step of the rollout of `svc`, if its tasks are not all of its current spec.
pub fn roll(
    r: &mut Round<'_>,
    svc: &Service,
    wanted: &[Group],
    groups: &BTreeMap<Group, Vec<&Task>>,
    replaced: &[Group],
) {
    let status = svc.update_status.clone();
    let rolling_back = status.as_ref().is_some_and(|s| s.rolling_back());
    let cfg = config(svc, rolling_back);
    let (stale, in_flight) = survey(r, svc, wanted, groups, replaced);
    let now = r.now_string();
    if stale.is_empty() {
        if in_flight == 0 {
            complete(r, svc, status, now);
        }
        return;
    }
    let mut st = match status.clone() {
        Some(s) if s.active() || s.paused() => s,
        _ => UpdateStatus {
            state: "updating".into(),
            started_at: now.clone(),
            completed_at: String::new(),
            message: "update in progress".into(),
            failures: 0,
            last_batch_at: String::new(),
        },
    };
    if st.paused() || stopped_by_failures(r, svc, groups, &cfg, &mut st, rolling_back, &now) {
        return;
    }
    let delay = cfg.delay.unwrap_or(0) as i64;
    if let Some(last) = parse_time(&st.last_batch_at) {
        if delay > 0 && r.now < last + chrono::Duration::nanoseconds(delay) {
            if Some(&st) != status.as_ref() {
                push(r, svc, st, false);
            }
            return;
        }
    }
    if start_batch(r, svc, &cfg, stale, in_flight) > 0 {
        st.last_batch_at = now;
    }
    if Some(&st) != status.as_ref() {
        push(r, svc, st, false);
    }
}

/// Walks the wanted groups: retires the old task of a group whose new one runs (start-first),
/// and returns the groups still on an old task (with that task) and how many replacements
/// are under way.
fn survey<'g>(
    r: &mut Round<'_>,
    svc: &Service,
    wanted: &'g [Group],
    groups: &'g BTreeMap<Group, Vec<&'g Task>>,
    replaced: &[Group],
) -> (Vec<(&'g Group, &'g Task)>, u64) {
    let nodes = &r.state.nodes;
    let mut stale: Vec<(&Group, &Task)> = Vec::new();
    let mut in_flight = 0u64;
    let empty = Vec::new();
    for g in wanted {
        if replaced.contains(g) {
            in_flight += 1;
            continue;
        }
        let ts = groups.get(g).unwrap_or(&empty);
        let live: Vec<&Task> = ts
            .iter()
            .copied()
            .filter(|t| t.live() && node_keeps(nodes, &t.node_id))
            .collect();
        let (up, old): (Vec<&Task>, Vec<&Task>) = live.iter().partition(|t| up_to_date(t, svc));
        if !up.is_empty() {
            if up.iter().any(|t| t.status.state == TaskState::Running) {
                // Start-first: the new task runs, the old one goes.
                for o in &old {
                    r.desire(o, TaskState::Shutdown);
                }
            } else {
                in_flight += 1;
            }
            continue;
        }
        let stopping = ts.iter().any(|t| {
            t.desired_state >= TaskState::Shutdown
                && !t.status.state.terminal()
                && node_keeps(nodes, &t.node_id)
        });
        if stopping {
            in_flight += 1;
        }
        if let Some(o) = old.first() {
            stale.push((g, *o));
        }
    }
    (stale, in_flight)
}

/// Marks an active rollout completed once every task is of the current spec.
fn complete(r: &mut Round<'_>, svc: &Service, status: Option<UpdateStatus>, now: String) {
    if let Some(s) = status.filter(|s| s.active()) {
        let done = UpdateStatus {
            state: if s.rolling_back() {
                "rollback_completed".into()
            } else {
                "completed".into()
            },
            completed_at: now,
            message: if s.rolling_back() {
                "rollback completed".into()
            } else {
                "update completed".into()
            },
            ..s
        };
        push(r, svc, done, false);
    }
}

/// Counts the failures of tasks of the spec being rolled out (since the rollout started) into
/// `st`; past `MaxFailureRatio` applies `FailureAction` (rollback or pause; `continue` goes
/// on). `rolling_back` is the service's recorded state, which `st` may not carry yet. True
/// when the rollout stops here.
fn stopped_by_failures(
    r: &mut Round<'_>,
    svc: &Service,
    groups: &BTreeMap<Group, Vec<&Task>>,
    cfg: &UpdateConfig,
    st: &mut UpdateStatus,
    rolling_back: bool,
    now: &str,
) -> bool {
    let started = parse_time(&st.started_at);
    let ours: Vec<&Task> = groups
        .values()
        .flatten()
        .copied()
        .filter(|t| up_to_date(t, svc))
        .filter(|t| started.is_none_or(|s| parse_time(&t.meta.created_at).is_none_or(|c| c >= s)))
        .collect();
    let failed: Vec<&Task> = ours
        .iter()
        .copied()
        .filter(|t| matches!(t.status.state, TaskState::Failed | TaskState::Rejected))
        .collect();
    st.failures = failed.len() as u64;
    let ratio = cfg.max_failure_ratio.unwrap_or(0.0);
    let Some(first) = failed.first() else {
        return false;
    };
    if failed.len() as f64 <= ratio * ours.len().max(1) as f64 {
        return false;
    }
    let why = format!("failure or early termination of task {}", first.id);
    match cfg.failure_action.as_deref() {
        Some("continue") => false,
        Some("rollback") if !rolling_back && svc.previous_spec.is_some() => {
            let rb = UpdateStatus {
                state: "rollback_started".into(),
                started_at: now.to_owned(),
                completed_at: String::new(),
                message: format!("update rolled back due to {why}"),
                failures: 0,
                last_batch_at: String::new(),
            };
            push(r, svc, rb, true);
            true
        }
        _ => {
            st.state = if rolling_back {
                "rollback_paused".into()
            } else {
                "paused".into()
            };
            st.message = format!(
                "{} paused due to {why}",
                if rolling_back { "rollback" } else { "update" }
            );
            push(r, svc, st.clone(), false);
            true
        }
    }
}

/// Replaces up to `Parallelism` (less those under way) stale groups: start-first creates the
/// new task, stop-first shuts the old one down. Returns how many were started.
fn start_batch(
    r: &mut Round<'_>,
    svc: &Service,
    cfg: &UpdateConfig,
    stale: Vec<(&Group, &Task)>,
    in_flight: u64,
) -> usize {
    let budget = if cfg.parallelism == 0 {
        stale.len() as u64
    } else {
        cfg.parallelism.saturating_sub(in_flight)
    };
    let mut picked = 0;
    for (g, old) in stale.into_iter().take(budget as usize) {
        if cfg.start_first() {
            r.create(svc, g);
        } else {
            r.desire(old, TaskState::Shutdown);
        }
        picked += 1;
    }
    picked
}

fn push(r: &mut Round<'_>, svc: &Service, status: UpdateStatus, rollback: bool) {
    r.plan.rollouts.push(RolloutChange {
        service_id: svc.id.clone(),
        version: svc.meta.version,
        status,
        rollback,
    });
}
