//! The container domain model, owned by the engine: what a container is asked to be
//! ([`ContainerSpec`]: its [`ContainerConfig`] and [`HostConfig`], the networks it joins), what an
//! exec runs ([`ExecSpec`]) and what `update` changes ([`ResourceUpdate`]).
//!
//! ```text
//!  Docker JSON ─► berth_api::models ─► (backend.rs: From) ─► these types ─► create.rs, start.rs, …
//!  cluster task ─────────────────────────────────────────────► ContainerSpec ─┘
//! ```
//!
//! The API's models (`berth_api::models`) are converted into these at the API edge
//! (`backend.rs`), and the record in redb stores these, not the API's: a change to the API
//! surface no longer changes what is on disk. The names and fields follow Docker's, since
//! Docker's model is the language every caller speaks; the serde field names are the
//! record's format (see `record.rs`), which is why they are PascalCase.
//!
//! Still opaque (`serde_json::Value`, echoed by inspect as they were sent): port bindings,
//! exposed ports, image volumes, healthcheck, devices and `--mount` entries (parsed by
//! `mounts.rs`/`validate.rs`/`spec.rs` where they are used).

use std::collections::BTreeMap;

use berth_api::models as api;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::network::Endpoint;

/// What `create` makes a container from.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The container's name; a generated one when `None`.
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The networks it joins beyond (or instead of) its network mode's, by the name or id
    /// the caller used (`default` is the network mode's), with aliases and addresses asked.
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// The container's process and image settings (Docker's `Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "null_as_default")]
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

/// The label that makes a container a swarm task's (its value is the task id).
pub const LABEL_SWARM_TASK_ID: &str = "com.docker.swarm.task.id";

impl ContainerConfig {
    /// Whether the container runs a swarm task: its networks and addresses are the task's.
    pub fn is_swarm_task(&self) -> bool {
        self.labels.contains_key(LABEL_SWARM_TASK_ID)
    }
}

/// What the engine does when the container's process exits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The log driver and its options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// How the container runs on this host (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    pub network_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_bindings: Option<Value>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
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
    /// Legacy links as asked at create (`name[:alias]`); the record keeps them resolved
    /// (`Record::links`), so this is empty once created.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub links: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    pub shm_size: i64,
    pub init: Option<bool>,
    pub runtime: String,
    pub cgroup_parent: String,
    /// "private" or "host"; empty asks for the daemon's default (private on cgroup v2).
    pub cgroupns_mode: String,
    // Resources.
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub group_add: Vec<String>,
    pub pid_mode: String,
    pub ipc_mode: String,
    /// `UtsMode` in the record; the API reads and inspect shows Docker's `UTSMode`.
    #[serde(alias = "UTSMode")]
    pub uts_mode: String,
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub mounts: Vec<Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<Vec<u32>>,
}

/// What an exec runs, and how its stdio is wired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    /// Added to (and overriding) the container's environment.
    pub env: Vec<String>,
    /// Empty: the container's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    /// Height and width of the terminal at start.
    pub console_size: Option<(u32, u32)>,
}

/// The limits and policy `update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUpdate {
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

/// Accepts `null` as the type's default (records written from requests that sent `null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// Conversions at the edges: from the API's models (requests, the image's config) and back
// (an image's config made by commit).

impl From<api::ContainerConfig> for ContainerConfig {
    fn from(c: api::ContainerConfig) -> Self {
        let api::ContainerConfig {
            hostname,
            domainname,
            user,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            exposed_ports,
            tty,
            open_stdin,
            stdin_once,
            env,
            cmd,
            healthcheck,
            image,
            volumes,
            working_dir,
            entrypoint,
            on_build,
            labels,
            stop_signal,
            stop_timeout,
            shell,
        } = c;
        ContainerConfig {
            hostname,
            domainname,
            user,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            exposed_ports,
            tty,
            open_stdin,
            stdin_once,
            env,
            cmd,
            healthcheck,
            image,
            volumes,
            working_dir,
            entrypoint,
            on_build,
            labels,
            stop_signal,
            stop_timeout,
            shell,
        }
    }
}

impl From<ContainerConfig> for api::ContainerConfig {
    fn from(c: ContainerConfig) -> Self {
        let ContainerConfig {
            hostname,
            domainname,
            user,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            exposed_ports,
            tty,
            open_stdin,
            stdin_once,
            env,
            cmd,
            healthcheck,
            image,
            volumes,
            working_dir,
            entrypoint,
            on_build,
            labels,
            stop_signal,
            stop_timeout,
            shell,
        } = c;
        api::ContainerConfig {
            hostname,
            domainname,
            user,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            exposed_ports,
            tty,
            open_stdin,
            stdin_once,
            env,
            cmd,
            healthcheck,
            image,
            volumes,
            working_dir,
            entrypoint,
            on_build,
            labels,
            stop_signal,
            stop_timeout,
            shell,
        }
    }
}

impl From<api::RestartPolicy> for RestartPolicy {
    fn from(p: api::RestartPolicy) -> Self {
        RestartPolicy {
            name: p.name,
            maximum_retry_count: p.maximum_retry_count,
        }
    }
}

impl From<api::LogConfig> for LogConfig {
    fn from(l: api::LogConfig) -> Self {
        LogConfig {
            kind: l.kind,
            config: l.config,
        }
    }
}

impl From<api::HostConfig> for HostConfig {
    fn from(h: api::HostConfig) -> Self {
        let api::HostConfig {
            binds,
            network_mode,
            port_bindings,
            restart_policy,
            auto_remove,
            log_config,
            cap_add,
            cap_drop,
            dns,
            dns_search,
            dns_options,
            extra_hosts,
            links,
            privileged,
            readonly_rootfs,
            security_opt,
            tmpfs,
            shm_size,
            init,
            runtime,
            cgroup_parent,
            cgroupns_mode,
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            oom_kill_disable,
            ulimits,
            devices,
            group_add,
            pid_mode,
            ipc_mode,
            uts_mode,
            publish_all_ports,
            mounts,
            volumes_from,
            console_size,
        } = h;
        HostConfig {
            binds,
            network_mode,
            port_bindings,
            restart_policy: restart_policy.into(),
            auto_remove,
            log_config: log_config.into(),
            cap_add,
            cap_drop,
            dns,
            dns_search,
            dns_options,
            extra_hosts,
            links,
            privileged,
            readonly_rootfs,
            security_opt,
            tmpfs,
            shm_size,
            init,
            runtime,
            cgroup_parent,
            cgroupns_mode,
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            oom_kill_disable,
            ulimits: ulimits
                .into_iter()
                .map(|u| Ulimit {
                    name: u.name,
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            devices,
            group_add,
            pid_mode,
            ipc_mode,
            uts_mode,
            publish_all_ports,
            mounts,
            volumes_from,
            console_size,
        }
    }
}

impl From<api::ExecConfig> for ExecSpec {
    fn from(c: api::ExecConfig) -> Self {
        let api::ExecConfig {
            attach_stdin,
            attach_stdout,
            attach_stderr,
            detach_keys,
            tty,
            env,
            cmd,
            privileged,
            user,
            working_dir,
            console_size,
        } = c;
        ExecSpec {
            cmd,
            env,
            user,
            working_dir,
            privileged,
            tty,
            attach_stdin,
            attach_stdout,
            attach_stderr,
            detach_keys,
            console_size: console_size
                .as_deref()
                .and_then(|s| <[u32; 2]>::try_from(s).ok())
                .map(|[h, w]| (h, w)),
        }
    }
}

impl From<api::UpdateBody> for ResourceUpdate {
    fn from(u: api::UpdateBody) -> Self {
        let api::UpdateBody {
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            restart_policy,
        } = u;
        ResourceUpdate {
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            restart_policy: restart_policy.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record keeps the API's field names: a config parsed by the API and converted
    /// serialises to the same JSON as the API's own model did (what records held before).
    #[test]
    fn converted_models_serialise_as_the_api_models() {
        let body = r#"{"Hostname":"h","Env":null,"Cmd":["echo","hi"],"Image":"busybox",
            "Entrypoint":null,"Labels":{"a":"b"},"Healthcheck":{"Test":["CMD","true"]},
            "ExposedPorts":{"80/tcp":{}},"StopTimeout":3,
            "HostConfig":{"Binds":["/a:/b"],"NetworkMode":"default","AutoRemove":true,
              "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"Memory":67108864,
              "PidsLimit":null,"Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}],
              "LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}},
              "Mounts":[{"Type":"tmpfs","Target":"/t"}],"Init":true,
              "PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#;
        let b: api::ContainerCreateBody = serde_json::from_str(body).expect("parses");
        let want_config = serde_json::to_value(&b.config).expect("api config");
        let want_host = serde_json::to_value(&b.host_config).expect("api host");
        let config = ContainerConfig::from(b.config.clone());
        let host = HostConfig::from(b.host_config.clone());
        assert_eq!(serde_json::to_value(&config).expect("config"), want_config);
        assert_eq!(serde_json::to_value(&host).expect("host"), want_host);
        // And back: what the record held reads into the node's types unchanged.
        let read: HostConfig = serde_json::from_value(want_host).expect("reads");
        assert_eq!(read, host);
        assert_eq!(api::ContainerConfig::from(config), b.config);
    }

    #[test]
    fn exec_console_size_is_a_pair_or_nothing() {
        let e = ExecSpec::from(api::ExecConfig {
            console_size: Some(vec![24, 80]),
            ..Default::default()
        });
        assert_eq!(e.console_size, Some((24, 80)));
        let bad = ExecSpec::from(api::ExecConfig {
            console_size: Some(vec![24]),
            ..Default::default()
        });
        assert_eq!(bad.console_size, None);
    }
}
