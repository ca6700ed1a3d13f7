//! Cluster mode as a docker user drives it: `swarm init/join`, `node ls`, `node inspect`,
//! `info`. Only the docker CLI's contract is used here, so the same helpers hold against
//! Docker itself. Nodes are told apart by hostname (`h1`…): each host has its own.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

use crate::{eventually, Cluster, Host};

/// The `node ls` format the tests read: ID, hostname, status, availability, manager status.
pub const NODE_LS_FORMAT: &str =
    "{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}";

/// What Docker answers (with a 503) when a worker is asked for cluster state.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager";

/// One line of `docker node ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub hostname: String,
    /// Ready, Down, Unknown, Disconnected.
    pub status: String,
    /// Active, Pause, Drain.
    pub availability: String,
    /// Leader, Reachable, Unreachable; empty for a worker.
    pub manager_status: String,
}

impl NodeRow {
    pub fn is_manager(&self) -> bool {
        !self.manager_status.is_empty()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// `docker swarm init --advertise-addr <ip> --listen-addr <ip>:2377` on `h`.
pub fn init(h: &Host) {
    let listen = format!("{}:2377", h.ip());
    h.docker_ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        h.ip(),
        "--listen-addr",
        &listen,
    ]);
}

/// `docker swarm join-token -q worker|manager`.
pub fn join_token(manager: &Host, role: &str) -> String {
    manager.docker_ok(&["swarm", "join-token", "-q", role])
}

/// `docker swarm join --token T <manager ip>:2377 --advertise-addr <ip>` on `h`.
pub fn join(h: &Host, token: &str, manager: &Host) -> Output {
    let remote = format!("{}:2377", manager.ip());
    h.docker(&[
        "swarm",
        "join",
        "--token",
        token,
        &remote,
        "--advertise-addr",
        h.ip(),
    ])
}

pub fn join_ok(h: &Host, token: &str, manager: &Host) {
    let o = join(h, token, manager);
    assert!(
        o.status.success(),
        "{} could not join through {}: {}\n{}",
        h.hostname(),
        manager.hostname(),
        stderr(&o),
        h.log_tail()
    );
}

/// `docker node ls` on `h`: its rows, or the CLI's error.
pub fn node_ls(h: &Host) -> Result<Vec<NodeRow>, String> {
    let o = h.docker(&["node", "ls", "--format", NODE_LS_FORMAT]);
    if !o.status.success() {
        return Err(stderr(&o));
    }
    Ok(stdout(&o).lines().filter_map(parse_row).collect())
}

fn parse_row(line: &str) -> Option<NodeRow> {
    let f: Vec<&str> = line.split_whitespace().collect();
    Some(NodeRow {
        id: f.first()?.to_string(),
        hostname: f.get(1)?.to_string(),
        status: f.get(2)?.to_string(),
        availability: f.get(3)?.to_string(),
        manager_status: f.get(4).unwrap_or(&"").to_string(),
    })
}

/// `docker info`'s (LocalNodeState, ControlAvailable) on `h`, e.g. ("active", "true").
pub fn local_state(h: &Host) -> (String, String) {
    let s = h.docker_ok(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    let (state, control) = s.split_once(' ').unwrap_or((&s, ""));
    (state.to_owned(), control.to_owned())
}

/// This host's own node ID (`docker info`'s Swarm.NodeID).
pub fn node_id(h: &Host) -> String {
    h.docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
}

/// The labels of `node` as `h` sees them (`docker node inspect`), or the CLI's error.
pub fn labels(h: &Host, node: &str) -> Result<BTreeMap<String, String>, String> {
    let o = h.docker(&["node", "inspect", "--format", "{{json .Spec.Labels}}", node]);
    if !o.status.success() {
        return Err(stderr(&o));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).map_err(|e| e.to_string())?;
    let m = v.as_object().cloned().unwrap_or_default();
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect())
}

/// The hostname of the leader in `h`'s `node ls`, if it shows exactly one.
pub fn leader(h: &Host) -> Option<String> {
    let rows = node_ls(h).ok()?;
    let leaders: Vec<&NodeRow> = rows
        .iter()
        .filter(|r| r.manager_status == "Leader")
        .collect();
    match leaders[..] {
        [l] => Some(l.hostname.clone()),
        _ => None,
    }
}

/// Whether `h`'s `node ls` shows `nodes` nodes, all Ready and Active, `managers` of them
/// managers (Leader or Reachable) and exactly one Leader.
pub fn converged(h: &Host, nodes: usize, managers: usize) -> bool {
    let Ok(rows) = node_ls(h) else {
        return false;
    };
    let ready = rows
        .iter()
        .all(|r| r.status == "Ready" && r.availability == "Active");
    let count = |s: &str| rows.iter().filter(|r| r.manager_status == s).count();
    rows.len() == nodes
        && ready
        && count("Leader") == 1
        && count("Leader") + count("Reachable") == managers
}

/// Forms a cluster from the first `managers + workers` hosts: h1 inits, the next
/// `managers - 1` join as managers (one at a time, each Reachable before the next), the
/// rest as workers; returns once h1's `node ls` shows them all Ready (60 s at most).
pub fn form(c: &Cluster, managers: usize, workers: usize) {
    let first = c.host(0);
    init(first);
    let mtoken = join_token(first, "manager");
    let wtoken = join_token(first, "worker");
    for i in 1..managers {
        join_ok(c.host(i), &mtoken, first);
        let ok = eventually(Duration::from_secs(60), || converged(first, i + 1, i + 1));
        assert!(
            ok,
            "manager {} did not become Reachable: {:?}",
            i + 1,
            node_ls(first)
        );
    }
    for i in managers..managers + workers {
        join_ok(c.host(i), &wtoken, first);
    }
    let all = managers + workers;
    let ok = eventually(Duration::from_secs(60), || converged(first, all, managers));
    assert!(ok, "the cluster did not form: {:?}", node_ls(first));
}

/// The container of `service`'s task on `h`, if one runs there.
pub fn task_container(h: &Host, service: &str) -> Option<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let out = h.docker(&["ps", "-q", "--filter", &filter]);
    stdout(&out).lines().next().map(str::to_owned)
}

/// The IPv4 addresses `name` resolves to inside container `ctr` on `h` (busybox nslookup
/// against the embedded DNS server).
pub fn resolve(h: &Host, ctr: &str, name: &str) -> BTreeSet<String> {
    let out = h.docker(&["exec", ctr, "nslookup", "-type=a", name]);
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("Address"))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|a| !a.starts_with("127.0.0.11"))
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// `sh -c script` in container `ctr` on `h`; its stdout.
pub fn sh(h: &Host, ctr: &str, script: &str) -> String {
    stdout(&h.docker(&["exec", ctr, "sh", "-c", script]))
}

/// The last line of `GET http://<target>/` from `ctr`, over `tries` requests (a failed one
/// counts as ""). busybox's `nc` makes the request: the static busybox's `wget` crashes here.
pub fn served(h: &Host, ctr: &str, target: &str, tries: usize) -> Vec<String> {
    let script = format!("printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 {target} 80 | tail -n 1");
    (0..tries).map(|_| sh(h, ctr, &script)).collect()
}
