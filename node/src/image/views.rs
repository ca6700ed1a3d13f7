//! The JSON views of images: `GET /images/json` (with its filters), `GET /images/{name}/json`
//! and `GET /images/{name}/history`, shaped as dockerd sends them at API 1.45 (the version
//! berthd speaks): `RepoTags`/`RepoDigests`/`Labels` of the list are never null (dockerd 20.10
//! sent `<none>:<none>` and nulls), and the fields older clients read are still present.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::ImageService;
use crate::image::store::config::{
    docker_config_value, parse_time, rfc3339_nano, ImageConfig, ZERO_TIME,
};
use crate::image::store::records::ImageRecord;
use berth_api::backend::Filters;
use berth_api::models::ContainerConfig;

fn familiar(full: &[String]) -> Vec<String> {
    full.iter()
        .filter_map(|r| Reference::parse(r).ok())
        .map(|r| r.familiar())
        .collect()
}

fn list_or_null(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

impl ImageService {
    /// `GET /images/json?all=1`, newest first.
    #[cfg(test)]
    pub(crate) fn list_images(&self, filters: &Filters) -> Result<Vec<Value>, ImageError> {
        self.list_images_with(filters, true)
    }

    /// `GET /images/json`: without `all`, untagged images that are the parent of another
    /// image (a build's intermediate steps) are left out.
    pub(crate) fn list_images_with(
        &self,
        filters: &Filters,
        all: bool,
    ) -> Result<Vec<Value>, ImageError> {
        let mut dangling = None;
        for (key, values) in filters {
            match key.as_str() {
                "dangling" => {
                    for v in values {
                        dangling = Some(parse_bool_filter("dangling", v)?);
                    }
                }
                "label" | "label!" | "reference" | "before" | "since" => {}
                other => {
                    return Err(ImageError::InvalidArgument(format!(
                        "Invalid filter '{other}'"
                    )))
                }
            }
        }
        let before = self.time_of_filter(filters, "before")?;
        let since = self.time_of_filter(filters, "since")?;
        let patterns = filters.get("reference").cloned().unwrap_or_default();
        let mut rows: Vec<(Option<DateTime<Utc>>, Value)> = Vec::new();
        let records = self.inner.records.all()?;
        let parents: std::collections::HashSet<&str> =
            records.iter().filter_map(|r| r.parent.as_deref()).collect();
        for rec in &records {
            if !all && rec.repo_tags.is_empty() && parents.contains(rec.id.as_str()) {
                continue;
            }
            let config = self.config_of(rec)?;
            let created = config.created_time();
            if before.is_some_and(|b| created.is_none_or(|c| c >= b))
                || since.is_some_and(|s| created.is_none_or(|c| c <= s))
            {
                continue;
            }
            let labels = config.labels();
            if !labels_match(filters, &labels) {
                continue;
            }
            let matches = |full: &String| {
                patterns.is_empty()
                    || Reference::parse(full)
                        .is_ok_and(|r| patterns.iter().any(|p| reference_match(p, &r)))
            };
            let tags = familiar(
                &rec.repo_tags
                    .iter()
                    .filter(|r| matches(r))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let digests = familiar(
                &rec.repo_digests
                    .iter()
                    .filter(|r| matches(r))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            if tags.is_empty() && digests.is_empty() {
                if dangling == Some(false) || !patterns.is_empty() {
                    continue;
                }
            } else if dangling == Some(true) && !tags.is_empty() {
                continue;
            }
            rows.push((
                created,
                json!({
                    "Containers": -1,
                    "Created": created.map_or(0, |c| c.timestamp()),
                    "Id": rec.id,
                    "Labels": Value::Object(labels),
                    "ParentId": rec.parent.clone().unwrap_or_default(),
                    "RepoDigests": digests,
                    "RepoTags": tags,
                    "SharedSize": -1,
                    "Size": rec.size,
                    "VirtualSize": rec.size,
                }),
            ));
        }
        rows.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1["Id"].as_str().cmp(&b.1["Id"].as_str()))
        });
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    fn time_of_filter(
        &self,
        filters: &Filters,
        key: &str,
    ) -> Result<Option<DateTime<Utc>>, ImageError> {
        match filters.get(key).and_then(|v| v.first()) {
            None => Ok(None),
            Some(name) => {
                let rec = self.lookup(name)?;
                Ok(Some(
                    self.config_of(&rec)?.created_time().unwrap_or_default(),
                ))
            }
        }
    }

    /// `GET /images/{name}/json`.
    pub(crate) fn inspect_image(&self, name: &str) -> Result<Value, ImageError> {
        let rec = self.lookup(name)?;
        let c = self.config_of(&rec)?;
        let created = match (&c.created, c.created_time()) {
            (_, Some(t)) => rfc3339_nano(t),
            (Some(raw), None) => raw.clone(),
            (None, None) => ZERO_TIME.to_owned(),
        };
        let mut v = json!({
            "Id": rec.id,
            "RepoTags": familiar(&rec.repo_tags),
            "RepoDigests": familiar(&rec.repo_digests),
            // What it was committed or built on (dockerd's classic builder and commit set it).
            "Parent": rec.parent.clone().unwrap_or_default(),
            "Comment": c.comment.clone().unwrap_or_default(),
            "Created": created,
            "Container": c.container.clone().unwrap_or_default(),
            "ContainerConfig": c.container_config.clone().unwrap_or_else(|| docker_config_value(&ContainerConfig::default())),
            "DockerVersion": c.docker_version.clone().unwrap_or_default(),
            "Author": c.author.clone().unwrap_or_default(),
            "Config": c.config.clone().unwrap_or(Value::Null),
            "Architecture": c.architecture,
            "Os": c.os,
            "Size": rec.size,
            "VirtualSize": rec.size,
            "GraphDriver": { "Data": self.graph_driver_data(&rec)?, "Name": "overlay2" },
            "RootFS": { "Type": "layers", "Layers": c.rootfs.diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>() },
            "Metadata": { "LastTagTime": rec.last_tag_time.clone().unwrap_or_else(|| ZERO_TIME.to_owned()) },
        });
        if let Some(variant) = &c.variant {
            v["Variant"] = json!(variant);
        }
        if let Some(osv) = &c.os_version {
            v["OsVersion"] = json!(osv);
        }
        Ok(v)
    }

    fn graph_driver_data(&self, rec: &ImageRecord) -> Result<Value, ImageError> {
        let mut dirs = Vec::new();
        for c in &rec.layers {
            dirs.push(self.inner.layers.dir(&Digest::parse(c)?));
        }
        let mut m = Map::new();
        if let Some((top, lower)) = dirs.split_last() {
            let s = |p: std::path::PathBuf| json!(p.display().to_string());
            if !lower.is_empty() {
                let l: Vec<String> = lower
                    .iter()
                    .rev()
                    .map(|d| d.join("diff").display().to_string())
                    .collect();
                m.insert("LowerDir".into(), json!(l.join(":")));
            }
            m.insert("MergedDir".into(), s(top.join("merged")));
            m.insert("UpperDir".into(), s(top.join("diff")));
            m.insert("WorkDir".into(), s(top.join("work")));
        }
        Ok(Value::Object(m))
    }

    /// `GET /images/{name}/history`, newest first.
    pub(crate) fn image_history(&self, name: &str) -> Result<Value, ImageError> {
        let rec = self.lookup(name)?;
        let c: ImageConfig = self.config_of(&rec)?;
        let mut layer = 0;
        let mut rows = Vec::new();
        for h in &c.history {
            let mut size = 0;
            if !h.empty_layer {
                if let Some(chain) = rec.layers.get(layer) {
                    size = self
                        .inner
                        .layers
                        .get(&Digest::parse(chain)?)?
                        .map_or(0, |m| m.size);
                }
                layer += 1;
            }
            rows.push(json!({
                "Comment": h.comment.clone().unwrap_or_default(),
                "Created": h.created.as_deref().and_then(parse_time).map_or(0, |t| t.timestamp()),
                "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Id": "<missing>",
                "Size": size,
                "Tags": Value::Null,
            }));
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top["Id"] = json!(rec.id);
            top["Tags"] = list_or_null(familiar(&rec.repo_tags));
        }
        Ok(Value::Array(rows))
    }
}

/// `1`/`true` or `0`/`false`; anything else is Docker's "Invalid filter".
pub(crate) fn parse_bool_filter(key: &str, v: &str) -> Result<bool, ImageError> {
    match v {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        _ => Err(ImageError::InvalidArgument(format!(
            "Invalid filter '{key}={v}'"
        ))),
    }
}

/// `until`: unix seconds, an RFC 3339 time, or a duration back from now (`24h`, `90m`).
pub(crate) fn parse_until(v: &str) -> Result<i64, ImageError> {
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(secs as i64);
    }
    if let Some(t) = parse_time(v) {
        return Ok(t.timestamp());
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| ImageError::InvalidArgument(format!("invalid until value {v:?}")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(ImageError::InvalidArgument(format!(
                "invalid until value {v:?}"
            )))
        }
    };
    Ok(Utc::now().timestamp() - secs)
}

/// `label=k`, `label=k=v`, and their negations under `label!`.
pub(crate) fn labels_match(filters: &Filters, labels: &Map<String, Value>) -> bool {
    let test = |spec: &String| match spec.split_once('=') {
        Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
        None => labels.contains_key(spec.as_str()),
    };
    filters
        .get("label")
        .is_none_or(|specs| specs.iter().all(test))
        && filters
            .get("label!")
            .is_none_or(|specs| !specs.iter().any(test))
}

/// Docker's `FamiliarMatch`: the pattern against `busybox`, then against `busybox:latest`.
pub(crate) fn reference_match(pattern: &str, r: &Reference) -> bool {
    glob(pattern.as_bytes(), r.familiar_name().as_bytes())
        || glob(pattern.as_bytes(), r.familiar().as_bytes())
}

/// Go's `path.Match`: `*` and `?` never match `/`; `[a-z]`, `[^x]` classes; `\` escapes.
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(&p[1..], &s[i..])),
        Some(b'?') => s.first().is_some_and(|c| *c != b'/') && glob(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(c) = s.first() else { return false };
            let Some(end) = p.iter().skip(1).position(|b| *b == b']').map(|i| i + 1) else {
                return false;
            };
            let (neg, class) = match p[1..end].strip_prefix(b"^") {
                Some(rest) => (true, rest),
                None => (false, &p[1..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == *c;
                    i += 1;
                }
            }
            hit != neg && *c != b'/' && glob(&p[end + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(x) => s.first() == Some(x) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"*", b"busybox:latest"));
        assert!(!glob(b"*", b"127.0.0.1:5000/bb"));
        assert!(glob(b"*/bb", b"127.0.0.1:5000/bb"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(glob(b"[a-c]usybox", b"busybox"));
        assert!(!glob(b"[^b]usybox", b"busybox"));
        assert!(glob(b"a\\*", b"a*"));
        let r = Reference::parse_tagged("busybox").expect("ref");
        assert!(reference_match("busybox", &r));
        assert!(reference_match("busybox:latest", &r));
        assert!(reference_match("busy*:lat*", &r));
        assert!(!reference_match("busybox:1", &r));
    }

    #[test]
    fn label_and_bool_filters() {
        let labels: Map<String, Value> =
            serde_json::from_str(r#"{"a":"1","b":"2"}"#).expect("json");
        let f = |k: &str, v: &[&str]| -> Filters {
            [(k.to_string(), v.iter().map(|s| s.to_string()).collect())].into()
        };
        assert!(labels_match(&f("label", &["a", "b=2"]), &labels));
        assert!(!labels_match(&f("label", &["a=2"]), &labels));
        assert!(!labels_match(&f("label!", &["a"]), &labels));
        assert!(labels_match(&f("label!", &["c"]), &labels));
        assert!(parse_bool_filter("dangling", "1").expect("ok"));
        assert_eq!(
            parse_bool_filter("dangling", "maybe")
                .expect_err("bad")
                .to_string(),
            "Invalid filter 'dangling=maybe'"
        );
        assert_eq!(parse_until("1700000000").expect("secs"), 1_700_000_000);
        assert!(parse_until("2h").expect("dur") < Utc::now().timestamp());
        assert!(parse_until("soon").is_err());
    }
}
