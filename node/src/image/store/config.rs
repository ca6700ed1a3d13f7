//! The image config blob (OCI image config / Docker image JSON): reading what the engine needs
//! from it, and writing new ones for imports.
//!
//! Config blobs are stored byte for byte as received (their sha256 is the image id), so they
//! are only ever parsed here, never re-serialised. Fields the engine does not use are ignored.

use berth_api::models::ContainerConfig;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::image::digest::Digest;
use crate::image::error::ImageError;

/// The parts of an image config the engine reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub created: Option<String>,
    pub author: Option<String>,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
    /// Docker's container `Config` of the image (Env, Cmd, Entrypoint, …), kept raw for inspect.
    pub config: Option<Value>,
    pub container: Option<String>,
    pub container_config: Option<Value>,
    pub docker_version: Option<String>,
    pub comment: Option<String>,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses and checks a config blob: `rootfs.type` must be `layers`.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, ImageError> {
        let c: ImageConfig = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::BadArchive(format!("image config {what}: {e}")))?;
        if c.rootfs.kind != "layers" {
            return Err(ImageError::BadArchive(format!(
                "image config {what}: rootfs type {:?} is not \"layers\"",
                c.rootfs.kind
            )));
        }
        Ok(c)
    }

    /// The image's defaults for new containers.
    pub fn container_config(&self) -> ContainerConfig {
        self.config
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Labels from the image's config (`Config.Labels`).
    pub fn labels(&self) -> Map<String, Value> {
        match self.config.as_ref().and_then(|c| c.get("Labels")) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    pub fn created_time(&self) -> Option<DateTime<Utc>> {
        self.created.as_deref().and_then(parse_time)
    }
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Go's `time.RFC3339Nano`: nanoseconds with trailing zeros trimmed.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let secs = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let base = secs.trim_end_matches('Z');
    match t.timestamp_subsec_nanos() {
        0 => format!("{base}Z"),
        ns => format!("{base}.{}Z", format!("{ns:09}").trim_end_matches('0')),
    }
}

/// Go's zero time, which Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker's container `Config` object as an image config carries it (null for unset lists).
pub fn docker_config_value(c: &ContainerConfig) -> Value {
    let list = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let mut m = Map::new();
    m.insert("Hostname".into(), json!(c.hostname));
    m.insert("Domainname".into(), json!(c.domainname));
    m.insert("User".into(), json!(c.user));
    m.insert("AttachStdin".into(), json!(false));
    m.insert("AttachStdout".into(), json!(false));
    m.insert("AttachStderr".into(), json!(false));
    if let Some(p) = &c.exposed_ports {
        m.insert("ExposedPorts".into(), json!(p));
    }
    m.insert("Tty".into(), json!(false));
    m.insert("OpenStdin".into(), json!(false));
    m.insert("StdinOnce".into(), json!(false));
    m.insert("Env".into(), list(&c.env));
    m.insert("Cmd".into(), list(&c.cmd));
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), h.clone());
    }
    m.insert("Image".into(), json!(c.image));
    m.insert(
        "Volumes".into(),
        c.volumes.as_ref().map_or(Value::Null, |v| json!(v)),
    );
    m.insert("WorkingDir".into(), json!(c.working_dir));
    m.insert("Entrypoint".into(), list(&c.entrypoint));
    m.insert(
        "OnBuild".into(),
        c.on_build.as_ref().map_or(Value::Null, |v| json!(v)),
    );
    m.insert(
        "Labels".into(),
        if c.labels.is_empty() {
            Value::Null
        } else {
            json!(c.labels)
        },
    );
    if let Some(s) = &c.stop_signal {
        m.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = c.stop_timeout {
        m.insert("StopTimeout".into(), json!(t));
    }
    if let Some(s) = &c.shell {
        m.insert("Shell".into(), json!(s));
    }
    Value::Object(m)
}

/// The architecture name Docker uses for this machine (Go's GOARCH).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

/// The config blob of an imported image (one layer), shaped like dockerd's.
pub fn import_config(
    config: &ContainerConfig,
    diff_id: &Digest,
    arch: &str,
    comment: &str,
    now: DateTime<Utc>,
) -> Value {
    let created = rfc3339_nano(now);
    let cfg = docker_config_value(config);
    json!({
        "architecture": arch,
        "comment": comment,
        "config": cfg,
        "container_config": docker_config_value(&ContainerConfig::default()),
        "created": created,
        "docker_version": concat!("berth-", env!("CARGO_PKG_VERSION")),
        "history": [{ "created": created, "comment": comment }],
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_docker_config_and_reads_its_defaults() {
        let blob = br#"{"architecture":"amd64","os":"linux","created":"2026-11-27T22:17:16.29498595Z",
            "config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"Labels":{"a":"b"},"Volumes":null,"OnBuild":null,"ExposedPorts":{"80/tcp":{}}},
            "rootfs":{"type":"layers","diff_ids":["sha256:8dcdbeca1b91d4a7041b455ff72e9bffd62ccd0766fc39249fd01853932477d2"]},
            "history":[{"created":"2026-11-27T22:17:16.29498595Z","comment":"Imported from -"}]}"#;
        let c = ImageConfig::parse(blob, "test").expect("parse");
        let cc = c.container_config();
        assert_eq!(cc.env, vec!["PATH=/bin"]);
        assert_eq!(cc.cmd, vec!["/bin/sh"]);
        assert!(cc.exposed_ports.expect("ports").contains_key("80/tcp"));
        assert_eq!(c.labels().get("a"), Some(&json!("b")));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(
            rfc3339_nano(c.created_time().expect("time")),
            "2026-11-27T22:17:16.29498595Z"
        );
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"other"}}"#, "x").is_err());
        assert!(ImageConfig::parse(b"not json", "x").is_err());
    }

    #[test]
    fn go_time_format() {
        let t = parse_time("2026-11-27T22:20:50.905647614Z").expect("time");
        assert_eq!(rfc3339_nano(t), "2026-11-27T22:20:50.905647614Z");
        let t = parse_time("2026-11-27T22:20:50Z").expect("time");
        assert_eq!(rfc3339_nano(t), "2026-11-27T22:20:50Z");
        let t = parse_time("2026-11-27T22:20:50.5+01:00").expect("time");
        assert_eq!(rfc3339_nano(t), "2026-11-27T21:20:50.5Z");
    }

    #[test]
    fn import_config_matches_dockers_shape() {
        let d = Digest::of_bytes(b"");
        let v = import_config(
            &ContainerConfig::default(),
            &d,
            "amd64",
            "Imported from -",
            Utc::now(),
        );
        assert_eq!(v["config"]["Cmd"], Value::Null);
        assert_eq!(v["config"]["Labels"], Value::Null);
        assert_eq!(v["rootfs"]["diff_ids"][0], json!(d.to_string()));
        assert_eq!(v["history"][0]["comment"], "Imported from -");
        let c = ImageConfig::parse(v.to_string().as_bytes(), "x").expect("round trip");
        assert_eq!(c.container_config(), ContainerConfig::default());
    }
}
