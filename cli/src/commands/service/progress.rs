//! Waiting for a service to converge after `create`, `update`, `scale` or `rollback`, with
//! docker's words, one line per change (what docker's attached display says, without the
//! cursor movements):
//!
//! ```text
//!  overall progress: 1 out of 2 tasks
//!  1/2: running
//!  verify: Waiting 5 seconds to verify that tasks are stable...
//!  verify: Service svc converged
//! ```
//!
//! Every 200 ms: `GET /services/{id}` (update status: paused → fail, an automatic rollback →
//! fail once it is done) and `GET /tasks?filters={"service":…,"_up-to-date":…}` (tasks of the
//! current spec). Converged = every slot (or node) has its running task, held for the
//! monitor period; jobs end when enough tasks completed. Tasks of the current spec that fail
//! again and again (at least three, and at least as many as desired) end the wait with their
//! error instead of waiting forever.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::client::{seg, Client, Query};
use crate::error::StatusError;

/// How far a service got, from its spec and the tasks of that spec.
#[derive(Debug, Default, PartialEq)]
pub struct Snapshot {
    pub desired: u64,
    pub running: u64,
    pub completed: u64,
    pub job: bool,
    /// Slot (or node) → state of its newest task.
    pub slots: BTreeMap<String, String>,
    /// Failed or rejected tasks: (ID, error).
    pub failed: Vec<(String, String)>,
}

impl Snapshot {
    pub fn converged(&self) -> bool {
        if self.job {
            return self.desired > 0 && self.completed >= self.desired;
        }
        self.running == self.desired
    }
}

fn desired_state_active(t: &Value) -> bool {
    matches!(
        t["DesiredState"].as_str(),
        Some("running" | "ready" | "complete" | "accepted" | "new" | "pending" | "assigned")
    )
}

/// The snapshot of `service` given the up-to-date tasks of its current spec.
pub fn snapshot(service: &Value, tasks: &[Value]) -> Snapshot {
    let mode = &service["Spec"]["Mode"];
    let mut s = Snapshot::default();
    let mut newest: BTreeMap<String, (&str, &Value)> = BTreeMap::new();
    for t in tasks {
        let state = t["Status"]["State"].as_str().unwrap_or("");
        if matches!(state, "failed" | "rejected") {
            let err = t["Status"]["Err"]
                .as_str()
                .unwrap_or(t["Status"]["Message"].as_str().unwrap_or(""));
            s.failed
                .push((t["ID"].as_str().unwrap_or("").to_string(), err.to_string()));
        }
        if state == "complete" {
            s.completed += 1;
        }
        if !desired_state_active(t) {
            continue;
        }
        let slot = match t["Slot"].as_u64().filter(|n| *n > 0) {
            Some(n) => n.to_string(),
            None => t["NodeID"].as_str().unwrap_or("").to_string(),
        };
        let stamp = t["Status"]["Timestamp"].as_str().unwrap_or("");
        if newest.get(&slot).is_none_or(|(ts, _)| *ts <= stamp) {
            newest.insert(slot, (stamp, t));
        }
    }
    for (slot, (_, t)) in &newest {
        let state = t["Status"]["State"].as_str().unwrap_or("").to_string();
        if state == "running" && t["DesiredState"] == "running" {
            s.running += 1;
        }
        s.slots.insert(slot.clone(), state);
    }
    if let Some(r) = mode.get("Replicated") {
        s.desired = r["Replicas"].as_u64().unwrap_or(0);
    } else if let Some(j) = mode.get("ReplicatedJob") {
        s.job = true;
        s.desired = j["TotalCompletions"].as_u64().unwrap_or(0);
    } else if mode.get("GlobalJob").is_some() {
        s.job = true;
        s.desired = newest.len().max(s.completed as usize) as u64;
    } else {
        s.desired = newest.len() as u64;
    }
    s
}

/// The monitor period docker verifies a converged service for (5 s unless configured).
fn monitor(service: &Value) -> Duration {
    match service["Spec"]["UpdateConfig"]["Monitor"].as_i64() {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => Duration::from_secs(5),
    }
}

/// Prints lines only when they change.
struct Printer {
    quiet: bool,
    last: String,
    slots: BTreeMap<String, String>,
}

impl Printer {
    fn line(&mut self, text: String) {
        if !self.quiet && text != self.last {
            println!("{text}");
            self.last = text;
        }
    }

    fn slots(&mut self, s: &Snapshot) {
        for (slot, state) in &s.slots {
            if self.slots.get(slot) != Some(state) && !state.is_empty() {
                let label = if s.desired > 0 && slot.chars().all(|c| c.is_ascii_digit()) {
                    format!("{slot}/{}", s.desired)
                } else {
                    slot.chars().take(12).collect()
                };
                self.line(format!("{label}: {state}"));
                self.slots.insert(slot.clone(), state.clone());
            }
        }
    }
}

/// What the update status says about the wait: `Err` ends it.
fn check_update_status(
    service: &Value,
    rolled_back: &mut Option<String>,
    first: bool,
) -> Result<()> {
    let u = &service["UpdateStatus"];
    let state = u["State"].as_str().unwrap_or("");
    let message = u["Message"].as_str().unwrap_or("").to_string();
    match state {
        "paused" => {
            return Err(StatusError::new(1, format!("service update paused: {message}")).into())
        }
        "rollback_paused" => {
            return Err(StatusError::new(1, format!("service rollback paused: {message}")).into())
        }
        "rollback_started" if !first && !message.starts_with("manually requested") => {
            *rolled_back = Some(message)
        }
        _ => {}
    }
    Ok(())
}

/// Waits until service `id` converged (or its tasks keep failing); `quiet` prints nothing.
pub async fn wait(client: &Client, id: &str, quiet: bool) -> Result<()> {
    let mut p = Printer {
        quiet,
        last: String::new(),
        slots: BTreeMap::new(),
    };
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut old_failures: BTreeSet<String> = BTreeSet::new();
    let mut last_error = String::new();
    let mut rolled_back: Option<String> = None;
    let mut converged_at: Option<Instant> = None;
    let mut first = true;
    loop {
        let service: Value = client
            .get_json(&format!("/services/{}?insertDefaults=false", seg(id)))
            .await?;
        check_update_status(&service, &mut rolled_back, first)?;
        let filters = json!({"service": {id: true}, "_up-to-date": {"true": true}});
        let tasks: Vec<Value> = client
            .get_json(&Query::new().filters(&filters).to_path("/tasks"))
            .await?;
        let s = snapshot(&service, &tasks);
        for (tid, err) in &s.failed {
            // Failures from before this wait (a spec's history) are not this rollout's.
            if first {
                old_failures.insert(tid.clone());
            } else if !old_failures.contains(tid) && failed.insert(tid.clone()) {
                last_error = err.clone();
            }
        }
        first = false;
        let word = if s.job { "complete" } else { "tasks" };
        p.line(format!(
            "overall progress: {} out of {} {word}",
            if s.job { s.completed } else { s.running },
            s.desired
        ));
        p.slots(&s);
        if !s.converged() {
            converged_at = None;
            let n = failed.len() as u64;
            if n >= 3 && n >= s.desired {
                return Err(StatusError::new(
                    1,
                    format!("{n} tasks of service {id} failed: {last_error}"),
                )
                .into());
            }
        } else {
            if s.job {
                p.line("job complete".into());
                return Ok(());
            }
            let since = *converged_at.get_or_insert_with(Instant::now);
            let period = monitor(&service);
            let left = period.saturating_sub(since.elapsed());
            if left.is_zero() {
                if let Some(m) = rolled_back {
                    return Err(StatusError::new(1, format!("service rolled back: {m}")).into());
                }
                p.line(format!("verify: Service {id} converged"));
                return Ok(());
            }
            p.line(format!(
                "verify: Waiting {} seconds to verify that tasks are stable...",
                left.as_secs_f64().ceil() as u64
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, slot: u64, state: &str, desired: &str, ts: &str) -> Value {
        json!({"ID": id, "Slot": slot, "NodeID": "n1", "DesiredState": desired,
               "Status": {"State": state, "Timestamp": ts, "Err": if state == "failed" { "task: non-zero exit (1)" } else { "" }}})
    }

    #[test]
    fn replicated_convergence() {
        let svc = json!({"Spec": {"Mode": {"Replicated": {"Replicas": 2}}}});
        let tasks = vec![
            task("a", 1, "running", "running", "2026-01-01T00:00:01Z"),
            task("b", 2, "failed", "shutdown", "2026-01-01T00:00:01Z"),
            task("c", 2, "starting", "running", "2026-01-01T00:00:02Z"),
        ];
        let s = snapshot(&svc, &tasks);
        assert_eq!((s.desired, s.running, s.converged()), (2, 1, false));
        assert_eq!(s.slots.get("2").map(String::as_str), Some("starting"));
        assert_eq!(
            s.failed,
            vec![("b".to_string(), "task: non-zero exit (1)".to_string())]
        );
        let mut tasks = tasks;
        tasks[2]["Status"]["State"] = json!("running");
        assert!(snapshot(&svc, &tasks).converged());
    }

    #[test]
    fn global_and_jobs() {
        let svc = json!({"Spec": {"Mode": {"Global": {}}}});
        let mut t1 = task("a", 0, "running", "running", "1");
        t1["NodeID"] = json!("n1");
        let mut t2 = task("b", 0, "preparing", "running", "1");
        t2["NodeID"] = json!("n2");
        let s = snapshot(&svc, &[t1, t2]);
        assert_eq!((s.desired, s.running, s.converged()), (2, 1, false));
        let job = json!({"Spec": {"Mode": {"ReplicatedJob": {"TotalCompletions": 2, "MaxConcurrent": 2}}}});
        let done = vec![
            task("a", 1, "complete", "complete", "1"),
            task("b", 2, "complete", "complete", "1"),
        ];
        let s = snapshot(&job, &done);
        assert!(s.job && s.converged(), "{s:?}");
    }
}
