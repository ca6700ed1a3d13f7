//! `docker push`: layers the registry lacks are mounted from another repository or uploaded,
//! then the config, then the manifest under the tag; the manifest's digest becomes a
//! RepoDigest.
//!
//! ```text
//!  per layer (at most N at once):  stored blob for the diff id? ── no ─► reassemble tar, gzip,
//!                                  │                                   store + record it
//!                                  HEAD blob ─ present ─► "Layer already exists"
//!                                  mount ?from=<repo with it> ─ 201 ─► "Mounted from <repo>"
//!                                  POST upload + PUT ?digest= (streamed) ─► "Pushed"
//!  config: HEAD / upload      manifest: PUT /v2/<repo>/manifests/<tag> → digest, size, aux
//! ```
//! A pulled layer is pushed as the very blob that was pulled, so digests survive a round trip.
//! Layers made here (load, import, commit) are compressed once and the blob kept for later
//! pushes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::image::service::ImageService;
use crate::image::store::blobs::BlobRecord;
use crate::image::store::manifest::{
    Descriptor, ImageManifest, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::image::store::records::ImageRecord;
use crate::image::transfer::progress::Progress;
use crate::image::transfer::registry::{Credentials, RegistryError, Session};
use berth_common::errors::cause_chain;

pub(crate) struct PushPlan {
    repo: Reference,
    session: Arc<Session>,
    /// (tag, image) pairs, in tag order.
    images: Vec<(String, ImageRecord)>,
}

/// A layer's blob as it will be pushed.
struct LayerBlob {
    diff_id: Digest,
    digest: Digest,
    rec: BlobRecord,
}

impl ImageService {
    /// Resolves the image(s) to push and opens the session; failures are HTTP statuses.
    pub(crate) async fn plan_push(
        &self,
        name: &str,
        tag: Option<&str>,
        creds: Option<Credentials>,
    ) -> Result<PushPlan, ImageError> {
        let mut r = Reference::parse(name)?;
        if r.digest().is_some() {
            return Err(ImageError::InvalidArgument(format!(
                "cannot push a digest reference: {name}"
            )));
        }
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            r = r.with_tag(t)?;
        }
        let repo = Reference::parse(&r.name())?;
        let mut images = Vec::new();
        for rec in self.inner.records.all()? {
            for full in &rec.repo_tags {
                let Ok(t) = Reference::parse(full) else {
                    continue;
                };
                let wanted = match r.tag() {
                    Some(want) => t.tag() == Some(want),
                    None => true,
                };
                if t.name() == r.name() && wanted {
                    images.push((t.tag().unwrap_or_default().to_owned(), rec.clone()));
                }
            }
        }
        if images.is_empty() {
            return Err(ImageError::RemoteNotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            )));
        }
        images.sort_by(|a, b| a.0.cmp(&b.0));
        let host_prefix = format!(
            "{}/",
            crate::image::transfer::registry::Registries::api_host(repo.domain())
        );
        let mut mount_from = Vec::new();
        for (_, rec) in &images {
            for c in &rec.layers {
                let Some(meta) = self.inner.layers.get(&Digest::parse(c)?)? else {
                    continue;
                };
                if let Some((_, b)) = self.blob_for_diff(&meta.diff_id)? {
                    for s in b.sources {
                        if let Some(other) = s.strip_prefix(&host_prefix) {
                            if other != repo.path() && !mount_from.contains(&other.to_owned()) {
                                mount_from.push(other.to_owned());
                            }
                        }
                    }
                }
            }
        }
        mount_from.truncate(8);
        let session = self
            .inner
            .dist
            .registries
            .open(
                repo.domain(),
                repo.path(),
                creds.as_ref(),
                true,
                &mount_from,
            )
            .await
            .map_err(|e| match e {
                RegistryError::Unauthorized(m) => ImageError::Unauthorized(format!(
                    "push access denied for {}: {m}",
                    repo.familiar_name()
                )),
                e => e.into(),
            })?;
        Ok(PushPlan {
            repo,
            session: Arc::new(session),
            images,
        })
    }

    pub(crate) fn run_push(&self, plan: PushPlan) -> BoxStream<'static, Value> {
        let (progress, rx) = Progress::new();
        let svc = self.clone();
        tokio::spawn(async move {
            let progress = Arc::new(progress);
            progress.status(&format!(
                "The push refers to repository [{}]",
                plan.repo.familiar_name()
            ));
            for (tag, rec) in &plan.images {
                if let Err(e) = svc.push_one(&plan, tag, rec, &progress).await {
                    tracing::error!(error = %e, "push failed");
                    progress.error(&cause_chain(&e));
                    return;
                }
            }
        });
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
    }

    async fn push_one(
        &self,
        plan: &PushPlan,
        tag: &str,
        rec: &ImageRecord,
        progress: &Arc<Progress>,
    ) -> Result<(), ImageError> {
        let mut diffs = Vec::new();
        for c in &rec.layers {
            diffs.push(self.inner.layers.must_get(&Digest::parse(c)?)?.diff_id);
        }
        for d in diffs.iter().rev() {
            progress.layer(d.short(), "Preparing");
        }
        type Upload<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<LayerBlob, ImageError>> + Send + 'a>,
        >;
        let mut uploads: Vec<Upload<'_>> = Vec::new();
        for d in diffs.iter().rev() {
            let d = d.clone();
            uploads.push(Box::pin(async move {
                let blob = self.layer_blob(&d).await?;
                self.push_blob(&plan.session, &blob, progress).await?;
                Ok(blob)
            }));
        }
        let mut blobs: Vec<LayerBlob> = stream::iter(uploads)
            .buffered(self.inner.dist.max_uploads)
            .try_collect()
            .await?;
        blobs.reverse();

        let config = self.config_bytes(rec)?;
        let config_digest = Digest::of_bytes(&config);
        if !plan.session.has_blob(&config_digest).await? {
            let size = config.len() as u64;
            plan.session
                .upload(
                    &config_digest,
                    size,
                    crate::image::transfer::registry::full_body(config.clone()),
                )
                .await?;
        }
        let (media_type, manifest) = build_manifest(&config, &blobs);
        let bytes = Bytes::from(manifest);
        plan.session
            .put_manifest(tag, media_type, bytes.clone())
            .await?;
        let digest = Digest::of_bytes(&bytes);
        {
            let svc = self.clone();
            let r = plan.repo.with_digest(&digest.to_string())?;
            let id = rec.id.clone();
            tokio::task::spawn_blocking(move || -> Result<(), ImageError> {
                let _guard = svc.lock();
                if svc.inner.records.get(&id)?.is_none() {
                    return Ok(()); // removed meanwhile
                }
                let mut batch = svc.inner.records.batch();
                batch.set_ref(
                    &r,
                    &id,
                    &crate::image::store::config::rfc3339_nano(chrono::Utc::now()),
                )?;
                batch.commit()
            })
            .await
            .map_err(|e| ImageError::Internal(format!("record task: {e}")))??;
        }
        let size = bytes.len();
        progress.status(&format!("{tag}: digest: {digest} size: {size}"));
        progress.send(json!({
            "progressDetail": {},
            "aux": { "Tag": tag, "Digest": digest.to_string(), "Size": size },
        }));
        self.event(
            "push",
            &rec.id,
            &plan
                .repo
                .with_tag(tag)
                .map(|r| r.familiar())
                .unwrap_or_default(),
        );
        Ok(())
    }

    /// The stored blob of a layer, compressing the layer (gzip) the first time.
    async fn layer_blob(&self, diff: &Digest) -> Result<LayerBlob, ImageError> {
        if let Some((digest, rec)) = self.blob_for_diff(diff)? {
            return Ok(LayerBlob {
                diff_id: diff.clone(),
                digest,
                rec,
            });
        }
        let svc = self.clone();
        let d = diff.clone();
        tokio::task::spawn_blocking(move || {
            let meta = svc
                .inner
                .layers
                .list()?
                .into_iter()
                .filter_map(|c| svc.inner.layers.get(&c).ok().flatten())
                .find(|m| m.diff_id == d)
                .ok_or_else(|| ImageError::Internal(format!("no layer with diff id {d}")))?;
            let tar = svc.inner.layers.reassemble(&meta)?;
            let gz = flate2::read::GzEncoder::new(tar, flate2::Compression::new(3));
            let (digest, size, _) = svc.inner.content.ingest(gz, None)?;
            let rec = BlobRecord {
                diff_id: d.clone(),
                media_type: DOCKER_LAYER.into(),
                size,
                sources: Vec::new(),
            };
            svc.record_blob(&digest, rec.clone())?;
            Ok(LayerBlob {
                diff_id: d,
                digest,
                rec,
            })
        })
        .await
        .map_err(|e| ImageError::Internal(format!("compress task: {e}")))?
    }

    async fn push_blob(
        &self,
        session: &Session,
        blob: &LayerBlob,
        progress: &Arc<Progress>,
    ) -> Result<(), ImageError> {
        let id = blob.diff_id.short().to_owned();
        let here = format!("{}/{}", session.host, session.repo);
        if session.has_blob(&blob.digest).await? {
            progress.layer(&id, "Layer already exists");
        } else {
            let host_prefix = format!("{}/", session.host);
            let mut mounted = false;
            for s in &blob.rec.sources {
                let Some(from) = s.strip_prefix(&host_prefix) else {
                    continue;
                };
                if from != session.repo && session.mount(&blob.digest, from).await? {
                    progress.layer(&id, &format!("Mounted from {from}"));
                    mounted = true;
                    break;
                }
            }
            if !mounted {
                self.upload_blob(session, blob, &id, progress).await?;
                progress.layer(&id, "Pushed");
            }
        }
        let mut rec = blob.rec.clone();
        rec.sources = vec![here];
        self.record_blob(&blob.digest, rec)
    }

    async fn upload_blob(
        &self,
        session: &Session,
        blob: &LayerBlob,
        id: &str,
        progress: &Arc<Progress>,
    ) -> Result<(), ImageError> {
        let path = self.inner.content.path(&blob.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(ImageError::io("open", &path))?;
        let total = file
            .metadata()
            .await
            .map_err(ImageError::io("stat", &path))?
            .len();
        let (p, id2) = (progress.clone(), id.to_owned());
        let mut sent = 0u64;
        let body = ReaderStream::with_capacity(file, 256 << 10).map(move |chunk| {
            let chunk = chunk?;
            sent += chunk.len() as u64;
            p.bytes(&id2, "Pushing", sent, total);
            Ok::<_, std::io::Error>(Frame::data(chunk))
        });
        let body = StreamBody::new(body).boxed_unsync();
        progress.bytes(id, "Pushing", 0, total);
        session.upload(&blob.digest, total, body).await?;
        Ok(())
    }
}

/// A Docker schema 2 manifest when every layer is a Docker gzip layer, else an OCI one.
fn build_manifest(config: &[u8], blobs: &[LayerBlob]) -> (&'static str, Vec<u8>) {
    let docker = blobs.iter().all(|b| b.rec.media_type == DOCKER_LAYER);
    let (mt, config_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(mt.to_owned()),
        config: Descriptor {
            media_type: config_mt.into(),
            digest: Digest::of_bytes(config).to_string(),
            size: config.len() as u64,
            platform: None,
            urls: Vec::new(),
        },
        layers: blobs
            .iter()
            .map(|b| Descriptor {
                media_type: if !docker && b.rec.media_type == DOCKER_LAYER {
                    OCI_LAYER_GZIP.into()
                } else {
                    b.rec.media_type.clone()
                },
                digest: b.digest.to_string(),
                size: b.rec.size,
                platform: None,
                urls: Vec::new(),
            })
            .collect(),
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&m, &mut ser).expect("a manifest always serializes");
    (mt, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::store::manifest::OCI_LAYER_ZSTD;

    fn blob(mt: &str, n: u8) -> LayerBlob {
        LayerBlob {
            diff_id: Digest::of_bytes(&[n]),
            digest: Digest::of_bytes(&[n, n]),
            rec: BlobRecord {
                diff_id: Digest::of_bytes(&[n]),
                media_type: mt.into(),
                size: 10 + n as u64,
                sources: vec![],
            },
        }
    }

    #[test]
    fn manifests_are_docker_unless_a_layer_needs_oci() {
        let (mt, bytes) = build_manifest(b"{}", &[blob(DOCKER_LAYER, 1)]);
        assert_eq!(mt, DOCKER_MANIFEST);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["config"]["mediaType"], DOCKER_CONFIG);
        assert_eq!(v["layers"][0]["size"], 11);
        assert_eq!(v["schemaVersion"], 2);

        let (mt, bytes) = build_manifest(b"{}", &[blob(DOCKER_LAYER, 1), blob(OCI_LAYER_ZSTD, 2)]);
        assert_eq!(mt, OCI_MANIFEST);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(v["layers"][1]["mediaType"], OCI_LAYER_ZSTD);
        assert_eq!(v["config"]["mediaType"], OCI_CONFIG);
    }
}
