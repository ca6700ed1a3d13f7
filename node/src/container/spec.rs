//! The OCI runtime spec of a container: Docker's defaults (capabilities, seccomp, masked
//! paths, devices, mounts) plus what the user asked for in `Config` and `HostConfig`.
//!
//! Pure: it only builds the document. The result is checked by parsing it as
//! `oci_spec::runtime::Spec` before it is written to the bundle.

use super::model::{ContainerConfig, HostConfig};
use serde_json::{json, Value};

use super::seccomp;
use crate::container::ContainerError;

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub(crate) const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub(crate) const READONLY_PATHS: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/sys/devices/virtual/powercap",
];

/// Everything the spec depends on besides the user's configuration.
pub struct SpecInput<'a> {
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    pub rootfs: &'a str,
    pub args: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `None`: share the host's network namespace.
    pub netns: Option<String>,
    pub cgroups_path: String,
    /// (destination, source) files bind-mounted in: /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, String)>,
    /// Hard RLIMIT_NOFILE of the daemon; the container's default may not exceed it.
    pub nofile_hard: u64,
    /// Bind mount of the init binary for `--init`, as (host path).
    pub init_binary: Option<String>,
    /// Binds, volumes and `--mount` tmpfs (see mounts.rs).
    pub mounts: &'a [super::mounts::MountPoint],
}

/// Builds the spec with placeholder host details: checks a configuration (limits,
/// capabilities, ulimits) without a rootfs, and yields the `linux.resources` it implies.
pub fn check(
    config: &ContainerConfig,
    host: &HostConfig,
    nofile_hard: u64,
) -> Result<Value, ContainerError> {
    build(&SpecInput {
        config,
        host,
        rootfs: "/",
        args: vec!["/".into()],
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        netns: None,
        cgroups_path: String::new(),
        etc_files: vec![],
        nofile_hard,
        init_binary: None,
        mounts: &[],
    })
}

pub fn build(input: &SpecInput) -> Result<Value, ContainerError> {
    let c = input.config;
    let h = input.host;
    let caps = capabilities(h)?;
    let env = env_with_path(&c.env);
    let no_new_privs = h.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let seccomp_unconfined = h.privileged
        || h.security_opt
            .iter()
            .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
    let mut process = json!({
        "terminal": c.tty,
        "user": { "uid": input.uid, "gid": input.gid, "additionalGids": input.additional_gids },
        "args": input.args,
        "env": env,
        "cwd": if c.working_dir.is_empty() { "/" } else { c.working_dir.as_str() },
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "rlimits": rlimits(h, input.nofile_hard)?,
        "oomScoreAdj": 0,
    });
    // Only when asked: libcontainer loads seccomp after dropping capabilities whenever the
    // field is present, even as `false`, and that load then fails without CAP_SYS_ADMIN.
    if no_new_privs {
        process["noNewPrivileges"] = json!(true);
    }
    if let Some(size) = &h.console_size {
        if let [hh, ww] = size[..] {
            if hh > 0 && ww > 0 {
                process["consoleSize"] = json!({ "height": hh, "width": ww });
            }
        }
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if let Some(ns) = &input.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }
    if h.pid_mode == "host" {
        namespaces.retain(|n| n["type"] != "pid");
    }
    if h.ipc_mode == "host" {
        namespaces.retain(|n| n["type"] != "ipc");
    }
    if h.uts_mode == "host" {
        namespaces.retain(|n| n["type"] != "uts");
    }
    if h.cgroupns_mode == "private" {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources(h)?,
    });
    if !h.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !seccomp_unconfined {
        linux["seccomp"] = seccomp::profile(&caps);
    }
    if h.privileged {
        linux["devices"] = json!([]);
    }
    let hostname = if c.hostname.is_empty() {
        None
    } else {
        Some(c.hostname.clone())
    };
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": input.rootfs, "readonly": h.readonly_rootfs },
        "mounts": mounts(input),
        "linux": linux,
    });
    if let Some(hn) = hostname.filter(|_| h.uts_mode != "host") {
        spec["hostname"] = json!(hn);
    }
    Ok(spec)
}

/// Every capability this daemon itself may grant (its bounding set), in kernel order. A
/// sandboxed host can lack some (CAP_SYS_RESOURCE here), and asking for one fails the start.
pub fn grantable_caps() -> Vec<String> {
    static MASK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let mask = *MASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_owned()))
            })
            .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
            .unwrap_or(u64::MAX)
    });
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Docker's default set, `--cap-add`/`--cap-drop` (with or without `CAP_`, `ALL`), or all
/// capabilities for `--privileged`.
pub fn capabilities(h: &HostConfig) -> Result<Vec<String>, ContainerError> {
    if h.privileged {
        return Ok(grantable_caps());
    }
    let norm = |c: &str| -> Result<String, ContainerError> {
        let up = c.to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if full == "CAP_ALL" || ALL_CAPS.contains(&full.as_str()) {
            Ok(full)
        } else {
            Err(ContainerError::Invalid(format!(
                "invalid capability {c:?}: unknown capability"
            )))
        }
    };
    let adds = h
        .cap_add
        .iter()
        .map(|c| norm(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = h
        .cap_drop
        .iter()
        .map(|c| norm(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if adds.iter().any(|a| a == "CAP_ALL") {
        caps = grantable_caps()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect();
    }
    for a in adds {
        if a != "CAP_ALL" && !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

fn env_with_path(env: &[String]) -> Vec<String> {
    let mut out = env.to_vec();
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    out
}

const RLIMITS: [(&str, &str); 16] = [
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
    ("as", "RLIMIT_AS"),
];

fn rlimits(h: &HostConfig, nofile_hard: u64) -> Result<Vec<Value>, ContainerError> {
    // Docker's default is 1048576; never more than the daemon's own hard limit.
    let nofile = 1_048_576u64.min(nofile_hard);
    let mut out = vec![json!({"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile})];
    for u in &h.ulimits {
        let Some((_, ty)) = RLIMITS.iter().find(|(n, _)| *n == u.name) else {
            return Err(ContainerError::Invalid(format!(
                "invalid ulimit type: {}",
                u.name
            )));
        };
        if u.soft > u.hard {
            return Err(ContainerError::Invalid(format!(
                "invalid ulimit {}: soft limit {} is above hard limit {}",
                u.name, u.soft, u.hard
            )));
        }
        out.retain(|r| r["type"] != *ty);
        out.push(json!({"type": ty, "hard": u.hard, "soft": u.soft}));
    }
    Ok(out)
}

fn resources(h: &HostConfig) -> Result<Value, ContainerError> {
    let mut r = json!({ "devices": [{"allow": false, "access": "rwm"}] });
    if !h.privileged {
        r["devices"] = default_device_rules();
    } else {
        r["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let mut mem = serde_json::Map::new();
    if h.memory < 0 || (h.memory > 0 && h.memory < 6 * 1024 * 1024) {
        return Err(ContainerError::Invalid(format!(
            "invalid memory limit {}: minimum memory limit allowed is 6MB",
            h.memory
        )));
    }
    if h.memory > 0 {
        mem.insert("limit".into(), json!(h.memory));
        // Docker: swap defaults to twice the memory (memory + equal swap); -1 is unlimited,
        // and so is twice a limit too large to double (`Memory` near i64::MAX).
        let swap = match h.memory_swap {
            0 => h.memory.checked_mul(2).unwrap_or(-1),
            -1 => -1,
            s if s < h.memory => {
                return Err(ContainerError::Invalid(format!(
                    "invalid memory-swap {s}: Minimum memoryswap limit should be larger than memory limit"
                )))
            }
            s => s,
        };
        mem.insert("swap".into(), json!(swap));
    } else if h.memory_swap > 0 {
        return Err(ContainerError::Invalid(
            "You should always set the Memory limit when using Memoryswap limit".into(),
        ));
    }
    if h.memory_reservation > 0 {
        mem.insert("reservation".into(), json!(h.memory_reservation));
    }
    if h.oom_kill_disable == Some(true) {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    if !mem.is_empty() {
        r["memory"] = Value::Object(mem);
    }
    let mut cpu = serde_json::Map::new();
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if h.nano_cpus > 0 {
        if h.cpu_quota > 0 || h.cpu_period > 0 {
            return Err(ContainerError::Invalid(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        let period = 100_000i64;
        cpu.insert("period".into(), json!(period));
        // nano_cpus × period / 1e9, without the product overflowing.
        cpu.insert(
            "quota".into(),
            json!(h.nano_cpus / (1_000_000_000 / period)),
        );
    } else {
        if h.cpu_period > 0 {
            cpu.insert("period".into(), json!(h.cpu_period));
        }
        if h.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(h.cpu_quota));
        }
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !h.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(h.cpuset_mems));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        r["pids"] = json!({ "limit": p });
    }
    Ok(r)
}

/// Docker's device cgroup allow-list: deny all, then the usual character devices.
fn default_device_rules() -> Value {
    let c = |major: i64, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    json!([
        {"allow": false, "access": "rwm"},
        c(1, Some(3), "rwm"),   // null
        c(1, Some(5), "rwm"),   // zero
        c(1, Some(7), "rwm"),   // full
        c(1, Some(8), "rwm"),   // random
        c(1, Some(9), "rwm"),   // urandom
        c(5, Some(0), "rwm"),   // tty
        c(5, Some(1), "rwm"),   // console
        c(5, Some(2), "rwm"),   // ptmx
        c(136, None, "rwm"),    // pts/*
        c(10, Some(200), "rwm"), // net/tun
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    ])
}

fn mounts(input: &SpecInput) -> Vec<Value> {
    let h = input.host;
    let sys_opts = if h.privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    let shm = if h.shm_size > 0 { h.shm_size } else { 64 << 20 };
    m.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}));
    for (dest, src) in &input.etc_files {
        let mut opts = vec!["rbind", "rprivate"];
        if h.readonly_rootfs {
            opts.push("ro");
        }
        m.push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
    }
    // The user's mounts: `--tmpfs`, binds and volumes, parents before children; each
    // replaces a default mount at the same destination.
    let mut user = Vec::new();
    for (dest, opts) in &h.tmpfs {
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        if !o.iter().any(|x| x.starts_with("mode=")) {
            o.push("mode=1777".into());
        }
        // An explicit exec option wins over the default noexec.
        if o.iter().any(|x| x == "exec") {
            o.retain(|x| x != "noexec");
        }
        user.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    user.extend(input.mounts.iter().map(|mp| mp.to_spec()));
    user.sort_by_key(|u| super::mounts::depth(u["destination"].as_str().unwrap_or("")));
    m.retain(|d| !user.iter().any(|u| u["destination"] == d["destination"]));
    m.extend(user);
    if let Some(init) = &input.init_binary {
        m.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(c: &'a ContainerConfig, h: &'a HostConfig) -> SpecInput<'a> {
        SpecInput {
            config: c,
            host: h,
            rootfs: "/r",
            args: vec!["sh".into()],
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            netns: Some("/run/netns/x".into()),
            cgroups_path: "/berth/x".into(),
            etc_files: vec![],
            nofile_hard: 20000,
            init_binary: None,
            mounts: &[],
        }
    }

    #[test]
    fn defaults_match_docker() {
        let c = ContainerConfig::default();
        let h = HostConfig::default();
        let s = build(&input(&c, &h)).expect("spec");
        assert_eq!(
            s["process"]["capabilities"]["bounding"]
                .as_array()
                .map(Vec::len),
            Some(14)
        );
        assert_eq!(s["process"]["rlimits"][0]["hard"], 20000);
        assert!(s["linux"]["seccomp"].is_object());
        assert!(s["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("/proc/kcore"))));
        assert_eq!(
            s["process"]["env"][0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
        let parsed: Result<oci_spec::runtime::Spec, _> = serde_json::from_value(s);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn limits_and_caps() {
        let c = ContainerConfig::default();
        let h = HostConfig {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(20),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["chown".into()],
            ..Default::default()
        };
        let s = build(&input(&c, &h)).expect("spec");
        let r = &s["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 128 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["pids"]["limit"], 20);
        let caps = s["process"]["capabilities"]["bounding"]
            .as_array()
            .expect("caps")
            .clone();
        assert!(caps.contains(&json!("CAP_NET_ADMIN")));
        assert!(!caps.contains(&json!("CAP_CHOWN")));
    }

    #[test]
    fn bad_values_are_named() {
        let c = ContainerConfig::default();
        let h = HostConfig {
            cap_add: vec!["BOGUS".into()],
            ..Default::default()
        };
        assert!(build(&input(&c, &h)).is_err_and(|e| e.to_string().contains("BOGUS")));
        let h = HostConfig {
            memory: 1000,
            ..Default::default()
        };
        assert!(build(&input(&c, &h)).is_err_and(|e| e.to_string().contains("6MB")));
    }

    #[test]
    fn user_mounts_sorted_parents_first_and_replace_defaults() {
        let c = ContainerConfig::default();
        let h = HostConfig {
            tmpfs: [("/a/b/c".to_string(), "size=1m".to_string())].into(),
            ..Default::default()
        };
        let mounts = [
            super::super::mounts::parse_bind("/h1:/a/b:ro").expect("bind"),
            super::super::mounts::parse_bind("/h2:/a").expect("bind"),
            super::super::mounts::parse_bind("/h3:/dev/shm").expect("bind"),
        ];
        let mut i = input(&c, &h);
        i.mounts = &mounts;
        let s = build(&i).expect("spec");
        let dests: Vec<&str> = s["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        let pos = |d: &str| dests.iter().position(|x| *x == d).expect(d);
        assert!(
            pos("/a") < pos("/a/b") && pos("/a/b") < pos("/a/b/c"),
            "{dests:?}"
        );
        assert_eq!(dests.iter().filter(|d| **d == "/dev/shm").count(), 1);
        let shm = &s["mounts"][pos("/dev/shm")];
        assert_eq!(shm["source"], "/h3");
        assert_eq!(
            s["mounts"][pos("/a/b")]["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        let parsed: Result<oci_spec::runtime::Spec, _> = serde_json::from_value(s);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn privileged_lifts_confinement() {
        let c = ContainerConfig::default();
        let h = HostConfig {
            privileged: true,
            ..Default::default()
        };
        let s = build(&input(&c, &h)).expect("spec");
        assert!(s["linux"]["seccomp"].is_null());
        assert!(s["linux"]["maskedPaths"].is_null());
        assert_eq!(
            s["process"]["capabilities"]["bounding"]
                .as_array()
                .map(Vec::len),
            Some(grantable_caps().len())
        );
    }
}
