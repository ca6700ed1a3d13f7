//! A task's secrets and configs as files in its container.
//!
//! ```text
//!  assignments (only the secrets/configs this node's tasks use) ─► files_for(task)
//!    ─► TaskData::mount: a tmpfs per task at <exec-root>/task-data/<task>, one file per
//!       reference with its owner and mode ─► read-only bind mounts into the container
//!       (secrets: /run/secrets/<target> unless absolute; configs: /<target> unless absolute)
//!  task ends / is deleted / node leaves ─► TaskData::release: unmount, remove the directory
//! ```
//! The tmpfs keeps secret bytes off the node's disk (it is never swapped to a file the
//! engine owns, and never written under the data root); it outlives a restart of berthd, so
//! adopted tasks keep their files, and goes when the task does.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_raft::objects::DataObject;
use berth_raft::tasks::Task;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

/// One file a task's container sees.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFile {
    /// Absolute path in the container.
    pub target: String,
    pub data: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Where a node keeps its tasks' files: `<exec-root>/task-data`.
pub struct TaskData {
    root: PathBuf,
}

fn reference_file(r: &Value, default_mode: u32) -> (String, u32, u32, u32) {
    let file = r.get("File");
    let text = |k: &str| {
        file.and_then(|f| f.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let num = |k: &str| text(k).parse::<u32>().unwrap_or(0);
    let mode = file
        .and_then(|f| f.get("Mode"))
        .and_then(|v| v.as_u64())
        .map(|m| m as u32 & 0o7777)
        .unwrap_or(default_mode);
    (text("Name"), num("UID"), num("GID"), mode)
}

/// The files of `t`'s secret and config references, from the objects its node was sent.
/// A reference to an object the node was not sent is an error (the task is rejected).
pub fn files_for(
    t: &Task,
    secrets: &[DataObject],
    configs: &[DataObject],
    hostname: &str,
) -> Result<Vec<TaskFile>, String> {
    let Some(cs) = t.spec.container_spec.as_ref() else {
        return Ok(Vec::new());
    };
    let refs = |key: &str| -> Vec<Value> {
        cs.get(key)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let mut files = Vec::new();
    // Relative targets: secrets under /run/secrets, configs at the root.
    for (key, id_key, what, objs, dir) in [
        ("Secrets", "SecretID", "secret", secrets, "/run/secrets/"),
        ("Configs", "ConfigID", "config", configs, "/"),
    ] {
        for r in refs(key) {
            // A `Runtime` reference (credential specs) has no file.
            if r.get("File").is_none() {
                continue;
            }
            let id = r.get(id_key).and_then(|v| v.as_str()).unwrap_or("");
            let obj = objs
                .iter()
                .find(|o| o.id == id)
                .ok_or_else(|| format!("{what} {id} is not available"))?;
            let (name, uid, gid, mode) = reference_file(&r, 0o444);
            let name = if name.is_empty() { &obj.name } else { &name };
            let target = if name.starts_with('/') {
                name.clone()
            } else {
                format!("{dir}{name}")
            };
            // Templates are expanded in configs (secrets are handed over as stored).
            let data = match templating(obj).filter(|_| key == "Configs") {
                None => obj.data.clone(),
                Some(driver) if driver == "golang" => {
                    let ctx = TemplateContext {
                        task: t,
                        hostname,
                        secrets,
                        configs,
                    };
                    expand(&String::from_utf8_lossy(&obj.data), &ctx)
                        .map_err(|e| format!("{what} {}: template: {e}", obj.name))?
                        .into_bytes()
                }
                Some(driver) => {
                    return Err(format!(
                        "{what} {}: unsupported template driver {driver:?}",
                        obj.name
                    ))
                }
            };
            files.push(TaskFile {
                target,
                data,
                uid,
                gid,
                mode,
            });
        }
    }
    Ok(files)
}

fn templating(o: &DataObject) -> Option<String> {
    let name = o.templating.as_ref()?.get("Name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_owned())
}

struct TemplateContext<'a> {
    task: &'a Task,
    hostname: &'a str,
    secrets: &'a [DataObject],
    configs: &'a [DataObject],
}

/// Docker's config templates (the `golang` driver): `{{ .Service.Name }}`-style fields of
/// the service, task and node, and the functions `env`, `secret` and `config`.
fn expand(text: &str, ctx: &TemplateContext) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or("unclosed action")?;
        let action = after[..close]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push_str(&evaluate(action, ctx)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn evaluate(action: &str, ctx: &TemplateContext) -> Result<String, String> {
    let t = ctx.task;
    let field = match action {
        ".Service.ID" => Some(t.service_id.clone()),
        ".Service.Name" => Some(t.service_name.clone()),
        ".Task.ID" => Some(t.id.clone()),
        ".Task.Name" => Some(super::taskspec::container_name(t)),
        ".Task.Slot" => Some(if t.slot > 0 {
            t.slot.to_string()
        } else {
            t.node_id.clone()
        }),
        ".Node.ID" => Some(t.node_id.clone()),
        ".Node.Hostname" => Some(ctx.hostname.to_owned()),
        ".Node.Platform.OS" => Some(std::env::consts::OS.to_owned()),
        ".Node.Platform.Architecture" => Some(std::env::consts::ARCH.to_owned()),
        _ => None,
    };
    if let Some(v) = field {
        return Ok(v);
    }
    if let Some(label) = action.strip_prefix(".Service.Labels.") {
        return Ok(t.service_labels.get(label).cloned().unwrap_or_default());
    }
    let mut words = action.split_whitespace();
    let func = words.next().unwrap_or("");
    let arg = words.next().map(unquote).transpose()?;
    let arg = match (func, arg) {
        ("env" | "secret" | "config", Some(a)) if words.next().is_none() => a,
        _ => return Err(format!("unsupported action {{{{{action}}}}}")),
    };
    match func {
        "env" => {
            let env = t
                .spec
                .container_spec
                .as_ref()
                .and_then(|c| c.get("Env"))
                .and_then(|e| e.as_array())
                .cloned()
                .unwrap_or_default();
            Ok(env
                .iter()
                .filter_map(|e| e.as_str())
                .filter_map(|e| e.split_once('='))
                .find(|(k, _)| *k == arg)
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default())
        }
        // A template may only use secrets and configs the service references, by target.
        "secret" => referenced(t, "Secrets", "SecretID", &arg, ctx.secrets),
        _ => referenced(t, "Configs", "ConfigID", &arg, ctx.configs),
    }
}

fn unquote(w: &str) -> Result<String, String> {
    w.strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a quoted string, got {w}"))
}

fn referenced(
    t: &Task,
    key: &str,
    id_key: &str,
    target: &str,
    objs: &[DataObject],
) -> Result<String, String> {
    let refs = t
        .spec
        .container_spec
        .as_ref()
        .and_then(|c| c.get(key))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for r in refs {
        let name = r
            .get("File")
            .and_then(|f| f.get("Name"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let id = r.get(id_key).and_then(|v| v.as_str()).unwrap_or("");
        if name == target || name.rsplit('/').next() == Some(target) {
            if let Some(o) = objs.iter().find(|o| o.id == id) {
                return Ok(String::from_utf8_lossy(&o.data).into_owned());
            }
        }
    }
    Err(format!(
        "{} {target} is not referenced by the service",
        key.to_lowercase().trim_end_matches('s')
    ))
}

impl TaskData {
    pub fn new(exec_root: &Path) -> TaskData {
        TaskData {
            root: exec_root.join("task-data"),
        }
    }

    fn dir(&self, task_id: &str) -> PathBuf {
        self.root.join(task_id)
    }

    /// Writes `files` on a fresh tmpfs for the task and answers the container's mounts
    /// (Docker's `Mount` JSON: read-only binds).
    pub fn mount(&self, task_id: &str, files: &[TaskFile]) -> io::Result<Vec<Value>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let dir = self.dir(task_id);
        if is_mountpoint(&dir) {
            // Already there (prepared before a restart of berthd): start over.
            self.release(task_id);
        }
        std::fs::create_dir_all(&dir)?;
        let size: usize = files.iter().map(|f| f.data.len() + 4096).sum::<usize>() + 65536;
        mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(format!("mode=0700,size={size}").as_str()),
        )
        .map_err(io::Error::from)?;
        let result = self.write_files(&dir, files);
        if result.is_err() {
            self.release(task_id);
        }
        result
    }

    fn write_files(&self, dir: &Path, files: &[TaskFile]) -> io::Result<Vec<Value>> {
        let mut mounts = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let path = dir.join(format!("{i}"));
            {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(&f.data)?;
            }
            std::os::unix::fs::chown(&path, Some(f.uid), Some(f.gid))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
            mounts.push(json!({
                "Type": "bind",
                "Source": path.to_string_lossy(),
                "Target": f.target,
                "ReadOnly": true,
            }));
        }
        Ok(mounts)
    }

    /// Unmounts the task's tmpfs and removes its directory.
    pub fn release(&self, task_id: &str) {
        let dir = self.dir(task_id);
        if !dir.exists() {
            return;
        }
        if is_mountpoint(&dir) {
            if let Err(e) = umount2(&dir, MntFlags::MNT_DETACH) {
                tracing::warn!(task = %task_id, error = %e, "unmounting a task's secrets");
                return;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Releases the files of every task not in `keep`.
    pub fn sweep(&self, keep: &HashSet<String>) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                self.release(&name);
            }
        }
    }
}

fn is_mountpoint(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use berth_raft::objects::Meta;
    use berth_raft::tasks::{TaskState, TaskStatus, TaskTemplate};

    fn object(id: &str, name: &str, data: &str, templating: Option<Value>) -> DataObject {
        DataObject {
            id: id.into(),
            meta: Meta::default(),
            name: name.into(),
            labels: BTreeMap::new(),
            data: data.as_bytes().to_vec(),
            templating,
            driver: None,
        }
    }

    fn task(container_spec: Value) -> Task {
        Task {
            id: "t1".into(),
            meta: Meta::default(),
            service_id: "s1".into(),
            slot: 2,
            node_id: "n1".into(),
            spec: TaskTemplate {
                container_spec: Some(container_spec),
                ..Default::default()
            },
            spec_version: 1,
            service_labels: BTreeMap::new(),
            service_name: "web".into(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                timestamp: String::new(),
                state: TaskState::Assigned,
                message: String::new(),
                err: String::new(),
                container_id: String::new(),
                pid: 0,
                exit_code: 0,
            },
            job_iteration: 0,
            endpoint_spec: None,
            networks: Vec::new(),
        }
    }

    #[test]
    fn targets_owner_and_mode_follow_the_references() {
        let t = task(json!({
            "Secrets": [
                {"SecretID": "s", "SecretName": "db", "File": {"Name": "db", "UID": "10", "GID": "20", "Mode": 0o400}},
                {"SecretID": "s", "SecretName": "db", "File": {"Name": "/etc/abs", "UID": "0", "GID": "0", "Mode": 0o444}},
            ],
            "Configs": [
                {"ConfigID": "c", "ConfigName": "cfg", "File": {"Name": "app.conf", "UID": "0", "GID": "0", "Mode": 0o444}},
                {"ConfigID": "c", "ConfigName": "cfg", "Runtime": {}},
            ],
        }));
        let secrets = [object("s", "db", "pw", None)];
        let configs = [object("c", "cfg", "x=1", None)];
        let files = files_for(&t, &secrets, &configs, "host").expect("files");
        let got: Vec<(&str, u32, u32, u32)> = files
            .iter()
            .map(|f| (f.target.as_str(), f.uid, f.gid, f.mode))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/run/secrets/db", 10, 20, 0o400),
                ("/etc/abs", 0, 0, 0o444),
                ("/app.conf", 0, 0, 0o444),
            ]
        );
    }

    #[test]
    fn a_secret_the_node_was_not_sent_rejects_the_task() {
        let t = task(json!({"Secrets": [{"SecretID": "missing", "File": {"Name": "x"}}]}));
        let err = files_for(&t, &[], &[], "h").expect_err("missing secret");
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn config_templates_expand_docker_fields_and_functions() {
        let t = task(json!({
            "Env": ["MODE=prod"],
            "Secrets": [{"SecretID": "s", "File": {"Name": "pw"}}],
            "Configs": [{"ConfigID": "c", "File": {"Name": "/app.conf"}}],
        }));
        let secrets = [object("s", "pw", "hunter2", None)];
        let configs = [object(
            "c",
            "cfg",
            "svc={{.Service.Name}} slot={{ .Task.Slot }} node={{.Node.Hostname}} mode={{env \"MODE\"}} pw={{secret \"pw\"}}",
            Some(json!({"Name": "golang"})),
        )];
        let files = files_for(&t, &secrets, &configs, "box").expect("files");
        let text = String::from_utf8(files[1].data.clone()).expect("utf-8");
        assert_eq!(text, "svc=web slot=2 node=box mode=prod pw=hunter2");
        let bad = [object(
            "c",
            "cfg",
            "{{.Nope}}",
            Some(json!({"Name": "golang"})),
        )];
        assert!(files_for(&t, &secrets, &bad, "box").is_err());
    }
}
