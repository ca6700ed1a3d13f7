//! `docker pull`: manifest → platform → config → layers, downloaded in parallel, each checked
//! against its digest while it streams and unpacked while it downloads.
//!
//! ```text
//!  start_pull: reference, session, manifest, config       (failures here are HTTP statuses)
//!  run_pull:   per layer not yet stored, at most N at once:
//!     socket ─► async task ─chunks─► writer thread: append to content/ingest/<hex>, sha256
//!                                      │ (file grows)
//!                                      ▼
//!                                unpacker thread: TailReader ─► unpack_layer (tmp/images)
//!     download complete → digest checked → ingest file renamed into the store → the tail
//!     reader sees EOF only now, so nothing unverified is ever unpacked to completion
//!  register: layers + config + tag + repo digest in one step, then `Digest:` and `Status:`.
//! ```
//! A download cut short (crash, kill -9, network) leaves `content/ingest/<hex>`; the next pull
//! hashes that prefix and asks for the rest with `Range`. A blob whose digest does not match
//! is deleted and the pull fails; no layer from it is registered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::image::digest::{chain_id, Digest};
use crate::image::error::ImageError;
use crate::image::reference::{Reference, DEFAULT_TAG};
use crate::image::service::{ImageService, NewImage, PendingLayer};
use crate::image::store::blobs::BlobRecord;
use crate::image::store::config::ImageConfig;
use crate::image::store::manifest::{self, Fetched, ImageManifest};
use crate::image::store::unpack::Unpacked;
use crate::image::transfer::progress::Progress;
use crate::image::transfer::registry::{Credentials, RegistryError, Session};
use berth_common::errors::cause_chain;

/// Everything resolved before the progress stream starts.
pub(crate) struct PullPlan {
    reference: Reference,
    session: Session,
    manifest: ImageManifest,
    manifest_digest: Digest,
    config: Vec<u8>,
    diff_ids: Vec<Digest>,
}

/// `fromImage` + `tag` → the reference to pull (`latest` when neither names a tag or digest).
pub(crate) fn pull_reference(from: &str, tag: Option<&str>) -> Result<Reference, ImageError> {
    let r = Reference::parse(from)?;
    match tag.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => r.with_digest(t),
        Some(t) => r.with_tag(t),
        None if r.tag().is_none() && r.digest().is_none() => r.with_tag(DEFAULT_TAG),
        None => Ok(r),
    }
}

/// Whether `POST /images/create` asks for every tag: no `tag` and a bare repository name
/// (what `docker pull --all-tags` sends; a plain `docker pull` always sends a tag).
pub(crate) fn wants_all_tags(from: &str, tag: Option<&str>) -> bool {
    tag.is_none_or(|t| t.trim().is_empty())
        && Reference::parse(from).is_ok_and(|r| r.tag().is_none() && r.digest().is_none())
}

fn not_found(r: &Reference, e: RegistryError) -> ImageError {
    match e {
        RegistryError::NotFound(m) => {
            let detail = m.trim_start_matches("manifest not found: ");
            ImageError::RemoteNotFound(format!(
                "manifest for {} not found: {detail}",
                r.familiar()
            ))
        }
        // Docker answers a denied pull with 404: to an anonymous client a private repository
        // and a missing one look the same.
        RegistryError::Denied(m) => ImageError::RemoteNotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
            r.familiar_name()
        )),
        RegistryError::Unauthorized(m) => ImageError::Unauthorized(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
            r.familiar_name()
        )),
        e => e.into(),
    }
}

impl ImageService {
    /// `docker pull`: `name` with `tag`, or every tag of the repository when neither names
    /// one, for `platform`. Errors before the first byte (bad reference, unknown manifest,
    /// refused credentials) are returned; later ones end the progress stream.
    pub async fn pull(
        &self,
        name: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<Value>,
    ) -> Result<BoxStream<'static, Value>, ImageError> {
        let creds = Credentials::from_value(auth.as_ref());
        let plans = if wants_all_tags(name, tag) {
            let repo = Reference::parse(name)?;
            self.plan_pull_all(repo, platform, creds).await?
        } else {
            let reference = pull_reference(name, tag)?;
            vec![self.plan_pull(reference, platform, creds).await?]
        };
        Ok(self.run_pull(plans))
    }

    /// Resolves what to pull; every failure here is an HTTP status for the client.
    pub(crate) async fn plan_pull(
        &self,
        reference: Reference,
        platform: Option<&str>,
        creds: Option<Credentials>,
    ) -> Result<PullPlan, ImageError> {
        let want = manifest::parse_platform(platform)?;
        let dist = &self.inner.dist;
        let session = dist
            .registries
            .open(
                reference.domain(),
                reference.path(),
                creds.as_ref(),
                false,
                &[],
            )
            .await
            .map_err(|e| not_found(&reference, e))?;
        let wanted = reference
            .digest()
            .or(reference.tag())
            .unwrap_or(DEFAULT_TAG)
            .to_owned();
        let (mut bytes, mut ctype, digest) = session
            .manifest(&wanted)
            .await
            .map_err(|e| not_found(&reference, e))?;
        for _ in 0..2 {
            let Fetched::Index(index) = manifest::parse(&bytes, &ctype)? else {
                break;
            };
            let pick = manifest::select(&index, &want).ok_or_else(|| {
                let v = want
                    .variant
                    .as_deref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                ImageError::RemoteNotFound(format!(
                    "no matching manifest for {}/{}{v} in the manifest list entries",
                    want.os, want.architecture
                ))
            })?;
            (bytes, ctype, _) = session
                .manifest(&pick.digest)
                .await
                .map_err(|e| not_found(&reference, e))?;
            // The digest users see (Digest:, RepoDigests) stays the one of the index.
        }
        let Fetched::Image(m) = manifest::parse(&bytes, &ctype)? else {
            return Err(ImageError::Registry(
                "manifest lists are nested too deeply".into(),
            ));
        };
        let config_digest = Digest::parse(&m.config.digest)?;
        let config = session.blob_bytes(&config_digest).await?.to_vec();
        let parsed = ImageConfig::parse(&config, &config_digest.to_string())?;
        let diff_ids = parsed.rootfs.diff_ids.clone();
        if diff_ids.len() != m.layers.len() {
            return Err(ImageError::Registry(format!(
                "image {config_digest}: the config lists {} layers but the manifest {}",
                diff_ids.len(),
                m.layers.len()
            )));
        }
        Ok(PullPlan {
            reference,
            session,
            manifest: m,
            manifest_digest: digest,
            config,
            diff_ids,
        })
    }

    /// Plans a pull of every tag of a repository (`docker pull --all-tags`).
    pub(crate) async fn plan_pull_all(
        &self,
        repo: Reference,
        platform: Option<&str>,
        creds: Option<Credentials>,
    ) -> Result<Vec<PullPlan>, ImageError> {
        let session = self
            .inner
            .dist
            .registries
            .open(repo.domain(), repo.path(), creds.as_ref(), false, &[])
            .await
            .map_err(|e| not_found(&repo, e))?;
        let mut tags = session.tags().await.map_err(|e| match e {
            RegistryError::NotFound(m) => ImageError::RemoteNotFound(format!(
                "repository {} not found: {m}",
                repo.familiar_name()
            )),
            e => not_found(&repo, e),
        })?;
        if tags.is_empty() {
            return Err(ImageError::RemoteNotFound(format!(
                "repository {} has no tags",
                repo.familiar_name()
            )));
        }
        tags.sort();
        let mut plans = Vec::new();
        for t in tags {
            let r = repo.with_tag(&t)?;
            plans.push(self.plan_pull(r, platform, creds.clone()).await?);
        }
        Ok(plans)
    }

    /// Runs planned pulls one after the other, streaming Docker's progress messages.
    pub(crate) fn run_pull(&self, plans: Vec<PullPlan>) -> BoxStream<'static, Value> {
        let (progress, rx) = Progress::new();
        let svc = self.clone();
        tokio::spawn(async move {
            let progress = Arc::new(progress);
            for plan in plans {
                if let Err(e) = svc.pull_layers(plan, progress.clone()).await {
                    tracing::error!(error = %e, "pull failed");
                    progress.error(&cause_chain(&e));
                    return;
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
            .boxed()
    }

    async fn pull_layers(&self, plan: PullPlan, progress: Arc<Progress>) -> Result<(), ImageError> {
        let r = &plan.reference;
        let shown = r.digest().or(r.tag()).unwrap_or(DEFAULT_TAG).to_owned();
        progress.send(serde_json::json!({
            "status": format!("Pulling from {}", r.path()),
            "id": shown,
        }));
        let blobs: Vec<Digest> = plan
            .manifest
            .layers
            .iter()
            .map(|l| Digest::parse(&l.digest))
            .collect::<Result<_, _>>()?;
        let _active = self.inner.content.pin(&blobs);
        let id = Digest::of_bytes(&plan.config);
        let already = self.inner.records.get(&id.to_string())?.is_some();

        let mut chain: Vec<Digest> = Vec::new();
        let mut jobs = Vec::new();
        let session = Arc::new(plan.session);
        let limit = Arc::new(tokio::sync::Semaphore::new(self.inner.dist.max_downloads));
        for (i, (desc, diff)) in plan.manifest.layers.iter().zip(&plan.diff_ids).enumerate() {
            let parent = chain.last().cloned();
            let c = chain_id(parent.as_ref(), diff);
            chain.push(c.clone());
            let short = blobs[i].short().to_owned();
            if self.inner.layers.exists(&c) {
                progress.layer(&short, "Already exists");
                continue;
            }
            progress.layer(&short, "Pulling fs layer");
            let job = LayerJob {
                svc: self.clone(),
                session: session.clone(),
                progress: progress.clone(),
                blob: blobs[i].clone(),
                media_type: desc.media_type.clone(),
                size: desc.size,
                diff_id: diff.clone(),
                short,
                source: format!("{}/{}", session.host, session.repo),
            };
            let limit = limit.clone();
            jobs.push(async move {
                let permit = match limit.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        job.progress.layer(&job.short, "Waiting");
                        limit
                            .acquire_owned()
                            .await
                            .map_err(|_| ImageError::Internal("download limit closed".into()))?
                    }
                };
                let res = job.fetch().await;
                drop(permit);
                res.map(|u| (parent, u))
            });
        }
        // The first failure drops the other downloads (their unpackers see a cancelled tail).
        let pending: Vec<PendingLayer> = futures_util::future::try_join_all(jobs)
            .await?
            .into_iter()
            .map(|(parent, unpacked)| PendingLayer { unpacked, parent })
            .collect();
        let parsed = ImageConfig::parse(&plan.config, &id.to_string())?;
        let mut tags = Vec::new();
        if r.tag().is_some() {
            tags.push(r.clone());
        }
        let name = Reference::parse(&r.name())?;
        tags.push(name.with_digest(&plan.manifest_digest.to_string())?);
        let previous = match r.tag() {
            Some(_) => self.inner.records.target(r)?,
            None => None,
        };
        let image = NewImage {
            config: plan.config.clone(),
            id: id.clone(),
            chain,
            tags,
            created: parsed.created_time().map_or(0, |t| t.timestamp()),
        };
        let svc = self.clone();
        tokio::task::spawn_blocking(move || svc.register(pending, &[image]))
            .await
            .map_err(|e| ImageError::Internal(format!("register task: {e}")))??;
        progress.status(&format!("Digest: {}", plan.manifest_digest));
        let up_to_date = already && previous.as_deref() == Some(id.to_string().as_str());
        let familiar = r.familiar();
        progress.status(&if up_to_date {
            format!("Status: Image is up to date for {familiar}")
        } else {
            format!("Status: Downloaded newer image for {familiar}")
        });
        self.event("pull", &id.to_string(), &familiar);
        Ok(())
    }
}

/// One layer to fetch and unpack.
struct LayerJob {
    svc: ImageService,
    session: Arc<Session>,
    progress: Arc<Progress>,
    blob: Digest,
    media_type: String,
    size: u64,
    diff_id: Digest,
    short: String,
    source: String,
}

impl LayerJob {
    async fn fetch(&self) -> Result<Unpacked, ImageError> {
        let lock = self.svc.inner.dist.blob_lock(&self.blob);
        let _held = lock.lock().await;
        let unpacked = if self.svc.inner.content.exists(&self.blob) {
            self.progress.layer(&self.short, "Download complete");
            self.unpack_stored().await?
        } else {
            let resuming = self.svc.inner.dist.ingest.join(self.blob.hex()).exists();
            match self.download().await {
                // A partial blob from an earlier attempt that does not add up (it was
                // deleted by the check): fetch the whole blob once more.
                Err(ImageError::DigestMismatch { .. }) if resuming => {
                    tracing::warn!(blob = %self.blob, "resumed download did not verify; starting over");
                    self.download().await?
                }
                res => res?,
            }
        };
        if unpacked.blob_digest != self.blob {
            return Err(ImageError::DigestMismatch {
                what: format!("layer {}", self.short),
                expected: self.blob.to_string(),
                actual: unpacked.blob_digest.to_string(),
            });
        }
        if unpacked.diff_id != self.diff_id {
            return Err(ImageError::Registry(format!(
                "layer {}: invalid diffID: expected {}, got {}",
                self.blob, self.diff_id, unpacked.diff_id
            )));
        }
        self.svc.record_blob(
            &self.blob,
            BlobRecord {
                diff_id: self.diff_id.clone(),
                media_type: self.media_type.clone(),
                size: unpacked.blob_size,
                sources: vec![self.source.clone()],
            },
        )?;
        self.progress.layer(&self.short, "Pull complete");
        Ok(unpacked)
    }

    /// Unpacks a blob the store already has (an earlier, interrupted or concurrent pull).
    async fn unpack_stored(&self) -> Result<Unpacked, ImageError> {
        let path = self.svc.inner.content.path(&self.blob);
        let file = File::open(&path).map_err(ImageError::io("open", &path))?;
        let read = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: file,
            count: read.clone(),
        };
        let layers = self.svc.inner.layers.clone();
        let task = tokio::task::spawn_blocking(move || layers.unpack(counting));
        self.extracting(task, &read).await
    }

    /// Reports `Extracting` until the unpacker finishes.
    async fn extracting(
        &self,
        mut task: tokio::task::JoinHandle<Result<Unpacked, ImageError>>,
        read: &AtomicU64,
    ) -> Result<Unpacked, ImageError> {
        let total = self.size;
        loop {
            tokio::select! {
                res = &mut task => {
                    let un = res.map_err(|e| ImageError::Internal(format!("unpack task: {e}")))??;
                    self.progress.bytes(&self.short, "Extracting", total.max(1), total.max(1));
                    return Ok(un);
                }
                _ = tokio::time::sleep(Duration::from_millis(150)) => {
                    self.progress.bytes(&self.short, "Extracting", read.load(Ordering::Relaxed), total);
                }
            }
        }
    }

    async fn download(&self) -> Result<Unpacked, ImageError> {
        let ingest = self.svc.inner.dist.ingest.join(self.blob.hex());
        let mut have = fs::metadata(&ingest).map_or(0, |m| m.len());
        if self.size > 0 && have > self.size {
            have = 0;
        }
        let resp = self.session.blob(&self.blob, have).await?;
        if resp.offset == 0 {
            have = 0;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&ingest)
            .map_err(ImageError::io("open", &ingest))?;
        file.set_len(have)
            .and_then(|_| file.seek(io::SeekFrom::End(0)).map(|_| ()))
            .map_err(ImageError::io("truncate", &ingest))?;
        if have > 0 {
            tracing::info!(blob = %self.blob, offset = have, "resuming a partial download");
        }
        let tail = Arc::new(Tail::new(have));
        let finish = FinishOnDrop(tail.clone());
        let (tx, rx) = mpsc::channel::<bytes::Bytes>(64);
        let writer = {
            let (tail, path) = (tail.clone(), ingest.clone());
            tokio::task::spawn_blocking(move || write_blob(rx, file, &path, have, &tail))
        };
        let read = Arc::new(AtomicU64::new(0));
        let unpack = {
            let reader = TailReader {
                file: File::open(&ingest).map_err(ImageError::io("open", &ingest))?,
                pos: 0,
                tail: tail.clone(),
                count: read.clone(),
            };
            let layers = self.svc.inner.layers.clone();
            tokio::task::spawn_blocking(move || layers.unpack(reader))
        };
        let streamed = self.stream_body(resp.body, tx, have).await;
        let written = writer
            .await
            .map_err(|e| ImageError::Internal(format!("blob writer task: {e}")))?;
        let outcome = match (streamed, written) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(ImageError::io("write", &ingest)(e)),
            (Ok(()), Ok((hash, total))) => self.verify(&ingest, hash, total),
        };
        match outcome {
            Ok(()) => {
                self.progress.layer(&self.short, "Download complete");
                finish.ok();
                self.extracting(unpack, &read).await
            }
            Err(e) => {
                finish.fail(&e.to_string());
                let _ = unpack.await;
                Err(e)
            }
        }
    }

    /// Moves the response body to the writer thread, reporting `Downloading`.
    async fn stream_body(
        &self,
        mut body: hyper::body::Incoming,
        tx: mpsc::Sender<bytes::Bytes>,
        mut got: u64,
    ) -> Result<(), ImageError> {
        self.progress
            .bytes(&self.short, "Downloading", got, self.size);
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), body.frame())
                .await
                .map_err(|_| {
                    ImageError::Registry(format!(
                        "reading blob {} from {}: timed out",
                        self.blob, self.session.host
                    ))
                })?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| {
                ImageError::Registry(format!(
                    "reading blob {} from {}: {e}",
                    self.blob, self.session.host
                ))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            got += data.len() as u64;
            if self.size > 0 && got > self.size {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer {}", self.short),
                    expected: format!("{} ({} bytes)", self.blob, self.size),
                    actual: format!("more than {} bytes", self.size),
                });
            }
            if tx.send(data).await.is_err() {
                break; // the writer failed; its error is reported
            }
            self.progress
                .bytes(&self.short, "Downloading", got, self.size);
        }
        Ok(())
    }

    /// Checks the finished download and moves it into the content store.
    fn verify(&self, ingest: &Path, hash: Sha256, total: u64) -> Result<(), ImageError> {
        self.progress.layer(&self.short, "Verifying Checksum");
        if self.size > 0 && total < self.size {
            return Err(ImageError::Registry(format!(
                "blob {} from {}: unexpected EOF after {total} of {} bytes",
                self.blob, self.session.host, self.size
            )));
        }
        let actual = Digest::from_hasher(hash);
        if actual != self.blob {
            let _ = fs::remove_file(ingest);
            return Err(ImageError::DigestMismatch {
                what: format!("layer blob {} from {}", self.short, self.session.host),
                expected: self.blob.to_string(),
                actual: actual.to_string(),
            });
        }
        self.svc.inner.content.adopt(ingest, &self.blob)
    }
}

/// Appends chunks to the ingest file, hashing the prefix already there and everything new.
fn write_blob(
    mut rx: mpsc::Receiver<bytes::Bytes>,
    mut file: File,
    path: &PathBuf,
    have: u64,
    tail: &Tail,
) -> io::Result<(Sha256, u64)> {
    let mut hash = Sha256::new();
    if have > 0 {
        let mut prefix = File::open(path)?.take(have);
        io::copy(&mut prefix, &mut HashWriter(&mut hash))?;
    }
    let mut total = have;
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        hash.update(&chunk);
        total += chunk.len() as u64;
        tail.advance(total);
    }
    file.sync_all()?;
    Ok((hash, total))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How far the ingest file is written, and whether the download ended (and how).
struct Tail {
    state: Mutex<(u64, Option<Result<(), String>>)>,
    cond: Condvar,
}

impl Tail {
    fn new(written: u64) -> Self {
        Tail {
            state: Mutex::new((written, None)),
            cond: Condvar::new(),
        }
    }

    fn advance(&self, written: u64) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 = written;
        self.cond.notify_all();
    }

    fn end(&self, res: Result<(), String>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.1.is_none() {
            s.1 = Some(res);
        }
        drop(s);
        self.cond.notify_all();
    }
}

/// Ends the tail when the download is abandoned, so the unpacker never waits forever.
struct FinishOnDrop(Arc<Tail>);

impl FinishOnDrop {
    fn ok(&self) {
        self.0.end(Ok(()));
    }
    fn fail(&self, msg: &str) {
        self.0.end(Err(msg.to_owned()));
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.end(Err("pull cancelled".into()));
    }
}

/// Reads the ingest file as it grows; EOF only once the download was verified.
struct TailReader {
    file: File,
    pos: u64,
    tail: Arc<Tail>,
    count: Arc<AtomicU64>,
}

impl Read for TailReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = {
            let mut s = self.tail.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if s.0 > self.pos {
                    break s.0 - self.pos;
                }
                match &s.1 {
                    Some(Ok(())) => return Ok(0),
                    Some(Err(m)) => return Err(io::Error::other(m.clone())),
                    None => s = self.tail.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                }
            }
        };
        let want = buf.len().min(avail as usize);
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_default_to_latest() {
        let r = pull_reference("busybox", None).expect("ref");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = pull_reference("127.0.0.1:5000/bb", Some("1")).expect("ref");
        assert_eq!(r.to_string(), "127.0.0.1:5000/bb:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("bb", Some(&d)).expect("ref");
        assert_eq!(r.digest(), Some(d.as_str()));
        assert!(pull_reference("BAD", None).is_err());
        assert!(pull_reference("bb", Some("bad tag!")).is_err());
        assert!(wants_all_tags("127.0.0.1:5000/bb", None));
        assert!(wants_all_tags("bb", Some("")));
        assert!(!wants_all_tags("bb", Some("1")));
        assert!(!wants_all_tags("bb:1", None));
    }

    #[test]
    fn tail_reader_waits_for_growth_and_verification() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("blob");
        let mut w = File::create(&path).expect("create");
        let tail = Arc::new(Tail::new(0));
        let reader = TailReader {
            file: File::open(&path).expect("open"),
            pos: 0,
            tail: tail.clone(),
            count: Arc::new(AtomicU64::new(0)),
        };
        let t = std::thread::spawn(move || {
            let mut r = reader;
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        });
        w.write_all(b"hello ").expect("write");
        tail.advance(6);
        std::thread::sleep(Duration::from_millis(20));
        w.write_all(b"world").expect("write");
        tail.advance(11);
        tail.end(Ok(()));
        assert_eq!(t.join().expect("join").expect("read"), b"hello world");

        let tail = Arc::new(Tail::new(11));
        let mut r = TailReader {
            file: File::open(&path).expect("open"),
            pos: 0,
            tail: tail.clone(),
            count: Arc::new(AtomicU64::new(0)),
        };
        drop(FinishOnDrop(tail));
        let mut out = Vec::new();
        assert!(
            r.read_to_end(&mut out).is_err(),
            "a cancelled download never reads as complete"
        );
    }
}
