//! A task's container: Docker's service `ContainerSpec` (and the task template's resources,
//! log driver and host-mode ports) turned into the engine's [`ContainerSpec`], with the
//! labels and name dockerd gives task containers.

use std::collections::BTreeMap;

use berth_raft::tasks::Task;
use serde_json::{json, Value};

use crate::container::model::{ContainerConfig, ContainerSpec, HostConfig, LogConfig, Ulimit};

pub use crate::container::model::LABEL_SWARM_TASK_ID as LABEL_TASK_ID;
pub const LABEL_SERVICE_ID: &str = "com.docker.swarm.service.id";

/// `<service>.<slot>.<task>` (replicated) or `<service>.<node>.<task>` (global), as dockerd
/// names task containers.
pub fn container_name(t: &Task) -> String {
    let middle = if t.slot > 0 {
        t.slot.to_string()
    } else {
        t.node_id.clone()
    };
    format!("{}.{}.{}", t.service_name, middle, t.id)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn string(v: Option<&Value>) -> String {
    v.and_then(|x| x.as_str()).unwrap_or("").to_owned()
}

/// The engine's spec of the container that runs `t` on node `node_id`.
pub fn container_spec(t: &Task, node_id: &str) -> ContainerSpec {
    let empty = json!({});
    let cs = t.spec.container_spec.as_ref().unwrap_or(&empty);
    let name = container_name(t);
    let labels = task_labels(t, node_id, cs, &name);
    ContainerSpec {
        name: Some(name),
        config: config(cs, labels),
        host_config: host_config(t, cs),
        endpoints: BTreeMap::new(),
    }
}

/// The service's container labels, with the ones dockerd adds to task containers.
fn task_labels(t: &Task, node_id: &str, cs: &Value, name: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = cs
        .get("Labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    for (k, v) in [
        (LABEL_SERVICE_ID, t.service_id.clone()),
        ("com.docker.swarm.service.name", t.service_name.clone()),
        (LABEL_TASK_ID, t.id.clone()),
        ("com.docker.swarm.task.name", name.to_owned()),
        ("com.docker.swarm.node.id", node_id.to_owned()),
        ("com.docker.swarm.task", String::new()),
    ] {
        labels.insert(k.to_owned(), v);
    }
    labels
}

/// The container's config from the service's `ContainerSpec` (`cs`).
fn config(cs: &Value, labels: BTreeMap<String, String>) -> ContainerConfig {
    let grace_secs = cs
        .get("StopGracePeriod")
        .and_then(|g| g.as_i64())
        .map(|ns| ns / 1_000_000_000);
    ContainerConfig {
        hostname: string(cs.get("Hostname")),
        user: string(cs.get("User")),
        tty: cs.get("TTY").and_then(|v| v.as_bool()).unwrap_or(false),
        open_stdin: cs
            .get("OpenStdin")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        env: strings(cs.get("Env")),
        cmd: strings(cs.get("Args")),
        entrypoint: strings(cs.get("Command")),
        healthcheck: cs.get("Healthcheck").cloned(),
        image: string(cs.get("Image")),
        working_dir: string(cs.get("Dir")),
        labels,
        stop_signal: cs
            .get("StopSignal")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        stop_timeout: grace_secs,
        ..Default::default()
    }
}

/// The container's host config from the service's `ContainerSpec` (`cs`) and the task
/// template's resources, log driver and host-mode ports.
fn host_config(t: &Task, cs: &Value) -> HostConfig {
    let limits = t.spec.resources.as_ref().and_then(|r| r.limits.clone());
    let reservations = t
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.reservations.clone());
    let dns = cs.get("DNSConfig");
    HostConfig {
        network_mode: "default".into(),
        mounts: cs
            .get("Mounts")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default(),
        readonly_rootfs: cs
            .get("ReadOnly")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        init: cs.get("Init").and_then(|v| v.as_bool()),
        cap_add: strings(cs.get("CapabilityAdd")),
        cap_drop: strings(cs.get("CapabilityDrop")),
        group_add: strings(cs.get("Groups")),
        dns: strings(dns.and_then(|d| d.get("Nameservers"))),
        dns_search: strings(dns.and_then(|d| d.get("Search"))),
        dns_options: strings(dns.and_then(|d| d.get("Options"))),
        extra_hosts: extra_hosts(cs),
        ulimits: cs
            .get("Ulimits")
            .and_then(|u| serde_json::from_value::<Vec<Ulimit>>(u.clone()).ok())
            .unwrap_or_default(),
        nano_cpus: limits.as_ref().map(|l| l.nano_cpus).unwrap_or(0),
        memory: limits.as_ref().map(|l| l.memory_bytes).unwrap_or(0),
        pids_limit: limits.as_ref().map(|l| l.pids).filter(|p| *p > 0),
        memory_reservation: reservations.map(|r| r.memory_bytes).unwrap_or(0),
        log_config: log_config(t),
        port_bindings: host_ports(t),
        ..Default::default()
    }
}

/// Swarm's `Hosts` are "IP host..." lines; the engine's extra hosts are "host:IP".
fn extra_hosts(cs: &Value) -> Vec<String> {
    strings(cs.get("Hosts"))
        .iter()
        .flat_map(|line| {
            let mut parts = line.split_whitespace();
            let ip = parts.next().unwrap_or("").to_owned();
            parts.map(move |h| format!("{h}:{ip}")).collect::<Vec<_>>()
        })
        .collect()
}

/// The task template's log driver, if it names one.
fn log_config(t: &Task) -> LogConfig {
    t.spec
        .other
        .get("LogDriver")
        .map(|l| LogConfig {
            kind: string(l.get("Name")),
            config: l
                .get("Options")
                .and_then(|o| serde_json::from_value(o.clone()).ok())
                .unwrap_or_default(),
        })
        .unwrap_or_default()
}

/// Host-mode published ports of the service, as the engine's port bindings.
fn host_ports(t: &Task) -> Option<Value> {
    let ports = berth_raft::tasks::host_ports(t.endpoint_spec.as_ref());
    if ports.is_empty() {
        return None;
    }
    let mut bindings = serde_json::Map::new();
    for (proto, published, target) in ports {
        let host_port = if published == 0 {
            String::new()
        } else {
            published.to_string()
        };
        bindings.insert(
            format!("{target}/{proto}"),
            json!([{ "HostIp": "", "HostPort": host_port }]),
        );
    }
    Some(Value::Object(bindings))
}
