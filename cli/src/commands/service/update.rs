//! `service update`'s changes to a spec read back from the daemon: the `--*-add`/`--*-rm`
//! pairs, `--image`, `--args`, `--force`, and every [`super::flags::SpecFlags`] given. The
//! look-ups (secret and config IDs, network IDs) are made first, so [`apply_update`] is a
//! pure function of the spec and the flags.

use serde_json::{json, Value};

use super::flags::UpdateArgs;
use super::parse::{parse_network, parse_placement_pref, parse_publish, shell_words};
use super::spec::{apply_flags, env_list, obj};
use crate::opts::{self, flag_error};

/// What the daemon was asked before the spec is changed.
#[derive(Debug, Default)]
pub struct Resolved {
    /// `--secret-add` / `--config-add` entries, IDs filled in.
    pub secrets_add: Vec<Value>,
    pub configs_add: Vec<Value>,
    /// The IDs (and the names as given) of `--network-rm`.
    pub networks_rm: Vec<String>,
    /// `--image`, pinned to its digest unless `--no-resolve-image`.
    pub image: Option<String>,
}

fn list<'a>(spec: &'a mut Value, path: &[&str], key: &str) -> &'a mut Vec<Value> {
    let m = obj(spec, path);
    let v = m.entry(key.to_string()).or_insert_with(|| json!([]));
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("made an array just above")
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

fn update_env(spec: &mut Value, a: &UpdateArgs) -> Result<(), String> {
    let add = env_list(&a.env_add, &[])?;
    let env = list(spec, &["TaskTemplate", "ContainerSpec"], "Env");
    env.retain(|e| {
        let k = env_key(e.as_str().unwrap_or(""));
        !a.env_rm.iter().any(|r| r == k) && !add.iter().any(|x| env_key(x) == k)
    });
    env.extend(add.into_iter().map(Value::String));
    Ok(())
}

fn update_labels(spec: &mut Value, path: &[&str], add: &[String], rm: &[String]) {
    if add.is_empty() && rm.is_empty() {
        return;
    }
    let labels = obj(spec, path);
    for k in rm {
        labels.remove(k);
    }
    labels.extend(opts::parse_labels(add));
}

fn update_mounts(spec: &mut Value, a: &UpdateArgs) -> Result<(), String> {
    let add = a
        .mount_add
        .iter()
        .map(|m| opts::parse_mount(m).map_err(|e| flag_error(m, "--mount-add", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if add.is_empty() && a.mount_rm.is_empty() {
        return Ok(());
    }
    let mounts = list(spec, &["TaskTemplate", "ContainerSpec"], "Mounts");
    mounts.retain(|m| {
        let t = m["Target"].as_str().unwrap_or("");
        !a.mount_rm.iter().any(|r| r == t) && !add.iter().any(|x| x["Target"] == t)
    });
    mounts.extend(add);
    Ok(())
}

fn update_placement(spec: &mut Value, a: &UpdateArgs) -> Result<(), String> {
    if !a.constraint_add.is_empty() || !a.constraint_rm.is_empty() {
        let c = list(spec, &["TaskTemplate", "Placement"], "Constraints");
        c.retain(|x| !a.constraint_rm.iter().any(|r| x == r.as_str()));
        for add in &a.constraint_add {
            if !c.iter().any(|x| x == add.as_str()) {
                c.push(json!(add));
            }
        }
    }
    let add = a
        .placement_pref_add
        .iter()
        .map(|p| parse_placement_pref(p).map_err(|e| flag_error(p, "--placement-pref-add", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let rm = a
        .placement_pref_rm
        .iter()
        .map(|p| parse_placement_pref(p).map_err(|e| flag_error(p, "--placement-pref-rm", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !add.is_empty() || !rm.is_empty() {
        let p = list(spec, &["TaskTemplate", "Placement"], "Preferences");
        p.retain(|x| !rm.contains(x));
        p.extend(add);
    }
    Ok(())
}

/// `--publish-rm` takes `<target>[/proto]` (or the long syntax); what it names.
fn port_key(s: &str) -> Result<(u64, String), String> {
    let p = parse_publish(s)?;
    let first = p.first().ok_or("no port")?;
    Ok((
        first["TargetPort"].as_u64().unwrap_or(0),
        first["Protocol"].as_str().unwrap_or("tcp").to_string(),
    ))
}

fn update_ports(spec: &mut Value, a: &UpdateArgs) -> Result<(), String> {
    let mut add = Vec::new();
    for p in &a.publish_add {
        add.extend(parse_publish(p).map_err(|e| flag_error(p, "--publish-add", &e))?);
    }
    let rm = a
        .publish_rm
        .iter()
        .map(|p| port_key(p).map_err(|e| flag_error(p, "--publish-rm", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if add.is_empty() && rm.is_empty() {
        return Ok(());
    }
    let ports = list(spec, &["EndpointSpec"], "Ports");
    let same = |x: &Value, y: &Value| {
        x["Protocol"] == y["Protocol"]
            && (x["TargetPort"] == y["TargetPort"]
                || (x["PublishedPort"].as_u64().unwrap_or(0) != 0
                    && x["PublishedPort"] == y["PublishedPort"]))
    };
    ports.retain(|x| {
        let key = (
            x["TargetPort"].as_u64().unwrap_or(0),
            x["Protocol"].as_str().unwrap_or("tcp").to_string(),
        );
        !rm.contains(&key) && !add.iter().any(|y| same(x, y))
    });
    ports.extend(add);
    Ok(())
}

fn update_networks(spec: &mut Value, a: &UpdateArgs, r: &Resolved) -> Result<(), String> {
    let add = a
        .network_add
        .iter()
        .map(|n| parse_network(n).map_err(|e| flag_error(n, "--network-add", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if add.is_empty() && r.networks_rm.is_empty() {
        return Ok(());
    }
    // The daemon keeps the legacy `Spec.Networks` under the task template; so do we.
    if let Some(legacy) = spec.as_object_mut().and_then(|m| m.remove("Networks")) {
        obj(spec, &["TaskTemplate"])
            .entry("Networks")
            .or_insert(legacy);
    }
    let nets = list(spec, &["TaskTemplate"], "Networks");
    nets.retain(|n| {
        let t = n["Target"].as_str().unwrap_or("");
        !r.networks_rm.iter().any(|x| x == t)
    });
    nets.extend(add);
    Ok(())
}

fn update_refs(
    spec: &mut Value,
    key: &str,
    name_key: &str,
    id_key: &str,
    add: &[Value],
    rm: &[String],
) {
    if add.is_empty() && rm.is_empty() {
        return;
    }
    let refs = list(spec, &["TaskTemplate", "ContainerSpec"], key);
    refs.retain(|x| {
        let named = |s: &String| x[name_key] == s.as_str() || x[id_key] == s.as_str();
        !rm.iter().any(named) && !add.iter().any(|y| y["File"]["Name"] == x["File"]["Name"])
    });
    refs.extend(add.iter().cloned());
}

/// Applies every change `a` asks for to `spec` (as read back from the daemon).
pub fn apply_update(spec: &mut Value, a: &UpdateArgs, r: &Resolved) -> Result<(), String> {
    if let Some(image) = &r.image {
        obj(spec, &["TaskTemplate", "ContainerSpec"]).insert("Image".into(), json!(image));
    }
    if let Some(args) = &a.args {
        let words = shell_words(args).map_err(|e| flag_error(args, "--args", &e))?;
        obj(spec, &["TaskTemplate", "ContainerSpec"]).insert("Args".into(), json!(words));
    }
    if !a.env_add.is_empty() || !a.env_rm.is_empty() {
        update_env(spec, a)?;
    }
    update_labels(spec, &["Labels"], &a.label_add, &a.label_rm);
    update_labels(
        spec,
        &["TaskTemplate", "ContainerSpec", "Labels"],
        &a.container_label_add,
        &a.container_label_rm,
    );
    update_mounts(spec, a)?;
    update_placement(spec, a)?;
    update_ports(spec, a)?;
    update_networks(spec, a, r)?;
    update_refs(
        spec,
        "Secrets",
        "SecretName",
        "SecretID",
        &r.secrets_add,
        &a.secret_rm,
    );
    update_refs(
        spec,
        "Configs",
        "ConfigName",
        "ConfigID",
        &r.configs_add,
        &a.config_rm,
    );
    apply_flags(spec, &a.spec)?;
    if a.force {
        let t = obj(spec, &["TaskTemplate"]);
        let n = t.get("ForceUpdate").and_then(Value::as_u64).unwrap_or(0);
        t.insert("ForceUpdate".into(), json!(n + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "Name": "svc", "Labels": {"a": "1"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox:latest", "Env": ["A=1", "B=2"],
                    "Secrets": [{"File": {"Name": "s1", "UID": "0", "GID": "0", "Mode": 292},
                                 "SecretID": "id1", "SecretName": "s1"}],
                },
                "Networks": [{"Target": "netid1"}],
                "ForceUpdate": 0,
            },
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]},
        })
    }

    #[test]
    fn adds_and_removes() {
        let a = UpdateArgs {
            env_add: vec!["A=9".into(), "C=3".into()],
            env_rm: vec!["B".into()],
            label_rm: vec!["a".into()],
            label_add: vec!["b=2".into()],
            publish_rm: vec!["80".into()],
            publish_add: vec!["published=9090,target=90,mode=host".into()],
            secret_rm: vec!["s1".into()],
            network_add: vec!["name=ov2,alias=web".into()],
            force: true,
            ..Default::default()
        };
        let r = Resolved {
            secrets_add: vec![
                json!({"File": {"Name": "other"}, "SecretID": "id2", "SecretName": "s2"}),
            ],
            networks_rm: vec!["netid1".into()],
            image: Some("busybox:2".into()),
            ..Default::default()
        };
        let mut s = spec();
        apply_update(&mut s, &a, &r).expect("update");
        let cs = &s["TaskTemplate"]["ContainerSpec"];
        assert_eq!(cs["Image"], "busybox:2");
        assert_eq!(cs["Env"], json!(["A=9", "C=3"]));
        assert_eq!(
            cs["Secrets"],
            json!([{"File": {"Name": "other"}, "SecretID": "id2", "SecretName": "s2"}])
        );
        assert_eq!(s["Labels"], json!({"b": "2"}));
        assert_eq!(
            s["EndpointSpec"]["Ports"],
            json!([{"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}])
        );
        assert_eq!(
            s["TaskTemplate"]["Networks"],
            json!([{"Target": "ov2", "Aliases": ["web"]}])
        );
        assert_eq!(s["TaskTemplate"]["ForceUpdate"], 1);
        assert_eq!(s["Mode"]["Replicated"]["Replicas"], 2);
    }

    #[test]
    fn spec_flags_on_update() {
        let mut a = UpdateArgs::default();
        a.spec.replicas = Some(5);
        a.spec.update_parallelism = Some(2);
        a.spec.update_order = Some("start-first".into());
        a.spec.limit_memory = Some("64m".into());
        let mut s = spec();
        apply_update(&mut s, &a, &Resolved::default()).expect("update");
        assert_eq!(s["Mode"]["Replicated"]["Replicas"], 5);
        assert_eq!(
            s["UpdateConfig"],
            json!({"Parallelism": 2, "Order": "start-first"})
        );
        assert_eq!(
            s["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"],
            67_108_864
        );
        a.spec.update_order = Some("sideways".into());
        let err = apply_update(&mut spec(), &a, &Resolved::default()).expect_err("bad order");
        assert!(err.contains("--update-order"), "{err}");
    }
}
