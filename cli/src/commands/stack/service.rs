//! One compose service into a Docker `ServiceSpec`: the container keys, `deploy:`, ports,
//! volumes, networks (aliased by the compose service name), secrets and configs.

use serde_json::{json, Map, Value};

use super::convert::{scalar, string_list, Context, Plan, IMAGE_LABEL};
use crate::commands::service::parse::{parse_publish, shell_words};
use crate::opts;

const SUPPORTED: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "hostname",
    "labels",
    "deploy",
    "ports",
    "volumes",
    "networks",
    "secrets",
    "configs",
    "healthcheck",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "init",
    "read_only",
    "restart",
    "dns",
    "extra_hosts",
];
/// Keys docker's schema knows that a swarm service does not use (docker ignores them too).
const IGNORED: &[&str] = &[
    "build",
    "container_name",
    "depends_on",
    "links",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "devices",
    "external_links",
    "network_mode",
    "privileged",
    "security_opt",
    "userns_mode",
    "logging",
    "ulimits",
    "sysctls",
    "stdin_open",
    "domainname",
    "expose",
    "mac_address",
    "ipc",
    "pid",
    "shm_size",
    "tmpfs",
    "isolation",
    "cpu_shares",
    "cpu_quota",
    "mem_limit",
];

fn words(v: &Value, what: &str) -> Result<Option<Vec<String>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => shell_words(s).map(Some).map_err(|e| format!("{what}: {e}")),
        Value::Array(a) => Ok(Some(
            a.iter().map(|x| scalar(x).unwrap_or_default()).collect(),
        )),
        _ => Err(format!("{what} must be a string or a list")),
    }
}

fn duration(v: &Value, what: &str) -> Result<Option<i64>, String> {
    match scalar(v) {
        None => Ok(None),
        Some(s) => opts::parse_go_duration_nanos(&s)
            .map(Some)
            .map_err(|e| format!("{what}: {e}")),
    }
}

fn uint(v: &Value, what: &str) -> Result<Option<u64>, String> {
    match scalar(v) {
        None => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{what} must be a positive integer, not {s:?}")),
    }
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(k.into(), v.into());
    }
}

/// `environment:` (a map or a list) in docker's sorted `K=V` form.
pub fn environment(v: &Value) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = match v {
        Value::Null => Vec::new(),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| match scalar(x) {
                Some(s) => format!("{k}={s}"),
                None => k.clone(),
            })
            .collect(),
        Value::Array(a) => a.iter().map(|x| scalar(x).unwrap_or_default()).collect(),
        _ => return Err("environment must be a mapping or a list".into()),
    };
    out.sort();
    Ok(out)
}

fn container_spec(ctx: &Context, svc: &Value) -> Result<Value, String> {
    let image = svc["image"]
        .as_str()
        .filter(|i| !i.is_empty())
        .ok_or("image is required")?;
    let mut cs = Map::new();
    cs.insert("Image".into(), json!(image));
    put(&mut cs, "Command", words(&svc["entrypoint"], "entrypoint")?);
    put(&mut cs, "Args", words(&svc["command"], "command")?);
    let mut env = Vec::new();
    for f in string_list(&svc["env_file"]) {
        let text = std::fs::read_to_string(ctx.path(&f))
            .map_err(|e| format!("env_file {f}: {}", opts::mount::io_reason(&e)))?;
        env.extend(opts::parse_env_file(&text, |k| std::env::var(k).ok())?);
    }
    env.extend(environment(&svc["environment"])?);
    if !env.is_empty() {
        cs.insert("Env".into(), json!(env));
    }
    put(&mut cs, "Dir", svc["working_dir"].as_str());
    put(&mut cs, "User", scalar(&svc["user"]));
    put(&mut cs, "Hostname", svc["hostname"].as_str());
    cs.insert(
        "Labels".into(),
        Value::Object(
            ctx.labels(&svc["labels"])
                .map_err(|e| format!("labels {e}"))?,
        ),
    );
    put(
        &mut cs,
        "StopGracePeriod",
        duration(&svc["stop_grace_period"], "stop_grace_period")?,
    );
    put(&mut cs, "StopSignal", svc["stop_signal"].as_str());
    put(&mut cs, "TTY", svc["tty"].as_bool());
    put(&mut cs, "Init", svc["init"].as_bool());
    put(&mut cs, "ReadOnly", svc["read_only"].as_bool());
    if let Some(dns) = words(&svc["dns"], "dns")? {
        cs.insert("DNSConfig".into(), json!({"Nameservers": dns}));
    }
    if let Some(h) = healthcheck(&svc["healthcheck"])? {
        cs.insert("Healthcheck".into(), h);
    }
    if let Some(hosts) = svc["extra_hosts"].as_array() {
        let hosts: Vec<String> = hosts
            .iter()
            .filter_map(scalar)
            .map(|h| crate::commands::service::spec::host_entry(&h))
            .collect::<Result<_, _>>()?;
        cs.insert("Hosts".into(), json!(hosts));
    }
    Ok(Value::Object(cs))
}

fn healthcheck(h: &Value) -> Result<Option<Value>, String> {
    if h.is_null() {
        return Ok(None);
    }
    if h["disable"].as_bool() == Some(true) {
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    let mut m = Map::new();
    match &h["test"] {
        Value::String(s) => {
            m.insert("Test".into(), json!(["CMD-SHELL", s]));
        }
        Value::Array(a) => {
            m.insert(
                "Test".into(),
                json!(a
                    .iter()
                    .map(|x| scalar(x).unwrap_or_default())
                    .collect::<Vec<_>>()),
            );
        }
        Value::Null => {}
        _ => return Err("healthcheck.test must be a string or a list".into()),
    }
    put(
        &mut m,
        "Interval",
        duration(&h["interval"], "healthcheck.interval")?,
    );
    put(
        &mut m,
        "Timeout",
        duration(&h["timeout"], "healthcheck.timeout")?,
    );
    put(
        &mut m,
        "StartPeriod",
        duration(&h["start_period"], "healthcheck.start_period")?,
    );
    put(
        &mut m,
        "Retries",
        uint(&h["retries"], "healthcheck.retries")?,
    );
    Ok(Some(Value::Object(m)))
}

fn resources(r: &Value) -> Result<Value, String> {
    let part = |v: &Value, what: &str| -> Result<Map<String, Value>, String> {
        let mut m = Map::new();
        if let Some(c) = scalar(&v["cpus"]) {
            m.insert(
                "NanoCPUs".into(),
                json!(opts::parse_nano_cpus(&c).map_err(|e| format!("{what}.cpus: {e}"))?),
            );
        }
        if let Some(mem) = scalar(&v["memory"]) {
            m.insert(
                "MemoryBytes".into(),
                json!(opts::parse_ram(&mem).map_err(|e| format!("{what}.memory: {e}"))?),
            );
        }
        put(&mut m, "Pids", uint(&v["pids"], &format!("{what}.pids"))?);
        Ok(m)
    };
    Ok(json!({
        "Limits": part(&r["limits"], "resources.limits")?,
        "Reservations": part(&r["reservations"], "resources.reservations")?,
    }))
}

/// `deploy.restart_policy`, or the service's `restart:` when there is none.
fn restart_policy(svc: &Value) -> Result<Option<Value>, String> {
    let r = &svc["deploy"]["restart_policy"];
    if r.is_object() {
        let mut m = Map::new();
        if let Some(c) = r["condition"].as_str() {
            if !matches!(c, "none" | "on-failure" | "any") {
                return Err(format!(
                    "deploy.restart_policy.condition {c:?} must be none, on-failure or any"
                ));
            }
            m.insert("Condition".into(), json!(c));
        }
        put(
            &mut m,
            "Delay",
            duration(&r["delay"], "restart_policy.delay")?,
        );
        put(
            &mut m,
            "MaxAttempts",
            uint(&r["max_attempts"], "restart_policy.max_attempts")?,
        );
        put(
            &mut m,
            "Window",
            duration(&r["window"], "restart_policy.window")?,
        );
        return Ok(Some(Value::Object(m)));
    }
    Ok(match svc["restart"].as_str() {
        None => None,
        Some("no") => Some(json!({"Condition": "none"})),
        Some("always" | "unless-stopped") => Some(json!({"Condition": "any"})),
        Some(p) if p.starts_with("on-failure") => {
            let mut m = json!({"Condition": "on-failure"});
            if let Some((_, n)) = p.split_once(':') {
                m["MaxAttempts"] = json!(n
                    .parse::<u64>()
                    .map_err(|_| format!("restart {p:?}: bad retry count"))?);
            }
            Some(m)
        }
        Some(p) => {
            return Err(format!(
                "restart {p:?} must be no, always, on-failure[:N] or unless-stopped"
            ))
        }
    })
}

fn rollout(c: &Value, what: &str) -> Result<Option<Value>, String> {
    if !c.is_object() {
        return Ok(None);
    }
    let mut m = Map::new();
    put(
        &mut m,
        "Parallelism",
        uint(&c["parallelism"], &format!("{what}.parallelism"))?,
    );
    put(
        &mut m,
        "Delay",
        duration(&c["delay"], &format!("{what}.delay"))?,
    );
    put(&mut m, "FailureAction", c["failure_action"].as_str());
    put(
        &mut m,
        "Monitor",
        duration(&c["monitor"], &format!("{what}.monitor"))?,
    );
    if let Some(r) = scalar(&c["max_failure_ratio"]) {
        m.insert(
            "MaxFailureRatio".into(),
            json!(r
                .parse::<f64>()
                .map_err(|_| format!("{what}.max_failure_ratio: not a number"))?),
        );
    }
    put(&mut m, "Order", c["order"].as_str());
    Ok(Some(Value::Object(m)))
}

fn mode(d: &Value) -> Result<Value, String> {
    let replicas = uint(&d["replicas"], "deploy.replicas")?;
    Ok(match d["mode"].as_str().unwrap_or("replicated") {
        "replicated" => json!({"Replicated": {"Replicas": replicas.unwrap_or(1)}}),
        "global" => json!({"Global": {}}),
        "replicated-job" => {
            let n = replicas.unwrap_or(1);
            json!({"ReplicatedJob": {"MaxConcurrent": n, "TotalCompletions": n}})
        }
        "global-job" => json!({"GlobalJob": {}}),
        m => {
            return Err(format!(
                "deploy.mode {m:?} must be replicated, global, replicated-job or global-job"
            ))
        }
    })
}

fn placement(p: &Value) -> Result<Option<Value>, String> {
    if !p.is_object() {
        return Ok(None);
    }
    let mut m = Map::new();
    if let Some(c) = p["constraints"].as_array() {
        m.insert(
            "Constraints".into(),
            json!(c.iter().filter_map(scalar).collect::<Vec<_>>()),
        );
    }
    if let Some(prefs) = p["preferences"].as_array() {
        let prefs: Vec<Value> = prefs
            .iter()
            .map(|x| match x["spread"].as_str() {
                Some(s) => Ok(json!({"Spread": {"SpreadDescriptor": s}})),
                None => Err(
                    "deploy.placement.preferences entries must be {spread: <label>}".to_string(),
                ),
            })
            .collect::<Result<_, _>>()?;
        m.insert("Preferences".into(), json!(prefs));
    }
    put(
        &mut m,
        "MaxReplicas",
        uint(
            &p["max_replicas_per_node"],
            "placement.max_replicas_per_node",
        )?,
    );
    Ok(Some(Value::Object(m)))
}

fn ports(v: &Value) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for p in v.as_array().into_iter().flatten() {
        if let Some(s) = scalar(p) {
            out.extend(parse_publish(&s).map_err(|e| format!("ports: {e}"))?);
            continue;
        }
        let target = uint(&p["target"], "ports.target")?.ok_or("ports: target is required")?;
        let mut c = json!({"Protocol": p["protocol"].as_str().unwrap_or("tcp"), "TargetPort": target, "PublishMode": p["mode"].as_str().unwrap_or("ingress")});
        if let Some(n) = uint(&p["published"], "ports.published")? {
            c["PublishedPort"] = json!(n);
        }
        out.push(c);
    }
    Ok(out)
}

/// Builds the spec of compose service `key`.
pub fn convert_service(
    ctx: &Context,
    plan: &Plan,
    doc: &Value,
    key: &str,
    svc: &Value,
) -> Result<Value, String> {
    let obj = svc.as_object().ok_or("must be a mapping")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !SUPPORTED.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()))
    {
        return Err(format!("additional property {k} is not allowed"));
    }
    let d = &svc["deploy"];
    let mut labels = ctx
        .labels(&d["labels"])
        .map_err(|e| format!("deploy.labels {e}"))?;
    labels.insert(IMAGE_LABEL.into(), svc["image"].clone());
    let mut tt = json!({
        "ContainerSpec": container_spec(ctx, svc)?,
        "Resources": resources(&d["resources"])?,
        "ForceUpdate": 0,
    });
    if let Some(r) = restart_policy(svc)? {
        tt["RestartPolicy"] = r;
    }
    if let Some(p) = placement(&d["placement"])? {
        tt["Placement"] = p;
    }
    let (mounts, nets) = (
        super::volumes::mounts(ctx, doc, &svc["volumes"])?,
        super::volumes::networks(ctx, plan, key, &svc["networks"])?,
    );
    if !mounts.is_empty() {
        tt["ContainerSpec"]["Mounts"] = json!(mounts);
    }
    tt["Networks"] = json!(nets);
    for (field, list, id_key, name_key) in [
        ("secrets", &plan.secrets, "SecretID", "SecretName"),
        ("configs", &plan.configs, "ConfigID", "ConfigName"),
    ] {
        let refs = super::volumes::file_refs(&svc[field], list, field, id_key, name_key)?;
        if !refs.is_empty() {
            tt["ContainerSpec"][if field == "secrets" {
                "Secrets"
            } else {
                "Configs"
            }] = json!(refs);
        }
    }
    let mut spec = json!({
        "Name": ctx.scope(key),
        "Labels": labels,
        "TaskTemplate": tt,
        "Mode": mode(d)?,
        "EndpointSpec": {"Mode": d["endpoint_mode"].as_str().unwrap_or("vip")},
    });
    let p = ports(&svc["ports"])?;
    if !p.is_empty() {
        spec["EndpointSpec"]["Ports"] = json!(p);
    }
    if let Some(u) = rollout(&d["update_config"], "update_config")? {
        spec["UpdateConfig"] = u;
    }
    if let Some(r) = rollout(&d["rollback_config"], "rollback_config")? {
        spec["RollbackConfig"] = r;
    }
    Ok(spec)
}
