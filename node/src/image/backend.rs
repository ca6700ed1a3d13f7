//! `berth_api::backend::ImageBackend` for [`ImageService`]: the async edge of the image store.
//!
//! Every handler moves its disk work to a blocking thread. Upload bodies become a blocking
//! reader (`StreamReader` + `SyncIoBridge`); `save` streams its tar back through a channel as
//! it is written. Import and load finish their work before replying, so every failure —
//! including a corrupt upload — is an HTTP status, never half a progress stream.

use std::io::{self, Write};

use async_trait::async_trait;
use berth_api::backend::{BodyStream, ByteStream, Filters, ImageBackend, ImportOptions};
use berth_api::error::{ApiError, ApiResult};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::image::archive::import::ImportPlan;
use crate::image::error::ImageError;
use crate::image::service::ImageService;
use crate::image::transfer::registry::Credentials;

const CHUNK: usize = 64 * 1024;

/// The request body as a blocking reader; must be created inside the runtime.
fn body_reader(body: BodyStream) -> SyncIoBridge<StreamReader<BodyStream, Bytes>> {
    SyncIoBridge::new(StreamReader::new(body))
}

/// Runs `f` on the upload; if it fails, the rest of the upload is read and dropped, so the
/// client (still sending) gets the error reply instead of a broken pipe.
fn with_upload<T>(
    body: BodyStream,
    f: impl FnOnce(&mut dyn io::Read) -> Result<T, ImageError>,
) -> impl FnOnce() -> Result<T, ImageError> {
    let mut reader = body_reader(body);
    move || {
        let res = f(&mut reader);
        if res.is_err() {
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        res
    }
}

async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ImageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("image task failed: {e}")).with_source(e))?
        .map_err(ApiError::from)
}

/// A `Write` that hands 64 KiB chunks to the response stream; fails once the client is gone.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[async_trait]
impl ImageBackend for ImageService {
    async fn import(
        &self,
        opts: ImportOptions,
        body: BodyStream,
    ) -> ApiResult<BoxStream<'static, Value>> {
        let plan = ImportPlan::new(&opts)?;
        let svc = self.clone();
        let id = blocking(with_upload(body, move |r| svc.import_image(plan, r))).await?;
        Ok(stream::iter([json!({ "status": id })]).boxed())
    }

    async fn load(&self, _quiet: bool, body: BodyStream) -> ApiResult<BoxStream<'static, Value>> {
        let svc = self.clone();
        let lines = blocking(with_upload(body, move |r| svc.load_images(r))).await?;
        Ok(stream::iter(lines).boxed())
    }

    async fn pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>> {
        Ok(ImageService::pull(self, from_image, tag, platform, auth).await?)
    }

    async fn push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<Value>,
    ) -> ApiResult<BoxStream<'static, Value>> {
        let creds = Credentials::from_value(auth.as_ref());
        let plan = self.plan_push(name, tag, creds).await?;
        Ok(self.run_push(plan))
    }

    async fn auth(&self, body: Value) -> ApiResult<Value> {
        Ok(self.login(body).await?)
    }

    async fn distribution(&self, name: &str, auth: Option<Value>) -> ApiResult<Value> {
        let creds = Credentials::from_value(auth.as_ref());
        Ok(self.distribution_inspect(name, creds).await?)
    }

    async fn list(&self, all: bool, filters: Filters, _digests: bool) -> ApiResult<Vec<Value>> {
        let svc = self.clone();
        blocking(move || svc.list_images_with(&filters, all)).await
    }

    async fn inspect(&self, name: &str) -> ApiResult<Value> {
        let (svc, name) = (self.clone(), name.to_owned());
        blocking(move || svc.inspect_image(&name)).await
    }

    async fn history(&self, name: &str) -> ApiResult<Value> {
        let (svc, name) = (self.clone(), name.to_owned());
        blocking(move || svc.image_history(&name)).await
    }

    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()> {
        let (svc, name, repo, tag) = (
            self.clone(),
            name.to_owned(),
            repo.to_owned(),
            tag.map(str::to_owned),
        );
        blocking(move || svc.tag_image(&name, &repo, tag.as_deref())).await
    }

    async fn remove(&self, name: &str, force: bool, _noprune: bool) -> ApiResult<Value> {
        let (svc, name) = (self.clone(), name.to_owned());
        blocking(move || {
            let out = svc.remove_image(&name, force)?;
            svc.gc_blobs()?;
            Ok(Value::Array(out))
        })
        .await
    }

    async fn save(&self, names: Vec<String>) -> ApiResult<ByteStream> {
        let svc = self.clone();
        let plan = blocking(move || svc.plan_save(&names)).await?;
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let svc = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = svc.write_save(&plan, &mut out) {
                tracing::error!(error = %e, "image save failed mid-stream");
            }
        });
        let stream =
            stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }).boxed();
        Ok(ByteStream { tty: false, stream })
    }

    async fn prune(&self, filters: Filters) -> ApiResult<Value> {
        let svc = self.clone();
        blocking(move || {
            let out = svc.prune_images(&filters)?;
            svc.gc_blobs()?;
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testutil::{file_tar, service};
    use berth_api::error::ErrorKind;

    fn body(bytes: Vec<u8>) -> BodyStream {
        let chunks: Vec<Result<Bytes, io::Error>> = bytes
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(chunks).boxed()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn import_save_load_through_the_trait() {
        let t = service();
        let backend: &dyn ImageBackend = &t.svc;
        let opts = ImportOptions {
            repo: Some("imported:1".into()),
            ..Default::default()
        };
        let out: Vec<Value> = backend
            .import(opts, body(file_tar(&[("f", b"data".as_slice())])))
            .await
            .expect("import")
            .collect()
            .await;
        let id = out[0]["status"].as_str().expect("status").to_owned();
        assert!(id.starts_with("sha256:"));

        let saved = backend.save(vec!["imported".into()]).await.expect("save");
        let tar: Vec<u8> = saved.stream.collect::<Vec<Bytes>>().await.concat();
        let removed = backend
            .remove("imported:1", false, false)
            .await
            .expect("rmi");
        assert_eq!(removed[0], json!({ "Untagged": "imported:1" }));
        assert_eq!(removed[1], json!({ "Deleted": id }));

        let lines: Vec<Value> = backend
            .load(true, body(tar))
            .await
            .expect("load")
            .collect()
            .await;
        assert_eq!(
            lines,
            vec![json!({ "stream": "Loaded image: imported:1\n" })]
        );
        let inspect = backend.inspect("imported:1").await.expect("inspect");
        assert_eq!(inspect["Id"], json!(id), "the id survives save and load");

        let err = backend
            .import(ImportOptions::default(), body(b"garbage".to_vec()))
            .await
            .err()
            .expect("bad tar");
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        let err = backend
            .pull("Bad Name", None, None, None)
            .await
            .err()
            .expect("pull");
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert_eq!(
            backend.inspect("nope").await.expect_err("404").message,
            "No such image: nope:latest"
        );
    }
}
