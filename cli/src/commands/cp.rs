//! `cp` between the local filesystem and a container, through the archive endpoints:
//!
//! ```text
//! into:  HEAD /containers/{c}/archive?path=DEST (stat or 404) → tar of SRC, top entry renamed
//!        as the destination requires → PUT /containers/{c}/archive?path=<dir>&noOverwriteDirNonDir=true
//! out:   GET /containers/{c}/archive?path=SRC (tar + X-Docker-Container-Path-Stat) → entries
//!        renamed and unpacked under DEST (or the raw tar to stdout for `-`)
//! ```
//! Tars are streamed: built or unpacked on a blocking thread connected through a pipe/channel.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use berth_common::models::PathStat;
use bytes::Bytes;
use clap::Args;
use hyper::Method;

use crate::client::{seg, Body, Client, Query};
use crate::error::StatusError;
use crate::format::human_size;
use crate::tty;

/// `berth cp`
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or a local path (or -)
    #[arg(value_name = "SRC")]
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path (or -)
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
pub enum CpPath {
    Local(String),
    Container(String, String),
}

/// Splits `container:path`; absolute and `.`-relative paths are always local.
pub fn split_cp_arg(arg: &str) -> CpPath {
    if arg.starts_with('/') || arg.starts_with('.') {
        return CpPath::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => CpPath::Container(c.to_string(), p.to_string()),
        _ => CpPath::Local(arg.to_string()),
    }
}

/// Reads the stat the daemon sends in `X-Docker-Container-Path-Stat` (base64 JSON).
pub fn stat_from_header(h: &str) -> Result<PathStat> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h.trim()))
        .context("decoding container path stat")?;
    serde_json::from_slice(&raw).context("decoding container path stat")
}

/// Whether a path asks for a directory's contents (`dir/.`).
fn wants_contents(p: &str) -> bool {
    p.ends_with("/.") || p == "."
}

fn base_name(p: &str) -> String {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    Path::new(trimmed)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| trimmed.to_string())
}

fn dir_name(p: &str) -> String {
    let trimmed = p.trim_end_matches('/');
    match Path::new(trimmed).parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_string_lossy().to_string(),
        _ if trimmed.starts_with('/') => "/".to_string(),
        _ => ".".to_string(),
    }
}

/// Where to extract inside the container and under which name the source goes.
#[derive(Debug, PartialEq, Eq)]
pub struct CopyPlan {
    pub extract_dir: String,
    /// The name of the archive's top entry; empty means "the source's contents".
    pub top_name: String,
}

/// Decides how a local source lands at `dest` given the destination's stat (`None` = missing).
pub fn plan_copy_in(
    src: &str,
    src_is_dir: bool,
    dest: &str,
    dest_stat: Option<&PathStat>,
) -> Result<CopyPlan, String> {
    let contents = src_is_dir && wants_contents(src);
    match dest_stat {
        Some(st) if st.is_dir() => Ok(CopyPlan {
            extract_dir: dest.to_string(),
            top_name: if contents {
                String::new()
            } else {
                base_name(src)
            },
        }),
        Some(_) => {
            if src_is_dir {
                return Err(format!("cannot copy directory to file: {dest}"));
            }
            Ok(CopyPlan {
                extract_dir: dir_name(dest),
                top_name: base_name(dest),
            })
        }
        None => {
            if dest.ends_with('/') && !src_is_dir {
                return Err(format!(
                    "destination \"{dest}\" does not exist and is not a directory"
                ));
            }
            Ok(CopyPlan {
                extract_dir: dir_name(dest),
                top_name: base_name(dest),
            })
        }
    }
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<()> {
    match (split_cp_arg(&args.src), split_cp_arg(&args.dest)) {
        (CpPath::Container(c, p), CpPath::Local(d)) => copy_out(client, &args, &c, &p, &d).await,
        (CpPath::Local(s), CpPath::Container(c, p)) => copy_in(client, &args, &s, &c, &p).await,
        (CpPath::Container(..), CpPath::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (CpPath::Local(..), CpPath::Local(..)) => {
            bail!("must specify at least one container source")
        }
    }
}

async fn stat_in_container(
    client: &Client,
    container: &str,
    path: &str,
) -> Result<Option<PathStat>> {
    let q = Query::new()
        .add("path", path)
        .to_path(&format!("/containers/{}/archive", seg(container)));
    let resp = client.request(Method::HEAD, &q, Body::Empty, &[]).await?;
    if resp.status.as_u16() == 404 {
        // A HEAD reply has no body: tell a missing container from a missing path.
        client
            .get(&format!("/containers/{}/json", seg(container)))
            .await?;
        return Ok(None);
    }
    let resp = resp.ok().await?;
    match resp.header("X-Docker-Container-Path-Stat") {
        Some(h) => Ok(Some(stat_from_header(h)?)),
        None => Ok(Some(PathStat::default())),
    }
}

async fn copy_in(
    client: &Client,
    args: &CpArgs,
    src: &str,
    container: &str,
    dest: &str,
) -> Result<()> {
    let dest = if dest.is_empty() {
        "/".to_string()
    } else {
        dest.to_string()
    };
    let dest_stat = stat_in_container(client, container, &dest).await?;
    let mut q = Query::new();
    q.add("noOverwriteDirNonDir", "true");
    q.flag("copyUIDGID", args.archive);
    if src == "-" {
        if !dest_stat.as_ref().is_some_and(PathStat::is_dir) {
            bail!("destination \"{container}:{dest}\" must be a directory");
        }
        q.add("path", &dest);
        let body = Body::from_reader(std::io::stdin(), "application/x-tar");
        let path = q.to_path(&format!("/containers/{}/archive", seg(container)));
        client
            .request(Method::PUT, &path, body, &[])
            .await?
            .ok()
            .await?;
        return Ok(());
    }
    let meta = if args.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| {
        let abs = std::path::absolute(src).unwrap_or_else(|_| PathBuf::from(src));
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        anyhow!("lstat {}: {reason}", abs.display())
    })?;
    let plan =
        plan_copy_in(src, meta.is_dir(), &dest, dest_stat.as_ref()).map_err(anyhow::Error::msg)?;
    q.add("path", &plan.extract_dir);
    let (reader, counter) = tar_source(
        PathBuf::from(src),
        plan.top_name.clone(),
        meta.is_dir(),
        args.follow_link,
    )?;
    let body = Body::from_reader(reader, "application/x-tar");
    let path = q.to_path(&format!("/containers/{}/archive", seg(container)));
    client
        .request(Method::PUT, &path, body, &[])
        .await?
        .ok()
        .await?;
    if !args.quiet && tty::stderr_is_tty() {
        let n = counter.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "Successfully copied {} to {container}:{dest}",
            human_size(n as f64)
        );
    }
    Ok(())
}

type Counter = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// Builds the tar of `src` on a thread, returning the read end of a pipe carrying it.
fn tar_source(
    src: PathBuf,
    top: String,
    is_dir: bool,
    follow: bool,
) -> Result<(std::fs::File, Counter)> {
    let (r, w) = nix::unistd::pipe().context("creating pipe")?;
    let reader = std::fs::File::from(r);
    let writer = std::fs::File::from(w);
    let counter: Counter = Default::default();
    let count = counter.clone();
    std::thread::spawn(move || {
        let mut b = tar::Builder::new(CountingWriter {
            inner: writer,
            count,
        });
        b.follow_symlinks(follow);
        let res = if is_dir {
            let name = if top.is_empty() { ".".to_string() } else { top };
            b.append_dir_all(&name, &src)
        } else {
            b.append_path_with_name(&src, &top)
        };
        if let Err(e) = res.and_then(|_| b.finish()) {
            eprintln!("berth: archiving {}: {e}", src.display());
        }
    });
    Ok((reader, counter))
}

struct CountingWriter {
    inner: std::fs::File,
    count: Counter,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

async fn copy_out(
    client: &Client,
    args: &CpArgs,
    container: &str,
    src: &str,
    dest: &str,
) -> Result<()> {
    let src = if src.is_empty() { "/" } else { src };
    let mut src_path = src.to_string();
    let q = |p: &str| {
        Query::new()
            .add("path", p)
            .to_path(&format!("/containers/{}/archive", seg(container)))
    };
    let mut resp = client
        .request(Method::GET, &q(&src_path), Body::Empty, &[])
        .await?
        .ok()
        .await?;
    let mut stat = resp
        .header("X-Docker-Container-Path-Stat")
        .map(stat_from_header)
        .transpose()?
        .unwrap_or_default();
    if args.follow_link && !stat.link_target.is_empty() {
        src_path = stat.link_target.clone();
        resp = client
            .request(Method::GET, &q(&src_path), Body::Empty, &[])
            .await?
            .ok()
            .await?;
        stat = resp
            .header("X-Docker-Container-Path-Stat")
            .map(stat_from_header)
            .transpose()?
            .unwrap_or_default();
    }
    if dest == "-" {
        return crate::commands::transfer::write_body(resp, None).await;
    }
    let name = if stat.name.is_empty() {
        base_name(&src_path)
    } else {
        stat.name.clone()
    };
    let (target_dir, new_name) = plan_copy_out(src, stat.is_dir(), dest)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(8);
    let extract = tokio::task::spawn_blocking(move || {
        extract_renamed(ChannelReader::new(rx), &target_dir, &name, &new_name)
    });
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        total += chunk.len() as u64;
        if tx.send(chunk).is_err() {
            break;
        }
    }
    drop(tx);
    extract
        .await
        .map_err(|e| anyhow!("extract task failed: {e}"))??;
    if !args.quiet && tty::stderr_is_tty() {
        eprintln!("Successfully copied {} to {dest}", human_size(total as f64));
    }
    Ok(())
}

/// Where a container source lands locally: (directory to unpack into, new top-level name;
/// empty = the source's contents).
pub fn plan_copy_out(src: &str, src_is_dir: bool, dest: &str) -> Result<(PathBuf, String)> {
    let contents = src_is_dir && wants_contents(src);
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => {
            let name = if contents {
                String::new()
            } else {
                base_name(src)
            };
            Ok((PathBuf::from(dest), name))
        }
        Ok(_) => {
            if src_is_dir {
                bail!("cannot copy a directory to a file: {dest}");
            }
            Ok((PathBuf::from(dir_name(dest)), base_name(dest)))
        }
        Err(_) => {
            if dest.ends_with('/') && !src_is_dir {
                bail!("destination directory \"{dest}\" does not exist");
            }
            let parent = dir_name(dest);
            if !Path::new(&parent).is_dir() {
                return Err(StatusError::new(
                    1,
                    format!("destination directory \"{parent}\" does not exist"),
                )
                .into());
            }
            Ok((PathBuf::from(parent), base_name(dest)))
        }
    }
}

/// Maps an archive entry path `old_top/rest` to `new_top/rest`; `None` for unsafe paths.
pub fn rename_entry(path: &Path, old_top: &str, new_top: &str) -> Option<PathBuf> {
    let mut comps = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => comps.push(s.to_os_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if comps.is_empty() {
        return Some(PathBuf::from(new_top));
    }
    let mut out = PathBuf::new();
    let rest = if comps[0] == std::ffi::OsStr::new(old_top) {
        if !new_top.is_empty() {
            out.push(new_top);
        }
        &comps[1..]
    } else {
        &comps[..]
    };
    for c in rest {
        out.push(c);
    }
    Some(out)
}

fn extract_renamed<R: Read>(reader: R, dir: &Path, old_top: &str, new_top: &str) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries().context("reading archive")? {
        let mut entry = entry.context("reading archive")?;
        let path = entry.path().context("reading archive")?.to_path_buf();
        let Some(rel) = rename_entry(&path, old_top, new_top) else {
            bail!("refusing to extract unsafe path {}", path.display());
        };
        let target = dir.join(&rel);
        if rel.as_os_str().is_empty() {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if entry.header().entry_type().is_dir() && target.is_dir() {
            continue;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("extracting {}", target.display()))?;
    }
    Ok(())
}

/// A blocking `Read` over chunks sent from async code.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.current = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_stat() -> PathStat {
        PathStat {
            name: "tmp".into(),
            size: 0,
            mode: (1 << 31) | 0o755,
            link_target: String::new(),
            ..PathStat::default()
        }
    }

    fn file_stat() -> PathStat {
        PathStat {
            name: "h".into(),
            size: 3,
            mode: 0o644,
            link_target: String::new(),
            ..PathStat::default()
        }
    }

    #[test]
    fn cp_args() {
        assert_eq!(
            split_cp_arg("cpc:/h"),
            CpPath::Container("cpc".into(), "/h".into())
        );
        assert_eq!(
            split_cp_arg("/etc/hostname"),
            CpPath::Local("/etc/hostname".into())
        );
        assert_eq!(split_cp_arg("./a:b"), CpPath::Local("./a:b".into()));
        assert_eq!(split_cp_arg("file"), CpPath::Local("file".into()));
        assert_eq!(split_cp_arg("-"), CpPath::Local("-".into()));
    }

    #[test]
    fn stat_header() {
        let s = stat_from_header("eyJuYW1lIjoiaCIsInNpemUiOjMsIm1vZGUiOjQ5MywibXRpbWUiOiIyMDI2LTExLTI3VDIyOjE0OjMwWiIsImxpbmtUYXJnZXQiOiIifQ==").expect("stat");
        assert_eq!(s.name, "h");
        assert_eq!(s.size, 3);
        assert!(!s.is_dir());
    }

    #[test]
    fn plans_into_container() {
        // Captured: `cp /etc/hostname cpc:/h` with /h missing → extract at / as "h".
        assert_eq!(
            plan_copy_in("/etc/hostname", false, "/h", None),
            Ok(CopyPlan {
                extract_dir: "/".into(),
                top_name: "h".into()
            })
        );
        assert_eq!(
            plan_copy_in("/etc/hostname", false, "/tmp", Some(&dir_stat())),
            Ok(CopyPlan {
                extract_dir: "/tmp".into(),
                top_name: "hostname".into()
            })
        );
        assert_eq!(
            plan_copy_in("/etc/hostname", false, "/h", Some(&file_stat())),
            Ok(CopyPlan {
                extract_dir: "/".into(),
                top_name: "h".into()
            })
        );
        assert_eq!(
            plan_copy_in("/some/dir/.", true, "/tmp", Some(&dir_stat())),
            Ok(CopyPlan {
                extract_dir: "/tmp".into(),
                top_name: String::new()
            })
        );
        assert!(plan_copy_in("/some/dir", true, "/h", Some(&file_stat())).is_err());
        assert!(plan_copy_in("/etc/hostname", false, "/nodir/", None).is_err());
    }

    #[test]
    fn entry_renaming() {
        assert_eq!(
            rename_entry(Path::new("h"), "h", "h.out"),
            Some(PathBuf::from("h.out"))
        );
        assert_eq!(
            rename_entry(Path::new("dir/a/b"), "dir", "new"),
            Some(PathBuf::from("new/a/b"))
        );
        assert_eq!(
            rename_entry(Path::new("dir/a"), "dir", ""),
            Some(PathBuf::from("a"))
        );
        assert_eq!(rename_entry(Path::new("../etc/passwd"), "x", "y"), None);
        assert_eq!(rename_entry(Path::new("/abs"), "x", "y"), None);
    }

    #[test]
    fn roundtrip_extract() {
        let dir = std::env::temp_dir().join(format!("berth-cp-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut data = Vec::new();
        {
            let mut b = tar::Builder::new(&mut data);
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "h", &b"vm\n"[..]).expect("append");
            b.finish().expect("finish");
        }
        extract_renamed(&data[..], &dir, "h", "h.out").expect("extract");
        assert_eq!(std::fs::read(dir.join("h.out")).expect("read"), b"vm\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
