//! Distribution manifests: Docker schema 2 and OCI image manifests, Docker manifest lists and
//! OCI indexes, and the choice of one platform out of an index.
//!
//! ```text
//!  bytes + Content-Type ─► Fetched::Index(manifests[platform]) ─select─► digest ─► Fetched::Image
//!                          Fetched::Image { config, layers[] }
//! ```

use serde::{Deserialize, Serialize};

use crate::image::error::ImageError;
use crate::image::store::config::host_arch;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

pub enum Fetched {
    Image(ImageManifest),
    Index(Index),
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses a manifest or index, told apart by media type (header or body) and shape.
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Fetched, ImageError> {
    let bad = |e: String| ImageError::Registry(format!("invalid manifest: {e}"));
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if probe.schema_version == 1 {
        return Err(ImageError::Registry(
            "unsupported manifest format: Docker image manifest schema 1 (deprecated)".into(),
        ));
    }
    let mt = probe.media_type.as_deref().unwrap_or(content_type);
    let is_index = mt == DOCKER_LIST
        || mt == OCI_INDEX
        || (probe.manifests.is_some() && probe.config.is_none());
    if is_index {
        let i: Index = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        return Ok(Fetched::Index(i));
    }
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    for l in &m.layers {
        if !is_layer_type(&l.media_type) {
            return Err(bad(format!(
                "unsupported layer media type {:?}",
                l.media_type
            )));
        }
    }
    Ok(Fetched::Image(m))
}

fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        DOCKER_LAYER | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | OCI_LAYER_TAR
    ) || mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
}

/// `os/arch[/variant]`; empty means this machine (`linux/<arch>`).
pub fn parse_platform(s: Option<&str>) -> Result<Platform, ImageError> {
    let s = s.map(str::trim).unwrap_or("");
    if s.is_empty() {
        return Ok(Platform {
            architecture: host_arch().to_owned(),
            os: "linux".into(),
            variant: None,
        });
    }
    let parts: Vec<&str> = s.split('/').collect();
    let bad = || {
        ImageError::InvalidArgument(format!(
            "\"{s}\": unknown operating system or architecture: invalid argument (want os/arch[/variant], e.g. linux/amd64)"
        ))
    };
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] => (*os, *arch, None),
        [os, arch, v] => (*os, *arch, Some((*v).to_owned())),
        _ => return Err(bad()),
    };
    if os.is_empty() || arch.is_empty() {
        return Err(bad());
    }
    let arch = match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    Ok(Platform {
        architecture: arch.to_owned(),
        os: os.to_owned(),
        variant,
    })
}

/// The manifest of an index for `want`: same os and architecture, and the variant when one
/// was asked for (arm64 has `v8` by default).
pub fn select<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let norm = |p: &Platform| -> Option<String> {
        match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".into()),
            (_, v) => v.map(str::to_owned),
        }
    };
    let candidates = index.manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
    });
    let mut first = None;
    for d in candidates {
        let p = d.platform.as_ref().expect("filtered on platform");
        if norm(p) == norm(want) {
            return Some(d);
        }
        if want.variant.is_none() {
            first.get_or_insert(d);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> Index {
        let d = |arch: &str, v: Option<&str>, n: u8| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", hex::encode([n; 32])),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: if arch == "unknown" {
                    "unknown"
                } else {
                    "linux"
                }
                .into(),
                variant: v.map(str::to_owned),
            }),
            urls: vec![],
        };
        Index {
            manifests: vec![
                d("arm", Some("v6"), 1),
                d("arm", Some("v7"), 2),
                d("amd64", None, 3),
                d("arm64", Some("v8"), 4),
                d("unknown", None, 5),
            ],
        }
    }

    #[test]
    fn selects_platforms_like_docker() {
        let i = index();
        assert_eq!(
            select(&i, &parse_platform(Some("linux/amd64")).expect("p")).map(|d| d.digest.clone()),
            Some(format!("sha256:{}", hex::encode([3u8; 32])))
        );
        let digest_of = |p: &str| {
            select(&i, &parse_platform(Some(p)).expect("p")).map(|d| d.digest[7..9].to_owned())
        };
        assert_eq!(digest_of("linux/arm/v7").as_deref(), Some("02"));
        assert_eq!(digest_of("linux/arm/v6").as_deref(), Some("01"));
        assert_eq!(digest_of("linux/arm64").as_deref(), Some("04"));
        assert_eq!(digest_of("linux/arm64/v8").as_deref(), Some("04"));
        assert_eq!(digest_of("linux/s390x"), None);
        assert_eq!(digest_of("windows/amd64"), None);
        assert!(parse_platform(Some("amd64")).is_err());
        assert_eq!(parse_platform(None).expect("host").os, "linux");
    }

    #[test]
    fn parses_both_kinds_and_refuses_schema1() {
        let m = json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": { "mediaType": DOCKER_CONFIG, "digest": "sha256:00", "size": 2 },
            "layers": [{ "mediaType": OCI_LAYER_ZSTD, "digest": "sha256:11", "size": 3 }]
        });
        let bytes = serde_json::to_vec(&m).expect("json");
        assert!(matches!(parse(&bytes, ""), Ok(Fetched::Image(m)) if m.layers.len() == 1));
        let i = json!({ "schemaVersion": 2, "manifests": [] });
        let bytes = serde_json::to_vec(&i).expect("json");
        assert!(matches!(parse(&bytes, OCI_INDEX), Ok(Fetched::Index(_))));
        let s1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(parse(s1, "").is_err());
        let odd = json!({
            "schemaVersion": 2, "config": { "mediaType": OCI_CONFIG, "digest": "sha256:00", "size": 2 },
            "layers": [{ "mediaType": "application/x-weird", "digest": "sha256:11", "size": 3 }]
        });
        assert!(parse(&serde_json::to_vec(&odd).expect("json"), OCI_MANIFEST).is_err());
    }
}
