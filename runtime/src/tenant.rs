//! `berth-runtime exec`: starts a process in a running container with everything its init
//! has, as runc's `exec` does — the init's namespaces and cgroup, the container's seccomp
//! profile, and the process's own user, capabilities, no-new-privileges, AppArmor label,
//! rlimits and oom score (berthd writes the full OCI process, copied from the container's).
//!
//! ```text
//! config.json (bundle) ─┐
//! process.json ─────────┼─► tenant_spec ─► libcontainer main → intermediate → init ─► exec
//! /proc/<init>/ns/* ────┘   (namespaces by path, cgroup, seccomp)   (joins, drops, filters)
//! ```
//! libcontainer 0.7's `TenantContainerBuilder` rebuilds the spec's `linux` section from
//! namespaces, cgroup path, personality and time offsets only, so its processes ran without
//! the container's seccomp filter. This module does what that builder does with libcontainer's
//! public process machinery, keeping the seccomp profile; the init process then loads it
//! exactly as for the container's init (before dropping capabilities, or last when
//! no-new-privileges is set).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libcgroups::common::CgroupConfig;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::notify_socket::{NotifyListener, NotifySocket};
use libcontainer::oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Process, Spec,
};
use libcontainer::oci_spec::OciSpecError;
use libcontainer::process::args::{ContainerArgs, ContainerType};
use libcontainer::process::container_main_process::container_main_process;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::user_ns::UserNamespaceConfig;
use libcontainer::workload::Executor;

/// The namespaces an exec'd process joins, as /proc/<pid>/ns names; the user namespace is
/// not among them, as in libcontainer's tenant builder (berthd makes none).
const JOINED_NAMESPACES: &[&str] = &["ipc", "uts", "net", "pid", "mnt", "cgroup", "time"];

/// Why the spec of an exec'd process could not be made from the container's.
#[derive(Debug, thiserror::Error)]
pub enum TenantSpecError {
    #[error("the container's spec has no linux section")]
    NoLinux,
    /// The namespace to join could not be named or described.
    #[error("namespace {name}: {source}")]
    Namespace {
        name: &'static str,
        #[source]
        source: OciSpecError,
    },
    /// The reduced `linux` section could not be built.
    #[error("{0}")]
    Linux(#[source] OciSpecError),
}

/// What `exec` was asked to start.
pub struct ExecRequest<'a> {
    /// The runtime's state root (`--root`).
    pub root: &'a Path,
    pub id: &'a str,
    /// The OCI process to run (`--process`).
    pub process: &'a Path,
    pub console_socket: Option<&'a Path>,
}

/// Starts the process and returns its host pid once it has exec'd (or the reason it could
/// not: a failure in the container's init is reported through a pipe, as by libcontainer).
pub fn exec(req: &ExecRequest<'_>, executor: impl Executor + 'static) -> Result<i32, String> {
    let dir = req.root.join(req.id);
    let container =
        Container::load(dir.clone()).map_err(|e| format!("load container {}: {e}", req.id))?;
    if container.status() != ContainerStatus::Running {
        return Err(format!(
            "cannot exec in container {}: it is {}",
            req.id,
            container.status()
        ));
    }
    let init_pid = container
        .pid()
        .ok_or_else(|| format!("container {} has no init pid", req.id))?;
    let spec = load_spec(container.bundle())?;
    let process = load_process(req.process)?;
    let spec = tenant_spec(spec, process, init_pid.as_raw())
        .map_err(|e| berth_common::errors::cause_chain(&e))?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal != req.console_socket.is_some() {
        return Err("a terminal needs --console-socket, and --console-socket a terminal".into());
    }
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or("the container's spec has no root")?;
    let rootfs = std::fs::canonicalize(&root_path)
        .map_err(|e| format!("resolve rootfs {}: {e}", root_path.display()))?;
    // Unique among live processes; a file left by a crashed run with the same pid goes first.
    let notify_path = dir.join(format!("tenant-notify-{}.sock", std::process::id()));
    let tty_name = format!("tenant-tty-{}.sock", std::process::id());
    let _ = std::fs::remove_file(&notify_path);
    let _ = std::fs::remove_file(dir.join(&tty_name));
    let result = launch(
        &container,
        &dir,
        spec,
        rootfs,
        &notify_path,
        req.console_socket.map(|cs| (cs, tty_name.as_str())),
        executor,
    );
    let _ = std::fs::remove_file(&notify_path);
    let _ = std::fs::remove_file(dir.join(&tty_name));
    result
}

/// The spec an exec'd process runs with: the container's, with `process` in place of the
/// init's, and `linux` reduced to what joining a running container uses — the init's
/// namespaces by path, the cgroup, personality and time offsets — plus the seccomp profile.
/// Resources, devices, masked paths, sysctls and mounts were applied once, for the init.
pub fn tenant_spec(
    mut spec: Spec,
    process: Process,
    init_pid: i32,
) -> Result<Spec, TenantSpecError> {
    let linux = spec.linux().as_ref().ok_or(TenantSpecError::NoLinux)?;
    let declared: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    let mut namespaces = Vec::new();
    for name in JOINED_NAMESPACES {
        let namespace_error = |source| TenantSpecError::Namespace { name, source };
        let typ = LinuxNamespaceType::try_from(*name).map_err(namespace_error)?;
        if declared.contains(&typ) {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(PathBuf::from(format!("/proc/{init_pid}/ns/{name}")))
                    .build()
                    .map_err(namespace_error)?,
            );
        }
    }
    let mut b = LinuxBuilder::default().namespaces(namespaces);
    if let Some(p) = linux.cgroups_path() {
        b = b.cgroups_path(p.clone());
    }
    if let Some(p) = linux.personality() {
        b = b.personality(p.clone());
    }
    if let Some(t) = linux.time_offsets() {
        b = b.time_offsets(t.clone());
    }
    if let Some(s) = linux.seccomp() {
        b = b.seccomp(s.clone());
    }
    let mut linux = b.build().map_err(TenantSpecError::Linux)?;
    // The builder fills in the OCI defaults; none of them applies to a joining process.
    linux
        .set_resources(None)
        .set_masked_paths(None)
        .set_readonly_paths(None)
        .set_devices(None)
        .set_sysctl(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None);
    spec.set_process(Some(process)).set_linux(Some(linux));
    Ok(spec)
}

fn load_spec(bundle: &Path) -> Result<Spec, String> {
    let path = bundle.join("config.json");
    let mut spec = Spec::load(&path).map_err(|e| format!("load {}: {e}", path.display()))?;
    spec.canonicalize_rootfs(bundle)
        .map_err(|e| format!("resolve the rootfs of {}: {e}", path.display()))?;
    Ok(spec)
}

fn load_process(path: &Path) -> Result<Process, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parse {}: {e}", path.display()))
}

/// Runs libcontainer's main process (which clones the intermediate and init processes),
/// lets the init exec, and waits for it to have exec'd or failed.
fn launch(
    container: &Container,
    dir: &Path,
    spec: Spec,
    rootfs: PathBuf,
    notify_path: &Path,
    console: Option<(&Path, &str)>,
    executor: impl Executor + 'static,
) -> Result<i32, String> {
    let console_fd: Option<OwnedFd> = console
        .map(|(socket, name)| libcontainer::tty::setup_console_socket(dir, socket, name))
        .transpose()
        .map_err(|e| format!("console socket: {e}"))?;
    let user_ns_config =
        UserNamespaceConfig::new(&spec).map_err(|e| format!("user namespace: {e}"))?;
    let (process, linux) = match (spec.process(), spec.linux()) {
        (Some(p), Some(l)) => (p, l),
        _ => return Err("the exec spec lacks process or linux".into()),
    };
    if let Some(score) = process.oom_score_adj() {
        // Before the process turns non-dumpable (the file is not writable after); inherited.
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| format!("write /proc/self/oom_score_adj: {e}"))?;
    }
    // SAFETY: prctl with integer arguments only. Non-dumpable before joining the container,
    // so its processes can't ptrace or read /proc of ours (as libcontainer does).
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "set non-dumpable: {}",
            std::io::Error::last_os_error()
        ));
    }
    let cgroup_config = CgroupConfig {
        cgroup_path: libcontainer::utils::get_cgroup_path(linux.cgroups_path(), container.id()),
        systemd_cgroup: container.systemd() || user_ns_config.is_some(),
        container_name: container.id().to_owned(),
    };
    let notify_listener = NotifyListener::new(notify_path)
        .map_err(|e| format!("notify socket {}: {e}", notify_path.display()))?;
    let (errors_r, errors_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let args = ContainerArgs {
        container_type: ContainerType::TenantContainer {
            exec_notify_fd: errors_w.as_raw_fd(),
        },
        syscall: SyscallType::Linux,
        spec: Rc::new(spec),
        rootfs,
        console_socket: console_fd.as_ref().map(|fd| fd.as_fd().as_raw_fd()),
        notify_listener,
        preserve_fds: 0,
        // Not saved: libcontainer reads it only to describe the container to a seccomp
        // notify listener.
        container: Some(container.clone()),
        user_ns_config,
        cgroup_config,
        detached: true,
        executor: Box::new(executor),
        no_pivot: false,
        stdin: None,
        stdout: None,
        stderr: None,
        as_sibling: false,
        pid_file: None,
    };
    let pid = container_main_process(&args).map_err(|e| format!("exec in container: {e}"))?;
    drop(args);
    NotifySocket::new(notify_path)
        .notify_container_start()
        .map_err(|e| format!("start the exec'd process: {e}"))?;
    // The init holds the other copy, closed by its exec (O_CLOEXEC) or after it wrote why it
    // failed: EOF with nothing read means the process runs.
    drop(errors_w);
    let mut why = String::new();
    std::fs::File::from(errors_r)
        .read_to_string(&mut why)
        .map_err(|e| format!("read the exec'd process's status: {e}"))?;
    if why.is_empty() {
        Ok(pid.as_raw())
    } else {
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container_spec() -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": { "args": ["sleep", "1000"], "cwd": "/", "user": { "uid": 0, "gid": 0 },
                         "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }] },
            "root": { "path": "/rootfs" },
            "linux": {
                "namespaces": [
                    { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
                    { "type": "network", "path": "/run/netns/x" }
                ],
                "cgroupsPath": "/berth/abc",
                "resources": { "memory": { "limit": 67108864 } },
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"],
                "seccomp": {
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "syscalls": [{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }]
                }
            }
        }))
        .expect("spec")
    }

    fn exec_process() -> Process {
        serde_json::from_value(json!({
            "args": ["cat", "/proc/self/status"], "cwd": "/tmp",
            "user": { "uid": 1000, "gid": 1000 },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }]
        }))
        .expect("process")
    }

    #[test]
    fn keeps_the_seccomp_profile_and_joins_the_inits_namespaces() {
        let spec = tenant_spec(container_spec(), exec_process(), 4242).expect("tenant spec");
        let linux = spec.linux().as_ref().expect("linux");
        let seccomp = linux
            .seccomp()
            .as_ref()
            .expect("the exec keeps the seccomp profile");
        assert_eq!(
            serde_json::to_value(seccomp).expect("json"),
            serde_json::to_value(
                container_spec()
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().clone())
            )
            .expect("json")
        );
        let ns: Vec<(String, String)> = linux
            .namespaces()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|n| {
                (
                    n.typ().to_string(),
                    n.path()
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("ipc", "ipc"),
            ("uts", "uts"),
            ("net", "net"),
            ("pid", "pid"),
            ("mnt", "mnt"),
        ]
        .iter()
        .map(|(t, n)| (t.to_string(), format!("/proc/4242/ns/{n}")))
        .collect();
        assert_eq!(ns, want);
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/berth/abc"))
        );
        // What was applied once for the init is not applied again.
        assert!(linux.resources().is_none());
        assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
        assert!(linux.devices().is_none() && linux.sysctl().is_none());
        // The process is the exec's, whole.
        let p = spec.process().as_ref().expect("process");
        assert_eq!(
            p.args().as_deref(),
            Some(&["cat".to_string(), "/proc/self/status".to_string()][..])
        );
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.rlimits().as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn an_unconfined_container_execs_unconfined() {
        let mut spec = container_spec();
        if let Some(l) = spec.linux_mut() {
            l.set_seccomp(None);
        }
        let t = tenant_spec(spec, exec_process(), 1).expect("tenant spec");
        assert!(t
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_none());
    }
}
