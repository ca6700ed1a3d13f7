//! The OCI process of an exec: the container's own, read from its bundle, with the exec's
//! command, environment, working directory, user and terminal in place of the init's — as
//! dockerd builds it from the container's spec. Everything else PID 1 runs with carries over:
//! capabilities, no-new-privileges, rlimits, oom score, AppArmor and SELinux labels. The
//! runtime adds what is not part of a process: the init's namespaces and cgroup and the
//! container's seccomp profile.
//!
//! ```text
//! bundle/config.json .process ──┬─► process.json (exec state dir) ─► berth-shim exec
//! ExecConfig + resolved user  ──┘
//! ```

use std::path::Path;

use serde_json::{json, Value};

use super::ContainerError;

/// What an exec sets for itself; the rest is the container's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOverrides {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub terminal: bool,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `exec --privileged`: the capability set of a privileged container.
    pub privileged_caps: Option<Vec<String>>,
    /// (height, width) of the exec's terminal, when the client gave one.
    pub console_size: Option<(u32, u32)>,
}

/// The `process` of the container's runtime spec (`<bundle>/config.json`), written at start.
pub fn container_process(bundle: &Path) -> Result<Value, ContainerError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| ContainerError::io("read", &path, e))?;
    let mut spec: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ContainerError::Runtime(format!("parse runtime spec {}: {e}", path.display()))
    })?;
    match spec.get_mut("process").map(Value::take) {
        Some(p @ Value::Object(_)) => Ok(p),
        _ => Err(ContainerError::Runtime(format!(
            "runtime spec {} has no process",
            path.display()
        ))),
    }
}

/// The exec's process: `init` (the container's process) with the exec's own settings.
pub fn build(init: &Value, o: &ExecOverrides) -> Value {
    let mut p = match init {
        Value::Object(_) => init.clone(),
        _ => json!({}),
    };
    p["terminal"] = json!(o.terminal);
    p["args"] = json!(o.args);
    p["env"] = json!(o.env);
    p["cwd"] = json!(o.cwd);
    // Keeps what the container's user has beyond ids (umask).
    let mut user = match p.get("user") {
        Some(u @ Value::Object(_)) => u.clone(),
        _ => json!({}),
    };
    user["uid"] = json!(o.uid);
    user["gid"] = json!(o.gid);
    user["additionalGids"] = json!(o.additional_gids);
    p["user"] = user;
    if let Some(caps) = &o.privileged_caps {
        p["capabilities"] = json!({ "bounding": caps, "effective": caps, "permitted": caps });
    }
    let map = p.as_object_mut().expect("made an object above");
    map.remove("consoleSize");
    if let Some((h, w)) = o.console_size.filter(|&(h, w)| h > 0 && w > 0) {
        map.insert("consoleSize".into(), json!({ "height": h, "width": w }));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Value {
        json!({
            "terminal": false,
            "user": { "uid": 0, "gid": 0, "additionalGids": [10], "umask": 18 },
            "args": ["sleep", "1000"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/srv",
            "capabilities": { "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
                              "permitted": ["CAP_CHOWN"] },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000 }],
            "oomScoreAdj": 0,
            "noNewPrivileges": true,
            "apparmorProfile": "docker-default",
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
            "consoleSize": { "height": 10, "width": 20 }
        })
    }

    fn overrides() -> ExecOverrides {
        ExecOverrides {
            args: vec!["id".into()],
            env: vec!["PATH=/bin".into(), "A=2".into()],
            cwd: "/tmp".into(),
            terminal: true,
            uid: 1000,
            gid: 1001,
            additional_gids: vec![],
            privileged_caps: None,
            console_size: None,
        }
    }

    #[test]
    fn carries_the_containers_security_settings_over() {
        let p = build(&init(), &overrides());
        for key in [
            "capabilities",
            "rlimits",
            "oomScoreAdj",
            "noNewPrivileges",
            "apparmorProfile",
            "selinuxLabel",
        ] {
            assert_eq!(p[key], init()[key], "{key}");
        }
        assert_eq!(p["args"], json!(["id"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["terminal"], true);
        assert_eq!(
            p["user"],
            json!({ "uid": 1000, "gid": 1001, "additionalGids": [], "umask": 18 })
        );
        // The init's terminal size is not the exec's.
        assert!(p.get("consoleSize").is_none());
    }

    #[test]
    fn privileged_exec_gets_every_capability_and_keeps_the_rest() {
        let all = vec!["CAP_CHOWN".to_string(), "CAP_SYS_ADMIN".to_string()];
        let o = ExecOverrides {
            privileged_caps: Some(all.clone()),
            console_size: Some((24, 80)),
            ..overrides()
        };
        let p = build(&init(), &o);
        assert_eq!(
            p["capabilities"],
            json!({ "bounding": all, "effective": all, "permitted": all })
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["rlimits"], init()["rlimits"]);
        assert_eq!(p["consoleSize"], json!({ "height": 24, "width": 80 }));
    }

    #[test]
    fn reads_the_process_of_a_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = container_process(dir.path()).expect_err("no config.json");
        assert!(err.to_string().contains("config.json"), "{err}");
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec(&json!({ "ociVersion": "1.0.2", "process": init() })).expect("json"),
        )
        .expect("write");
        assert_eq!(container_process(dir.path()).expect("process"), init());
        std::fs::write(dir.path().join("config.json"), b"{}").expect("write");
        assert!(container_process(dir.path()).is_err());
    }
}
