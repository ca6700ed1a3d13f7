//! A container's file system as the container sees it — its root with its volumes and binds
//! mounted on it — for the archive calls (`cp`, `GET`/`PUT`/`HEAD .../archive`), whatever the
//! container's state, as dockerd mounts a container's volumes for them.
//!
//! ```text
//!  async side (host mount namespace):  rootfs mounted if not running (RootfsGuard) ·
//!      volumes held (a driver's filesystem on `_data`) · missing `-v` bind sources made
//!  thread of its own:  unshare(CLONE_NEWNS) ─► `/` rprivate (nothing leaks back out)
//!      ─► tmpfs on <exec-root>/archive-stage ─► each source bound on a stage dir there
//!         (read-only ones remounted ro; a subpath resolved beneath its volume, by fd)
//!      ─► each stage bound on its destination, resolved inside the root (by fd,
//!         `/proc/self/fd/N`), parents before children; `ReadonlyRootfs`: the root bound ro
//!      ─► the caller's work (stat, tar, extract) ─► thread ends, the namespace with it
//! ```
//! Invariants: nothing is mounted in the host's namespace (a running container's own
//! namespace is never touched either); destinations are resolved inside the container's
//! root without following anything out of it; what a read-only mount forbids, the view
//! forbids too.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::mounts::{self, MountPoint};
use super::ContainerError;
use crate::fsroot::{Last, Root};

/// One mount of the view: a trusted host path (a volume's `_data`, a bind source).
#[derive(Debug, Clone)]
pub(crate) struct ViewMount {
    pub source: PathBuf,
    /// Docker's `VolumeOptions.Subpath`, resolved beneath `source`.
    pub subpath: String,
    pub destination: String,
    pub rw: bool,
}

impl ViewMount {
    pub fn of(m: &MountPoint) -> Self {
        ViewMount {
            source: PathBuf::from(&m.source),
            subpath: m.subpath.clone(),
            destination: m.destination.clone(),
            rw: m.rw,
        }
    }
}

/// What the view is made of.
pub(crate) struct ViewPlan {
    /// The container's mounted root file system (host path).
    pub merged: PathBuf,
    /// An empty host directory the view's private tmpfs of stage dirs goes on.
    pub stage: PathBuf,
    pub readonly_rootfs: bool,
    pub mounts: Vec<ViewMount>,
}

/// The view, inside the thread that made it.
pub(crate) struct View {
    pub root: Root,
    root_mount: Option<u64>,
}

impl View {
    /// Refuses writing at `fd` when the mount it is on is read-only, with dockerd's words.
    pub fn check_writable(&self, fd: &OwnedFd) -> Result<(), ContainerError> {
        let ro = nix::sys::statvfs::fstatvfs(fd)
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        if !ro {
            return Ok(());
        }
        let on_root = self.root_mount.is_some() && mount_id(fd) == self.root_mount;
        Err(ContainerError::Forbidden(if on_root {
            "container rootfs is marked read-only".into()
        } else {
            "mounted volume is marked read-only".into()
        }))
    }
}

/// Runs `work` on a thread of its own, in a private mount namespace holding the view of
/// `plan`. The thread ends (and the namespace with it) when `work` returns; join it before
/// unmounting what the plan's paths name.
pub(crate) fn spawn<F>(
    plan: ViewPlan,
    work: F,
) -> Result<std::thread::JoinHandle<()>, ContainerError>
where
    F: FnOnce(Result<View, ContainerError>) + Send + 'static,
{
    std::thread::Builder::new()
        .name("archive-view".into())
        .spawn(move || work(enter(&plan)))
        .map_err(|e| ContainerError::internal_with(format!("spawn the archive view: {e}"), e))
}

fn mount_err(what: &'static str, path: &Path, e: nix::errno::Errno) -> ContainerError {
    ContainerError::io(what, path, std::io::Error::from(e))
}

/// Makes the view in a new mount namespace of the calling thread.
fn enter(plan: &ViewPlan) -> Result<View, ContainerError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| mount_err("unshare the mount namespace for", &plan.merged, e))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| mount_err("make private", Path::new("/"), e))?;
    std::fs::create_dir_all(&plan.stage)
        .map_err(|e| ContainerError::io("create", &plan.stage, e))?;
    mount(
        Some("tmpfs"),
        &plan.stage,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=700,size=64k"),
    )
    .map_err(|e| mount_err("mount a tmpfs on", &plan.stage, e))?;
    let root = Root::open(&plan.merged).map_err(ContainerError::internal)?;
    let mut order: Vec<&ViewMount> = plan.mounts.iter().collect();
    order.sort_by_key(|m| mounts::depth(&m.destination));
    for (i, m) in order.into_iter().enumerate() {
        mount_one(&root, &plan.stage.join(i.to_string()), m)?;
    }
    // After the mounts, whose mount points may need making: the root bound on itself with
    // them, and only that top mount made read-only.
    let root = if plan.readonly_rootfs {
        bind(&plan.merged, &plan.merged, false)?;
        Root::open(&plan.merged).map_err(ContainerError::internal)?
    } else {
        root
    };
    let root_mount = mount_id(&root.dir("/").map_err(ContainerError::internal)?);
    Ok(View { root, root_mount })
}

/// Binds `src` on `dst` (recursively), read-only unless `rw`.
fn bind(src: &Path, dst: &Path, rw: bool) -> Result<(), ContainerError> {
    let none: Option<&str> = None;
    mount(
        Some(src),
        dst,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| mount_err("bind mount", dst, e))?;
    if !rw {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(none, dst, none, flags, none).map_err(|e| mount_err("remount read-only", dst, e))?;
    }
    Ok(())
}

/// Mounts one source on its destination in the root, through the stage dir `stage`.
fn mount_one(root: &Root, stage: &Path, m: &ViewMount) -> Result<(), ContainerError> {
    let sub_fd;
    let source = if m.subpath.is_empty() {
        m.source.clone()
    } else {
        sub_fd = resolve_subpath(&m.source, &m.subpath)?;
        Root::proc_path(&sub_fd)
    };
    let is_dir = std::fs::metadata(&source)
        .map_err(|e| ContainerError::io("stat", &source, e))?
        .is_dir();
    if is_dir {
        std::fs::create_dir(stage).map_err(|e| ContainerError::io("create", stage, e))?;
    } else {
        std::fs::File::create(stage).map_err(|e| ContainerError::io("create", stage, e))?;
    }
    bind(&source, stage, m.rw)?;
    let target = mount_point(root, &m.destination, is_dir)?;
    bind(stage, &Root::proc_path(&target), true)
}

/// The mount point of `dest` inside the root, made if missing (a directory, or an empty
/// file for a file source), as an `O_PATH` fd.
pub(crate) fn mount_point(
    root: &Root,
    dest: &str,
    is_dir: bool,
) -> Result<OwnedFd, ContainerError> {
    let fail = |e: crate::fsroot::RootError| ContainerError::Runtime(format!("mount point: {e}"));
    if is_dir {
        return Ok(root.mkdir_all(dest, 0o755, None).map_err(fail)?.0);
    }
    if let Ok(fd) = root.resolve(dest, Last::NoFollow) {
        return Ok(fd);
    }
    let (dir, name) = root.parent_create(dest, 0o755, None).map_err(fail)?;
    let flags = nix::fcntl::OFlag::O_CREAT
        | nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_RDONLY
        | nix::fcntl::OFlag::O_CLOEXEC;
    nix::fcntl::openat(
        &dir,
        name.as_os_str(),
        flags,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| ContainerError::Runtime(format!("mount point {dest}: {e}")))?;
    root.resolve(dest, Last::NoFollow).map_err(fail)
}

/// `subpath` inside the volume at `data`, never leaving it (moby's `safepath` rule and
/// messages): missing → 404 "cannot access path", escaping → 400.
pub(crate) fn resolve_subpath(data: &Path, subpath: &str) -> Result<OwnedFd, ContainerError> {
    let base = Root::open(data).map_err(ContainerError::internal)?;
    base.resolve_beneath(subpath).map_err(|e| {
        if matches!(e.errno(), Some(libc::EXDEV) | Some(libc::ELOOP)) {
            ContainerError::Invalid(format!(
                "path concatenation escapes the base directory, base: {}, subpath: {subpath}",
                data.display()
            ))
        } else {
            ContainerError::NotFound(format!(
                "cannot access path {}: {}",
                data.join(subpath).display(),
                e.source
            ))
        }
    })
}

/// The id of the mount `fd` is on (`mnt_id` of /proc's fdinfo, Linux ≥ 3.15).
fn mount_id(fd: &impl AsRawFd) -> Option<u64> {
    let path = format!("/proc/thread-self/fdinfo/{}", fd.as_raw_fd());
    let info = std::fs::read_to_string(path).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}
