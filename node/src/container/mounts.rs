//! A container's mounts: `HostConfig.Binds` (`-v`), `HostConfig.Mounts` (`--mount`),
//! `VolumesFrom`, and the anonymous volumes of `Config.Volumes` (`-v /path`, an image's
//! `VOLUME`). They are parsed and checked at create (bad specs are 400 and nothing is made),
//! named volumes are created implicitly, and the resolved list is stored in the container's
//! record so it stays stable. At start each volume is attached (mounting a `local` driver
//! filesystem for its first user) and filled from the image if empty (copy-up); at stop it
//! is detached.
//!
//! ```text
//!  create: parse(config, host, volumes-from) ─► resolve (create volumes) ─► Record.mounts
//!  start:  attach volumes · copy-up · mkdir -p missing `-v` bind sources ─► spec.rs mounts
//!  stop:   detach volumes (last user unmounts)      rm -v / --rm: remove anonymous volumes
//! ```

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::model::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ContainerError, Containers, Record};
use crate::volume::{self, VolumeError, ANONYMOUS_LABEL};

/// One mount of a container, as stored in its record and shown by inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Volume name (empty for binds and tmpfs; empty before create names an anonymous one).
    pub name: String,
    /// Host path: the bind source, or the volume's `_data`.
    pub source: String,
    pub destination: String,
    pub driver: String,
    /// The mode as given (`ro`, `z`, `rw,rshared`); Docker shows it in inspect.
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// Fill an empty volume with the image's content at the destination (not `nocopy`).
    pub copy_data: bool,
    /// Made for this container without a name: `rm -v` and `--rm` remove it.
    pub anonymous: bool,
    /// A `-v` bind whose missing source is created at start (a `--mount` bind must exist).
    pub create_source: bool,
    /// tmpfs data options (`size=…`, `mode=…`).
    pub tmpfs_options: Vec<String>,
    /// `VolumeOptions.Subpath` (API 1.45): the directory (or file) of the volume to mount,
    /// resolved beneath `_data` at each start (left out of the record when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    /// Labels and driver options for a volume created implicitly (`--mount volume-opt=…`).
    pub volume_labels: BTreeMap<String, String>,
    pub volume_options: BTreeMap<String, String>,
}

impl MountPoint {
    /// The `Mounts` entry of inspect and ps.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!(self.driver);
        }
        v
    }

    /// The entry of the OCI spec's `mounts`.
    pub fn to_spec(&self) -> Value {
        if self.kind == "tmpfs" {
            let mut o: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            o.extend(self.tmpfs_options.iter().cloned());
            if !self.rw {
                o.push("ro".into());
            }
            return json!({"destination": self.destination, "type": "tmpfs", "source": "tmpfs", "options": o});
        }
        let propagation = if self.propagation.is_empty() {
            "rprivate"
        } else {
            self.propagation.as_str()
        };
        let mut o = vec!["rbind", propagation];
        if !self.rw {
            o.push("ro");
        }
        json!({"destination": self.destination, "type": "bind", "source": self.source, "options": o})
    }
}

fn invalid(msg: String) -> ContainerError {
    ContainerError::Invalid(msg)
}

/// `/a/./b/` → `/a/b`; `None` unless absolute.
fn clean_abs(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The parsed mode of a `-v` spec.
#[derive(Debug, Default, PartialEq)]
struct Mode {
    rw: bool,
    propagation: String,
    nocopy: bool,
}

fn parse_mode(mode: &str) -> Option<Mode> {
    let mut m = Mode {
        rw: true,
        ..Default::default()
    };
    let (mut access, mut label, mut prop, mut copy) = (0, 0, 0, 0);
    for tok in mode.split(',').filter(|t| !t.is_empty()) {
        match tok {
            "ro" | "rw" => {
                access += 1;
                m.rw = tok == "rw";
            }
            "z" | "Z" => label += 1,
            "nocopy" => {
                copy += 1;
                m.nocopy = true;
            }
            p if PROPAGATIONS.contains(&p) => {
                prop += 1;
                m.propagation = p.to_owned();
            }
            _ => return None,
        }
    }
    (access <= 1 && label <= 1 && prop <= 1 && copy <= 1).then_some(m)
}

fn check_destination(spec: &str, kind: &str, dst: &str) -> Result<String, ContainerError> {
    let Some(clean) = clean_abs(dst) else {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    };
    if clean == "/" {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
        )));
    }
    Ok(clean)
}

/// One `HostConfig.Binds` entry: `name:/ctr[:mode]`, `/host:/ctr[:mode]` or `/ctr`.
pub fn parse_bind(spec: &str) -> Result<MountPoint, ContainerError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || invalid(format!("invalid volume specification: '{spec}'"));
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(bad()),
    };
    if dst.is_empty() || (parts.len() > 1 && src.is_empty()) {
        return Err(bad());
    }
    let is_bind = src.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    let destination = check_destination(spec, kind, dst)?;
    let m = parse_mode(mode).ok_or_else(|| {
        invalid(format!(
            "invalid volume specification: '{spec}': invalid mode: {mode}"
        ))
    })?;
    if is_bind {
        if m.nocopy {
            return Err(invalid(format!(
                "invalid volume specification: '{spec}': invalid mode: {mode}: nocopy applies to volumes only"
            )));
        }
        return Ok(MountPoint {
            kind: "bind".into(),
            source: clean_abs(src).unwrap_or_else(|| src.to_owned()),
            destination,
            mode: mode.to_owned(),
            rw: m.rw,
            propagation: if m.propagation.is_empty() {
                "rprivate".into()
            } else {
                m.propagation
            },
            create_source: true,
            ..Default::default()
        });
    }
    if !m.propagation.is_empty() {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mode: {mode}: propagation applies to bind mounts only"
        )));
    }
    if !src.is_empty() {
        volume::validate_name(src).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(MountPoint {
        kind: "volume".into(),
        name: src.to_owned(),
        destination,
        driver: "local".into(),
        mode: if mode.is_empty() && !src.is_empty() {
            "z".into()
        } else {
            mode.to_owned()
        },
        rw: m.rw,
        copy_data: !m.nocopy,
        anonymous: src.is_empty(),
        ..Default::default()
    })
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// One `HostConfig.Mounts` entry (`--mount type=bind|volume|tmpfs,...`).
pub fn parse_mount(m: &Value) -> Result<MountPoint, ContainerError> {
    let kind = m["Type"].as_str().unwrap_or("");
    let fail = |what: String| invalid(format!("invalid mount config for type \"{kind}\": {what}"));
    let target = m["Target"].as_str().unwrap_or("");
    let source = m["Source"].as_str().unwrap_or("");
    if target.is_empty() {
        return Err(fail("field Target must not be empty".into()));
    }
    let destination = clean_abs(target).ok_or_else(|| {
        fail(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ))
    })?;
    if destination == "/" {
        return Err(fail(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    let rw = !m["ReadOnly"].as_bool().unwrap_or(false);
    let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    for (k, allowed) in [
        ("BindOptions", "bind"),
        ("VolumeOptions", "volume"),
        ("TmpfsOptions", "tmpfs"),
    ] {
        if has(k) && kind != allowed {
            return Err(fail(format!("field {k} must not be specified")));
        }
    }
    let base = MountPoint {
        destination,
        rw,
        ..Default::default()
    };
    match kind {
        "bind" => bind_mount(m, source, base, fail),
        "volume" => volume_mount(m, source, base, fail),
        "tmpfs" => tmpfs_mount(m, source, base, fail),
        "" => Err(invalid(
            "invalid mount config: mount type must be one of bind, volume, tmpfs".into(),
        )),
        _ => Err(fail("mount type unknown".into())),
    }
}

/// `type=bind`: an absolute source that exists (unless `CreateMountpoint`), and a known
/// propagation mode.
fn bind_mount(
    m: &Value,
    source: &str,
    base: MountPoint,
    fail: impl Fn(String) -> ContainerError,
) -> Result<MountPoint, ContainerError> {
    if source.is_empty() {
        return Err(fail("field Source must not be empty".into()));
    }
    let src = clean_abs(source).ok_or_else(|| {
        fail(format!(
            "invalid mount path: '{source}' mount path must be absolute"
        ))
    })?;
    let create = m["BindOptions"]["CreateMountpoint"]
        .as_bool()
        .unwrap_or(false);
    if !create && !Path::new(&src).exists() {
        return Err(fail(format!("bind source path does not exist: {src}")));
    }
    let propagation = m["BindOptions"]["Propagation"].as_str().unwrap_or("");
    if !propagation.is_empty() && !PROPAGATIONS.contains(&propagation) {
        return Err(fail(format!("invalid propagation mode: {propagation}")));
    }
    Ok(MountPoint {
        kind: "bind".into(),
        source: src,
        propagation: if propagation.is_empty() {
            "rprivate".into()
        } else {
            propagation.to_owned()
        },
        create_source: create,
        ..base
    })
}

/// `type=volume`: a named volume (or an anonymous one without a source) of the local
/// driver, with its labels and driver options checked now.
fn volume_mount(
    m: &Value,
    source: &str,
    base: MountPoint,
    fail: impl Fn(String) -> ContainerError,
) -> Result<MountPoint, ContainerError> {
    if !source.is_empty() {
        volume::validate_name(source).map_err(|e| fail(e.to_string()))?;
    }
    let opts = &m["VolumeOptions"];
    let driver = opts["DriverConfig"]["Name"].as_str().unwrap_or("");
    if !driver.is_empty() && driver != "local" {
        return Err(ContainerError::NotFound(format!(
            "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    let mut labels = str_map(&opts["Labels"]);
    if source.is_empty() {
        labels.insert(ANONYMOUS_LABEL.into(), String::new());
    }
    let options = str_map(&opts["DriverConfig"]["Options"]);
    volume::local::parse(&options).map_err(|e| fail(e.to_string()))?;
    let subpath = opts["Subpath"].as_str().unwrap_or("");
    if !subpath.is_empty() {
        if source.is_empty() {
            return Err(fail(
                "must not set Subpath when using anonymous volumes".into(),
            ));
        }
        if !is_local(subpath) {
            return Err(fail(
                "subpath must be a relative path within the volume".into(),
            ));
        }
    }
    Ok(MountPoint {
        subpath: subpath.to_owned(),
        kind: "volume".into(),
        name: source.to_owned(),
        driver: "local".into(),
        mode: "z".into(),
        copy_data: !opts["NoCopy"].as_bool().unwrap_or(false),
        anonymous: source.is_empty(),
        volume_labels: labels,
        volume_options: options,
        ..base
    })
}

/// Go's `filepath.IsLocal`: relative, and never above its base when read lexically.
fn is_local(p: &str) -> bool {
    if p.starts_with('/') {
        return false;
    }
    let mut depth = 0usize;
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// `type=tmpfs`: no source; size and mode become mount options.
fn tmpfs_mount(
    m: &Value,
    source: &str,
    base: MountPoint,
    fail: impl Fn(String) -> ContainerError,
) -> Result<MountPoint, ContainerError> {
    if !source.is_empty() {
        return Err(fail("field Source must not be specified".into()));
    }
    let mut opts = Vec::new();
    match m["TmpfsOptions"]["SizeBytes"].as_i64() {
        Some(s) if s < 0 => return Err(fail(format!("invalid tmpfs size {s}"))),
        Some(s) if s > 0 => opts.push(format!("size={s}")),
        _ => {}
    }
    if let Some(mode) = m["TmpfsOptions"]["Mode"].as_u64().filter(|m| *m != 0) {
        opts.push(format!("mode={mode:o}"));
    }
    Ok(MountPoint {
        kind: "tmpfs".into(),
        tmpfs_options: opts,
        ..base
    })
}

/// `VolumesFrom` entry `id[:ro|rw]` → (container, Some(rw) when a mode was given).
pub fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>), ContainerError> {
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((id, "ro")) => Ok((id, Some(false))),
        Some((id, "rw")) => Ok((id, Some(true))),
        Some((_, mode)) => Err(invalid(format!(
            "invalid mode for volumes-from: {mode}: expected ro or rw"
        ))),
    }
}

/// Every mount of a new container, checked, in Docker's precedence: volumes-from, then
/// binds, then `--mount`, then anonymous volumes for `Config.Volumes` paths not yet covered.
/// `from` yields the mounts of a `--volumes-from` container.
pub fn parse_all(
    config: &ContainerConfig,
    host: &HostConfig,
    from: &dyn Fn(&str) -> Result<Vec<MountPoint>, ContainerError>,
) -> Result<Vec<MountPoint>, ContainerError> {
    let mut out: Vec<MountPoint> = Vec::new();
    for spec in &host.volumes_from {
        let (id, rw) = parse_volumes_from(spec)?;
        for mut m in from(id)? {
            if let Some(rw) = rw {
                m.rw = rw;
                m.mode = if rw { "rw".into() } else { "ro".into() };
            }
            m.anonymous = false;
            m.copy_data = false;
            out.retain(|o| o.destination != m.destination);
            out.push(m);
        }
    }
    let dup = |d: &str| invalid(format!("Duplicate mount point: {d}"));
    let mut own: Vec<MountPoint> = Vec::new();
    for spec in &host.binds {
        let m = parse_bind(spec)?;
        if own.iter().any(|o| o.destination == m.destination) {
            return Err(dup(&m.destination));
        }
        own.push(m);
    }
    for raw in &host.mounts {
        let m = parse_mount(raw)?;
        if own.iter().any(|o| o.destination == m.destination) {
            return Err(dup(&m.destination));
        }
        own.push(m);
    }
    for dest in host.tmpfs.keys() {
        if let Some(clean) = clean_abs(dest) {
            if own.iter().any(|o| o.destination == clean) {
                return Err(dup(&clean));
            }
        }
    }
    out.retain(|o| !own.iter().any(|m| m.destination == o.destination));
    out.extend(own);
    for dest in config.volumes.iter().flat_map(|v| v.keys()) {
        let clean = check_destination(dest, "volume", dest)?;
        let covered = out.iter().any(|o| o.destination == clean)
            || host
                .tmpfs
                .keys()
                .any(|t| clean_abs(t).as_deref() == Some(&clean));
        if !covered {
            out.push(MountPoint {
                kind: "volume".into(),
                destination: clean,
                driver: "local".into(),
                rw: true,
                copy_data: true,
                anonymous: true,
                ..Default::default()
            });
        }
    }
    for m in out.iter_mut().filter(|m| m.anonymous) {
        m.volume_labels
            .insert(ANONYMOUS_LABEL.into(), String::new());
    }
    Ok(out)
}

/// Path depth, so parents mount before their children.
pub fn depth(dest: &str) -> usize {
    dest.split('/').filter(|s| !s.is_empty()).count()
}

impl Containers {
    /// The checked mounts of a new container; nothing is created yet.
    pub(crate) fn plan_mounts(
        &self,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<Vec<MountPoint>, ContainerError> {
        parse_all(config, host, &|id| Ok(self.get(id)?.record().mounts))
    }

    /// Creates (or finds) the volumes of planned mounts and fills in their names and paths;
    /// returns the names of the volumes it created. On error, those are removed again.
    pub(crate) fn resolve_mounts(
        &self,
        mounts: &mut [MountPoint],
    ) -> Result<Vec<String>, ContainerError> {
        let vols = &self.inner.volumes;
        let mut made = Vec::new();
        for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
            let res = vols.create(
                &m.name,
                "local",
                std::mem::take(&mut m.volume_options),
                std::mem::take(&mut m.volume_labels),
            );
            match res {
                Ok((v, created)) => {
                    if created {
                        made.push(v.name.clone());
                    }
                    m.source = vols.data_path(&v.name).display().to_string();
                    m.name = v.name;
                }
                Err(e) => {
                    for n in made {
                        let _ = vols.remove(&n, true);
                    }
                    return Err(volume_error(e));
                }
            }
        }
        Ok(made)
    }

    /// Removes the volumes `resolve_mounts` made, when their container is not made after all.
    pub(crate) fn unresolve_mounts(&self, made: &[String]) {
        for n in made {
            let _ = self.inner.volumes.remove(n, true);
        }
    }

    /// Ids of the containers (running or not) with a mount of the volume.
    pub fn users_of_volume(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all()
            .into_iter()
            .filter(|c| {
                c.record()
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// At start, with the rootfs mounted at `rootfs`: attaches the volumes (copy-up into the
    /// empty ones, at a mount's first start only, as Docker copies once per container),
    /// stages the subpaths of volumes (see [`stage_subpath`]) and creates missing `-v` bind
    /// sources. Returns the staged sources by index in `rec.mounts`, for the runtime spec. On
    /// error nothing stays attached or staged.
    pub(crate) fn attach_mounts(
        &self,
        rec: &Record,
        rootfs: &crate::fsroot::Root,
    ) -> Result<Vec<(usize, String)>, ContainerError> {
        let mut attached = Vec::new();
        let mut copied = Vec::new();
        let mut staged = Vec::new();
        let run = self.paths(&rec.id).run;
        let res = (|| {
            for (i, m) in rec.mounts.iter().enumerate() {
                match m.kind.as_str() {
                    "volume" => {
                        let data = self
                            .inner
                            .volumes
                            .attach(&m.name, &rec.id, &m.destination, m.rw)
                            .map_err(volume_error)?;
                        attached.push(m.name.clone());
                        let sub = if m.subpath.is_empty() {
                            None
                        } else {
                            Some(super::fsview::resolve_subpath(&data, &m.subpath)?)
                        };
                        let src = sub.as_ref().map_or(data, crate::fsroot::Root::proc_path);
                        // The mount point (a file for a file subpath), made inside the root as
                        // Docker makes it (following the image's symlinks in scope), so the
                        // runtime finds it there.
                        super::fsview::mount_point(rootfs, &m.destination, src.is_dir())?;
                        if m.copy_data && src.is_dir() {
                            if volume::copy::is_empty(&src) {
                                // Resolved inside the root: an image's `/evil -> /host/dir`
                                // and `VOLUME /evil/x` copy the image's /host/dir/x, if any.
                                volume::copy::copy_up(rootfs, &m.destination, &src)
                                    .map_err(volume_error)?;
                            }
                            copied.push(m.destination.clone());
                        }
                        if let Some(fd) = &sub {
                            staged.push((i, stage_subpath(&run, i, fd)?));
                        }
                    }
                    "bind" if m.create_source && !Path::new(&m.source).exists() => {
                        std::fs::create_dir_all(&m.source)
                            .map_err(|e| ContainerError::io("create bind source", &m.source, e))?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            for n in attached {
                self.inner.volumes.detach(&n, &rec.id);
            }
            unstage_subpaths(&run);
            return Err(e);
        }
        if !copied.is_empty() {
            if let Ok(c) = self.get(&rec.id) {
                c.update(|r| {
                    for m in r.mounts.iter_mut() {
                        if copied.contains(&m.destination) {
                            m.copy_data = false;
                        }
                    }
                });
                self.persist(&c)?;
            }
        }
        Ok(staged)
    }

    /// At stop: the container no longer uses its volumes.
    pub(crate) fn detach_mounts(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            self.inner.volumes.detach(&m.name, &rec.id);
        }
    }

    /// At daemon start: running containers count as their volumes' users again.
    pub fn adopt_volumes(&self) {
        for c in self.all() {
            let rec = c.record();
            if matches!(rec.state.status.as_str(), "running" | "paused") {
                for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                    self.inner.volumes.adopt(&m.name, &rec.id);
                }
            }
        }
    }

    /// `rm -v` and `--rm`: removes a removed container's anonymous volumes, unless another
    /// container still uses them (`--volumes-from`).
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        for m in rec
            .mounts
            .iter()
            .filter(|m| m.anonymous && m.kind == "volume")
        {
            match self.inner.volumes.remove(&m.name, true) {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(container_id = %rec.id, volume = %m.name, error = %e, "keep anonymous volume")
                }
            }
        }
    }
}

/// Where the resolved subpaths of a container's volumes are staged for its runtime.
fn stage_dir(run: &Path) -> std::path::PathBuf {
    run.join("subpaths")
}

/// Binds the subpath `fd` (resolved beneath its volume, so nothing the volume holds can
/// redirect it) on `<run>/subpaths/<index>`, the source the runtime then mounts: the runtime
/// is handed a path, and this one is ours. Unstaged once the runtime has made its mounts.
fn stage_subpath(
    run: &Path,
    index: usize,
    fd: &std::os::fd::OwnedFd,
) -> Result<String, ContainerError> {
    let dir = stage_dir(run);
    std::fs::create_dir_all(&dir).map_err(|e| ContainerError::io("create", &dir, e))?;
    let stage = dir.join(index.to_string());
    let src = crate::fsroot::Root::proc_path(fd);
    let made = if src.is_dir() {
        std::fs::create_dir(&stage)
    } else {
        std::fs::File::create(&stage).map(drop)
    };
    made.map_err(|e| ContainerError::io("create", &stage, e))?;
    let none: Option<&str> = None;
    nix::mount::mount(Some(&src), &stage, none, nix::mount::MsFlags::MS_BIND, none)
        .map_err(|e| ContainerError::io("bind mount", &stage, e.into()))?;
    Ok(stage.display().to_string())
}

/// Unmounts and removes the staged subpaths of a container (none staged: nothing to do).
pub(crate) fn unstage_subpaths(run: &Path) {
    let dir = stage_dir(run);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&p).or_else(|_| std::fs::remove_file(&p));
    }
    let _ = std::fs::remove_dir(&dir);
}

pub(crate) fn volume_error(e: VolumeError) -> ContainerError {
    match e {
        VolumeError::Invalid(m) => ContainerError::Invalid(m),
        VolumeError::Conflict(m) => ContainerError::Conflict(m),
        VolumeError::NotFound(_) | VolumeError::NoDriver(_) => {
            ContainerError::NotFound(e.to_string())
        }
        e => ContainerError::internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_of_volumes_and_host_paths() {
        let v = parse_bind("data:/var/lib/x:ro").expect("volume");
        assert_eq!(
            (v.kind.as_str(), v.name.as_str(), v.destination.as_str()),
            ("volume", "data", "/var/lib/x")
        );
        assert!(!v.rw && v.copy_data && !v.anonymous);
        let v = parse_bind("data:/x:nocopy").expect("nocopy");
        assert!(v.rw && !v.copy_data);
        assert_eq!(parse_bind("data:/x").expect("z").mode, "z");
        let b = parse_bind("/tmp/./a/:/y/:rw,rshared").expect("bind");
        assert_eq!(
            (b.kind.as_str(), b.source.as_str(), b.destination.as_str()),
            ("bind", "/tmp/a", "/y")
        );
        assert_eq!(b.propagation, "rshared");
        assert!(b.rw && b.create_source);
        assert_eq!(
            parse_bind("/h:/c:Z").expect("label").propagation,
            "rprivate"
        );
        let a = parse_bind("/anon").expect("anonymous");
        assert!(a.anonymous && a.name.is_empty());
    }

    #[test]
    fn bad_binds_are_400_with_the_spec() {
        for (spec, says) in [
            ("v:/x:rx", "invalid mode: rx"),
            ("v:/x:ro,rw", "invalid mode"),
            ("v:rel", "must be absolute"),
            ("/h:/", "destination can't be '/'"),
            ("a:b:c:d", "invalid volume specification"),
            ("bad/name:/x", "invalid characters"),
            ("/h:/c:nocopy", "nocopy"),
            ("v:/c:rshared", "propagation"),
            (":/x", "invalid volume specification"),
        ] {
            let e = parse_bind(spec).expect_err(spec);
            assert!(matches!(e, ContainerError::Invalid(_)), "{spec}");
            assert!(e.to_string().contains(says), "{spec}: {e}");
        }
    }

    #[test]
    fn mount_objects() {
        let dir = tempfile::tempdir().expect("tmp");
        let src = dir.path().display().to_string();
        let b = parse_mount(
            &json!({"Type": "bind", "Source": src, "Target": "/b", "ReadOnly": true,
            "BindOptions": {"Propagation": "rslave"}}),
        )
        .expect("bind");
        assert!(!b.rw && !b.create_source);
        assert_eq!(b.propagation, "rslave");
        let e =
            parse_mount(&json!({"Type": "bind", "Source": "/nonexistent-berth", "Target": "/b"}))
                .expect_err("missing source");
        assert_eq!(
            e.to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"
        );
        let v = parse_mount(&json!({"Type": "volume", "Source": "v1", "Target": "/d",
            "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"},
              "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}))
        .expect("volume");
        assert!(!v.copy_data && v.rw);
        assert_eq!(v.volume_labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(v.volume_options.len(), 2);
        let t = parse_mount(&json!({"Type": "tmpfs", "Target": "/t",
            "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}}))
        .expect("tmpfs");
        assert_eq!(t.tmpfs_options, vec!["size=1048576", "mode=700"]);
        assert!(parse_mount(&json!({"Type": "tmpfs", "Source": "x", "Target": "/t"})).is_err());
        let sub = parse_mount(&json!({"Type": "volume", "Source": "v1", "Target": "/d",
            "VolumeOptions": {"Subpath": "a/../b/c"}}))
        .expect("subpath");
        assert_eq!(sub.subpath, "a/../b/c");
        for (bad, says) in [
            (
                json!({"Type": "volume", "Source": "v1", "Target": "/d",
                "VolumeOptions": {"Subpath": "../../etc"}}),
                "subpath must be a relative path",
            ),
            (
                json!({"Type": "volume", "Source": "v1", "Target": "/d",
                "VolumeOptions": {"Subpath": "/etc"}}),
                "subpath must be a relative path",
            ),
            (
                json!({"Type": "volume", "Target": "/d",
                "VolumeOptions": {"Subpath": "x"}}),
                "anonymous volumes",
            ),
        ] {
            let e = parse_mount(&bad).expect_err(says);
            assert!(e.to_string().contains(says), "{e}");
        }
        assert!(
            parse_mount(&json!({"Type": "volume", "Target": "/t", "BindOptions": {}})).is_err()
        );
        assert!(parse_mount(&json!({"Type": "npipe", "Target": "/t"})).is_err());
        assert!(parse_mount(&json!({"Type": "volume", "Source": "vv",
            "VolumeOptions": {"DriverConfig": {"Options": {"bogus": "1"}}}, "Target": "/t"}))
        .is_err_and(|e| e.to_string().contains("bogus")));
    }

    #[test]
    fn precedence_duplicates_and_anonymous_volumes() {
        let config = ContainerConfig {
            volumes: Some(BTreeMap::from([
                ("/data".to_string(), json!({})),
                ("/logs".to_string(), json!({})),
                ("/t".to_string(), json!({})),
            ])),
            ..Default::default()
        };
        let host = HostConfig {
            binds: vec!["named:/data".into(), "/h:/shared/sub".into()],
            volumes_from: vec!["other:ro".into()],
            tmpfs: BTreeMap::from([("/t".to_string(), String::new())]),
            ..Default::default()
        };
        let from = |id: &str| -> Result<Vec<MountPoint>, ContainerError> {
            assert_eq!(id, "other");
            Ok(vec![
                MountPoint {
                    kind: "volume".into(),
                    name: "theirs".into(),
                    destination: "/shared".into(),
                    rw: true,
                    anonymous: true,
                    ..Default::default()
                },
                MountPoint {
                    kind: "volume".into(),
                    name: "over".into(),
                    destination: "/data".into(),
                    ..Default::default()
                },
            ])
        };
        let ms = parse_all(&config, &host, &from).expect("parse");
        let dests: Vec<&str> = ms.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, vec!["/shared", "/data", "/shared/sub", "/logs"]);
        let shared = &ms[0];
        assert!(!shared.rw && !shared.anonymous && shared.mode == "ro");
        assert_eq!(ms[1].name, "named", "a bind replaces a volumes-from mount");
        assert!(ms[3].anonymous && ms[3].volume_labels.contains_key(ANONYMOUS_LABEL));
        let dup = HostConfig {
            binds: vec!["a1:/x".into(), "/h:/x".into()],
            ..Default::default()
        };
        assert!(parse_all(&ContainerConfig::default(), &dup, &from)
            .is_err_and(|e| e.to_string() == "Duplicate mount point: /x"));
        assert!(parse_volumes_from("c:rx").is_err());
    }

    #[test]
    fn spec_entries() {
        let ro = parse_bind("/h:/c:ro").expect("bind");
        assert_eq!(
            ro.to_spec(),
            json!({"destination": "/c", "type": "bind", "source": "/h", "options": ["rbind", "rprivate", "ro"]})
        );
        let j = ro.to_json();
        assert_eq!(j["Type"], "bind");
        assert!(j.get("Name").is_none());
        assert_eq!(depth("/a/b/"), 2);
    }
}
