//! The create body from the parsed flags: every flag that can be wrong is parsed first, in
//! the docker CLI's order (so the same bad flag is reported), then the Config, HostConfig and
//! NetworkingConfig parts are filled in, field by field as the docker CLI does.

use serde_json::{json, Map, Value};

use super::{ContainerOpts, CreateRequest};
use crate::opts::mount::{expand_security_opt, io_reason, split_volume, VolumeSpec};
use crate::opts::ports::PortMap;
use crate::opts::{self, flag_error};

fn parse_with<T>(
    value: &Option<String>,
    flag: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value {
        None => Ok(None),
        Some(v) => f(v).map(Some).map_err(|e| flag_error(v, flag, &e)),
    }
}

fn nanos(value: &Option<String>, flag: &str) -> Result<Option<i64>, String> {
    parse_with(value, flag, opts::parse_go_duration_nanos)
}

/// The flags whose values need parsing or checking, parsed once, in the order the docker CLI
/// checks them (so the first bad flag is the one reported).
struct ParsedFlags {
    resources: Resources,
    ports: PortMap,
    env: Vec<String>,
    labels: Map<String, Value>,
    storage: Storage,
    lists: HostLists,
    restart: Value,
    log_opts: Map<String, Value>,
    sysctls: Map<String, Value>,
    health: Option<Value>,
    attach: (bool, bool, bool),
}

/// Memory and CPU limits given as strings (`64m`, `0.5`).
struct Resources {
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    memory_swap: Option<i64>,
    shm_size: Option<i64>,
    nano_cpus: Option<i64>,
}

/// `-v` and `--mount`: binds, anonymous volumes and mount objects.
struct Storage {
    binds: Vec<String>,
    volumes: Map<String, Value>,
    mounts: Vec<Value>,
}

/// The repeatable HostConfig flags parsed one entry at a time.
struct HostLists {
    ulimits: Vec<Value>,
    devices: Vec<Value>,
    extra_hosts: Vec<String>,
    security_opt: Vec<String>,
}

impl ContainerOpts {
    /// Builds the create body. `detach` is whether the client will attach (`run -d` does not).
    pub fn build(&self, detach: bool) -> Result<CreateRequest, String> {
        let image = self
            .args
            .first()
            .cloned()
            .ok_or("requires at least 1 argument")?;
        let cmd: Vec<String> = self.args[1..].to_vec();
        let parsed = self.parse_flags(detach)?;
        let body = self.create_body(&image, &cmd, parsed);
        Ok(CreateRequest {
            body,
            image,
            name: self.name.clone(),
            platform: self.platform.clone(),
        })
    }

    /// Parses and checks every flag that can be wrong, first error wins.
    fn parse_flags(&self, detach: bool) -> Result<ParsedFlags, String> {
        let resources = self.resources()?;
        let ports = self.ports()?;
        let env = self.env_list()?;
        let labels = self.labels()?;
        let storage = self.storage()?;
        let lists = self.host_lists()?;
        let restart = self.restart_policy()?;
        let log_opts = opts::parse_kv_map(&self.log_opt, "log-opt")?;
        let sysctls = opts::parse_kv_map(&self.sysctl, "sysctl")?;
        let health = self.healthcheck()?;
        let attach = self.attach_streams(detach)?;
        Ok(ParsedFlags {
            resources,
            ports,
            env,
            labels,
            storage,
            lists,
            restart,
            log_opts,
            sysctls,
            health,
            attach,
        })
    }

    /// `-m`, `--memory-*`, `--shm-size`, `--cpus`, with the docker CLI's conflict checks.
    fn resources(&self) -> Result<Resources, String> {
        let memory = parse_with(&self.memory, "-m, --memory", opts::parse_ram)?;
        let memory_reservation = parse_with(
            &self.memory_reservation,
            "--memory-reservation",
            opts::parse_ram,
        )?;
        let memory_swap = parse_with(&self.memory_swap, "--memory-swap", |v| {
            if v == "-1" {
                Ok(-1)
            } else {
                opts::parse_ram(v)
            }
        })?;
        let shm_size = parse_with(&self.shm_size, "--shm-size", opts::parse_ram)?;
        let nano_cpus = parse_with(&self.cpus, "--cpus", opts::parse_nano_cpus)?;
        if nano_cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
        }
        if let Some(swappiness) = self.memory_swappiness {
            if !(-1..=100).contains(&swappiness) {
                return Err(format!(
                    "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
                ));
            }
        }
        Ok(Resources {
            memory,
            memory_reservation,
            memory_swap,
            shm_size,
            nano_cpus,
        })
    }

    /// `-p` and `--expose`.
    fn ports(&self) -> Result<PortMap, String> {
        let mut ports = PortMap::default();
        for p in &self.publish {
            opts::add_port_spec(&mut ports, p)?;
        }
        for e in &self.expose {
            opts::add_expose(&mut ports, e)?;
        }
        Ok(ports)
    }

    /// `--env-file` entries first, then `-e` (later ones win in the daemon).
    fn env_list(&self) -> Result<Vec<String>, String> {
        let mut env = Vec::new();
        for file in &self.env_file {
            let content = std::fs::read_to_string(file)
                .map_err(|e| format!("open {file}: {}", io_reason(&e)))?;
            env.extend(opts::parse_env_file(&content, |k| std::env::var(k).ok())?);
        }
        for e in &self.env {
            env.push(opts::resolve_env(e).map_err(|err| flag_error(e, "-e, --env", &err))?);
        }
        Ok(env)
    }

    /// `--label-file` lines (blank and `#` lines skipped), then `-l`.
    fn labels(&self) -> Result<Map<String, Value>, String> {
        let mut label_lines: Vec<String> = Vec::new();
        for file in &self.label_file {
            let content = std::fs::read_to_string(file)
                .map_err(|e| format!("open {file}: {}", io_reason(&e)))?;
            label_lines.extend(label_file_lines(&content));
        }
        label_lines.extend(self.label.iter().cloned());
        Ok(opts::parse_labels(&label_lines))
    }

    /// `-v` (binds or anonymous volumes) and `--mount`.
    fn storage(&self) -> Result<Storage, String> {
        let mut binds = Vec::new();
        let mut volumes = Map::new();
        for v in &self.volume {
            match split_volume(v)? {
                VolumeSpec::Anonymous(path) => {
                    volumes.insert(path, json!({}));
                }
                VolumeSpec::Bind(b) => binds.push(b),
            }
        }
        let mut mounts = Vec::new();
        for m in &self.mount {
            mounts.push(opts::parse_mount(m).map_err(|e| flag_error(m, "--mount", &e))?);
        }
        Ok(Storage {
            binds,
            volumes,
            mounts,
        })
    }

    /// `--ulimit`, `--device`, `--add-host`, `--security-opt`.
    fn host_lists(&self) -> Result<HostLists, String> {
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(opts::parse_ulimit(u).map_err(|e| flag_error(u, "--ulimit", &e))?);
        }
        let mut devices = Vec::new();
        for d in &self.device {
            devices.push(opts::parse_device(d).map_err(|e| flag_error(d, "--device", &e))?);
        }
        let mut extra_hosts = Vec::new();
        for h in &self.add_host {
            extra_hosts.push(opts::parse_add_host(h).map_err(|e| flag_error(h, "--add-host", &e))?);
        }
        let mut security_opt = Vec::new();
        for s in &self.security_opt {
            security_opt.push(expand_security_opt(s)?);
        }
        Ok(HostLists {
            ulimits,
            devices,
            extra_hosts,
            security_opt,
        })
    }

    /// `--restart` (default `no`), which `--rm` excludes.
    fn restart_policy(&self) -> Result<Value, String> {
        let restart = match &self.restart {
            Some(r) => opts::parse_restart(r).map_err(|e| flag_error(r, "--restart", &e))?,
            None => json!({"Name": "no", "MaximumRetryCount": 0}),
        };
        if self.rm && restart["Name"] != "no" {
            return Err("conflicting options: cannot specify both --restart and --rm".into());
        }
        Ok(restart)
    }

    /// Which of stdin, stdout and stderr the client attaches: none when detached, `-a` when
    /// given, else stdout and stderr (and stdin with `-i`).
    fn attach_streams(&self, detach: bool) -> Result<(bool, bool, bool), String> {
        let attach_set: Vec<String> = self.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
        for a in &attach_set {
            if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
                return Err(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"));
            }
        }
        Ok(if detach {
            (false, false, false)
        } else if attach_set.is_empty() {
            (self.interactive, true, true)
        } else {
            (
                attach_set.iter().any(|a| a == "stdin"),
                attach_set.iter().any(|a| a == "stdout"),
                attach_set.iter().any(|a| a == "stderr"),
            )
        })
    }

    /// `--entrypoint`: unset, `""` (clears the image's) or one word.
    fn entrypoint_value(&self) -> Value {
        match &self.entrypoint {
            None => Value::Null,
            Some(e) if e.is_empty() => json!([""]),
            Some(e) => json!([e]),
        }
    }

    /// `NetworkingConfig.EndpointsConfig`: an entry for `network` when an alias, address or
    /// MAC is asked for, and always for the default network.
    fn endpoints(&self, network: &str) -> Map<String, Value> {
        let mut endpoints = Map::new();
        if !self.network_alias.is_empty()
            || self.ip.is_some()
            || self.ip6.is_some()
            || self.mac_address.is_some()
            || network == "default"
        {
            let mut ep = Map::new();
            if !self.network_alias.is_empty() {
                ep.insert("Aliases".into(), json!(self.network_alias));
            }
            let mut ipam = Map::new();
            if let Some(ip) = &self.ip {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip6) = &self.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip6));
            }
            if !ipam.is_empty() {
                ep.insert("IPAMConfig".into(), Value::Object(ipam));
            }
            if let Some(mac) = &self.mac_address {
                ep.insert("MacAddress".into(), json!(mac));
            }
            endpoints.insert(network.to_string(), Value::Object(ep));
        }
        endpoints
    }

    /// The whole create body: Config fields, HostConfig and NetworkingConfig.
    fn create_body(&self, image: &str, cmd: &[String], p: ParsedFlags) -> Value {
        let network = self
            .network
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let endpoints = self.endpoints(&network);
        let (attach_stdin, attach_stdout, attach_stderr) = p.attach;
        let mut host = Map::new();
        self.put_host_basics(&mut host, &network, &p);
        self.put_host_resources(&mut host, &p.resources, &p.lists);
        self.put_host_namespaces(&mut host, p.log_opts);
        self.put_host_optional(&mut host, p.storage.mounts, p.sysctls);
        let mut body = json!({
            "Hostname": self.hostname.clone().unwrap_or_default(),
            "Domainname": self.domainname.clone().unwrap_or_default(),
            "User": self.user.clone().unwrap_or_default(),
            "AttachStdin": attach_stdin,
            "AttachStdout": attach_stdout,
            "AttachStderr": attach_stderr,
            "Tty": self.tty,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive && attach_stdin,
            "Env": if p.env.is_empty() { Value::Null } else { json!(p.env) },
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Image": image,
            "Volumes": Value::Object(p.storage.volumes),
            "WorkingDir": self.workdir.clone().unwrap_or_default(),
            "Entrypoint": self.entrypoint_value(),
            "Labels": Value::Object(p.labels),
            "ExposedPorts": p.ports.exposed_json(),
            "HostConfig": Value::Object(host),
            "NetworkingConfig": {"EndpointsConfig": Value::Object(endpoints)},
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(sig) = &self.stop_signal {
                obj.insert("StopSignal".into(), json!(sig));
            }
            if let Some(t) = self.stop_timeout {
                obj.insert("StopTimeout".into(), json!(t));
            }
            if let Some(h) = p.health {
                obj.insert("Healthcheck".into(), h);
            }
            if let Some(mac) = &self.mac_address {
                obj.insert("MacAddress".into(), json!(mac));
            }
        }
        body
    }

    /// HostConfig: binds, network, ports, restart, privileges, DNS and the list flags.
    fn put_host_basics(&self, host: &mut Map<String, Value>, network: &str, p: &ParsedFlags) {
        let mut put = |k: &str, v: Value| {
            host.insert(k.to_string(), v);
        };
        put("Binds", opt_list(&p.storage.binds));
        put("NetworkMode", json!(network));
        put("PortBindings", p.ports.bindings_json());
        put("RestartPolicy", p.restart.clone());
        put("AutoRemove", json!(self.rm));
        put("PublishAllPorts", json!(self.publish_all));
        put("Privileged", json!(self.privileged));
        put("ReadonlyRootfs", json!(self.read_only));
        put("CapAdd", opt_list(&self.cap_add));
        put("CapDrop", opt_list(&self.cap_drop));
        put("Dns", json!(self.dns));
        put("DnsOptions", json!(self.dns_option));
        put("DnsSearch", json!(self.dns_search));
        put("ExtraHosts", opt_list(&p.lists.extra_hosts));
        put("GroupAdd", opt_list(&self.group_add));
        put("SecurityOpt", opt_list(&p.lists.security_opt));
        put("Links", opt_list(&self.link));
        put("VolumesFrom", opt_list(&self.volumes_from));
    }

    /// HostConfig: devices, ulimits, memory, CPU and block-IO limits (0 for unset).
    fn put_host_resources(&self, host: &mut Map<String, Value>, r: &Resources, l: &HostLists) {
        let mut put = |k: &str, v: Value| {
            host.insert(k.to_string(), v);
        };
        put("Devices", json!(l.devices));
        put("Ulimits", json!(l.ulimits));
        put("Memory", json!(r.memory.unwrap_or(0)));
        put(
            "MemoryReservation",
            json!(r.memory_reservation.unwrap_or(0)),
        );
        put("MemorySwap", json!(r.memory_swap.unwrap_or(0)));
        put(
            "MemorySwappiness",
            json!(self.memory_swappiness.unwrap_or(-1)),
        );
        put("NanoCpus", json!(r.nano_cpus.unwrap_or(0)));
        put("CpuShares", json!(self.cpu_shares.unwrap_or(0)));
        put("CpuPeriod", json!(self.cpu_period.unwrap_or(0)));
        put("CpuQuota", json!(self.cpu_quota.unwrap_or(0)));
        put(
            "CpusetCpus",
            json!(self.cpuset_cpus.clone().unwrap_or_default()),
        );
        put(
            "CpusetMems",
            json!(self.cpuset_mems.clone().unwrap_or_default()),
        );
        put("BlkioWeight", json!(self.blkio_weight.unwrap_or(0)));
        put("ShmSize", json!(r.shm_size.unwrap_or(0)));
        put("OomKillDisable", json!(self.oom_kill_disable));
        put("OomScoreAdj", json!(self.oom_score_adj.unwrap_or(0)));
    }

    /// HostConfig: namespace modes, cgroup parent, logging and the console size.
    fn put_host_namespaces(&self, host: &mut Map<String, Value>, log_opts: Map<String, Value>) {
        let mut put = |k: &str, v: Value| {
            host.insert(k.to_string(), v);
        };
        put("IpcMode", json!(self.ipc.clone().unwrap_or_default()));
        put("PidMode", json!(self.pid.clone().unwrap_or_default()));
        put("UTSMode", json!(self.uts.clone().unwrap_or_default()));
        put("UsernsMode", json!(self.userns.clone().unwrap_or_default()));
        put(
            "CgroupnsMode",
            json!(self.cgroupns.clone().unwrap_or_default()),
        );
        put(
            "CgroupParent",
            json!(self.cgroup_parent.clone().unwrap_or_default()),
        );
        put(
            "LogConfig",
            json!({"Type": self.log_driver.clone().unwrap_or_default(), "Config": Value::Object(log_opts)}),
        );
        put("ConsoleSize", json!(console_size(self.tty)));
    }

    /// HostConfig fields the docker CLI leaves out unless set.
    fn put_host_optional(
        &self,
        host: &mut Map<String, Value>,
        mounts: Vec<Value>,
        sysctls: Map<String, Value>,
    ) {
        let mut put = |k: &str, v: Value| {
            host.insert(k.to_string(), v);
        };
        if let Some(p) = self.pids_limit {
            put("PidsLimit", json!(p));
        }
        if !mounts.is_empty() {
            put("Mounts", json!(mounts));
        }
        if !self.tmpfs.is_empty() {
            put("Tmpfs", Value::Object(opts::parse_tmpfs(&self.tmpfs)));
        }
        if !sysctls.is_empty() {
            put("Sysctls", Value::Object(sysctls));
        }
        if self.init {
            put("Init", json!(true));
        }
        if let Some(r) = &self.runtime {
            put("Runtime", json!(r));
        }
    }

    /// The `Healthcheck` of the create body, as the docker CLI makes it: `NONE` for
    /// `--no-healthcheck`, zero fields left out (the image's then apply).
    fn healthcheck(&self) -> Result<Option<Value>, String> {
        let durations = [
            (
                "Interval",
                nanos(&self.health_interval, "--health-interval")?,
                "--health-interval",
            ),
            (
                "Timeout",
                nanos(&self.health_timeout, "--health-timeout")?,
                "--health-timeout",
            ),
            (
                "StartPeriod",
                nanos(&self.health_start_period, "--health-start-period")?,
                "--health-start-period",
            ),
            (
                "StartInterval",
                nanos(&self.health_start_interval, "--health-start-interval")?,
                "--health-start-interval",
            ),
        ];
        let retries = self.health_retries.unwrap_or(0);
        let any_opt = self.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
            || durations.iter().any(|(_, v, _)| v.unwrap_or(0) != 0)
            || retries != 0;
        if self.no_healthcheck {
            if any_opt {
                return Err("--no-healthcheck conflicts with --health-* options".into());
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any_opt {
            return Ok(None);
        }
        let mut h = serde_json::Map::new();
        if let Some(c) = self.health_cmd.as_deref().filter(|c| !c.is_empty()) {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (field, value, flag) in durations {
            match value.unwrap_or(0) {
                v if v < 0 => return Err(format!("{flag} cannot be negative")),
                0 => {}
                v => {
                    h.insert(field.into(), json!(v));
                }
            }
        }
        if retries < 0 {
            return Err("--health-retries cannot be negative".into());
        }
        if retries != 0 {
            h.insert("Retries".into(), json!(retries));
        }
        Ok(Some(Value::Object(h)))
    }
}

/// The label lines of a `--label-file`: trimmed, blank lines and `#` comments skipped.
fn label_file_lines(content: &str) -> impl Iterator<Item = String> + '_ {
    content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

fn opt_list(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// `[rows, cols]` of the local terminal when a TTY is requested, else `[0, 0]`.
fn console_size(tty: bool) -> [u16; 2] {
    if tty {
        if let Some((h, w)) = crate::tty::size(libc::STDOUT_FILENO) {
            return [h, w];
        }
    }
    [0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_file_skips_blank_lines_and_comments() {
        let lines: Vec<String> = label_file_lines("a=1\n\n  # note\n  b=2  \n#c=3\n").collect();
        assert_eq!(lines, ["a=1", "b=2"]);
    }

    #[test]
    fn opt_list_is_null_when_empty() {
        assert_eq!(opt_list(&[]), Value::Null);
        assert_eq!(opt_list(&["x".to_string()]), json!(["x"]));
    }
}
