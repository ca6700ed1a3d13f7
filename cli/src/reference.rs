//! Image references: `[registry/]repo[:tag][@digest]`, split the way the docker CLI splits them
//! to build `fromImage`/`tag` queries and to print `Unable to find image 'busybox:latest'`.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository including any registry host (`busybox`, `127.0.0.1:5000/bb`).
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits `s`; the tag is the part after the last `:` that is not followed by a `/`.
    pub fn parse(s: &str) -> ImageRef {
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repo, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(name[slash + i + 1..].to_string())),
            None => (name, None),
        };
        ImageRef {
            repo: repo.to_string(),
            tag,
            digest,
        }
    }

    /// The tag, or `latest` when neither tag nor digest was given.
    pub fn tag_or_latest(&self) -> Option<String> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t.clone()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        }
    }

    /// `busybox:latest`, `127.0.0.1:5000/bb:1`, `x@sha256:..` (the "familiar" form with the
    /// default tag filled in).
    pub fn familiar(&self) -> String {
        let mut s = self.repo.clone();
        if let Some(t) = self.tag_or_latest() {
            s.push(':');
            s.push_str(&t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The registry host, or `docker.io` for Docker Hub names.
    pub fn registry(&self) -> String {
        match self.repo.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_string()
            }
            _ => "docker.io".to_string(),
        }
    }

    /// The fully qualified form: `docker.io/library/busybox:latest`.
    pub fn canonical(&self) -> String {
        let repo = if self.registry() == "docker.io" {
            let path = self.repo.strip_prefix("docker.io/").unwrap_or(&self.repo);
            if path.contains('/') {
                format!("docker.io/{path}")
            } else {
                format!("docker.io/library/{path}")
            }
        } else {
            self.repo.clone()
        };
        ImageRef {
            repo,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
        .familiar()
    }

    /// The repository as docker shows it (`docker.io/library/x` → `x`).
    pub fn familiar_repo(&self) -> String {
        let r = self.repo.strip_prefix("docker.io/").unwrap_or(&self.repo);
        r.strip_prefix("library/").unwrap_or(r).to_string()
    }
}

/// Whether `s` looks like an image ID (`sha256:<hex>` or a hex prefix), which is never pulled.
pub fn is_id_like(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_registries() {
        let r = ImageRef::parse("127.0.0.1:5000/bb:1");
        assert_eq!(r.repo, "127.0.0.1:5000/bb");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.familiar(), "127.0.0.1:5000/bb:1");
        let r = ImageRef::parse("localhost:5000/bb");
        assert_eq!(r.repo, "localhost:5000/bb");
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar(), "localhost:5000/bb:latest");
        let r = ImageRef::parse("busybox");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.canonical(), "docker.io/library/busybox:latest");
        assert_eq!(r.registry(), "docker.io");
        let r = ImageRef::parse("user/app@sha256:abc");
        assert_eq!(r.tag_or_latest(), None);
        assert_eq!(r.familiar(), "user/app@sha256:abc");
        assert_eq!(r.canonical(), "docker.io/user/app@sha256:abc");
        assert_eq!(
            ImageRef::parse("docker.io/library/alpine:3").familiar_repo(),
            "alpine"
        );
    }
}
