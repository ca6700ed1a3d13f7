//! The format version of the image store's metadata records.
//!
//! | record | where it is kept |
//! |---|---|
//! | [`ImageRecord`](super::records::ImageRecord) | `images` table of metadata.redb |
//! | [`BlobRecord`](super::blobs::BlobRecord) | `layer_blobs` table of metadata.redb |
//! | [`LayerMeta`](super::layers::LayerMeta) | `overlay/<chain id>/layer.json` |
//!
//! Each is stored as JSON: its fields plus `"version"`. Versions:
//!
//! | version | what it is |
//! |---|---|
//! | none (0) | written by berthd before these records had versions: the same fields as version 1 |
//! | 1 | the same fields, and `"version": 1` |
//!
//! A version 0 record reads as it was written and gets its version when it is next written
//! (nothing to migrate at start). A record of a version newer than [`METADATA_VERSION`] is
//! refused with an error naming it and its version. The rows of `image_refs` are bare JSON
//! strings (the id a reference points at) and have no version.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::image::error::ImageError;
use crate::store::StoreError;

/// The image metadata format this berthd writes.
pub const METADATA_VERSION: u32 = 1;

/// A record as written: its fields and its format version.
#[derive(Serialize)]
pub(crate) struct Versioned<'a, T> {
    version: u32,
    #[serde(flatten)]
    record: &'a T,
}

/// `record` as this berthd writes it.
pub(crate) fn versioned<T: Serialize>(record: &T) -> Versioned<'_, T> {
    Versioned {
        version: METADATA_VERSION,
        record,
    }
}

/// Reads one stored record (`what` names it in errors) with the code of its version; `bad`
/// is the error for a record that does not parse.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &str,
    mut stored: Value,
    bad: impl FnOnce(serde_json::Error) -> ImageError,
) -> Result<T, ImageError> {
    let unknown = |found: String| ImageError::MetadataVersion {
        what: what.to_owned(),
        found,
    };
    let version = match stored.as_object_mut().and_then(|o| o.remove("version")) {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| unknown(v.to_string()))?,
    };
    match version {
        // Version 0 has version 1's fields: it reads the same way.
        0 | METADATA_VERSION => serde_json::from_value(stored).map_err(bad),
        newer => Err(unknown(newer.to_string())),
    }
}

/// [`decode`] for a row of a metadata.redb table: a row that does not parse is the store's
/// decode error, as it was before versions.
pub(crate) fn decode_row<T: DeserializeOwned>(key: &str, stored: Value) -> Result<T, ImageError> {
    decode(key, stored, |source| {
        ImageError::Store(StoreError::Decode {
            key: key.to_owned(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::digest::Digest;
    use crate::image::store::blobs::BlobRecord;
    use crate::image::store::layers::LayerMeta;
    use crate::image::store::records::ImageRecord;

    /// An image record as berthd wrote it before versions (the `images` table).
    const IMAGE_V0: &str = r#"{"id":"sha256:5c5b2b4ba4a5b3bb6e2a24e3da1a0b6ca3e8d0e5b4a19f6d2b9b8a3e0f6c1d2e","layers":["sha256:0b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"],"repo_tags":["docker.io/library/busybox:latest"],"repo_digests":["docker.io/library/busybox@sha256:1b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"],"size":4261550,"created":1695063600,"last_tag_time":"2024-05-01T10:00:00.123456789Z","parent":"sha256:2b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"}"#;

    /// A `layer_blobs` row before versions.
    const BLOB_V0: &str = r#"{"diff_id":"sha256:3b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c","media_type":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2150,"sources":["docker.io/library/busybox"]}"#;

    /// A `layer.json` before versions (pretty-printed, as the layer store writes it).
    const LAYER_V0: &str = r#"{
  "chain_id": "sha256:0b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
  "diff_id": "sha256:3b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
  "parent": null,
  "size": 4096,
  "tar_size": 10240,
  "shadows": {
    "7": "etc/passwd"
  }
}"#;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("fixture parses")
    }

    fn digest(s: &str) -> Digest {
        Digest::parse(s).expect("digest")
    }

    /// Decodes `stored` as `T`, writes it back as this berthd does, and checks that the
    /// written JSON is the stored one plus the version, and reads back the same.
    fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
        stored: &str,
    ) -> T {
        let rec: T = decode_row("k", parse(stored)).expect("version 0 reads");
        let mut written = serde_json::to_value(versioned(&rec)).expect("encode");
        assert_eq!(written["version"], METADATA_VERSION);
        let again: T = decode_row("k", written.clone()).expect("version 1 reads");
        assert_eq!(again, rec);
        if let Some(o) = written.as_object_mut() {
            o.remove("version");
        }
        assert_eq!(written, parse(stored), "the same fields as version 0");
        rec
    }

    #[test]
    fn unversioned_image_records_read_back_identical() {
        let rec: ImageRecord = round_trip(IMAGE_V0);
        assert_eq!(
            rec,
            ImageRecord {
                id: "sha256:5c5b2b4ba4a5b3bb6e2a24e3da1a0b6ca3e8d0e5b4a19f6d2b9b8a3e0f6c1d2e"
                    .into(),
                layers: vec![
                    "sha256:0b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
                        .into()
                ],
                repo_tags: vec!["docker.io/library/busybox:latest".into()],
                repo_digests: vec![
                    "docker.io/library/busybox@sha256:1b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
                        .into()
                ],
                size: 4261550,
                created: 1695063600,
                last_tag_time: Some("2024-05-01T10:00:00.123456789Z".into()),
                parent: Some(
                    "sha256:2b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
                        .into()
                ),
            }
        );
    }

    #[test]
    fn unversioned_blob_records_and_layer_files_read_back_identical() {
        let blob: BlobRecord = round_trip(BLOB_V0);
        assert_eq!(blob.size, 2150);
        assert_eq!(blob.sources, vec!["docker.io/library/busybox".to_owned()]);
        let layer: LayerMeta = round_trip(LAYER_V0);
        assert_eq!(
            layer,
            LayerMeta {
                chain_id: digest(
                    "sha256:0b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
                ),
                diff_id: digest(
                    "sha256:3b8c5e3f0a1d4e2b9c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
                ),
                parent: None,
                size: 4096,
                tar_size: 10240,
                shadows: BTreeMap::from([(7, "etc/passwd".to_owned())]),
            }
        );
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let mut v = parse(IMAGE_V0);
        v["version"] = serde_json::json!(METADATA_VERSION + 1);
        let err = decode_row::<ImageRecord>("sha256:abc", v).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("sha256:abc") && msg.contains(&(METADATA_VERSION + 1).to_string()),
            "{msg}"
        );
        let mut v = parse(BLOB_V0);
        v["version"] = serde_json::json!("one");
        let err = decode_row::<BlobRecord>("sha256:def", v).err();
        assert!(
            matches!(&err, Some(ImageError::MetadataVersion { what, found }) if what == "sha256:def" && found == "\"one\""),
            "{err:?}"
        );
    }
}
