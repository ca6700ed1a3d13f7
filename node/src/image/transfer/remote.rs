//! Registry requests that store nothing: `POST /auth` (login) and
//! `GET /distribution/{name}/json`.

use serde_json::{json, Value};

use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::reference::DEFAULT_TAG;
use crate::image::service::ImageService;
use crate::image::store::manifest::{self, Fetched};
use crate::image::transfer::pull::pull_reference;
use crate::image::transfer::registry::{Credentials, RegistryError};

impl ImageService {
    /// Checks the credentials of `POST /auth` against their registry.
    pub(crate) async fn login(&self, body: Value) -> Result<Value, ImageError> {
        let creds = Credentials::from_value(Some(&body)).ok_or_else(|| {
            ImageError::InvalidArgument("username and password (or a token) are required".into())
        })?;
        self.inner
            .dist
            .registries
            .login(&creds.serveraddress, &creds)
            .await?;
        Ok(json!({ "Status": "Login Succeeded", "IdentityToken": "" }))
    }

    /// The manifest descriptor and platforms the registry has for `name`.
    pub(crate) async fn distribution_inspect(
        &self,
        name: &str,
        creds: Option<Credentials>,
    ) -> Result<Value, ImageError> {
        let r = pull_reference(name, None)?;
        let session = self
            .inner
            .dist
            .registries
            .open(r.domain(), r.path(), creds.as_ref(), false, &[])
            .await?;
        let wanted = r.digest().or(r.tag()).unwrap_or(DEFAULT_TAG);
        let (bytes, ctype, digest) = session.manifest(wanted).await.map_err(|e| match e {
            RegistryError::NotFound(m) => {
                ImageError::RemoteNotFound(format!("{}: {m}", r.familiar()))
            }
            e => e.into(),
        })?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Registry(format!("invalid manifest: {e}")))?;
        let media_type = doc["mediaType"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or(ctype.clone());
        let platforms: Vec<Value> = match manifest::parse(&bytes, &ctype)? {
            Fetched::Index(i) => i
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(|p| json!(p))
                .collect(),
            Fetched::Image(m) => {
                let config = session
                    .blob_bytes(&Digest::parse(&m.config.digest)?)
                    .await?;
                let c: Value = serde_json::from_slice(&config)
                    .map_err(|e| ImageError::Registry(format!("invalid image config: {e}")))?;
                let mut p = json!({ "architecture": c["architecture"], "os": c["os"] });
                if let Some(v) = c["variant"].as_str() {
                    p["variant"] = json!(v);
                }
                vec![p]
            }
        };
        Ok(json!({
            "Descriptor": { "mediaType": media_type, "digest": digest.to_string(), "size": bytes.len() },
            "Platforms": platforms,
        }))
    }
}
