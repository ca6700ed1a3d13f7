//! The orchestrators on a state built in memory: plans are applied like committed entries
//! and agents are simulated by status changes.

use chrono::{Duration, Utc};

use super::plan;
use crate::ca::Role;
use crate::objects::{Availability, Description, Node, NodeState};
use crate::state::{Command, Op, State};
use crate::tasks::{
    Replicated, Service, ServiceMode, ServiceSpec, TaskChange, TaskState, TaskStatus, TaskTemplate,
};

struct Sim {
    state: State,
    index: u64,
    now: chrono::DateTime<Utc>,
}

impl Sim {
    fn new(nodes: usize) -> Sim {
        let mut s = Sim {
            state: State::default(),
            index: 0,
            now: Utc::now(),
        };
        for i in 1..=nodes {
            let mut n = Node::joined(
                format!("n{i}"),
                Role::Worker,
                Availability::Active,
                Description {
                    hostname: format!("h{i}"),
                    os: "linux".into(),
                    architecture: "x86_64".into(),
                    nano_cpus: 2_000_000_000,
                    memory_bytes: 1 << 33,
                    ..Default::default()
                },
            );
            n.state = NodeState::Ready;
            s.apply(Op::PutNode {
                version: None,
                node: Box::new(n),
            });
        }
        s
    }

    fn apply(&mut self, op: Op) {
        self.index += 1;
        let at = self.now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.state.apply(self.index, &Command { at, op });
    }

    fn service(&mut self, replicas: u64, args: &str) -> String {
        let svc = Service {
            id: "svc1".into(),
            meta: Default::default(),
            spec: spec(replicas, args),
            previous_spec: None,
            spec_version: 0,
            update_status: None,
            job_iteration: 0,
            virtual_ips: Vec::new(),
            ports: Vec::new(),
        };
        self.apply(Op::PutService {
            version: None,
            service: Box::new(svc),
            new_spec: true,
        });
        "svc1".into()
    }

    /// One orchestration round, committed.
    fn round(&mut self) -> usize {
        let p = plan(&self.state, self.now);
        let n = p.tasks.len() + p.rollouts.len();
        for r in p.rollouts {
            self.apply(Op::Rollout(Box::new(r)));
        }
        if !p.tasks.is_empty() {
            self.apply(Op::Tasks(p.tasks));
        }
        n
    }

    /// Agents: every assigned task runs; every task told to stop stops.
    fn agents(&mut self, fail_args: Option<&str>) {
        let mut changes = Vec::new();
        for t in self.state.tasks.values() {
            let args = t
                .spec
                .container_spec
                .as_ref()
                .and_then(|c| c.get("Args"))
                .map(|a| a.to_string())
                .unwrap_or_default();
            let down = self
                .state
                .nodes
                .get(&t.node_id)
                .is_none_or(|n| n.state == NodeState::Down);
            if down {
                continue;
            }
            let state = if t.desired_state > TaskState::Running && !t.status.state.terminal() {
                TaskState::Shutdown
            } else if t.status.state == TaskState::Assigned {
                if fail_args.is_some_and(|f| args.contains(f)) {
                    TaskState::Failed
                } else {
                    TaskState::Running
                }
            } else {
                continue;
            };
            changes.push(TaskChange::Status {
                id: t.id.clone(),
                node_id: t.node_id.clone(),
                status: TaskStatus {
                    timestamp: self.now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    state,
                    message: String::new(),
                    err: String::new(),
                    container_id: String::new(),
                    pid: 0,
                    exit_code: 0,
                },
            });
        }
        if !changes.is_empty() {
            self.apply(Op::Tasks(changes));
        }
    }

    /// Rounds and agent steps until nothing changed for 10 s (time advancing 1 s per step;
    /// the default restart delay is 5 s).
    fn settle(&mut self, fail_args: Option<&str>) {
        let mut quiet = 0;
        for _ in 0..120 {
            let before = self.index;
            self.round();
            self.agents(fail_args);
            self.now += Duration::seconds(1);
            quiet = if self.index == before { quiet + 1 } else { 0 };
            if quiet >= 10 {
                return;
            }
        }
    }

    fn running_per_node(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for t in self.state.tasks.values() {
            if t.status.state == TaskState::Running && t.desired_state == TaskState::Running {
                *m.entry(t.node_id.clone()).or_default() += 1;
            }
        }
        m
    }
}

fn spec(replicas: u64, args: &str) -> ServiceSpec {
    ServiceSpec {
        name: "web".into(),
        task_template: TaskTemplate {
            container_spec: Some(serde_json::json!({ "Image": "busybox", "Args": [args] })),
            ..Default::default()
        },
        mode: ServiceMode {
            replicated: Some(Replicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn replicas_spread_evenly_and_follow_scaling() {
    let mut sim = Sim::new(3);
    sim.service(6, "a");
    sim.settle(None);
    let per = sim.running_per_node();
    assert_eq!(
        per.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per:?}"
    );
    let mut svc = sim.state.services["svc1"].clone();
    svc.spec = spec(3, "a");
    sim.apply(Op::PutService {
        version: Some(svc.meta.version),
        service: Box::new(svc),
        new_spec: false,
    });
    sim.settle(None);
    let per = sim.running_per_node();
    assert_eq!(
        per.values().copied().collect::<Vec<_>>(),
        vec![1, 1, 1],
        "{per:?}"
    );
}

#[test]
fn a_down_node_has_its_tasks_replaced_once() {
    let mut sim = Sim::new(3);
    sim.service(6, "a");
    sim.settle(None);
    sim.apply(Op::NodeStatus {
        id: "n3".into(),
        state: NodeState::Down,
        message: "heartbeat failure".into(),
        addr: None,
        description: None,
    });
    sim.settle(None);
    let per = sim.running_per_node();
    assert_eq!(per.get("n3"), None, "{per:?}");
    assert_eq!(per.values().sum::<usize>(), 6, "{per:?}");
    // It returns: nothing more is started.
    sim.apply(Op::NodeStatus {
        id: "n3".into(),
        state: NodeState::Ready,
        message: String::new(),
        addr: None,
        description: None,
    });
    sim.settle(None);
    let live = sim
        .state
        .tasks
        .values()
        .filter(|t| t.desired_state == TaskState::Running)
        .count();
    assert_eq!(live, 6);
}

#[test]
fn a_failed_task_is_restarted_after_the_delay() {
    let mut sim = Sim::new(1);
    sim.service(1, "a");
    sim.settle(None);
    let t = sim.state.tasks.values().next().expect("a task").clone();
    sim.apply(Op::Tasks(vec![TaskChange::Status {
        id: t.id.clone(),
        node_id: t.node_id.clone(),
        status: TaskStatus {
            timestamp: sim.now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            state: TaskState::Failed,
            message: "failed".into(),
            err: "task: non-zero exit (1)".into(),
            container_id: String::new(),
            pid: 0,
            exit_code: 1,
        },
    }]));
    sim.round();
    assert_eq!(sim.state.tasks.len(), 1, "restarted before the 5 s delay");
    sim.now += Duration::seconds(6);
    sim.settle(None);
    assert_eq!(sim.state.tasks.len(), 2);
    assert_eq!(sim.running_per_node().values().sum::<usize>(), 1);
}

#[test]
fn an_update_rolls_out_and_a_failing_one_rolls_back() {
    let mut sim = Sim::new(3);
    sim.service(3, "a");
    sim.settle(None);
    let mut svc = sim.state.services["svc1"].clone();
    svc.previous_spec = Some(svc.spec.clone());
    svc.spec = spec(3, "b");
    sim.apply(Op::PutService {
        version: Some(svc.meta.version),
        service: Box::new(svc),
        new_spec: true,
    });
    sim.settle(None);
    let svc = &sim.state.services["svc1"];
    assert_eq!(
        svc.update_status.as_ref().map(|s| s.state.as_str()),
        Some("completed")
    );
    assert_eq!(sim.running_per_node().values().sum::<usize>(), 3);
    assert!(sim
        .state
        .tasks
        .values()
        .filter(|t| t.desired_state == TaskState::Running)
        .all(|t| t.spec == svc.spec.task_template));

    let mut svc = sim.state.services["svc1"].clone();
    svc.previous_spec = Some(svc.spec.clone());
    svc.spec = spec(3, "bad");
    svc.spec.update_config = Some(crate::tasks::UpdateConfig {
        parallelism: 1,
        failure_action: Some("rollback".into()),
        ..Default::default()
    });
    sim.apply(Op::PutService {
        version: Some(svc.meta.version),
        service: Box::new(svc),
        new_spec: true,
    });
    sim.settle(Some("bad"));
    let svc = &sim.state.services["svc1"];
    assert_eq!(
        svc.update_status.as_ref().map(|s| s.state.as_str()),
        Some("rollback_completed"),
        "{:?}",
        svc.update_status
    );
    assert_eq!(sim.running_per_node().values().sum::<usize>(), 3);
}
