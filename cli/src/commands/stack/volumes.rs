//! A compose service's attachments: `volumes:` into mounts (named volumes of the stack,
//! binds relative to the compose file, tmpfs), `networks:` into attachments aliased by the
//! compose service name, and `secrets:`/`configs:` into file references.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::convert::{object_name, scalar, Context, DataObject, Plan};
use crate::commands::service::parse::parse_mode;

fn named_volume(ctx: &Context, doc: &Value, name: &str) -> Result<(String, Option<Value>), String> {
    let Some(v) = doc["volumes"].get(name) else {
        return Err(format!("undefined volume \"{name}\""));
    };
    let source = object_name(ctx, name, v);
    if v["external"].as_bool() == Some(true) || v["external"].is_object() {
        return Ok((source, None));
    }
    let mut opts = json!({"Labels": ctx.labels(&v["labels"]).map_err(|e| format!("volumes.{name}.labels {e}"))?});
    if let Some(d) = v["driver"].as_str() {
        let o = v["driver_opts"].as_object().cloned().unwrap_or_default();
        opts["DriverConfig"] = json!({"Name": d, "Options": o});
    }
    Ok((source, Some(opts)))
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

fn short_mount(ctx: &Context, doc: &Value, s: &str) -> Result<Value, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, target, mode) = match parts.as_slice() {
        [t] => return Ok(json!({"Type": "volume", "Target": t})),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("invalid volume specification: '{s}'")),
    };
    let read_only = mode.split(',').any(|m| m == "ro");
    let mut m = if is_path(src) {
        let path = match src.strip_prefix("~/") {
            Some(rest) => {
                std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest)
            }
            None => ctx.path(src),
        };
        json!({"Type": "bind", "Source": path.to_string_lossy(), "Target": target})
    } else {
        let (source, opts) = named_volume(ctx, doc, src)?;
        let mut m = json!({"Type": "volume", "Source": source, "Target": target});
        if let Some(o) = opts {
            m["VolumeOptions"] = o;
        }
        m
    };
    if read_only {
        m["ReadOnly"] = json!(true);
    }
    Ok(m)
}

fn long_mount(ctx: &Context, doc: &Value, v: &Value) -> Result<Value, String> {
    let kind = v["type"].as_str().unwrap_or("volume");
    let target = v["target"].as_str().ok_or("volumes: target is required")?;
    let mut m = json!({"Type": kind, "Target": target});
    if v["read_only"].as_bool() == Some(true) {
        m["ReadOnly"] = json!(true);
    }
    let src = v["source"].as_str().unwrap_or("");
    match kind {
        "bind" => {
            if src.is_empty() {
                return Err("volumes: a bind mount needs a source".into());
            }
            m["Source"] = json!(ctx.path(src).to_string_lossy());
            if let Some(p) = v["bind"]["propagation"].as_str() {
                m["BindOptions"] = json!({"Propagation": p});
            }
        }
        "volume" if !src.is_empty() => {
            let (source, opts) = named_volume(ctx, doc, src)?;
            m["Source"] = json!(source);
            let mut o = opts.unwrap_or_else(|| json!({}));
            if v["volume"]["nocopy"].as_bool() == Some(true) {
                o["NoCopy"] = json!(true);
            }
            if o.as_object().is_some_and(|x| !x.is_empty()) {
                m["VolumeOptions"] = o;
            }
        }
        "volume" => {}
        "tmpfs" => {
            if let Some(size) = scalar(&v["tmpfs"]["size"]) {
                let bytes = crate::opts::parse_ram(&size)
                    .map_err(|e| format!("volumes: tmpfs.size: {e}"))?;
                m["TmpfsOptions"] = json!({"SizeBytes": bytes});
            }
        }
        other => return Err(format!("volumes: unsupported mount type {other:?}")),
    }
    Ok(m)
}

/// The mounts of `volumes:`.
pub fn mounts(ctx: &Context, doc: &Value, v: &Value) -> Result<Vec<Value>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| match x.as_str() {
            Some(s) => short_mount(ctx, doc, s),
            None => long_mount(ctx, doc, x),
        })
        .collect()
}

/// The attachments of `networks:` (a list or a map with `aliases`), or the stack's default
/// network when there is none; each aliased by the compose service name, sorted by target.
pub fn networks(_ctx: &Context, plan: &Plan, key: &str, v: &Value) -> Result<Vec<Value>, String> {
    let mut wanted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    match v {
        Value::Null => {
            wanted.insert("default".into(), Vec::new());
        }
        Value::Array(a) => {
            for n in a {
                wanted.insert(
                    scalar(n).ok_or("networks: names must be strings")?,
                    Vec::new(),
                );
            }
        }
        Value::Object(o) => {
            for (n, cfg) in o {
                let aliases = cfg["aliases"].as_array().cloned().unwrap_or_default();
                wanted.insert(n.clone(), aliases);
            }
        }
        _ => return Err("networks must be a list or a mapping".into()),
    }
    let mut out = Vec::new();
    for (n, mut aliases) in wanted {
        let net = plan
            .networks
            .get(&n)
            .ok_or_else(|| format!("undefined network \"{n}\""))?;
        aliases.push(json!(key));
        out.push(json!({"Target": net.name, "Aliases": aliases}));
    }
    out.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    Ok(out)
}

/// A compose file mode: a string (`"0440"`), or a YAML integer. YAML 1.2 reads `0440` as the
/// decimal 440, which compose (YAML 1.1 octal) means as 0o440: an integer whose digits are
/// all octal digits is read as octal.
fn file_mode(v: &Value) -> Result<u32, String> {
    match v {
        Value::Null => Ok(0o444),
        Value::String(s) => parse_mode(s),
        Value::Number(n) => {
            let d = n.to_string();
            if d.chars().all(|c| ('0'..='7').contains(&c)) {
                u32::from_str_radix(&d, 8).map_err(|e| format!("invalid file mode {d}: {e}"))
            } else {
                d.parse::<u32>()
                    .map_err(|e| format!("invalid file mode {d}: {e}"))
            }
        }
        _ => Err("mode must be a number".into()),
    }
}

/// The `Secrets`/`Configs` entries of a service (IDs left empty for the deploy to fill).
pub fn file_refs(
    v: &Value,
    objects: &BTreeMap<String, DataObject>,
    field: &str,
    id_key: &str,
    name_key: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        let (source, cfg) = match scalar(r) {
            Some(s) => (s, &Value::Null),
            None => (
                r["source"]
                    .as_str()
                    .ok_or_else(|| format!("{field}: source is required"))?
                    .to_string(),
                r,
            ),
        };
        let obj = objects
            .get(&source)
            .ok_or_else(|| format!("undefined {} \"{source}\"", field.trim_end_matches('s')))?;
        let target = cfg["target"].as_str().unwrap_or(&source).to_string();
        let mut file = Map::new();
        file.insert("Name".into(), json!(target));
        file.insert(
            "UID".into(),
            json!(scalar(&cfg["uid"]).unwrap_or_else(|| "0".into())),
        );
        file.insert(
            "GID".into(),
            json!(scalar(&cfg["gid"]).unwrap_or_else(|| "0".into())),
        );
        file.insert(
            "Mode".into(),
            json!(file_mode(&cfg["mode"]).map_err(|e| format!("{field}.{source}.mode: {e}"))?),
        );
        out.push(json!({"File": file, id_key: "", name_key: obj.name}));
    }
    Ok(out)
}
