//! Docker Engine API request and response bodies that the engine parses or stores.
//!
//! Field names follow the API exactly (PascalCase). Unknown fields are ignored, since the CLI
//! sends fields from newer API versions whatever version it negotiated; every field defaults,
//! since clients omit what they don't set. These same types are stored by the engine as the
//! container's configuration and echoed back by inspect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Config` of a container or image, plus the create-only `HostConfig`/`NetworkingConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "strings_or_string")]
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(deserialize_with = "strings_or_string")]
    pub entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(deserialize_with = "null_as_default")]
    pub host_config: HostConfig,
    pub networking_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub soft: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub hard: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    #[serde(deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// `HostConfig`: how the container is run on this host.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub network_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_bindings: Option<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub restart_policy: RestartPolicy,
    #[serde(deserialize_with = "null_as_default")]
    pub auto_remove: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub log_config: LogConfig,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    /// Legacy links, `name[:alias]`.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub links: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub shm_size: i64,
    pub init: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub runtime: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cgroup_parent: String,
    /// "private" or "host"; empty asks for the daemon's default (private on cgroup v2).
    #[serde(deserialize_with = "null_as_default")]
    pub cgroupns_mode: String,
    // Resources.
    #[serde(deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub group_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub pid_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub ipc_mode: String,
    /// Docker spells it `UTSMode`; `UtsMode` is what records written so far hold.
    #[serde(alias = "UTSMode", deserialize_with = "null_as_default")]
    pub uts_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub mounts: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u32>>,
}

/// The body of `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateBody {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicy>,
}

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    /// The SDK for Python sends `detachKeys` (dockerd's JSON decoding ignores case).
    #[serde(alias = "detachKeys")]
    #[serde(deserialize_with = "null_as_default")]
    pub detach_keys: String,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "strings_or_string")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    pub console_size: Option<Vec<u32>>,
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartBody {
    #[serde(deserialize_with = "null_as_default")]
    pub detach: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateBody {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// Accepts `null` as the type's default (clients send `"Env": null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Cmd` and `Entrypoint` may be a list, a single string, or null.
fn strings_or_string<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_from_the_cli_parses() {
        let body = r#"{"Hostname":"","Env":null,"Cmd":["echo","hi"],"Image":"busybox",
            "Entrypoint":null,"Labels":{"a":"b"},"GwPriority":3,
            "HostConfig":{"Binds":null,"NetworkMode":"default","AutoRemove":true,
              "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"Memory":67108864,
              "PidsLimit":null,"Ulimits":null},
            "NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#;
        let b: ContainerCreateBody = serde_json::from_str(body).expect("parses");
        assert_eq!(b.config.cmd, vec!["echo", "hi"]);
        assert!(b.config.env.is_empty());
        assert_eq!(b.config.labels.get("a").map(String::as_str), Some("b"));
        assert!(b.host_config.auto_remove);
        assert_eq!(b.host_config.memory, 64 << 20);
        assert_eq!(b.host_config.pids_limit, None);
    }

    /// `null` is "absent" for every field of every request body, as in dockerd (Go leaves
    /// the zero value): each field, at every level, set to null still parses.
    #[test]
    fn null_is_absent_in_every_field() {
        fn each_field_null<T: Serialize + serde::de::DeserializeOwned + Default>(what: &str) {
            let full = serde_json::to_value(T::default()).expect("serialises");
            let mut paths: Vec<Vec<String>> = Vec::new();
            fn walk(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
                if let serde_json::Value::Object(m) = v {
                    for (k, child) in m {
                        let mut p = at.clone();
                        p.push(k.clone());
                        out.push(p.clone());
                        walk(child, p, out);
                    }
                }
            }
            walk(&full, Vec::new(), &mut paths);
            assert!(!paths.is_empty(), "{what} has fields");
            for path in paths {
                let mut v = full.clone();
                let mut slot = &mut v;
                for k in &path {
                    slot = &mut slot[k.as_str()];
                }
                *slot = serde_json::Value::Null;
                if let Err(e) = serde_json::from_value::<T>(v) {
                    panic!("{what}: {} = null is refused: {e}", path.join("."));
                }
            }
        }
        each_field_null::<ContainerCreateBody>("create body");
        each_field_null::<UpdateBody>("update body");
        each_field_null::<ExecConfig>("exec body");
        each_field_null::<ExecStartBody>("exec start body");
        each_field_null::<VolumeCreateBody>("volume create body");
        let b: ContainerCreateBody = serde_json::from_str(
            r#"{"Image":"busybox","HostConfig":null,"Hostname":null,"Tty":null}"#,
        )
        .expect("parses");
        assert_eq!(b.config.image, "busybox");
        assert_eq!(b.host_config, HostConfig::default());
    }

    #[test]
    fn cmd_may_be_a_single_string() {
        let c: ContainerConfig = serde_json::from_str(r#"{"Cmd":"ls"}"#).expect("parses");
        assert_eq!(c.cmd, vec!["ls"]);
    }
}
