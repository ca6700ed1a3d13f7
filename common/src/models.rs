//! Engine API bodies that both the API (which writes them) and the CLI (which reads them)
//! handle. Bodies only the engine reads are in `berth-api`'s `models.rs`; the CLI writes its
//! requests as JSON.

use serde::{Deserialize, Serialize};

/// `stat` of a path inside a container: the base64 JSON of the
/// `X-Docker-Container-Path-Stat` header (`HEAD`/`GET /containers/{id}/archive`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: permission bits plus type bits (`MODE_DIR`, ...).
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// Go's `os.ModeDir`.
    pub const MODE_DIR: u32 = 1 << 31;

    pub fn is_dir(&self) -> bool {
        self.mode & PathStat::MODE_DIR != 0
    }
}

/// The body of every error response: `{"message": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_stat_wire_form() -> Result<(), serde_json::Error> {
        let st = PathStat {
            name: "etc".into(),
            size: 4096,
            mode: PathStat::MODE_DIR | 0o755,
            mtime: "2024-01-01T00:00:00Z".into(),
            link_target: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&st)?,
            r#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#
        );
        assert!(st.is_dir());
        let back: PathStat = serde_json::from_str(r#"{"name":"f","mode":420,"extra":1}"#)?;
        assert_eq!(back.name, "f");
        assert!(!back.is_dir());
        Ok(())
    }

    #[test]
    fn error_message_wire_form() -> Result<(), serde_json::Error> {
        let m = ErrorMessage {
            message: "no such container: x".into(),
        };
        assert_eq!(
            serde_json::to_string(&m)?,
            r#"{"message":"no such container: x"}"#
        );
        Ok(())
    }
}
