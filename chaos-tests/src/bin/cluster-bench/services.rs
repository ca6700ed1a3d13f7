//! The services benchmark: 3 nodes (1 manager, 2 workers), the Engine API on the manager.
//!
//! - `service create` of N replicas → every task running, and `service rm` → no task
//!   container left on any node (each node's own `/containers/json`);
//! - a rolling update of 30 replicas, parallelism 5 (the engines' default monitor and
//!   delay): `POST /services/{id}/update` → `UpdateStatus.State` "completed" with every task
//!   of the new spec running;
//! - kill -9 of a worker's daemon → all its tasks running on the other nodes.
//!
//! Both engines get the same request bodies. dockerd tries a registry pull for every task
//! whose image is named by tag; there is no registry here, so it runs with
//! `DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1` (its own switch to use the local image), the way
//! `--no-resolve-image` makes the CLI skip its lookup for both.

use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, swarm, Cluster, Host};
use serde_json::{json, Value};

use super::{check_stop, log, select, summary, Bench, Conn};

const IMAGE: &str = "busybox:latest";

fn conn(h: &Host) -> Result<Conn, String> {
    Conn::connect(&h.socket(), Duration::from_secs(30)).map_err(|e| e.to_string())
}

fn service_body(name: &str, replicas: u64, update: Option<Value>) -> Value {
    let mut b = json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Args": ["sleep", "86400"],
                "StopGracePeriod": 1_000_000_000u64,
            },
            "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    });
    if let Some(u) = update {
        b["UpdateConfig"] = u;
    }
    b
}

/// Tasks of `service` meant to run: (node id, state).
fn tasks(c: &mut Conn, service: &str) -> Result<Vec<(String, String)>, String> {
    let filters =
        format!(r#"{{"service":{{"{service}":true}},"desired-state":{{"running":true}}}}"#);
    let path = format!("/tasks?filters={}", percent(&filters));
    let v = c.json("GET", &path, None)?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["NodeID"].as_str().unwrap_or("").to_owned(),
                t["Status"]["State"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
}

fn running(c: &mut Conn, service: &str) -> usize {
    tasks(c, service)
        .map(|t| t.iter().filter(|(_, s)| s == "running").count())
        .unwrap_or(0)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Task containers of `service` (any state) on host `h`.
fn containers_on(h: &Host, service: &str) -> usize {
    let filters = format!(r#"{{"label":["com.docker.swarm.service.name={service}"]}}"#);
    conn(h)
        .and_then(|mut c| {
            c.json(
                "GET",
                &format!("/containers/json?all=1&filters={}", percent(&filters)),
                None,
            )
        })
        .map(|v| v.as_array().map_or(0, Vec::len))
        .unwrap_or(usize::MAX)
}

/// Polls `f` every 50 ms until it holds: the time it took, or an error after `limit`.
fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Result<f64, String> {
    let t = Instant::now();
    while t.elapsed() < limit {
        check_stop();
        if f() {
            return Ok(t.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what}: not within {limit:?}"))
}

impl Bench<'_> {
    /// The services part of the benchmark, on a fresh 3-node cluster.
    pub(crate) fn services(&mut self) {
        log(&format!(
            "{}: services on 3 nodes (1 manager, 2 workers)",
            self.engine.name()
        ));
        std::env::set_var("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1");
        select(self.engine, self.dockerd);
        let c = Cluster::new(3);
        for h in c.hosts() {
            h.import_busybox();
        }
        swarm::form(&c, 1, 2);
        self.version(c.host(0));
        let n = self.o.replicas;
        if let Err(e) = self.create_and_remove(&c, n) {
            self.problem("service create/rm", e);
        }
        check_stop();
        if let Err(e) = self.rolling_update(&c) {
            self.problem("rolling update", e);
        }
        check_stop();
        if let Err(e) = self.worker_kill(&c) {
            self.problem("worker kill -9", e);
        }
    }

    fn create_and_remove(&mut self, c: &Cluster, n: u64) -> Result<(), String> {
        let m = c.host(0);
        let mut api = conn(m)?;
        let mut create = Vec::new();
        let mut remove = Vec::new();
        for round in 0..self.o.rounds {
            let name = format!("bench{round}");
            log(&format!(
                "  {n} replicas: create → running, rm → gone (round {})",
                round + 1
            ));
            let t = Instant::now();
            api.json(
                "POST",
                "/services/create",
                Some(&service_body(&name, n, None)),
            )?;
            let limit = Duration::from_secs(60 + n);
            until(limit, "all replicas running", || {
                running(&mut api, &name) == n as usize
            })?;
            let up = t.elapsed().as_secs_f64();
            log(&format!("    running in {up:.2} s"));
            create.push(up);
            let t = Instant::now();
            api.json("DELETE", &format!("/services/{name}"), None)?;
            until(limit, "every task container removed", || {
                c.hosts().iter().all(|h| containers_on(h, &name) == 0)
            })?;
            let gone = t.elapsed().as_secs_f64();
            log(&format!("    removed in {gone:.2} s"));
            remove.push(gone);
        }
        self.out.insert(
            "services".into(),
            json!({"replicas": n, "create_running_s": summary(&create),
                   "rm_gone_s": summary(&remove)}),
        );
        Ok(())
    }

    fn rolling_update(&mut self, c: &Cluster) -> Result<(), String> {
        let m = c.host(0);
        let mut api = conn(m)?;
        let n = 30u64.min(self.o.replicas.max(6));
        let update = json!({"Parallelism": 5, "FailureAction": "pause", "Order": "stop-first"});
        api.json(
            "POST",
            "/services/create",
            Some(&service_body("rolling", n, Some(update))),
        )?;
        until(
            Duration::from_secs(120),
            "rolling: replicas running",
            || running(&mut api, "rolling") == n as usize,
        )?;
        log(&format!("  rolling update of {n} replicas, parallelism 5"));
        let svc = api.json("GET", "/services/rolling", None)?;
        let version = svc["Version"]["Index"].as_u64().ok_or("no Version.Index")?;
        let mut spec = svc["Spec"].clone();
        spec["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["ROLL=1"]);
        let t = Instant::now();
        api.json(
            "POST",
            &format!("/services/rolling/update?version={version}"),
            Some(&spec),
        )?;
        until(Duration::from_secs(300), "update completed", || {
            let state = api
                .json("GET", "/services/rolling", None)
                .map(|s| s["UpdateStatus"]["State"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            state == "completed" && running(&mut api, "rolling") == n as usize
        })?;
        let took = t.elapsed().as_secs_f64();
        log(&format!("    completed in {took:.2} s"));
        self.out.insert(
            "rolling_update".into(),
            json!({"replicas": n, "parallelism": 5, "completed_s": took}),
        );
        Ok(())
    }

    /// With the rolling service's tasks spread over the 3 nodes: kill -9 a worker's daemon.
    fn worker_kill(&mut self, c: &Cluster) -> Result<(), String> {
        let m = c.host(0);
        let w = c.host(2);
        let mut api = conn(m)?;
        let wid = swarm::node_id(w);
        let t = tasks(&mut api, "rolling")?;
        let n = t.len();
        let on_w = t.iter().filter(|(node, _)| *node == wid).count();
        if on_w == 0 {
            return Err("no task on the worker to kill".into());
        }
        log(&format!(
            "  kill -9 of {} (running {on_w} of {n} tasks)",
            w.hostname()
        ));
        w.kill9();
        let took = until(Duration::from_secs(120), "tasks replaced", || {
            tasks(&mut api, "rolling").is_ok_and(|t| {
                t.iter()
                    .filter(|(node, s)| s == "running" && *node != wid)
                    .count()
                    == n
            })
        })?;
        log(&format!("    all {n} running elsewhere after {took:.2} s"));
        self.out.insert(
            "worker_kill".into(),
            json!({"tasks_on_worker": on_w, "replaced_s": took}),
        );
        // Leave the cluster whole for whatever runs next.
        w.start();
        eventually(Duration::from_secs(60), || swarm::converged(m, 3, 1));
        let _ = api.json("DELETE", "/services/rolling", None);
        Ok(())
    }
}
