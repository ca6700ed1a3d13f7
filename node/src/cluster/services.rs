//! Services and tasks at the API edge (`/services*`, `/tasks*`): Docker's JSON in, checked
//! and turned into the control plane's objects; the objects back out as Docker's JSON.

use std::collections::{BTreeMap, HashSet};

use berth_api::backend::{Filters, ServiceUpdateOptions};
use berth_api::error::{ApiError, ApiResult};
use berth_raft::manager::{new_node_id, Manager};
use berth_raft::objects::DataKind;
use berth_raft::state::{now, Op, State};
use berth_raft::tasks::{Mode, Service, ServiceSpec, Task, TaskState, TaskTemplate, UpdateStatus};
use serde_json::{json, Value};

use super::api_error;

/// Docker's rule for service names (a DNS label).
/// Swarm's rule: letters and digits, with `-` and `_` inside (stacks name their services
/// `<stack>_<service>`), at most 63 characters.
fn valid_name(name: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    name.len() <= 63
        && alnum(name.chars().next())
        && alnum(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where a service keeps the registry credentials `--with-registry-auth` sent (swarmkit's
/// `ContainerSpec.PullOptions.RegistryAuth`): handed to nodes with the task, never shown.
const PULL_OPTIONS: &str = "PullOptions";

/// The encoded registry credentials a spec carries, if any.
pub(super) fn registry_auth(tt: &TaskTemplate) -> Option<String> {
    let cs = tt.container_spec.as_ref()?;
    let auth = cs.get(PULL_OPTIONS)?.get("RegistryAuth")?.as_str()?;
    Some(auth.to_owned()).filter(|a| !a.is_empty())
}

/// Sets (or, with None or `{}`, clears) the registry credentials of a spec.
fn set_registry_auth(tt: &mut TaskTemplate, auth: Option<String>) {
    let auth = auth.filter(|a| berth_api::routes::images::decode_json_b64(a).is_some());
    if let Some(cs) = tt.container_spec.as_mut().and_then(|c| c.as_object_mut()) {
        match auth {
            Some(a) => {
                cs.insert(PULL_OPTIONS.into(), json!({ "RegistryAuth": a }));
            }
            None => {
                cs.remove(PULL_OPTIONS);
            }
        }
    }
}

/// Takes the credentials out of a spec as shown (`Spec`/`PreviousSpec` of a service, a
/// task's `Spec`).
pub(super) fn hide_registry_auth(spec: &mut Value) {
    if let Some(cs) = spec
        .pointer_mut("/TaskTemplate/ContainerSpec")
        .and_then(Value::as_object_mut)
    {
        cs.remove(PULL_OPTIONS);
    }
    if let Some(cs) = spec
        .pointer_mut("/ContainerSpec")
        .and_then(Value::as_object_mut)
    {
        cs.remove(PULL_OPTIONS);
    }
}

/// Two templates equal but for their credentials: new credentials alone roll nothing.
fn same_template(a: &TaskTemplate, b: &TaskTemplate) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    set_registry_auth(&mut a, None);
    set_registry_auth(&mut b, None);
    a == b
}

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("rpc error: code = InvalidArgument desc = {msg}"))
}

/// Parses and checks a service spec from the API.
pub fn parse_spec(m: &Manager, v: Value) -> ApiResult<ServiceSpec> {
    let mut v = v;
    strip_nulls(&mut v);
    let mut spec: ServiceSpec =
        serde_json::from_value(v).map_err(|e| invalid(format!("invalid service spec: {e}")))?;
    fill_defaults(&mut spec);
    check_name_and_image(&spec)?;
    check_mode(&spec)?;
    check_placement(&spec)?;
    check_rollout_configs(&spec)?;
    resolve_networks(m, &mut spec)?;
    check_endpoint(&spec)?;
    check_data_refs(m, &spec)?;
    Ok(spec)
}

/// A random name when none is given, and the defaults dockerd stores (and shows), so that a
/// spec read back and sent again, as `service scale` does, is the same spec.
fn fill_defaults(spec: &mut ServiceSpec) {
    if spec.name.is_empty() {
        spec.name = random_name();
    }
    if let Some(cs) = spec
        .task_template
        .container_spec
        .as_mut()
        .and_then(|c| c.as_object_mut())
    {
        cs.entry("Isolation").or_insert(json!("default"));
        // Credentials come from X-Registry-Auth only, never from the body.
        cs.remove(PULL_OPTIONS);
    }
    spec.task_template
        .other
        .entry("Runtime".to_owned())
        .or_insert(json!("container"));
}

/// The name must be a DNS label and the container spec must name an image.
fn check_name_and_image(spec: &ServiceSpec) -> ApiResult<()> {
    if !valid_name(&spec.name) {
        return Err(invalid(format!(
            "name must be valid as a DNS name component: {:?}",
            spec.name
        )));
    }
    let image = spec
        .task_template
        .container_spec
        .as_ref()
        .and_then(|c| c.get("Image"))
        .and_then(|i| i.as_str())
        .unwrap_or("");
    if image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    Ok(())
}

/// At most one of the four service modes.
fn check_mode(spec: &ServiceSpec) -> ApiResult<()> {
    let modes = [
        spec.mode.replicated.is_some(),
        spec.mode.global.is_some(),
        spec.mode.replicated_job.is_some(),
        spec.mode.global_job.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() > 1 {
        return Err(invalid(
            "service mode must be exactly one of replicated, global, replicated-job or global-job",
        ));
    }
    Ok(())
}

/// Placement constraints and spread preferences the scheduler can parse.
fn check_placement(spec: &ServiceSpec) -> ApiResult<()> {
    if let Some(p) = &spec.task_template.placement {
        for c in &p.constraints {
            berth_scheduler::Constraint::parse(c).map_err(invalid)?;
        }
        for d in p.spread_descriptors() {
            berth_scheduler::Preference::spread(&d).map_err(invalid)?;
        }
    }
    Ok(())
}

/// The failure action and order of the update config (or, without one, of the rollback
/// config) must be ones swarmkit knows.
fn check_rollout_configs(spec: &ServiceSpec) -> ApiResult<()> {
    let Some(u) = spec
        .update_config
        .iter()
        .chain(&spec.rollback_config)
        .next()
    else {
        return Ok(());
    };
    if let Some(a) = u.failure_action.as_deref() {
        if !matches!(a, "" | "pause" | "continue" | "rollback") {
            return Err(invalid(format!("invalid FailureAction {a:?}")));
        }
    }
    if let Some(o) = u.order.as_deref() {
        if !matches!(o, "" | "stop-first" | "start-first") {
            return Err(invalid(format!("invalid Order {o:?}")));
        }
    }
    Ok(())
}

/// Secrets and configs must exist; the reference names them by ID and name.
fn check_data_refs(m: &Manager, spec: &ServiceSpec) -> ApiResult<()> {
    for (key, id_key, name_key, kind) in [
        ("Secrets", "SecretID", "SecretName", DataKind::Secret),
        ("Configs", "ConfigID", "ConfigName", DataKind::Config),
    ] {
        let refs = spec
            .task_template
            .container_spec
            .as_ref()
            .and_then(|c| c.get(key))
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        for r in refs {
            let id = r.get(id_key).and_then(|v| v.as_str()).unwrap_or("");
            let name = r.get(name_key).and_then(|v| v.as_str()).unwrap_or("");
            let known = m.read(|s| s.data(kind).contains_key(id));
            if !known {
                return Err(invalid(format!(
                    "{} not found: {}",
                    kind.as_str(),
                    if name.is_empty() { id } else { name }
                )));
            }
        }
    }
    Ok(())
}

/// The networks of a service: `TaskTemplate.Networks` (the legacy `Spec.Networks` moved
/// there, as dockerd does), each `Target` a swarm network's id. Unknown: 404.
fn resolve_networks(m: &Manager, spec: &mut ServiceSpec) -> ApiResult<()> {
    if let Some(legacy) = spec.other.remove("Networks") {
        spec.task_template
            .other
            .entry("Networks".to_owned())
            .or_insert(legacy);
    }
    let Some(list) = spec
        .task_template
        .other
        .get_mut("Networks")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for n in list.iter_mut() {
        let target = n.get("Target").and_then(Value::as_str).unwrap_or("");
        let net = m
            .read(|s| super::networks::find(s, target))?
            .ok_or_else(|| ApiError::not_found(format!("network {target} not found")))?;
        if !seen.insert(net.id.clone()) {
            return Err(invalid(format!(
                "duplicate network attachment: network {} is given twice",
                net.spec.name
            )));
        }
        n["Target"] = json!(net.id);
    }
    Ok(())
}

/// Docker's checks of an `EndpointSpec` that need no cluster state (conflicts with other
/// services are decided when the spec is applied, `raft::ingress`).
fn check_endpoint(spec: &ServiceSpec) -> ApiResult<()> {
    let ports = berth_raft::ingress::spec_ports(spec.endpoint_spec.as_ref());
    for p in &ports {
        if !matches!(p.protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(invalid(format!("invalid protocol {:?}", p.protocol)));
        }
        if !matches!(p.mode.as_str(), "ingress" | "host") {
            return Err(invalid(format!("invalid publish mode {:?}", p.mode)));
        }
    }
    let dnsrr = spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| e.get("Mode"))
        .and_then(Value::as_str)
        == Some("dnsrr");
    if dnsrr && ports.iter().any(|p| p.ingress()) {
        return Err(invalid(
            "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
        ));
    }
    Ok(())
}

/// A refusal of the service's ports at apply time, as dockerd words it (InvalidArgument).
fn port_error(e: berth_raft::ClusterError) -> ApiError {
    match e {
        berth_raft::ClusterError::FailedPrecondition(m)
            if m.starts_with("port '") || m.starts_with("EndpointSpec") =>
        {
            invalid(m)
        }
        e => api_error(e),
    }
}

/// Docker treats `null` like absent.
fn strip_nulls(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
        for x in o.values_mut() {
            strip_nulls(x);
        }
    }
}

fn random_name() -> String {
    const ADJ: [&str; 8] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen",
    ];
    const NOUN: [&str; 8] = [
        "turing", "hopper", "lovelace", "curie", "darwin", "euler", "gauss", "noether",
    ];
    format!(
        "{}-{}",
        ADJ[rand::random_range(0..ADJ.len())],
        NOUN[rand::random_range(0..NOUN.len())]
    )
}

/// `POST /services/create`: 201 `{"ID"}`.
pub async fn create(m: &Manager, spec: Value, auth: Option<String>) -> ApiResult<Value> {
    let mut spec = parse_spec(m, spec)?;
    set_registry_auth(&mut spec.task_template, auth);
    let name = spec.name.clone();
    let id = new_node_id();
    let svc = Service {
        id: id.clone(),
        meta: Default::default(),
        spec,
        previous_spec: None,
        spec_version: 0,
        update_status: None,
        job_iteration: 0,
        virtual_ips: Vec::new(),
        ports: Vec::new(),
    };
    m.propose(Op::PutService {
        version: None,
        service: Box::new(svc),
        new_spec: true,
    })
    .await
    .map_err(|e| match e {
        berth_raft::ClusterError::AlreadyExists(_) => ApiError::conflict(format!(
            "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} already exists"
        )),
        e => port_error(e),
    })?;
    Ok(json!({ "ID": id }))
}

/// A service by full ID, name, or unique ID prefix.
pub fn find(m: &Manager, key: &str) -> ApiResult<Service> {
    m.read(|s| {
        if let Some(x) = s.services.get(key) {
            return Ok(x.clone());
        }
        if let Some(x) = s.services.values().find(|x| x.spec.name == key) {
            return Ok(x.clone());
        }
        let hits: Vec<&Service> = s
            .services
            .values()
            .filter(|x| x.id.starts_with(key))
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!("service {key} not found"))),
            _ => Err(ApiError::invalid(format!(
                "service {key} is ambiguous ({} matches found)",
                hits.len()
            ))),
        }
    })
}

/// `POST /services/{id}/update`.
pub async fn update(
    m: &Manager,
    key: &str,
    opts: ServiceUpdateOptions,
    body: Value,
) -> ApiResult<Value> {
    let cur = find(m, key)?;
    if cur.meta.version != opts.version {
        return Err(api_error(berth_raft::ClusterError::OutOfSequence));
    }
    let mut next = cur.clone();
    let rollback = opts.rollback.as_deref() == Some("previous");
    if rollback {
        let Some(prev) = cur.previous_spec.clone() else {
            return Err(ApiError::invalid(format!(
                "rpc error: code = FailedPrecondition desc = service {} does not have a previous spec",
                cur.id
            )));
        };
        next.previous_spec = Some(cur.spec.clone());
        next.spec = prev;
    } else {
        let mut spec = parse_spec(m, body)?;
        // Credentials: those sent, else those of the current (or previous) spec.
        let auth =
            opts.registry_auth
                .clone()
                .or_else(|| match opts.registry_auth_from.as_deref() {
                    Some("previous-spec") => cur
                        .previous_spec
                        .as_ref()
                        .and_then(|p| registry_auth(&p.task_template)),
                    _ => registry_auth(&cur.spec.task_template),
                });
        set_registry_auth(&mut spec.task_template, auth);
        if spec.name != cur.spec.name {
            return Err(invalid("renaming services is not supported"));
        }
        next.previous_spec = Some(cur.spec.clone());
        next.spec = spec;
    }
    // A task carries the endpoint it was made with (its ingress address, its host ports),
    // so a change of ports replaces tasks too, as swarmkit's "dirty task" check does.
    let template_changed = !same_template(&next.spec.task_template, &cur.spec.task_template)
        || next.spec.endpoint_spec != cur.spec.endpoint_spec;
    let mode_changed = std::mem::discriminant(&next.spec.mode.kind())
        != std::mem::discriminant(&cur.spec.mode.kind());
    if mode_changed && !(cur.spec.mode.is_job() && next.spec.mode.is_job()) {
        return Err(invalid("service mode change is not allowed"));
    }
    if next.spec.mode.is_job() {
        // Updating a job runs it again.
        next.job_iteration += 1;
    }
    if template_changed {
        next.update_status = Some(UpdateStatus {
            state: if rollback {
                "rollback_started".into()
            } else {
                "updating".into()
            },
            started_at: now(),
            completed_at: String::new(),
            message: if rollback {
                "manually requested rollback".into()
            } else {
                "update in progress".into()
            },
            failures: 0,
            last_batch_at: String::new(),
        });
    }
    m.propose(Op::PutService {
        version: Some(opts.version),
        service: Box::new(next),
        new_spec: template_changed,
    })
    .await
    .map_err(port_error)?;
    Ok(json!({ "Warnings": null }))
}

/// `DELETE /services/{id}`.
pub async fn remove(m: &Manager, key: &str) -> ApiResult<()> {
    let svc = find(m, key)?;
    m.propose(Op::RemoveService { id: svc.id })
        .await
        .map_err(api_error)?;
    Ok(())
}

pub(super) fn any_match(f: &Filters, key: &str, pred: &dyn Fn(&str) -> bool) -> bool {
    match f.get(key) {
        Some(vals) if !vals.is_empty() => vals.iter().any(|v| pred(v)),
        _ => true,
    }
}

pub(super) fn label_match(labels: &BTreeMap<String, String>, v: &str) -> bool {
    match v.split_once('=') {
        Some((k, val)) => labels.get(k).is_some_and(|x| x == val),
        None => labels.contains_key(v),
    }
}

/// `GET /services`.
pub fn list(m: &Manager, f: &Filters, status: bool) -> Vec<Value> {
    m.read(|s| {
        s.services
            .values()
            .filter(|x| {
                any_match(f, "id", &|v| x.id.starts_with(v))
                    && any_match(f, "name", &|v| x.spec.name.starts_with(v))
                    && any_match(f, "label", &|v| label_match(&x.spec.labels, v))
                    && any_match(f, "mode", &|v| mode_name(x) == v)
            })
            .map(|x| service_view(s, x, status))
            .collect()
    })
}

fn mode_name(s: &Service) -> &'static str {
    match s.spec.mode.kind() {
        Mode::Replicated { .. } => "replicated",
        Mode::Global => "global",
        Mode::ReplicatedJob { .. } => "replicated-job",
        Mode::GlobalJob => "global-job",
    }
}

/// `GET /services/{id}`.
pub fn inspect(m: &Manager, key: &str) -> ApiResult<Value> {
    let svc = find(m, key)?;
    Ok(m.read(|s| service_view(s, &svc, false)))
}

/// One service as Docker shows it.
pub fn service_view(s: &State, svc: &Service, status: bool) -> Value {
    let mut spec = serde_json::to_value(&svc.spec).unwrap_or(Value::Null);
    hide_registry_auth(&mut spec);
    let endpoint_spec = svc
        .spec
        .endpoint_spec
        .clone()
        .unwrap_or_else(|| json!({ "Mode": "vip" }));
    let mut v = json!({
        "ID": svc.id,
        "Version": { "Index": svc.meta.version },
        "CreatedAt": svc.meta.created_at,
        "UpdatedAt": svc.meta.updated_at,
        "Spec": spec,
        "Endpoint": { "Spec": endpoint_spec },
    });
    if !svc.virtual_ips.is_empty() {
        v["Endpoint"]["VirtualIPs"] = svc
            .virtual_ips
            .iter()
            .map(|x| json!({ "NetworkID": x.network_id, "Addr": x.addr }))
            .collect();
    }
    if !svc.ports.is_empty() {
        v["Endpoint"]["Ports"] = svc
            .ports
            .iter()
            .map(|p| {
                let mut o = json!({
                    "Protocol": p.protocol, "TargetPort": p.target,
                    "PublishedPort": p.published, "PublishMode": p.mode,
                });
                if !p.name.is_empty() {
                    o["Name"] = json!(p.name);
                }
                o
            })
            .collect();
    }
    if let Some(prev) = &svc.previous_spec {
        v["PreviousSpec"] = serde_json::to_value(prev).unwrap_or(Value::Null);
        hide_registry_auth(&mut v["PreviousSpec"]);
    }
    if let Some(u) = &svc.update_status {
        let mut st = json!({ "State": u.state, "StartedAt": u.started_at, "Message": u.message });
        if !u.completed_at.is_empty() {
            st["CompletedAt"] = json!(u.completed_at);
        }
        v["UpdateStatus"] = st;
    }
    if svc.spec.mode.is_job() {
        v["JobStatus"] = json!({
            "JobIteration": { "Index": svc.job_iteration },
            "LastExecution": svc.meta.updated_at,
        });
    }
    if status {
        v["ServiceStatus"] = service_status(s, svc);
    }
    v
}

/// `ServiceStatus` (`GET /services?status=true`): running tasks, desired tasks, completed
/// (jobs).
fn service_status(s: &State, svc: &Service) -> Value {
    let tasks: Vec<&Task> = s
        .tasks
        .values()
        .filter(|t| t.service_id == svc.id && t.job_iteration == svc.job_iteration)
        .collect();
    let running = tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Running && t.desired_state <= TaskState::Running)
        .count();
    let completed = tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Complete)
        .count();
    let desired = match svc.spec.mode.kind() {
        Mode::Replicated { replicas } => replicas as usize,
        Mode::ReplicatedJob {
            max_concurrent,
            total,
        } => (total as usize)
            .saturating_sub(completed)
            .min(max_concurrent as usize),
        Mode::Global | Mode::GlobalJob => tasks
            .iter()
            .filter(|t| t.desired_state <= TaskState::Running)
            .count(),
    };
    json!({ "RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": completed })
}

/// A task by full ID or unique prefix.
pub fn find_task(m: &Manager, key: &str) -> ApiResult<Task> {
    m.read(|s| {
        if let Some(t) = s.tasks.get(key) {
            return Ok(t.clone());
        }
        let hits: Vec<&Task> = s.tasks.values().filter(|t| t.id.starts_with(key)).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!("task {key} not found"))),
            _ => Err(ApiError::invalid(format!(
                "task {key} is ambiguous ({} matches found)",
                hits.len()
            ))),
        }
    })
}

/// `GET /tasks`: filters `id`, `name`, `service`, `node`, `label`, `desired-state`, and the
/// CLI's `_up-to-date`.
pub fn list_tasks(m: &Manager, f: &Filters) -> Vec<Value> {
    m.read(|s| {
        // Resolve the service and node filters once, not once per task (the CLI polls this
        // list several times a second while it follows a rollout).
        let ids_for = |key: &str, ids: &dyn Fn(&str) -> Vec<String>| -> Option<HashSet<String>> {
            f.get(key)
                .filter(|v| !v.is_empty())
                .map(|vals| vals.iter().flat_map(|v| ids(v)).collect())
        };
        let services = ids_for("service", &|key| {
            s.services
                .values()
                .filter(|x| x.spec.name == key || x.id.starts_with(key))
                .map(|x| x.id.clone())
                .collect()
        });
        let nodes = ids_for("node", &|key| {
            s.nodes
                .values()
                .filter(|n| {
                    n.id.starts_with(key) || n.description.hostname == key || n.spec.name == key
                })
                .map(|n| n.id.clone())
                .collect()
        });
        let up_to_date = f.get("_up-to-date").is_some_and(|v| !v.is_empty());
        s.tasks
            .values()
            .filter(|t| {
                any_match(f, "id", &|v| t.id.starts_with(v))
                    && any_match(f, "name", &|v| task_name(s, t).starts_with(v))
                    && services
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&t.service_id))
                    && nodes.as_ref().is_none_or(|ids| ids.contains(&t.node_id))
                    && any_match(f, "label", &|v| label_match(&t.service_labels, v))
                    && any_match(f, "desired-state", &|v| {
                        v == t.desired_state.as_str()
                            || v == "running" && t.desired_state <= TaskState::Running
                            || v == "shutdown"
                                && t.desired_state > TaskState::Running
                                && t.desired_state != TaskState::Complete
                    })
                    && (!up_to_date
                        || s.services.get(&t.service_id).is_some_and(|svc| {
                            svc.spec.task_template == t.spec && svc.job_iteration == t.job_iteration
                        }))
            })
            .map(|t| task_view(s, t))
            .collect()
    })
}

/// `<service>.<slot>` or `<service>.<node>`, the name `service ps` shows.
fn task_name(s: &State, t: &Task) -> String {
    let svc = s
        .services
        .get(&t.service_id)
        .map(|x| x.spec.name.clone())
        .unwrap_or_else(|| t.service_name.clone());
    if t.slot > 0 {
        format!("{svc}.{}", t.slot)
    } else {
        format!("{svc}.{}", t.node_id)
    }
}

/// One task as Docker shows it.
pub fn task_view(s: &State, t: &Task) -> Value {
    let mut spec = serde_json::to_value(&t.spec).unwrap_or(Value::Null);
    hide_registry_auth(&mut spec);
    let mut status = json!({
        "Timestamp": t.status.timestamp,
        "State": t.status.state.as_str(),
        "Message": t.status.message,
        "PortStatus": {},
    });
    if !t.status.err.is_empty() {
        status["Err"] = json!(t.status.err);
    }
    if !t.status.container_id.is_empty() {
        status["ContainerStatus"] = json!({
            "ContainerID": t.status.container_id,
            "PID": t.status.pid,
            "ExitCode": t.status.exit_code,
        });
    }
    let mut v = json!({
        "ID": t.id,
        "Version": { "Index": t.meta.version },
        "CreatedAt": t.meta.created_at,
        "UpdatedAt": t.meta.updated_at,
        "Labels": {},
        "Spec": spec,
        "ServiceID": t.service_id,
        "Status": status,
        "DesiredState": t.desired_state.as_str(),
    });
    if t.slot > 0 {
        v["Slot"] = json!(t.slot);
    }
    if !t.node_id.is_empty() {
        v["NodeID"] = json!(t.node_id);
    }
    if t.job_iteration > 0 {
        v["JobIteration"] = json!({ "Index": t.job_iteration });
    }
    if !t.networks.is_empty() {
        v["NetworksAttachments"] = t
            .networks
            .iter()
            .map(|a| {
                let network = s
                    .networks
                    .get(&a.network_id)
                    .map(super::networks::swarm_object)
                    .unwrap_or_else(|| json!({ "ID": a.network_id }));
                json!({ "Network": network, "Addresses": [a.address] })
            })
            .collect();
    }
    v
}

/// `GET /tasks/{id}`.
pub fn inspect_task(m: &Manager, key: &str) -> ApiResult<Value> {
    let t = find_task(m, key)?;
    Ok(m.read(|s| task_view(s, &t)))
}
