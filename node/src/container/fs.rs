//! The container's file system from outside: `cp` (archive stat/get/put), `export`, and
//! `diff` (changes), all resolved inside the container's root so symlinks cannot escape it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::backend::{BodyStream, ByteStream, PathStat};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{fsview, ContainerError, Containers, Ctr};
use crate::fsroot::{self, Last, Root};
use crate::image::ImageStore;

/// Go's `os.FileMode` bits, which `X-Docker-Container-Path-Stat` carries, from `st_mode`.
fn go_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Resolves `path` inside the container's root without following its last component,
/// and describes what is there as `X-Docker-Container-Path-Stat` does.
fn stat_of(root: &Root, path: &str) -> Result<(OwnedFd, PathStat), ContainerError> {
    let not_found =
        || ContainerError::NotFound(format!("Could not find the file {path} in container"));
    let fd = root.resolve(path, Last::NoFollow).map_err(|e| {
        if e.errno() == Some(libc::ELOOP) {
            ContainerError::Invalid(format!("too many levels of symbolic links in {path}"))
        } else {
            not_found()
        }
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|_| not_found())?;
    let is_link = fsroot::tree::Kind::of(&st) == fsroot::tree::Kind::Symlink;
    let link_target = if is_link {
        nix::fcntl::readlinkat(&fd, "")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime =
        chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32).unwrap_or_default();
    let mode = go_mode(st.st_mode);
    Ok((
        fd,
        PathStat {
            name,
            size: st.st_size,
            mode,
            mtime: mtime.to_rfc3339(),
            link_target,
        },
    ))
}

/// A `Write` that sends what it is given as chunks of a byte stream.
struct ChanWriter(mpsc::Sender<Bytes>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a tar of the tree at `top` (an fd inside a container's root), its entries named
/// under `name` (`.`: the contents themselves), into `tx` as it goes.
fn write_tar(top: &OwnedFd, name: &str, tx: mpsc::Sender<Bytes>) {
    let mut b = tar::Builder::new(ChanWriter(tx));
    match fsroot::tree::append_tree(&mut b, top, Path::new(name)) {
        Ok(()) => {
            let _ = b.finish();
        }
        Err(e) => tracing::debug!(error = %e, "archive of a container path stopped"),
    }
}

/// A tar of the tree at `top`, written on a blocking thread while `guard` is held.
fn tar_stream(top: OwnedFd, name: String, guard: Option<RootfsGuard>) -> ByteStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let name = if name.is_empty() {
            ".".to_owned()
        } else {
            name
        };
        write_tar(&top, &name, tx);
    });
    ByteStream {
        tty: false,
        stream: super::logs::tokio_stream_from(rx),
    }
}

/// Releases a view's guard (on the host: volumes, then the rootfs mount) once its thread,
/// and with it its mount namespace, has ended.
fn release_after(thread: std::thread::JoinHandle<()>, guard: ViewGuard) {
    tokio::task::spawn_blocking(move || {
        let _ = thread.join();
        drop(guard);
    });
}

/// What an archive view holds on the host; released when dropped.
struct ViewGuard {
    rootfs: Option<RootfsGuard>,
    volumes: crate::volume::Volumes,
    holder: String,
    held: Vec<String>,
}

impl Drop for ViewGuard {
    fn drop(&mut self) {
        for name in &self.held {
            self.volumes.release(name, &self.holder);
        }
        drop(self.rootfs.take());
    }
}

fn open_root(merged: &Path) -> Result<Root, ContainerError> {
    Root::open(merged).map_err(ContainerError::internal)
}

/// Keeps a stopped container's rootfs mounted while it is read; unmounts when dropped.
pub struct RootfsGuard(Option<(Arc<dyn ImageStore>, PathBuf)>);

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Some((images, p)) = self.0.take() {
            let _ = images.unmount_rootfs(&p);
        }
    }
}

impl Containers {
    /// The container's merged root, mounting it if the container is not running.
    fn rootfs(&self, c: &Ctr) -> Result<(PathBuf, RootfsGuard), ContainerError> {
        let paths = self.paths(&c.id);
        let merged = paths.merged();
        if c.is_running() {
            return Ok((merged, RootfsGuard(None)));
        }
        let image = self
            .inner
            .images
            .resolve(&c.record().image_id)
            .map_err(|e| ContainerError::internal_with(berth_common::errors::cause_chain(&e), e))?;
        let _ = self.inner.images.unmount_rootfs(&merged);
        for d in [paths.upper(), paths.work(), merged.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| ContainerError::io("create", &d, e))?;
        }
        // As `launch` mounts it (a `--rm` container's overlay is volatile).
        let volatile = c.record().host_config.auto_remove;
        self.inner
            .images
            .mount_rootfs(
                &paths.lowers(&image.layer_dirs, c.record().host_config.init == Some(true))?,
                &paths.upper(),
                &paths.work(),
                &merged,
                volatile,
            )
            .map_err(|e| ContainerError::Runtime(format!("mount rootfs: {e}")))?;
        Ok((
            merged.clone(),
            RootfsGuard(Some((self.inner.images.clone(), merged))),
        ))
    }

    /// What the archive view of `c` needs, prepared on the host: the rootfs mounted when the
    /// container is not running, its volumes held, missing `-v` bind sources made.
    fn view_plan(&self, c: &Ctr) -> Result<(fsview::ViewPlan, ViewGuard), ContainerError> {
        let (merged, rootfs) = self.rootfs(c)?;
        let rec = c.record();
        let mut guard = ViewGuard {
            rootfs: Some(rootfs),
            volumes: self.inner.volumes.clone(),
            holder: format!("archive:{}:{:x}", c.id, rand::random::<u64>()),
            held: Vec::new(),
        };
        let mut mounts = Vec::new();
        for m in &rec.mounts {
            match m.kind.as_str() {
                "volume" => {
                    let data = guard
                        .volumes
                        .hold(&m.name, &guard.holder)
                        .map_err(super::mounts::volume_error)?;
                    guard.held.push(m.name.clone());
                    let mut vm = fsview::ViewMount::of(m);
                    vm.source = data;
                    mounts.push(vm);
                }
                "bind" => {
                    let src = Path::new(&m.source);
                    if m.create_source && !src.exists() {
                        std::fs::create_dir_all(src)
                            .map_err(|e| ContainerError::io("create bind source", src, e))?;
                    }
                    if src.exists() {
                        mounts.push(fsview::ViewMount::of(m));
                    }
                }
                _ => {}
            }
        }
        let plan = fsview::ViewPlan {
            merged,
            stage: self.inner.cfg.exec_root.join("archive-stage"),
            readonly_rootfs: rec.host_config.readonly_rootfs,
            mounts,
        };
        Ok((plan, guard))
    }

    /// Runs `work` in the archive view of the container `key` and returns its result; the
    /// view is gone and the guard released when this returns.
    async fn in_view<T, F>(&self, key: &str, work: F) -> Result<T, ContainerError>
    where
        T: Send + 'static,
        F: FnOnce(&fsview::View) -> Result<T, ContainerError> + Send + 'static,
    {
        let c = self.get(key)?;
        let (plan, guard) = self.view_plan(&c)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = fsview::spawn(plan, move |view| {
            let _ = tx.send(view.and_then(|v| work(&v)));
        })?;
        let res = rx.await.map_err(|e| {
            ContainerError::internal_with(format!("archive view ended early: {e}"), e)
        })?;
        release_after(thread, guard);
        res
    }

    pub async fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat, ContainerError> {
        let path = path.to_owned();
        self.in_view(key, move |v| Ok(stat_of(&v.root, &path)?.1))
            .await
    }

    pub async fn archive_get(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream), ContainerError> {
        let c = self.get(key)?;
        let (plan, guard) = self.view_plan(&c)?;
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel(16);
        let path = path.to_owned();
        // The tar is written inside the view (its volumes exist only there), so the thread
        // lives until the tar ends or the client goes away.
        let thread = fsview::spawn(plan, move |view| {
            match view.and_then(|v| stat_of(&v.root, &path)) {
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                }
                Ok((fd, stat)) => {
                    // `path/.` copies the directory's contents, not the directory.
                    let name = if path.ends_with("/.") {
                        ".".to_owned()
                    } else {
                        stat.name.clone()
                    };
                    if stat_tx.send(Ok(stat)).is_ok() {
                        write_tar(&fd, &name, tx);
                    }
                }
            }
        })?;
        let res = stat_rx.await.map_err(|e| {
            ContainerError::internal_with(format!("archive view ended early: {e}"), e)
        });
        release_after(thread, guard);
        let stat = res??;
        let stream = ByteStream {
            tty: false,
            stream: super::logs::tokio_stream_from(rx),
        };
        Ok((stat, stream))
    }

    pub async fn archive_put(
        &self,
        key: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: BodyStream,
    ) -> Result<(), ContainerError> {
        let reader = tokio_util::io::StreamReader::new(body.map_err(std::io::Error::other));
        let sync = tokio_util::io::SyncIoBridge::new(reader);
        let path = path.to_owned();
        self.in_view(key, move |v| {
            let not_found =
                || ContainerError::NotFound(format!("Could not find the file {path} in container"));
            let dir = v
                .root
                .resolve(&path, Last::Follow)
                .map_err(|_| not_found())?;
            let st = nix::sys::stat::fstat(&dir).map_err(|_| not_found())?;
            if fsroot::tree::Kind::of(&st) != fsroot::tree::Kind::Dir {
                return Err(ContainerError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            // Decided where the files would land: a read-only root still takes files into
            // a writable volume, a read-only volume none.
            v.check_writable(&dir)?;
            // Every entry is resolved again inside the root (the destination too), so a
            // directory the container swaps for a symlink meanwhile leads nowhere outside.
            let opts = fsroot::write::Options {
                chown: copy_uid_gid,
                no_overwrite_dir_non_dir,
                parent_mode: 0o755,
                parent_owner: None,
                xattrs: false,
            };
            fsroot::write::extract_tar(&v.root, &path, sync, opts).map_err(|e| {
                if e.source.kind() == std::io::ErrorKind::InvalidInput {
                    ContainerError::Invalid(e.to_string())
                } else {
                    ContainerError::internal(e)
                }
            })
        })
        .await
    }

    pub async fn export(&self, key: &str) -> Result<ByteStream, ContainerError> {
        let c = self.get(key)?;
        let (root, guard) = self.rootfs(&c)?;
        let top = open_root(&root)?
            .dir("/")
            .map_err(ContainerError::internal)?;
        self.emit(&c, "export", &[]);
        Ok(tar_stream(top, String::new(), Some(guard)))
    }

    pub async fn changes(&self, key: &str) -> Result<Value, ContainerError> {
        let c = self.get(key)?;
        let paths = self.paths(&c.id);
        let upper = paths.upper();
        let image_layers = self
            .inner
            .images
            .resolve(&c.record().image_id)
            .map(|i| i.layer_dirs)
            .unwrap_or_default();
        let lowers = paths.lowers(&image_layers, c.record().host_config.init == Some(true))?;
        let mut out = Vec::new();
        walk_changes(&upper, &lowers, &mut out);
        out.sort_by(|a: &Value, b: &Value| a["Path"].as_str().cmp(&b["Path"].as_str()));
        Ok(if out.is_empty() {
            Value::Null
        } else {
            json!(out)
        })
    }
}

/// What differs in `upper` from the `lowers` below it, as `diff` lists it (0 changed,
/// 1 added, 2 deleted). The upper dir is walked through fds and the lowers are asked inside
/// their own roots, so nothing the container planted there leads to the host.
fn walk_changes(upper: &Path, lowers: &[PathBuf], out: &mut Vec<Value>) {
    let Ok(top) = Root::open(upper).and_then(|r| r.dir("/")) else {
        return;
    };
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let res = fsroot::tree::walk(&top, &mut |n| {
        if n.rel.as_os_str().is_empty() {
            return Ok(true);
        }
        let rel = n.rel.to_string_lossy();
        let kind = n.kind();
        let code = if kind == fsroot::tree::Kind::Char && n.stat.st_rdev == 0 {
            2
        } else if lowers.iter().any(|l| l.stat(&rel, Last::NoFollow).is_ok()) {
            0
        } else {
            1
        };
        out.push(json!({ "Path": format!("/{rel}"), "Kind": code }));
        Ok(kind == fsroot::tree::Kind::Dir && code != 2)
    });
    if let Err(e) = res {
        tracing::debug!(error = %e, "listing a container's changes");
    }
}

/// Bytes used by a directory tree (files only, hard links once), 0 if unreadable.
pub fn dir_size(root: &Path) -> u64 {
    crate::image::dir_size(root).unwrap_or(0)
}
