//! The JSON of `GET /containers/{id}/json` and `GET /containers/json`, and list filters.

use berth_api::backend::{Filters, ListOptions};
use serde_json::{json, Value};

use super::{ContainerError, Containers, Record};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

fn network_mode(r: &Record) -> &str {
    super::net::mode(r)
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, as `docker ps` shows.
pub fn status_text(r: &Record) -> String {
    let ago = |t: &str| -> String {
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) else {
            return "Less than a second".into();
        };
        human_duration(chrono::Utc::now().signed_duration_since(t).num_seconds())
    };
    match r.state.status.as_str() {
        "running" => match &r.state.health {
            Some(h) => format!("Up {} {}", ago(&r.state.started_at), h.status.ps_suffix()),
            None => format!("Up {}", ago(&r.state.started_at)),
        },
        "paused" => format!("Up {} (Paused)", ago(&r.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            ago(&r.state.finished_at)
        ),
        "exited" if r.state.finished_at.is_empty() => format!("Exited ({})", r.state.exit_code),
        "exited" => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            ago(&r.state.finished_at)
        ),
        "created" => "Created".into(),
        "removing" => "Removal In Progress".into(),
        other => other.to_owned(),
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if (s as f64 / 3600.0).round() as i64 == 1 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", (s as f64 / 3600.0).round() as i64),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        s if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

pub fn matches_labels(r: &Record, wanted: Option<&Vec<String>>) -> bool {
    wanted.is_none_or(|ls| {
        ls.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => r.config.labels.get(k).is_some_and(|x| x == v),
            None => r.config.labels.contains_key(l.as_str()),
        })
    })
}

/// `until` filter: a unix timestamp, or a Go-style duration like `10m` / `24h`.
pub fn created_before(r: &Record, until: &str) -> bool {
    let Ok(created) = chrono::DateTime::parse_from_rfc3339(&r.created) else {
        return false;
    };
    let limit = if let Ok(ts) = until.parse::<f64>() {
        chrono::DateTime::from_timestamp_nanos((ts * 1e9) as i64)
    } else {
        let (num, unit) = until.split_at(until.len().saturating_sub(1));
        let n: i64 = num.parse().unwrap_or(0);
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => 0,
        };
        chrono::Utc::now() - chrono::Duration::seconds(secs)
    };
    created < limit
}

impl Containers {
    pub async fn inspect(&self, key: &str, size: bool) -> Result<Value, ContainerError> {
        let c = self.get(key)?;
        let r = c.record();
        let paths = self.paths(&c.id);
        let execs: Vec<String> = self
            .inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| {
                e.container_id == c.id
                    && e.state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .exit_code
                        .is_none()
            })
            .map(|e| e.id.clone())
            .collect();
        let s = &r.state;
        let image = self.inner.images.resolve(&r.image_id).ok();
        let lower: Vec<String> = image
            .map(|i| {
                i.layer_dirs
                    .iter()
                    .rev()
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut host_config = host_config_json(&r);
        host_config["Links"] = self.links_json(&r);
        let mut v = json!({
            "Id": r.id,
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": s.status,
                "Running": s.status == "running" || s.status == "paused",
                "Paused": s.status == "paused",
                "Restarting": s.status == "restarting",
                "OOMKilled": s.oom_killed,
                "Dead": s.status == "dead",
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": or_zero(&s.started_at),
                "FinishedAt": or_zero(&s.finished_at),
            },
            "Image": r.image_id,
            "ResolvConfPath": paths.dir.join("resolv.conf"),
            "HostnamePath": paths.dir.join("hostname"),
            "HostsPath": paths.dir.join("hosts"),
            // Only json-file's path is shown, as Docker does (local's format is private).
            "LogPath": if matches!(r.host_config.log_config.kind.as_str(), "" | "json-file") {
                json!(paths.log(&r.id))
            } else {
                json!("")
            },
            "Name": format!("/{}", r.name),
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
            "HostConfig": host_config,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": lower.join(":"),
                    "MergedDir": paths.merged(),
                    "UpperDir": paths.upper(),
                    "WorkDir": paths.work(),
                }
            },
            "Mounts": mounts_json(&r),
            "Config": r.config,
            "NetworkSettings": self.network_settings(&r),
        });
        if let Some(h) = &s.health {
            v["State"]["Health"] = json!(h);
        }
        // Keys dockerd always shows in Config, null when unset.
        if let Value::Object(cfg) = &mut v["Config"] {
            for k in ["OnBuild", "Volumes"] {
                cfg.entry(k).or_insert(Value::Null);
            }
        }
        if size {
            let rw = super::fs::dir_size(&paths.upper());
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw);
        }
        Ok(v)
    }

    pub async fn list(&self, opts: ListOptions) -> Result<Vec<Value>, ContainerError> {
        super::validate::ps_filters(&opts.filters)?;
        let mut recs: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let f = &opts.filters;
        let explicit_status = f.contains_key("status") || f.contains_key("exited");
        let before = self.anchor(f.get("before"))?;
        let since = self.anchor(f.get("since"))?;
        let link_names = super::links::names_by_child(&recs);
        let mut out = Vec::new();
        for r in recs {
            let running = r.state.status == "running" || r.state.status == "paused";
            if !opts.all && !running && !explicit_status && opts.limit.is_none() {
                continue;
            }
            if !self.matches(&r, f) {
                continue;
            }
            if before.as_ref().is_some_and(|b| r.created >= *b)
                || since.as_ref().is_some_and(|s| r.created <= *s)
            {
                continue;
            }
            let mut v = self.summary(&r, opts.size);
            if let (Some(extra), Some(names)) = (link_names.get(&r.id), v["Names"].as_array_mut()) {
                names.extend(extra.iter().map(|n| json!(n)));
            }
            out.push(v);
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn anchor(&self, v: Option<&Vec<String>>) -> Result<Option<String>, ContainerError> {
        match v.and_then(|v| v.first()) {
            None => Ok(None),
            Some(k) => Ok(Some(self.get(k)?.record().created)),
        }
    }

    fn matches(&self, r: &Record, f: &Filters) -> bool {
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            f.get(key).is_none_or(|vals| vals.iter().any(|v| pred(v)))
        };
        any("status", &|s| s == r.state.status)
            && any("id", &|s| r.id.starts_with(s))
            && any("name", &|s| r.name.contains(s.trim_start_matches('/')))
            && any("exited", &|s| {
                r.state.status == "exited" && s.parse::<i64>().ok() == Some(r.state.exit_code)
            })
            && any("ancestor", &|s| {
                r.config.image == s
                    || r.image_id == s
                    || self
                        .inner
                        .images
                        .resolve(s)
                        .is_ok_and(|i| i.id == r.image_id)
            })
            && any("network", &|s| super::net::on_network(r, s))
            && any("is-task", &|s| s == "false")
            && any("health", &|s| {
                s == r
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str())
            })
            && any("volume", &|s| {
                r.mounts
                    .iter()
                    .any(|m| (!m.name.is_empty() && m.name == s) || m.destination == s)
            })
            && matches_labels(r, f.get("label"))
    }

    fn network_settings(&self, r: &Record) -> Value {
        let nets = &self.inner.nets;
        super::net::settings_json(r, &self.inner.cfg.exec_root, &|name: &str| {
            nets.find(name).map(|n| n.id).unwrap_or_default()
        })
    }

    fn summary(&self, r: &Record, size: bool) -> Value {
        let mut command = shell_join(std::iter::once(&r.path).chain(r.args.iter()));
        if !command.is_empty() && r.path.is_empty() {
            command.clear();
        }
        let mut v = json!({
            "Id": r.id,
            "Names": [format!("/{}", r.name)],
            "Image": r.config.image,
            "ImageID": r.image_id,
            "Command": command,
            "Created": chrono::DateTime::parse_from_rfc3339(&r.created).map(|t| t.timestamp()).unwrap_or(0),
            "Ports": super::net::ports_list(r),
            "Labels": r.config.labels,
            "State": r.state.status,
            "Status": status_text(r),
            "HostConfig": { "NetworkMode": network_mode(r) },
            "NetworkSettings": { "Networks": self.network_settings(r)["Networks"] },
            "Mounts": mounts_json(r),
        });
        if size {
            let rw = super::fs::dir_size(&self.paths(&r.id).upper());
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw);
        }
        v
    }
}

fn shell_join<'a>(parts: impl Iterator<Item = &'a String>) -> String {
    parts
        .map(|p| {
            if p.contains(' ') || p.is_empty() {
                format!("{p:?}")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mounts_json(r: &Record) -> Value {
    Value::Array(r.mounts.iter().map(|m| m.to_json()).collect())
}

fn host_config_json(r: &Record) -> Value {
    let mut h = serde_json::to_value(&r.host_config).unwrap_or(Value::Null);
    if h["NetworkMode"] == "" || h["NetworkMode"] == "default" {
        h["NetworkMode"] = json!(network_mode(r));
    }
    if h["LogConfig"]["Type"] == "" {
        h["LogConfig"] = json!({"Type": "json-file", "Config": {}});
    }
    if h["RestartPolicy"]["Name"] == "" {
        h["RestartPolicy"]["Name"] = json!("no");
    }
    // The runtime that runs it, as dockerd shows `runc`.
    h["Runtime"] = json!(r.runtime);
    if let Value::Object(m) = &mut h {
        // Docker's spelling (the record keeps the model's `UtsMode`).
        if let Some(uts) = m.remove("UtsMode") {
            m.insert("UTSMode".into(), uts);
        }
        let (masked, readonly) = if r.host_config.privileged {
            (Value::Null, Value::Null)
        } else {
            (
                json!(super::spec::MASKED_PATHS),
                json!(super::spec::READONLY_PATHS),
            )
        };
        for (k, v) in dockerd_host_config_fields(masked, readonly) {
            m.entry(k).or_insert(v);
        }
    }
    h
}

/// Fields dockerd's inspect always has in `HostConfig` that Berth does not model (SDKs index
/// them), with the values dockerd shows when they are not set.
fn dockerd_host_config_fields(masked: Value, readonly: Value) -> Vec<(&'static str, Value)> {
    let zero = json!(0);
    vec![
        ("ContainerIDFile", json!("")),
        ("VolumeDriver", json!("")),
        ("Cgroup", json!("")),
        ("Links", Value::Null),
        ("OomScoreAdj", zero.clone()),
        ("UsernsMode", json!("")),
        ("Isolation", json!("")),
        ("ConsoleSize", json!([0, 0])),
        ("PortBindings", json!({})),
        ("BlkioWeight", zero.clone()),
        ("BlkioWeightDevice", json!([])),
        ("BlkioDeviceReadBps", json!([])),
        ("BlkioDeviceWriteBps", json!([])),
        ("BlkioDeviceReadIOps", json!([])),
        ("BlkioDeviceWriteIOps", json!([])),
        ("CpuRealtimePeriod", zero.clone()),
        ("CpuRealtimeRuntime", zero.clone()),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
        ("KernelMemory", zero.clone()),
        ("KernelMemoryTCP", zero.clone()),
        ("MemorySwappiness", Value::Null),
        ("CpuCount", zero.clone()),
        ("CpuPercent", zero.clone()),
        ("IOMaximumIOps", zero.clone()),
        ("IOMaximumBandwidth", zero),
        ("MaskedPaths", masked),
        ("ReadonlyPaths", readonly),
    ]
}

/// `SandboxKey` is where the container's network namespace is pinned (see netns.rs).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(65), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }

    #[test]
    fn commands_join_with_quotes() {
        let parts = ["sh".to_string(), "-c".to_string(), "echo hi".to_string()];
        assert_eq!(shell_join(parts.iter()), "sh -c \"echo hi\"");
    }
}
