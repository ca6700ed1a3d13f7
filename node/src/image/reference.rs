//! Docker image references: parsing, validation and normalisation.
//!
//! ```text
//!  busybox                    → docker.io/library/busybox:latest   (shown as busybox:latest)
//!  me/app:1                   → docker.io/me/app:1                 (shown as me/app:1)
//!  127.0.0.1:5000/bb:1        → 127.0.0.1:5000/bb:1
//!  repo@sha256:<64 hex>       → docker.io/library/repo@sha256:…
//! ```
//! The grammar is Docker's (distribution/reference): `[domain/]path[:tag][@digest]`, path
//! components of lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`, a domain of
//! dot-separated host labels with an optional `:port`, tags `[\w][\w.-]{0,127}`, names at most
//! 255 characters. Stored references are always the full form; the familiar form is what
//! users see in `RepoTags` and messages.

use std::fmt;

use crate::image::digest::is_hex64;
use crate::image::error::ImageError;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";

const FORMAT: &str = "invalid reference format";
const UPPERCASE: &str = "invalid reference format: repository name must be lowercase";
const TOO_LONG: &str = "repository name must not be more than 255 characters";
const EMPTY: &str = "repository name must have at least one component";
const BAD_TAG: &str = "invalid tag format";
const BAD_DIGEST: &str = "invalid digest format";

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn bad(value: &str, reason: &'static str) -> ImageError {
    ImageError::InvalidReference {
        value: value.to_owned(),
        reason,
    }
}

impl Reference {
    /// Parses and normalises a reference, adding no tag (Docker's `ParseNormalizedNamed`).
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        if s.is_empty() {
            return Err(bad(s, EMPTY));
        }
        if is_hex64(s) {
            return Err(ImageError::InvalidArgument(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(bad(s, BAD_DIGEST));
                }
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(s, if t.is_empty() { FORMAT } else { BAD_TAG }));
            }
        }
        if name.is_empty() {
            return Err(bad(s, EMPTY));
        }
        if name.len() > 255 {
            return Err(bad(s, TOO_LONG));
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(bad(s, FORMAT));
        }
        if path.to_lowercase() != path {
            // Only a name that would be valid in lowercase gets the friendlier message.
            let lower_ok = path
                .split('/')
                .all(|c| valid_path_component(&c.to_lowercase()));
            return Err(bad(s, if lower_ok { UPPERCASE } else { FORMAT }));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(bad(s, FORMAT));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// [`parse`](Self::parse), then `:latest` if the reference has neither tag nor digest.
    pub fn parse_tagged(s: &str) -> Result<Self, ImageError> {
        let mut r = Self::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Replaces the tag (and drops any digest), validating it.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageError> {
        if !valid_tag(tag) {
            return Err(bad(tag, BAD_TAG));
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// The same repository with a digest instead of a tag.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ImageError> {
        if !valid_digest(digest) {
            return Err(bad(digest, BAD_DIGEST));
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        })
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path within the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Neither tag nor digest was given.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as users write it: `busybox`, `me/app`, `127.0.0.1:5000/bb`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as users write it: `busybox:latest`, `bb@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        push_suffix(&mut s, self);
        s
    }
}

fn push_suffix(s: &mut String, r: &Reference) {
    if let Some(t) = &r.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &r.digest {
        s.push('@');
        s.push_str(d);
    }
}

/// The full form, as stored: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_suffix(&mut s, self);
        f.write_str(&s)
    }
}

/// Docker's `splitDockerDomain`: the first component is a domain only if it looks like one.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_PREFIX}{path}");
    }
    (domain, path)
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `label(.label)*(:port)?`, labels `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`, or `[ipv6]:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match tail.strip_prefix(':') {
                    Some(p) => ("", Some(p)),
                    None if tail.is_empty() => ("", None),
                    None => return false,
                }
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`; sha256 needs exactly 64 lowercase hex digits.
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg.as_bytes()[0].is_ascii_alphabetic()
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'));
    let hex_ok = hex.len() >= 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    alg_ok && hex_ok && (alg != "sha256" || is_hex64(hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse_tagged(s).expect(s).to_string()
    }

    fn fam(s: &str) -> String {
        Reference::parse_tagged(s).expect(s).familiar()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("127.0.0.1:5000/bb:1"), "127.0.0.1:5000/bb:1");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(
            full("localhost:5000/a/b/c:v-1.2_x"),
            "localhost:5000/a/b/c:v-1.2_x"
        );
        assert_eq!(full("[::1]:5000/bb:1"), "[::1]:5000/bb:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            full(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            full(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn familiar_form_strips_the_default_domain() {
        assert_eq!(fam("busybox"), "busybox:latest");
        assert_eq!(fam("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(fam("docker.io/me/app:2"), "me/app:2");
        assert_eq!(fam("127.0.0.1:5000/bb:1"), "127.0.0.1:5000/bb:1");
        assert_eq!(fam("docker.io/library/a/b"), "library/a/b:latest");
        let r = Reference::parse("busybox").expect("valid");
        assert!(r.is_name_only());
        assert_eq!(r.familiar(), "busybox");
        assert_eq!(r.familiar_name(), "busybox");
    }

    #[test]
    fn path_separators() {
        for ok in [
            "a.b", "a_b", "a__b", "a-b", "a---b", "a.b-c_d", "0", "a/b/c",
        ] {
            assert!(Reference::parse(ok).is_ok(), "{ok}");
        }
        for bad_ in [
            "a..b", "a___b", "-a", "a-", "_a", "a/", "/a", "a//b", "a:", "a b", "a@b", "a:-x", ":x",
        ] {
            assert!(Reference::parse(bad_).is_err(), "{bad_}");
        }
    }

    #[test]
    fn errors_name_the_value_and_use_dockers_words() {
        let e = Reference::parse("Busybox").expect_err("uppercase");
        let msg = e.to_string();
        assert_eq!(
            msg,
            "invalid reference format: repository name must be lowercase: \"Busybox\""
        );
        // A registry domain may have capitals; the path may not.
        assert!(Reference::parse("Registry.example.com/app").is_ok());
        assert!(Reference::parse("registry.example.com/App").is_err());
        let e = Reference::parse("a$b").expect_err("bad char");
        assert!(
            e.to_string().starts_with("invalid reference format: "),
            "{e}"
        );
        assert!(e.to_string().contains("a$b"));
        let e = Reference::parse(&"a".repeat(64)).expect_err("hex");
        assert!(e.to_string().contains("64-byte hexadecimal"));
        let long = format!("{}:1", "a".repeat(256));
        assert!(Reference::parse(&long)
            .expect_err("long")
            .to_string()
            .contains("255"));
        assert!(Reference::parse("a@sha256:abc").is_err());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn with_tag_replaces_and_validates() {
        let r = Reference::parse("127.0.0.1:5000/bb:old").expect("valid");
        assert_eq!(
            r.with_tag("1").expect("tag").familiar(),
            "127.0.0.1:5000/bb:1"
        );
        assert!(r.with_tag("-x").is_err());
        assert!(r.with_tag("a/b").is_err());
        assert!(valid_tag("_x.1-2"));
    }
}
