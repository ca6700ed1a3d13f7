//! Volumes: named directories under `<data-root>/volumes/<name>/_data` that outlive
//! containers, recorded in metadata.redb. The only driver is `local`; its options can put a
//! filesystem (tmpfs, a bind of a host dir, a block device) on `_data` while containers use it.
//!
//! ```text
//!  API /volumes ─► Volumes ─┬─ records      metadata.redb table `volumes` (name → Volume)
//!                           ├─ local.rs     driver options; mount/unmount of `_data`
//!  container start/stop ─►  ├─ attach/detach  refcount of running users per volume
//!                           └─ copy.rs      copy-up of image content into an empty volume
//! ```
//! Invariants: a volume's record is written before the API answers, and deleted only when no
//! container (running or not) references it; `_data` of a volume with options is mounted
//! exactly while at least one running container uses it (the set is rebuilt from running
//! containers at daemon start); nothing is ever deleted under a mounted `_data`.

mod backend;
pub mod copy;
pub mod local;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use berth_api::backend::{Filters, PruneScope};
use berth_api::{ApiError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::Events;
use crate::store::{MetaStore, Table};

const VOLUMES: Table = Table::new("volumes");

/// The label Docker puts on volumes a container created without a name (`-v /data`, an
/// image's `VOLUME`); `volume prune` without `all` removes only these.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    Invalid(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A driver other than `local` (there are no volume plugins).
    #[error("{0}")]
    NoDriver(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("volume mount on {target}: {detail}")]
    Mount { target: String, detail: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        let kind = match &e {
            VolumeError::Invalid(_) => ErrorKind::InvalidArgument,
            VolumeError::NotFound(_) | VolumeError::NoDriver(_) => ErrorKind::NotFound,
            VolumeError::Conflict(_) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, e.to_string()).with_source(e)
    }
}

/// What is stored of a volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// Ids of the containers (running or not) that reference a volume.
pub type UsersFn = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// The volume store, cheap to clone.
#[derive(Clone)]
pub struct Volumes {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    meta: Arc<MetaStore>,
    events: Events,
    /// Serialises create and remove, so a name is checked and claimed atomically.
    lock: Mutex<()>,
    users: RwLock<Option<UsersFn>>,
    /// Volume name → running containers using it.
    running: Mutex<HashMap<String, HashSet<String>>>,
}

/// Checks a volume name as the local driver does.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::Invalid(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(ids: &[String]) -> String {
    format!("[{}]", ids.join(" "))
}

impl Volumes {
    pub fn new(root: PathBuf, meta: Arc<MetaStore>, events: Events) -> Result<Self, VolumeError> {
        std::fs::create_dir_all(&root).map_err(|source| VolumeError::Io {
            what: "create",
            path: root.display().to_string(),
            source,
        })?;
        Ok(Volumes {
            inner: Arc::new(Inner {
                root,
                meta,
                events,
                lock: Mutex::new(()),
                users: RwLock::new(None),
                running: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Tells the store how to find the containers that reference a volume.
    pub fn set_users(&self, f: UsersFn) {
        *self.inner.users.write().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn users(&self, name: &str) -> Vec<String> {
        match &*self.inner.users.read().unwrap_or_else(|p| p.into_inner()) {
            Some(f) => f(name),
            None => Vec::new(),
        }
    }

    /// `<data-root>/volumes/<name>/_data`, what containers mount.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.inner.root.join(name).join("_data")
    }

    fn emit(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_owned(), "local".to_owned());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.inner.events.publish("volume", action, name, attrs);
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.inner
            .meta
            .get(VOLUMES, name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))
    }

    pub fn all(&self) -> Result<Vec<Volume>, VolumeError> {
        Ok(self
            .inner
            .meta
            .list::<Volume>(VOLUMES)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Creates a volume, or returns the existing one of that name (`false`: not created).
    /// An empty name makes a random one.
    pub fn create(
        &self,
        name: &str,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool), VolumeError> {
        let driver = if driver.is_empty() { "local" } else { driver };
        let name = if name.is_empty() {
            hex::encode(rand::random::<[u8; 32]>())
        } else {
            name.to_owned()
        };
        validate_name(&name).map_err(|e| VolumeError::Invalid(format!("create {name}: {e}")))?;
        if driver != "local" {
            return Err(VolumeError::NoDriver(format!(
                "create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found"
            )));
        }
        local::parse(&options)?;
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = self.inner.meta.get::<Volume>(VOLUMES, &name)? {
            if v.driver != driver {
                return Err(VolumeError::Conflict(format!(
                    "create {name}: volume name must be unique: a volume {name} with driver {} exists",
                    v.driver
                )));
            }
            return Ok((v, false));
        }
        let data = self.data_path(&name);
        std::fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
            what: "create",
            path: data.display().to_string(),
            source,
        })?;
        let v = Volume {
            name: name.clone(),
            driver: driver.to_owned(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
        };
        if let Err(e) = self.inner.meta.put(VOLUMES, &name, &v) {
            let _ = std::fs::remove_dir_all(self.inner.root.join(&name));
            return Err(e.into());
        }
        drop(_g);
        self.emit("create", &name, &[]);
        Ok((v, true))
    }

    /// Removes a volume no container references. `force` ignores a missing volume.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(_) = self.inner.meta.get::<Volume>(VOLUMES, name)? else {
            if force {
                return Ok(());
            }
            return Err(VolumeError::NotFound(name.to_owned()));
        };
        let users = self.users(name);
        if !users.is_empty() {
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is in use - {}",
                go_list(&users)
            )));
        }
        let data = self.data_path(name);
        if local::is_mounted(&data) {
            local::unmount(&data)?;
            if local::is_mounted(&data) {
                return Err(VolumeError::Conflict(format!(
                    "remove {name}: {} is still mounted",
                    data.display()
                )));
            }
        }
        self.inner.meta.delete(VOLUMES, name)?;
        let dir = self.inner.root.join(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(volume = name, error = %e, "remove volume data");
            }
        }
        drop(_g);
        self.emit("destroy", name, &[]);
        Ok(())
    }

    /// The volume object of the API; `usage` adds `UsageData` (system df).
    pub fn to_json(&self, v: &Volume, usage: bool) -> Value {
        let mut out = json!({
            "CreatedAt": v.created_at,
            "Driver": v.driver,
            "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
            "Mountpoint": self.data_path(&v.name),
            "Name": v.name,
            "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
            "Scope": "local",
        });
        if usage {
            out["UsageData"] = json!({
                "Size": self.size(&v.name),
                "RefCount": self.users(&v.name).len(),
            });
        }
        out
    }

    fn size(&self, name: &str) -> i64 {
        crate::image::dir_size(&self.data_path(name)).map_or(-1, |s| s as i64)
    }

    pub fn list(&self, filters: &Filters) -> Result<Vec<Value>, VolumeError> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "dangling" | "driver" | "label" | "name") {
                return Err(VolumeError::Invalid(format!("invalid filter '{k}'")));
            }
        }
        let dangling = match filters.get("dangling").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) => Some(parse_bool(v, "dangling")?),
            Some(_) => {
                return Err(VolumeError::Invalid(
                    "invalid filter 'dangling': give one value".into(),
                ))
            }
        };
        let mut out = Vec::new();
        for v in self.all()? {
            let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
                filters
                    .get(key)
                    .is_none_or(|vals| vals.iter().any(|x| pred(x)))
            };
            let keep = any("driver", &|d| d == v.driver)
                && any("name", &|n| v.name.contains(n))
                && labels_match(&v.labels, filters.get("label"))
                && dangling.is_none_or(|d| d == self.users(&v.name).is_empty());
            if keep {
                out.push(self.to_json(&v, false));
            }
        }
        Ok(out)
    }

    /// Every volume with its usage, for `system df`.
    pub fn usage(&self) -> Result<Vec<Value>, VolumeError> {
        Ok(self.all()?.iter().map(|v| self.to_json(v, true)).collect())
    }

    pub fn prune(&self, filters: &Filters, scope: PruneScope) -> Result<Value, VolumeError> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "label" | "label!") {
                return Err(VolumeError::Invalid(format!("invalid filter '{k}'")));
            }
        }
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.all()? {
            let wanted = (scope == PruneScope::All || v.is_anonymous())
                && labels_match(&v.labels, filters.get("label"))
                && filters.get("label!").is_none_or(|ls| {
                    ls.iter()
                        .all(|l| !labels_match(&v.labels, Some(&vec![l.clone()])))
                });
            if !wanted || !self.users(&v.name).is_empty() {
                continue;
            }
            let size = self.size(&v.name).max(0) as u64;
            match self.remove(&v.name, false) {
                Ok(()) => {
                    reclaimed += size;
                    deleted.push(v.name.clone());
                }
                Err(e) => tracing::warn!(volume = %v.name, error = %e, "prune volume"),
            }
        }
        Ok(json!({
            // `[]` when nothing went, as dockerd answers (its other prunes say `null`).
            "VolumesDeleted": deleted,
            "SpaceReclaimed": reclaimed,
        }))
    }

    /// A running container starts using the volume: the first one mounts the driver's
    /// filesystem on `_data`. Returns `_data`.
    pub fn attach(
        &self,
        name: &str,
        container_id: &str,
        destination: &str,
        rw: bool,
    ) -> Result<PathBuf, VolumeError> {
        let data = self.hold(name, container_id)?;
        self.emit(
            "mount",
            name,
            &[
                ("container", container_id.to_owned()),
                ("destination", destination.to_owned()),
                ("propagation", String::new()),
                ("read/write", rw.to_string()),
            ],
        );
        Ok(data)
    }

    /// `holder` (a running container, or an archive call on a stopped one) uses the volume:
    /// the first user mounts the driver's filesystem on `_data`. No event. Returns `_data`.
    pub fn hold(&self, name: &str, holder: &str) -> Result<PathBuf, VolumeError> {
        let v = self.get(name)?;
        let data = self.data_path(name);
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        let users = running.entry(name.to_owned()).or_default();
        if users.is_empty() {
            let made = std::fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
                what: "create",
                path: data.display().to_string(),
                source,
            });
            let mounted = made.and_then(|()| match local::parse(&v.options)? {
                Some(m) if !local::is_mounted(&data) => local::mount(&m, &data),
                _ => Ok(()),
            });
            if let Err(e) = mounted {
                running.remove(name);
                return Err(e);
            }
        }
        users.insert(holder.to_owned());
        Ok(data)
    }

    /// A container stopped using the volume: the last one unmounts `_data`.
    pub fn detach(&self, name: &str, container_id: &str) {
        let Some(last) = self.release(name, container_id) else {
            return;
        };
        tracing::debug!(volume = name, container_id, last, "volume detached");
        self.emit("unmount", name, &[("container", container_id.to_owned())]);
    }

    /// `holder` no longer uses the volume; the last user unmounts `_data`. `None` when it
    /// was not a user, else whether it was the last.
    pub fn release(&self, name: &str, holder: &str) -> Option<bool> {
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        let users = running.get_mut(name)?;
        if !users.remove(holder) {
            return None;
        }
        let last = users.is_empty();
        if last {
            running.remove(name);
            let data = self.data_path(name);
            if self.get(name).is_ok_and(|v| !v.options.is_empty()) {
                if let Err(e) = local::unmount(&data) {
                    tracing::warn!(volume = name, error = %e, "unmount volume");
                }
            }
        }
        Some(last)
    }

    /// At daemon start, a container found running counts as a user again (its volume's
    /// filesystem is mounted if it no longer is).
    pub fn adopt(&self, name: &str, container_id: &str) {
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        let users = running.entry(name.to_owned()).or_default();
        if users.is_empty() {
            let data = self.data_path(name);
            if let Ok(Some(m)) = self.get(name).and_then(|v| local::parse(&v.options)) {
                if !local::is_mounted(&data) {
                    if let Err(e) = local::mount(&m, &data) {
                        tracing::warn!(volume = name, error = %e, "remount volume");
                    }
                }
            }
        }
        users.insert(container_id.to_owned());
    }

    /// At daemon start, after `adopt`: unmounts `_data` of volumes nothing runs with (left
    /// mounted by a daemon that died).
    pub fn sweep_mounts(&self) {
        let Ok(all) = self.all() else {
            return;
        };
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        for v in all {
            let data = self.data_path(&v.name);
            if !v.options.is_empty() && !running.contains_key(&v.name) && local::is_mounted(&data) {
                if let Err(e) = local::unmount(&data) {
                    tracing::warn!(volume = %v.name, error = %e, "unmount stale volume");
                }
            }
        }
    }
}

fn parse_bool(v: &str, key: &str) -> Result<bool, VolumeError> {
    match v {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        _ => Err(VolumeError::Invalid(format!(
            "invalid filter '{key}={v}': expected true or false"
        ))),
    }
}

/// `label=key` or `label=key=value`, all of them must match.
fn labels_match(labels: &BTreeMap<String, String>, wanted: Option<&Vec<String>>) -> bool {
    wanted.is_none_or(|ls| {
        ls.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Volumes) {
        let d = tempfile::tempdir().expect("tmp");
        let meta = Arc::new(MetaStore::open(&d.path().join("m.redb")).expect("meta"));
        let v = Volumes::new(d.path().join("volumes"), meta, Events::new()).expect("volumes");
        (d, v)
    }

    fn filters(kv: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in kv {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        f
    }

    #[test]
    fn names_follow_the_local_driver() {
        assert!(validate_name("v1").is_ok());
        assert!(validate_name("my_vol.2-x").is_ok());
        assert!(validate_name("a").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a/b").is_err_and(|e| e.to_string().contains("absolute path")));
    }

    #[test]
    fn create_is_idempotent_and_survives_reopen() {
        let (d, vols) = store();
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let (v, made) = vols
            .create("v1", "", BTreeMap::new(), labels.clone())
            .expect("create");
        assert!(made);
        assert!(vols.data_path("v1").is_dir());
        let (again, made) = vols
            .create("v1", "local", BTreeMap::new(), BTreeMap::new())
            .expect("again");
        assert!(!made);
        assert_eq!(again, v);
        assert!(vols
            .create("v2", "nfs-plugin", BTreeMap::new(), BTreeMap::new())
            .is_err_and(|e| e.to_string().contains("nfs-plugin")));
        assert!(vols
            .create(
                "v3",
                "",
                BTreeMap::from([("bogus".into(), "x".into())]),
                BTreeMap::new()
            )
            .is_err_and(|e| matches!(e, VolumeError::Invalid(_))));
        assert!(vols.get("v3").is_err(), "a refused create leaves nothing");
        drop(vols);
        let meta = Arc::new(MetaStore::open(&d.path().join("m.redb")).expect("meta"));
        let vols = Volumes::new(d.path().join("volumes"), meta, Events::new()).expect("reopen");
        assert_eq!(vols.get("v1").expect("kept").labels, labels);
    }

    #[test]
    fn in_use_volumes_are_kept() {
        let (_d, vols) = store();
        vols.create("busy", "", BTreeMap::new(), BTreeMap::new())
            .expect("create");
        vols.set_users(Arc::new(|n: &str| {
            if n == "busy" {
                vec!["c1".into(), "c2".into()]
            } else {
                vec![]
            }
        }));
        let err = vols.remove("busy", true).expect_err("in use");
        assert_eq!(err.to_string(), "remove busy: volume is in use - [c1 c2]");
        assert!(matches!(err, VolumeError::Conflict(_)));
        assert_eq!(
            vols.remove("nope", false).expect_err("missing").to_string(),
            "get nope: no such volume"
        );
        assert!(vols.remove("nope", true).is_ok());
    }

    #[test]
    fn list_filters_and_prune_scope() {
        let (_d, vols) = store();
        let anon = BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
        let (a, _) = vols
            .create("", "", BTreeMap::new(), anon)
            .expect("anonymous");
        vols.create(
            "named",
            "",
            BTreeMap::new(),
            BTreeMap::from([("team".into(), "x".into())]),
        )
        .expect("named");
        vols.create("used", "", BTreeMap::new(), BTreeMap::new())
            .expect("used");
        vols.set_users(Arc::new(|n: &str| {
            if n == "used" {
                vec!["c".into()]
            } else {
                vec![]
            }
        }));
        let names = |f: &[(&str, &str)]| -> Vec<String> {
            vols.list(&filters(f))
                .expect("list")
                .iter()
                .map(|v| v["Name"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        assert_eq!(names(&[("name", "name")]), vec!["named"]);
        assert_eq!(names(&[("label", "team=x")]), vec!["named"]);
        assert_eq!(names(&[("dangling", "false")]), vec!["used"]);
        assert_eq!(names(&[("dangling", "true")]).len(), 2);
        assert!(vols.list(&filters(&[("colour", "x")])).is_err());
        let out = vols
            .prune(&Filters::new(), PruneScope::Anonymous)
            .expect("prune");
        assert_eq!(out["VolumesDeleted"], json!([a.name]));
        let out = vols.prune(&Filters::new(), PruneScope::All).expect("prune");
        assert_eq!(out["VolumesDeleted"], json!(["named"]));
        assert!(vols.get("used").is_ok());
        // Nothing left to remove: an empty list, as dockerd answers, not null.
        let out = vols.prune(&Filters::new(), PruneScope::All).expect("prune");
        assert_eq!(out["VolumesDeleted"], json!([]));
    }
}
