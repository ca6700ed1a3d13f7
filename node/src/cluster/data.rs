//! Secrets and configs (`/secrets*`, `/configs*`): named, immutable data kept in the
//! replicated store. A secret's data never appears in an API answer; a config's does.

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_api::backend::Filters;
use berth_api::error::{ApiError, ApiResult};
use berth_raft::manager::{new_node_id, Manager};
use berth_raft::objects::{DataKind, DataObject};
use berth_raft::state::Op;
use serde_json::{json, Value};

use super::api_error;

/// Docker's rule for secret and config names.
fn valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn labels_of(v: Option<&Value>) -> ApiResult<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(l) => serde_json::from_value(l.clone())
            .map_err(|e| ApiError::invalid(format!("invalid labels: {e}"))),
    }
}

fn opt(v: Option<&Value>) -> Option<Value> {
    v.filter(|x| !x.is_null()).cloned()
}

/// `POST /{secrets,configs}/create`: 201 `{"ID"}`.
pub async fn create(m: &Manager, kind: DataKind, spec: Value) -> ApiResult<Value> {
    let k = kind.as_str();
    let name = spec
        .get("Name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    if !valid_name(&name) {
        return Err(ApiError::invalid(format!(
            "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]: {name:?}"
        )));
    }
    let data = match spec.get("Data") {
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| ApiError::invalid(format!("invalid {k} data: not base64: {e}")))?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "invalid {k} data: expected a base64 string"
            )))
        }
    };
    let driver = opt(spec.get("Driver"));
    if data.is_empty() && driver.is_none() || data.len() > kind.max_size() {
        return Err(ApiError::invalid(format!(
            "rpc error: code = InvalidArgument desc = {k} data must be larger than 0 and less than {} bytes",
            kind.max_size()
        )));
    }
    let id = new_node_id();
    let object = DataObject {
        id: id.clone(),
        meta: Default::default(),
        name,
        labels: labels_of(spec.get("Labels"))?,
        data,
        templating: opt(spec.get("Templating")),
        driver,
    };
    m.propose(Op::PutData {
        kind,
        version: None,
        object: Box::new(object),
    })
    .await
    .map_err(|e| match e {
        berth_raft::ClusterError::AlreadyExists(m) => {
            ApiError::conflict(format!("rpc error: code = AlreadyExists desc = {m}"))
        }
        e => api_error(e),
    })?;
    Ok(json!({ "ID": id }))
}

/// An object by ID, name, or unique ID prefix.
pub fn find(m: &Manager, kind: DataKind, key: &str) -> ApiResult<DataObject> {
    m.read(|s| {
        let map = s.data(kind);
        if let Some(o) = map.get(key) {
            return Ok(o.clone());
        }
        if let Some(o) = map.values().find(|o| o.name == key) {
            return Ok(o.clone());
        }
        let hits: Vec<&DataObject> = map.values().filter(|o| o.id.starts_with(key)).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!(
                "{} {key} not found",
                kind.as_str()
            ))),
            _ => Err(ApiError::invalid(format!(
                "{} {key} is ambiguous ({} matches found)",
                kind.as_str(),
                hits.len()
            ))),
        }
    })
}

/// Docker's JSON of a secret (no data) or a config (with its data).
pub fn view(kind: DataKind, o: &DataObject) -> Value {
    let mut spec = json!({ "Name": o.name, "Labels": o.labels });
    if kind == DataKind::Config {
        spec["Data"] = json!(base64::engine::general_purpose::STANDARD.encode(&o.data));
    }
    if let Some(t) = &o.templating {
        spec["Templating"] = t.clone();
    }
    if let Some(d) = &o.driver {
        spec["Driver"] = d.clone();
    }
    json!({
        "ID": o.id,
        "Version": { "Index": o.meta.version },
        "CreatedAt": o.meta.created_at,
        "UpdatedAt": o.meta.updated_at,
        "Spec": spec,
    })
}

pub fn list(m: &Manager, kind: DataKind, f: &Filters) -> Vec<Value> {
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| match f.get(key) {
        Some(vals) if !vals.is_empty() => vals.iter().any(|v| pred(v)),
        _ => true,
    };
    m.read(|s| {
        s.data(kind)
            .values()
            .filter(|o| {
                any("id", &|v| o.id.starts_with(v))
                    && any("name", &|v| o.name.starts_with(v))
                    && any("names", &|v| o.name == v)
                    && any("label", &|v| match v.split_once('=') {
                        Some((k, val)) => o.labels.get(k).is_some_and(|x| x == val),
                        None => o.labels.contains_key(v),
                    })
            })
            .map(|o| view(kind, o))
            .collect()
    })
}

/// Only labels can change; the rest of the spec must be what it is.
pub async fn update(
    m: &Manager,
    kind: DataKind,
    key: &str,
    version: u64,
    spec: Value,
) -> ApiResult<()> {
    let cur = find(m, kind, key)?;
    let name = spec
        .get("Name")
        .and_then(|n| n.as_str())
        .unwrap_or(&cur.name);
    let data_changed = match spec.get("Data") {
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(|d| d != cur.data)
            .unwrap_or(true),
        _ => false,
    };
    if name != cur.name || data_changed {
        return Err(ApiError::invalid(
            "rpc error: code = InvalidArgument desc = only updates to Labels are allowed",
        ));
    }
    let mut next = cur.clone();
    next.labels = labels_of(spec.get("Labels"))?;
    m.propose(Op::PutData {
        kind,
        version: Some(version),
        object: Box::new(next),
    })
    .await
    .map_err(api_error)?;
    Ok(())
}

pub async fn remove(m: &Manager, kind: DataKind, key: &str) -> ApiResult<()> {
    let cur = find(m, kind, key)?;
    // Refused while a service refers to it: the check is the state machine's, so a
    // concurrent `service create` cannot slip in between (Docker's words).
    m.propose(Op::RemoveData { kind, id: cur.id })
        .await
        .map_err(|e| match e {
            berth_raft::ClusterError::FailedPrecondition(msg) => {
                ApiError::invalid(format!("rpc error: code = InvalidArgument desc = {msg}"))
            }
            e => api_error(e),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["a", "db-password", "x.y_z", "A1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
