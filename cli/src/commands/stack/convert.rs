//! A compose document (JSON, from `compose.rs`) into what `stack deploy` sends: the
//! networks, secrets and configs to create and the service specs, all named `<stack>_<key>`
//! (unless `external` or given a `name:`) and labelled `com.docker.stack.namespace=<stack>`.
//! Pure: no daemon, no file reads (secret and config files are read by `deploy.rs`);
//! secret and config references carry their names, and their IDs are filled in at deploy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::service::convert_service;

/// The label every object of a stack carries.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The service label holding the image as the compose file names it.
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// A secret or config to create (or, `external`, to find).
#[derive(Debug, Clone, PartialEq)]
pub struct DataObject {
    pub name: String,
    pub external: bool,
    pub file: Option<PathBuf>,
    pub labels: Map<String, Value>,
    pub template_driver: Option<String>,
}

/// A network to create (or, `external`, to find).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkObject {
    pub name: String,
    pub external: bool,
    pub body: Value,
}

/// Everything a deploy makes, keyed by the compose names.
#[derive(Debug, Default)]
pub struct Plan {
    pub networks: BTreeMap<String, NetworkObject>,
    pub secrets: BTreeMap<String, DataObject>,
    pub configs: BTreeMap<String, DataObject>,
    /// Full service name → spec.
    pub services: BTreeMap<String, Value>,
}

/// The stack's names and where relative paths start.
pub struct Context<'a> {
    pub namespace: &'a str,
    pub dir: &'a Path,
}

impl Context<'_> {
    pub fn scope(&self, name: &str) -> String {
        format!("{}_{name}", self.namespace)
    }

    /// `labels` (a map or a `k=v` list) plus the namespace label.
    pub fn labels(&self, labels: &Value) -> Result<Map<String, Value>, String> {
        let mut m = labels_of(labels)?;
        m.insert(NAMESPACE_LABEL.into(), json!(self.namespace));
        Ok(m)
    }

    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// A compose map-or-list of `k=v` (labels, environment as labels).
pub fn labels_of(v: &Value) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    match v {
        Value::Null => {}
        Value::Object(o) => {
            for (k, x) in o {
                m.insert(k.clone(), json!(scalar(x).unwrap_or_default()));
            }
        }
        Value::Array(a) => {
            for x in a {
                let s = scalar(x).ok_or("labels must be strings")?;
                let (k, val) = s.split_once('=').unwrap_or((&s, ""));
                m.insert(k.to_string(), json!(val));
            }
        }
        _ => return Err("must be a mapping or a list".into()),
    }
    Ok(m)
}

/// A scalar as the string compose reads it (`3` → "3", `true` → "true"); `None` for null,
/// lists and mappings.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string or a list of strings (`env_file`, `dns`).
pub fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

fn is_external(v: &Value) -> bool {
    match &v["external"] {
        Value::Bool(b) => *b,
        Value::Object(_) => true,
        _ => false,
    }
}

/// The daemon-side name of a top-level network, volume, secret or config `key`.
pub fn object_name(ctx: &Context, key: &str, v: &Value) -> String {
    if let Some(n) = v["name"]
        .as_str()
        .or_else(|| v["external"]["name"].as_str())
    {
        return n.to_string();
    }
    if is_external(v) {
        key.to_string()
    } else {
        ctx.scope(key)
    }
}

fn convert_networks(ctx: &Context, doc: &Value, plan: &mut Plan) -> Result<(), String> {
    let needs_default = doc["services"].as_object().is_some_and(|s| {
        s.values()
            .any(|svc| svc.get("networks").is_none_or(Value::is_null))
    });
    let mut nets = doc["networks"].as_object().cloned().unwrap_or_default();
    if needs_default && !nets.contains_key("default") {
        nets.insert("default".into(), Value::Null);
    }
    for (key, v) in &nets {
        let name = object_name(ctx, key, v);
        let mut body = json!({
            "Name": name,
            "Driver": v["driver"].as_str().unwrap_or("overlay"),
            "Labels": ctx.labels(&v["labels"]).map_err(|e| format!("networks.{key}.labels {e}"))?,
            "Attachable": v["attachable"].as_bool().unwrap_or(false),
            "Internal": v["internal"].as_bool().unwrap_or(false),
        });
        if let Some(o) = v["driver_opts"].as_object() {
            body["Options"] = Value::Object(labels_of(&Value::Object(o.clone()))?);
        }
        if let Some(cfgs) = v["ipam"]["config"].as_array() {
            let config: Vec<Value> = cfgs.iter().map(|c| json!({"Subnet": c["subnet"].as_str().unwrap_or(""), "Gateway": c["gateway"].as_str().unwrap_or("")})).collect();
            body["IPAM"] = json!({"Driver": v["ipam"]["driver"].as_str().unwrap_or("default"), "Config": config});
        }
        plan.networks.insert(
            key.clone(),
            NetworkObject {
                name,
                external: is_external(v),
                body,
            },
        );
    }
    Ok(())
}

fn convert_data(
    ctx: &Context,
    doc: &Value,
    what: &str,
) -> Result<BTreeMap<String, DataObject>, String> {
    let mut out = BTreeMap::new();
    for (key, v) in doc[what].as_object().into_iter().flatten() {
        let external = is_external(v);
        let file = v["file"].as_str().map(|f| ctx.path(f));
        if !external && file.is_none() {
            return Err(format!(
                "{what}.{key}: a file (file:) is required unless external: true"
            ));
        }
        out.insert(
            key.clone(),
            DataObject {
                name: object_name(ctx, key, v),
                external,
                file,
                labels: ctx
                    .labels(&v["labels"])
                    .map_err(|e| format!("{what}.{key}.labels {e}"))?,
                template_driver: v["template_driver"].as_str().map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// The whole plan of a compose document for stack `ctx.namespace`.
pub fn convert(ctx: &Context, doc: &Value) -> Result<Plan, String> {
    let services = doc["services"]
        .as_object()
        .filter(|s| !s.is_empty())
        .ok_or("no services in the compose file (services: is empty or missing)")?;
    let mut plan = Plan::default();
    convert_networks(ctx, doc, &mut plan)?;
    plan.secrets = convert_data(ctx, doc, "secrets")?;
    plan.configs = convert_data(ctx, doc, "configs")?;
    for (key, svc) in services {
        let spec = convert_service(ctx, &plan, doc, key, svc)
            .map_err(|e| format!("service {key}: {e}"))?;
        plan.services.insert(ctx.scope(key), spec);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::stack::compose;

    const COMPOSE: &str = r#"
services:
  web:
    image: busybox:${TAG:-latest}
    command: sh -c "nc -lk -p 80 -e echo hi"
    environment:
      B: "2"
      A: 1
    working_dir: /srv
    user: "1000"
    hostname: web-host
    labels: [tier=front]
    ports:
      - "8080:80"
      - target: 81
        published: 8081
        protocol: udp
        mode: host
    networks:
      front:
        aliases: [www]
    secrets:
      - db_pw
      - source: db_pw
        target: pw2
        uid: "100"
        mode: 0400
    configs:
      - source: app
        target: /etc/app.conf
    volumes:
      - data:/data:ro
      - ./site:/site
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 64m
    healthcheck:
      test: ["CMD", "true"]
      interval: 10s
      retries: 3
    deploy:
      replicas: 2
      labels:
        role: web
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 100}
        reservations: {memory: 32M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}
      update_config: {parallelism: 2, order: start-first, failure_action: rollback}
      placement:
        constraints: [node.role == worker]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 1
      endpoint_mode: dnsrr
  worker:
    image: busybox
    entrypoint: [sleep]
    command: ["3600"]
    environment: [X=1]
    deploy:
      mode: global
networks:
  front:
    driver_opts: {encrypted: ""}
  ext:
    external: true
secrets:
  db_pw:
    file: ./pw.txt
configs:
  app:
    file: /etc/hostname
    template_driver: golang
volumes:
  data:
"#;

    fn plan() -> Plan {
        let env = |k: &str| (k == "TAG").then(|| "1.36".to_string());
        let doc = compose::load(COMPOSE, &env).expect("compose");
        let ctx = Context {
            namespace: "st",
            dir: Path::new("/srv/app"),
        };
        convert(&ctx, &doc).expect("convert")
    }

    #[test]
    fn services_named_labelled_and_specified() {
        let p = plan();
        let web = &p.services["st_web"];
        assert_eq!(web["Name"], "st_web");
        assert_eq!(
            web["Labels"],
            json!({"role": "web", NAMESPACE_LABEL: "st", IMAGE_LABEL: "busybox:1.36"})
        );
        let cs = &web["TaskTemplate"]["ContainerSpec"];
        assert_eq!(cs["Image"], "busybox:1.36");
        assert_eq!(cs["Args"], json!(["sh", "-c", "nc -lk -p 80 -e echo hi"]));
        assert_eq!(cs["Env"], json!(["A=1", "B=2"]));
        assert_eq!(
            (
                cs["Dir"].as_str(),
                cs["User"].as_str(),
                cs["Hostname"].as_str()
            ),
            (Some("/srv"), Some("1000"), Some("web-host"))
        );
        assert_eq!(
            cs["Labels"],
            json!({"tier": "front", NAMESPACE_LABEL: "st"})
        );
        assert_eq!(
            cs["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 10_000_000_000i64, "Retries": 3})
        );
        assert_eq!(web["Mode"], json!({"Replicated": {"Replicas": 2}}));
        assert_eq!(web["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(
            web["EndpointSpec"]["Ports"],
            json!([
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"}])
        );
        let worker = &p.services["st_worker"];
        assert_eq!(worker["Mode"], json!({"Global": {}}));
        assert_eq!(
            worker["TaskTemplate"]["ContainerSpec"]["Command"],
            json!(["sleep"])
        );
        assert_eq!(
            worker["TaskTemplate"]["ContainerSpec"]["Args"],
            json!(["3600"])
        );
        assert_eq!(
            worker["TaskTemplate"]["Networks"],
            json!([{"Target": "st_default", "Aliases": ["worker"]}])
        );
    }

    #[test]
    fn deploy_keys() {
        let p = plan();
        let tt = &p.services["st_web"]["TaskTemplate"];
        assert_eq!(
            tt["Resources"],
            json!({
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 67_108_864, "Pids": 100},
            "Reservations": {"MemoryBytes": 33_554_432}})
        );
        assert_eq!(
            tt["RestartPolicy"],
            json!({"Condition": "on-failure", "Delay": 5_000_000_000i64, "MaxAttempts": 3})
        );
        assert_eq!(
            tt["Placement"],
            json!({
            "Constraints": ["node.role == worker"],
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
            "MaxReplicas": 1})
        );
        assert_eq!(
            p.services["st_web"]["UpdateConfig"],
            json!({"Parallelism": 2, "FailureAction": "rollback", "Order": "start-first"})
        );
    }

    #[test]
    fn attachments_and_top_level_objects() {
        let p = plan();
        let tt = &p.services["st_web"]["TaskTemplate"];
        assert_eq!(
            tt["Networks"],
            json!([{"Target": "st_front", "Aliases": ["www", "web"]}])
        );
        assert_eq!(
            tt["ContainerSpec"]["Secrets"],
            json!([
            {"File": {"Name": "db_pw", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretID": "", "SecretName": "st_db_pw"},
            {"File": {"Name": "pw2", "UID": "100", "GID": "0", "Mode": 0o400}, "SecretID": "", "SecretName": "st_db_pw"}])
        );
        assert_eq!(
            tt["ContainerSpec"]["Configs"][0]["File"]["Name"],
            "/etc/app.conf"
        );
        assert_eq!(
            tt["ContainerSpec"]["Mounts"],
            json!([
            {"Type": "volume", "Source": "st_data", "Target": "/data", "ReadOnly": true,
             "VolumeOptions": {"Labels": {NAMESPACE_LABEL: "st"}}},
            {"Type": "bind", "Source": "/srv/app/./site", "Target": "/site"},
            {"Type": "tmpfs", "Target": "/cache", "TmpfsOptions": {"SizeBytes": 67_108_864}}])
        );
        assert_eq!(
            p.networks["front"].body,
            json!({
            "Name": "st_front", "Driver": "overlay", "Labels": {NAMESPACE_LABEL: "st"},
            "Attachable": false, "Internal": false, "Options": {"encrypted": ""}})
        );
        assert!(p.networks["ext"].external && p.networks["ext"].name == "ext");
        assert_eq!(p.networks["default"].name, "st_default");
        assert_eq!(
            p.secrets["db_pw"].file.as_deref(),
            Some(Path::new("/srv/app/./pw.txt"))
        );
        assert_eq!(
            p.secrets["db_pw"].labels,
            json!({NAMESPACE_LABEL: "st"})
                .as_object()
                .cloned()
                .expect("map")
        );
        assert_eq!(p.configs["app"].template_driver.as_deref(), Some("golang"));
    }

    #[test]
    fn bad_compose_files_are_refused_clearly() {
        let ctx = Context {
            namespace: "st",
            dir: Path::new("/"),
        };
        let load = |t: &str| compose::load(t, &|_| None).expect("yaml");
        let err = |t: &str| convert(&ctx, &load(t)).expect_err("bad file");
        assert!(err("services: {}").contains("no services"));
        assert!(err("services:\n  a:\n    command: x\n").contains("image is required"));
        assert!(err("services:\n  a:\n    image: x\n    bogus: 1\n")
            .contains("additional property bogus"));
        assert!(err("services:\n  a:\n    image: x\n    networks: [nope]\n")
            .contains("undefined network \"nope\""));
        assert!(err("services:\n  a:\n    image: x\n    secrets: [s]\n")
            .contains("undefined secret \"s\""));
        assert!(
            err("services:\n  a:\n    image: x\n    volumes: ['v:/d']\n")
                .contains("undefined volume \"v\"")
        );
        assert!(
            err("services:\n  a:\n    image: x\n    deploy: {mode: sometimes}\n")
                .contains("deploy.mode")
        );
        assert!(
            err("services:\n  a:\n    image: x\n    deploy: {replicas: many}\n")
                .contains("deploy.replicas")
        );
        assert!(err("services:\n  a:\n    image: x\nsecrets:\n  s: {}\n").contains("file"));
    }
}
