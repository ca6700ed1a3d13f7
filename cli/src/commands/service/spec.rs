//! A service spec (Docker's `ServiceSpec` JSON) from flags: [`create_spec`] builds one for
//! `service create`, [`apply_flags`] sets the fields of [`SpecFlags`] that were given (also
//! on `service update`), and [`resolve_refs`] / [`resolve_image`] are the look-ups docker's
//! CLI makes before it sends a spec (secret and config names to IDs, a tag to its digest).

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::flags::{CreateArgs, SpecFlags};
use super::parse::{
    parse_file_ref, parse_network, parse_placement_pref, parse_publish, shell_words,
};
use crate::client::{Client, Query};
use crate::commands::inspect::image_path;
use crate::opts::{self, flag_error};

/// The object at `path` under `v`, made (and made an object) if missing.
pub fn obj<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for k in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .expect("made an object just above")
            .entry(k.to_string())
            .or_insert_with(|| json!({}));
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    cur.as_object_mut().expect("made an object just above")
}

fn duration(v: &Option<String>, flag: &str) -> Result<Option<i64>, String> {
    v.as_deref()
        .map(|s| opts::parse_go_duration_nanos(s).map_err(|e| flag_error(s, flag, &e)))
        .transpose()
}

fn one_of(v: &Option<String>, flag: &str, allowed: &[&str]) -> Result<(), String> {
    match v.as_deref() {
        Some(x) if !allowed.contains(&x) => Err(flag_error(
            x,
            flag,
            &format!("must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

fn set(m: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v.into());
    }
}

/// The mode object's name in the spec (`Replicated`, `Global`, …).
pub fn mode_key(spec: &Value) -> &'static str {
    let m = &spec["Mode"];
    if m.get("Global").is_some() {
        "Global"
    } else if m.get("ReplicatedJob").is_some() {
        "ReplicatedJob"
    } else if m.get("GlobalJob").is_some() {
        "GlobalJob"
    } else {
        "Replicated"
    }
}

/// The `Mode` object of `--mode`.
pub fn mode_object(mode: &str) -> Result<Value, String> {
    Ok(match mode {
        "replicated" => json!({"Replicated": {"Replicas": 1}}),
        "global" => json!({"Global": {}}),
        "replicated-job" => json!({"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}),
        "global-job" => json!({"GlobalJob": {}}),
        other => return Err(format!("invalid replicated mode {other:?}: must be one of replicated, global, replicated-job or global-job")),
    })
}

fn apply_mode(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    let key = mode_key(spec);
    if let Some(n) = f.replicas {
        match key {
            "Replicated" => {
                obj(spec, &["Mode", "Replicated"]).insert("Replicas".into(), json!(n));
            }
            "ReplicatedJob" => {
                let m = obj(spec, &["Mode", "ReplicatedJob"]);
                m.insert("TotalCompletions".into(), json!(n));
                if f.max_concurrent.is_none() {
                    m.insert("MaxConcurrent".into(), json!(n));
                }
            }
            _ => {
                return Err(
                    "replicas can only be used with replicated or replicated-job mode".into(),
                )
            }
        }
    }
    if let Some(n) = f.max_concurrent {
        if key != "ReplicatedJob" {
            return Err("max-concurrent can only be used with replicated-job mode".into());
        }
        obj(spec, &["Mode", "ReplicatedJob"]).insert("MaxConcurrent".into(), json!(n));
    }
    Ok(())
}

fn apply_container(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    let grace = duration(&f.stop_grace_period, "--stop-grace-period")?;
    let entry = f.entrypoint.as_deref().map(shell_words).transpose()?;
    let cs = obj(spec, &["TaskTemplate", "ContainerSpec"]);
    set(cs, "Dir", f.workdir.clone());
    set(cs, "User", f.user.clone());
    set(cs, "Hostname", f.hostname.clone());
    set(cs, "Command", entry);
    set(cs, "StopGracePeriod", grace);
    set(cs, "StopSignal", f.stop_signal.clone());
    set(cs, "TTY", f.tty);
    set(cs, "Init", f.init);
    set(cs, "ReadOnly", f.read_only);
    Ok(())
}

fn apply_resources(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    let cpu = |v: &Option<String>, flag: &str| {
        v.as_deref()
            .map(|s| opts::parse_nano_cpus(s).map_err(|e| flag_error(s, flag, &e)))
            .transpose()
    };
    let mem = |v: &Option<String>, flag: &str| {
        v.as_deref()
            .map(|s| opts::parse_ram(s).map_err(|e| flag_error(s, flag, &e)))
            .transpose()
    };
    let (rc, rm) = (
        cpu(&f.reserve_cpu, "--reserve-cpu")?,
        mem(&f.reserve_memory, "--reserve-memory")?,
    );
    let (lc, lm) = (
        cpu(&f.limit_cpu, "--limit-cpu")?,
        mem(&f.limit_memory, "--limit-memory")?,
    );
    let res = obj(spec, &["TaskTemplate", "Resources"]);
    let r = obj_in(res, "Reservations");
    set(r, "NanoCPUs", rc);
    set(r, "MemoryBytes", rm);
    let l = obj_in(res, "Limits");
    set(l, "NanoCPUs", lc);
    set(l, "MemoryBytes", lm);
    set(l, "Pids", f.limit_pids);
    Ok(())
}

fn obj_in<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object just above")
}

fn apply_restart(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    one_of(
        &f.restart_condition,
        "--restart-condition",
        &["none", "on-failure", "any"],
    )?;
    let delay = duration(&f.restart_delay, "--restart-delay")?;
    let window = duration(&f.restart_window, "--restart-window")?;
    if f.restart_condition.is_none()
        && delay.is_none()
        && window.is_none()
        && f.restart_max_attempts.is_none()
    {
        return Ok(());
    }
    let r = obj(spec, &["TaskTemplate", "RestartPolicy"]);
    set(r, "Condition", f.restart_condition.clone());
    set(r, "Delay", delay);
    set(r, "MaxAttempts", f.restart_max_attempts);
    set(r, "Window", window);
    Ok(())
}

/// The update or rollback config flags (`which` is `update` or `rollback`).
struct RolloutFlags<'a> {
    which: &'a str,
    parallelism: Option<u64>,
    delay: &'a Option<String>,
    failure_action: &'a Option<String>,
    monitor: &'a Option<String>,
    ratio: Option<f64>,
    order: &'a Option<String>,
}

fn apply_rollout(spec: &mut Value, r: RolloutFlags) -> Result<(), String> {
    let w = r.which;
    let actions: &[&str] = if w == "update" {
        &["pause", "continue", "rollback"]
    } else {
        &["pause", "continue"]
    };
    one_of(r.failure_action, &format!("--{w}-failure-action"), actions)?;
    one_of(
        r.order,
        &format!("--{w}-order"),
        &["start-first", "stop-first"],
    )?;
    let delay = duration(r.delay, &format!("--{w}-delay"))?;
    let monitor = duration(r.monitor, &format!("--{w}-monitor"))?;
    if r.parallelism.is_none()
        && delay.is_none()
        && r.failure_action.is_none()
        && monitor.is_none()
        && r.ratio.is_none()
        && r.order.is_none()
    {
        return Ok(());
    }
    let key = if w == "update" {
        "UpdateConfig"
    } else {
        "RollbackConfig"
    };
    let c = obj(spec, &[key]);
    set(c, "Parallelism", r.parallelism);
    set(c, "Delay", delay);
    set(c, "FailureAction", r.failure_action.clone());
    set(c, "Monitor", monitor);
    set(c, "MaxFailureRatio", r.ratio);
    set(c, "Order", r.order.clone());
    Ok(())
}

fn apply_health(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    let interval = duration(&f.health_interval, "--health-interval")?;
    let timeout = duration(&f.health_timeout, "--health-timeout")?;
    let start = duration(&f.health_start_period, "--health-start-period")?;
    let any = f.health_cmd.is_some()
        || interval.is_some()
        || timeout.is_some()
        || start.is_some()
        || f.health_retries.is_some();
    if f.no_healthcheck {
        if any {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        obj(spec, &["TaskTemplate", "ContainerSpec"])
            .insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
        return Ok(());
    }
    if !any {
        return Ok(());
    }
    let h = obj(spec, &["TaskTemplate", "ContainerSpec", "Healthcheck"]);
    if let Some(cmd) = &f.health_cmd {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    set(h, "Interval", interval);
    set(h, "Timeout", timeout);
    set(h, "StartPeriod", start);
    set(h, "Retries", f.health_retries);
    Ok(())
}

/// Sets every field of `f` that was given; `spec` is a new or an existing spec.
pub fn apply_flags(spec: &mut Value, f: &SpecFlags) -> Result<(), String> {
    apply_mode(spec, f)?;
    if let Some(n) = f.replicas_max_per_node {
        obj(spec, &["TaskTemplate", "Placement"]).insert("MaxReplicas".into(), json!(n));
    }
    apply_container(spec, f)?;
    apply_resources(spec, f)?;
    apply_restart(spec, f)?;
    apply_rollout(
        spec,
        RolloutFlags {
            which: "update",
            parallelism: f.update_parallelism,
            delay: &f.update_delay,
            failure_action: &f.update_failure_action,
            monitor: &f.update_monitor,
            ratio: f.update_max_failure_ratio,
            order: &f.update_order,
        },
    )?;
    apply_rollout(
        spec,
        RolloutFlags {
            which: "rollback",
            parallelism: f.rollback_parallelism,
            delay: &f.rollback_delay,
            failure_action: &f.rollback_failure_action,
            monitor: &f.rollback_monitor,
            ratio: f.rollback_max_failure_ratio,
            order: &f.rollback_order,
        },
    )?;
    apply_health(spec, f)?;
    one_of(&f.endpoint_mode, "--endpoint-mode", &["vip", "dnsrr"])?;
    if let Some(m) = &f.endpoint_mode {
        obj(spec, &["EndpointSpec"]).insert("Mode".into(), json!(m));
    }
    Ok(())
}

/// `--env`, `--env-file`: `K=V` entries (a bare `K` takes this process's value).
pub fn env_list(env: &[String], env_files: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for f in env_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("open {f}: {}", opts::mount::io_reason(&e)))?;
        out.extend(opts::parse_env_file(&text, |k| std::env::var(k).ok())?);
    }
    for e in env {
        out.push(opts::resolve_env(e)?);
    }
    Ok(out)
}

/// `--host host:ip` as the spec's `Hosts` entry (`ip host`).
pub fn host_entry(s: &str) -> Result<String, String> {
    let hp = opts::parse_add_host(s)?;
    let (host, ip) = hp.split_once(':').unwrap_or((&hp, ""));
    Ok(format!("{ip} {host}"))
}

/// The spec of `service create`, except secrets and configs (IDs needed: [`resolve_refs`]).
pub fn create_spec(a: &CreateArgs) -> Result<Value, String> {
    let image = a.args.first().cloned().unwrap_or_default();
    let mut spec = json!({
        "Name": a.name.clone().unwrap_or_default(),
        "Labels": opts::parse_labels(&a.label),
        "TaskTemplate": {
            "ContainerSpec": {"Image": image},
            "Resources": {"Limits": {}, "Reservations": {}},
            "ForceUpdate": 0,
        },
        "Mode": mode_object(&a.mode).map_err(|e| flag_error(&a.mode, "--mode", &e))?,
        "EndpointSpec": {"Mode": "vip"},
    });
    if spec["Name"] == "" {
        obj(&mut spec, &[]).remove("Name");
    }
    let cs = obj(&mut spec, &["TaskTemplate", "ContainerSpec"]);
    if a.args.len() > 1 {
        cs.insert("Args".into(), json!(a.args[1..]));
    }
    let env = env_list(&a.env, &a.env_file)?;
    if !env.is_empty() {
        cs.insert("Env".into(), json!(env));
    }
    if !a.container_label.is_empty() {
        cs.insert(
            "Labels".into(),
            Value::Object(opts::parse_labels(&a.container_label)),
        );
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| opts::parse_mount(m).map_err(|e| flag_error(m, "--mount", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !mounts.is_empty() {
        cs.insert("Mounts".into(), json!(mounts));
    }
    if !a.group.is_empty() {
        cs.insert("Groups".into(), json!(a.group));
    }
    if !a.dns.is_empty() {
        cs.insert("DNSConfig".into(), json!({"Nameservers": a.dns}));
    }
    let hosts = a
        .host
        .iter()
        .map(|h| host_entry(h).map_err(|e| flag_error(h, "--host", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !hosts.is_empty() {
        cs.insert("Hosts".into(), json!(hosts));
    }
    create_placement(&mut spec, a)?;
    apply_flags(&mut spec, &a.spec)?;
    if a.mode.ends_with("-job") && spec["TaskTemplate"]["RestartPolicy"]["Condition"].is_null() {
        obj(&mut spec, &["TaskTemplate", "RestartPolicy"])
            .insert("Condition".into(), json!("on-failure"));
    }
    Ok(spec)
}

fn create_placement(spec: &mut Value, a: &CreateArgs) -> Result<(), String> {
    let prefs = a
        .placement_pref
        .iter()
        .map(|p| parse_placement_pref(p).map_err(|e| flag_error(p, "--placement-pref", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !a.constraint.is_empty() || !prefs.is_empty() {
        let p = obj(spec, &["TaskTemplate", "Placement"]);
        if !a.constraint.is_empty() {
            p.insert("Constraints".into(), json!(a.constraint));
        }
        if !prefs.is_empty() {
            p.insert("Preferences".into(), json!(prefs));
        }
    }
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(parse_publish(p).map_err(|e| flag_error(p, "-p, --publish", &e))?);
    }
    if !ports.is_empty() {
        obj(spec, &["EndpointSpec"]).insert("Ports".into(), json!(ports));
    }
    let nets = a
        .network
        .iter()
        .map(|n| parse_network(n).map_err(|e| flag_error(n, "--network", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !nets.is_empty() {
        obj(spec, &["TaskTemplate"]).insert("Networks".into(), json!(nets));
    }
    Ok(())
}

/// Which list a `--secret`/`--config` reference goes to, and its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Secret,
    Config,
}

impl RefKind {
    pub fn keys(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            RefKind::Secret => ("/secrets", "Secrets", "SecretID", "SecretName"),
            RefKind::Config => ("/configs", "Configs", "ConfigID", "ConfigName"),
        }
    }

    fn word(self) -> &'static str {
        match self {
            RefKind::Secret => "secret",
            RefKind::Config => "config",
        }
    }
}

/// The spec entries of `--secret`/`--config` values: names looked up as docker does
/// (`GET /secrets?filters={"name":…}`, an exact name or an ID), unknown ones refused.
pub async fn resolve_refs(client: &Client, kind: RefKind, values: &[String]) -> Result<Vec<Value>> {
    let (path, _, id_key, name_key) = kind.keys();
    let mut out = Vec::new();
    for v in values {
        let flag = format!("--{}", kind.word());
        let r = parse_file_ref(v).map_err(|e| anyhow::anyhow!(flag_error(v, &flag, &e)))?;
        let source = r.source.clone();
        let mut filters = json!({"name": {source: true}});
        let list: Vec<Value> = client
            .get_json(&Query::new().filters(&filters).to_path(path))
            .await?;
        let mut id = list
            .iter()
            .find(|o| o["Spec"]["Name"] == r.source.as_str())
            .map(|o| o["ID"].clone());
        if id.is_none() {
            let source = r.source.clone();
            filters = json!({"id": {source: true}});
            let list: Vec<Value> = client
                .get_json(&Query::new().filters(&filters).to_path(path))
                .await?;
            id = list
                .iter()
                .find(|o| o["ID"] == r.source.as_str())
                .map(|o| o["ID"].clone());
        }
        let Some(id) = id.and_then(|i| i.as_str().map(str::to_string)) else {
            anyhow::bail!("{} not found: {}", kind.word(), r.source);
        };
        out.push(r.to_json(&id, id_key, name_key));
    }
    Ok(out)
}

/// `image` pinned to its digest (`name:tag@sha256:…`) through `GET /distribution/…`, as
/// docker does unless `--no-resolve-image`; on failure, docker's warning and the tag as is.
pub async fn resolve_image(client: &Client, image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let path = format!("/distribution/{}/json", image_path(image));
    match client.get_json::<Value>(&path).await {
        Ok(v) => match v["Descriptor"]["digest"].as_str() {
            Some(d) if !d.is_empty() => format!("{image}@{d}"),
            _ => image.to_string(),
        },
        Err(_) => {
            eprintln!(
                "image {image} could not be accessed on a registry to record\n\
                 its digest. Each node will access {image} independently,\n\
                 possibly leading to different nodes running different\n\
                 versions of the image.\n"
            );
            image.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    fn parse(args: &[&str]) -> CreateArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .expect("parse")
            .a
    }

    /// `service create` with flags from every area, as one capture.
    fn spec_from_many_flags() -> Value {
        let a = parse(&[
            "--name",
            "web",
            "--replicas",
            "3",
            "-e",
            "A=1",
            "--label",
            "l=1",
            "--container-label",
            "c=2",
            "--mount",
            "type=volume,source=data,target=/data,readonly",
            "--mount",
            "type=tmpfs,target=/tmp/x,tmpfs-size=1m",
            "--publish",
            "published=8080,target=80,mode=host",
            "-p",
            "9090:90/udp",
            "--network",
            "name=ov1,alias=w",
            "--constraint",
            "node.role==worker",
            "--placement-pref",
            "spread=node.labels.zone",
            "--replicas-max-per-node",
            "2",
            "--limit-memory",
            "64m",
            "--reserve-cpu",
            "0.25",
            "--limit-pids",
            "50",
            "--restart-condition",
            "on-failure",
            "--restart-max-attempts",
            "2",
            "--update-parallelism",
            "2",
            "--update-delay",
            "1s",
            "--update-order",
            "start-first",
            "--rollback-parallelism",
            "1",
            "--health-cmd",
            "true",
            "--health-interval",
            "2s",
            "--workdir",
            "/srv",
            "--user",
            "1000",
            "--endpoint-mode",
            "vip",
            "busybox:latest",
            "sleep",
            "3600",
        ]);
        create_spec(&a).expect("spec")
    }

    #[test]
    fn create_spec_container_and_endpoint_flags() {
        let s = spec_from_many_flags();
        let cs = &s["TaskTemplate"]["ContainerSpec"];
        assert_eq!(cs["Image"], "busybox:latest");
        assert_eq!(cs["Args"], json!(["sleep", "3600"]));
        assert_eq!(cs["Env"], json!(["A=1"]));
        assert_eq!(
            (cs["Dir"].as_str(), cs["User"].as_str()),
            (Some("/srv"), Some("1000"))
        );
        assert_eq!(cs["Labels"], json!({"c": "2"}));
        assert_eq!(s["Labels"], json!({"l": "1"}));
        assert_eq!(
            cs["Mounts"],
            json!([
            {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true},
            {"Type": "tmpfs", "Target": "/tmp/x", "TmpfsOptions": {"SizeBytes": 1_048_576}}])
        );
        assert_eq!(
            s["EndpointSpec"]["Ports"],
            json!([
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"},
            {"Protocol": "udp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}])
        );
    }

    #[test]
    fn create_spec_placement_and_policy_flags() {
        let s = spec_from_many_flags();
        let cs = &s["TaskTemplate"]["ContainerSpec"];
        assert_eq!(
            s["TaskTemplate"]["Networks"],
            json!([{"Target": "ov1", "Aliases": ["w"]}])
        );
        assert_eq!(
            s["TaskTemplate"]["Placement"],
            json!({
            "Constraints": ["node.role==worker"],
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}], "MaxReplicas": 2})
        );
        assert_eq!(
            s["TaskTemplate"]["Resources"],
            json!({
            "Limits": {"MemoryBytes": 67_108_864, "Pids": 50}, "Reservations": {"NanoCPUs": 250_000_000}})
        );
        assert_eq!(
            s["TaskTemplate"]["RestartPolicy"],
            json!({"Condition": "on-failure", "MaxAttempts": 2})
        );
        assert_eq!(
            s["UpdateConfig"],
            json!({"Parallelism": 2, "Delay": 1_000_000_000i64, "Order": "start-first"})
        );
        assert_eq!(s["RollbackConfig"], json!({"Parallelism": 1}));
        assert_eq!(
            cs["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000i64})
        );
        assert_eq!(s["Mode"], json!({"Replicated": {"Replicas": 3}}));
    }

    #[test]
    fn modes_and_bad_values() {
        let s = create_spec(&parse(&["--mode", "global", "busybox"])).expect("global");
        assert_eq!(s["Mode"], json!({"Global": {}}));
        assert!(s.get("Name").is_none());
        let s = create_spec(&parse(&[
            "--mode",
            "replicated-job",
            "--replicas",
            "4",
            "busybox",
        ]))
        .expect("job");
        assert_eq!(
            s["Mode"],
            json!({"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}})
        );
        assert_eq!(
            s["TaskTemplate"]["RestartPolicy"]["Condition"],
            "on-failure"
        );
        let err = |args: &[&str]| create_spec(&parse(args)).expect_err("bad");
        assert!(err(&["--mode", "sometimes", "busybox"]).contains("--mode"));
        assert!(err(&["--mode", "global", "--replicas", "2", "busybox"])
            .contains("replicas can only be used"));
        assert_eq!(
            err(&["--mount", "type=bind,target=/x", "busybox"]),
            "invalid argument \"type=bind,target=/x\" for \"--mount\" flag: source is required when specifying bind mount"
        );
        assert!(
            err(&["-p", "published=80", "busybox"]).contains("missing mandatory field \"target\"")
        );
        assert!(
            err(&["--restart-condition", "sometimes", "busybox"]).contains("--restart-condition")
        );
        assert!(err(&["--update-delay", "5", "busybox"]).contains("missing unit"));
        assert!(err(&["--no-healthcheck", "--health-cmd", "x", "busybox"]).contains("conflicts"));
        assert!(T::try_parse_from(["t", "--replicas", "x", "busybox"]).is_err());
        assert!(T::try_parse_from(["t"]).is_err());
    }
}
