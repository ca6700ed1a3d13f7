//! A build's options, checked before the context is read: tags, `--platform`, and the
//! credentials `X-Registry-Config` carries for a registry.

use berth_api::backend::BuildOptions;
use serde_json::Value;

use super::BuildError;
use crate::image::parse_tag;
use crate::image::reference::Reference;

/// A build's options, checked before the context is read.
pub struct Plan {
    pub(super) opts: BuildOptions,
    pub(super) tags: Vec<Reference>,
    /// `--platform` as FROM pulls ask for it (`linux/<arch>`), when given.
    pub(super) platform: Option<String>,
    /// Why `--platform` cannot be built here, reported when the build starts.
    pub(super) foreign_platform: Option<String>,
}

/// What a `--platform` means to this daemon.
#[derive(Debug, PartialEq)]
enum PlatformCheck {
    /// The host's own platform, as `os/arch[/variant]`.
    Host(String),
    /// Another architecture: the message the build fails with.
    Foreign(String),
}

/// `--platform`: `os[/arch[/variant]]`. This daemon runs RUN steps natively (no emulation),
/// so it builds for its own platform only; a malformed value or another OS is a bad request
/// (as Docker's platform parsing makes it), another architecture fails the build.
fn check_platform(p: &str, host_arch: &str) -> Result<PlatformCheck, BuildError> {
    let s = p.trim().to_ascii_lowercase();
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|x| x.is_empty()) {
        return Err(BuildError::Invalid(format!(
            "failed to parse platform {p}: \"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    if parts[0] != "linux" {
        return Err(BuildError::Invalid(format!(
            "\"{}\" is not a supported operating system: this daemon builds linux images",
            parts[0]
        )));
    }
    let arch = match parts.get(1).copied().unwrap_or(host_arch) {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let variant = parts.get(2).copied();
    let same = arch == host_arch
        && matches!(
            (arch, variant),
            (_, None) | ("arm64", Some("v8")) | ("amd64", Some("v1" | "v2"))
        );
    let full = match variant {
        Some(v) => format!("linux/{arch}/{v}"),
        None => format!("linux/{arch}"),
    };
    Ok(if same {
        PlatformCheck::Host(full)
    } else {
        PlatformCheck::Foreign(format!(
            "platform {full} is not supported: this daemon builds for linux/{host_arch} only (RUN steps run natively, without emulation)"
        ))
    })
}

impl Plan {
    pub fn new(opts: BuildOptions) -> Result<Plan, BuildError> {
        let tags = opts
            .tags
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        let (platform, foreign_platform) = match opts.platform.as_deref() {
            None => (None, None),
            Some(p) => match check_platform(p, crate::image::host_arch())? {
                PlatformCheck::Host(p) => (Some(p), None),
                PlatformCheck::Foreign(why) => (None, Some(why)),
            },
        };
        if let Some(m) = opts.network_mode.as_deref() {
            if !matches!(m, "default" | "bridge" | "host" | "none") && !m.is_empty() {
                // Named networks are checked when the RUN container is created.
                tracing::debug!(network = m, "build with a named network");
            }
        }
        Ok(Plan {
            opts,
            tags,
            platform,
            foreign_platform,
        })
    }
}

/// `sha256:<hex>` or a bare hex id prefix: an image id, not a name to pull.
pub(super) fn looks_like_id(name: &str) -> bool {
    name.starts_with("sha256:")
        || (name.len() >= 12
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The credentials `X-Registry-Config` holds for the registry of `domain` (its keys are
/// registry hosts or URLs such as `https://index.docker.io/v1/`).
pub(super) fn registry_auth(config: Option<&Value>, domain: &str) -> Option<Value> {
    use crate::image::{login_host, Registries};
    let want = Registries::api_host(domain);
    config?
        .as_object()?
        .iter()
        .find(|(k, _)| login_host(k) == want)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let host = |p: &str| check_platform(p, "amd64");
        assert_eq!(
            host("linux").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert_eq!(
            host("linux/amd64").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert_eq!(
            host("Linux/x86_64").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert!(
            matches!(host("linux/arm64").expect("ok"), PlatformCheck::Foreign(m) if m.contains("linux/arm64") && m.contains("linux/amd64 only"))
        );
        assert!(matches!(
            host("linux/amd64/v3").expect("ok"),
            PlatformCheck::Foreign(_)
        ));
        assert!(matches!(
            check_platform("linux/arm64/v8", "arm64").expect("ok"),
            PlatformCheck::Host(_)
        ));
        assert!(host("windows/amd64").is_err());
        assert!(host("linux//amd64").is_err());
        assert!(host("a/b/c/d").is_err());
    }

    #[test]
    fn registry_config_lookup_and_ids() {
        let cfg = serde_json::json!({
            "https://index.docker.io/v1/": { "username": "hub" },
            "127.0.0.1:5000": { "username": "local" },
        });
        assert_eq!(
            registry_auth(Some(&cfg), "docker.io").expect("hub")["username"],
            "hub"
        );
        assert_eq!(
            registry_auth(Some(&cfg), "127.0.0.1:5000").expect("local")["username"],
            "local"
        );
        assert_eq!(registry_auth(Some(&cfg), "example.com"), None);
        assert_eq!(registry_auth(None, "docker.io"), None);
        assert!(looks_like_id("sha256:abc") && looks_like_id("0123456789abcdef"));
        assert!(!looks_like_id("busybox") && !looks_like_id("deadbeef"));
    }
}
