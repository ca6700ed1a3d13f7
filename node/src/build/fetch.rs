//! `ADD <url>`: a GET over the daemon's HTTP client (the registry transport: hyper, rustls
//! with the system CAs plus `<certs-dir>/<host:port>/*.crt`), redirects followed, the body
//! kept in memory up to a limit.

use http_body_util::BodyExt;

use super::BuildError;
use crate::image::Registries;

const MAX_BODY: usize = 1 << 30;
const MAX_REDIRECTS: usize = 10;

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name ADD gives a download: the last segment of the URL's path.
pub fn file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Where a redirect from `base` to `location` goes: absolute, or on the same origin.
fn redirect_target(base: &str, location: &str) -> String {
    if is_url(location) {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let path = rest[host.len()..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{host}{dir}/{location}")
}

/// Downloads `url`; a non-2xx answer is an error naming the status.
pub async fn get(registries: &Registries, url: &str) -> Result<Vec<u8>, BuildError> {
    let fail = |u: &str, m: String| BuildError::Invalid(format!("failed to fetch {u}: {m}"));
    let mut current = url.split('#').next().unwrap_or(url).to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let resp = registries
            .get_url(&current)
            .await
            .map_err(|e| fail(&current, e.to_string()))?;
        let status = resp.status();
        if status.is_redirection() {
            if let Some(loc) = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                current = redirect_target(&current, loc);
                continue;
            }
        }
        if !status.is_success() {
            return Err(fail(&current, format!("HTTP status {status}")));
        }
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| fail(&current, e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                if out.len() + data.len() > MAX_BODY {
                    return Err(fail(&current, format!("larger than {MAX_BODY} bytes")));
                }
                out.extend_from_slice(data);
            }
        }
        return Ok(out);
    }
    Err(BuildError::Invalid(format!(
        "failed to fetch {url}: stopped after {MAX_REDIRECTS} redirects"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::RegistryConfig;
    use std::io::{Read, Write};

    #[test]
    fn names_and_redirect_targets() {
        assert_eq!(
            file_name("http://h/a/b.tar.gz?x=1"),
            Some("b.tar.gz".into())
        );
        assert_eq!(file_name("http://h/"), None);
        assert_eq!(file_name("http://h"), None);
        assert!(is_url("https://x") && !is_url("ftp://x"));
        assert_eq!(redirect_target("https://h:1/a/b", "/c"), "https://h:1/c");
        assert_eq!(redirect_target("https://h:1/a/b?q", "c"), "https://h:1/a/c");
        assert_eq!(redirect_target("http://h/a", "https://o/x"), "https://o/x");
    }

    #[tokio::test]
    async fn fetching_from_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            for reply in [
                "HTTP/1.0 302 Found\r\nLocation: /real\r\n\r\n",
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                "HTTP/1.0 200 OK\r\n\r\nuntil the end",
                "HTTP/1.0 404 Not Found\r\n\r\n",
            ] {
                let (mut c, _) = l.accept().expect("accept");
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                c.write_all(reply.as_bytes()).expect("write");
            }
        });
        let certs = tempfile::tempdir().expect("tempdir");
        let regs = Registries::new(RegistryConfig {
            insecure: Vec::new(),
            certs_dir: certs.path().to_owned(),
        });
        let body = get(&regs, &format!("http://127.0.0.1:{port}/file"))
            .await
            .expect("get");
        assert_eq!(body, b"hello");
        let body = get(&regs, &format!("http://127.0.0.1:{port}/eof"))
            .await
            .expect("get");
        assert_eq!(body, b"until the end");
        let err = get(&regs, &format!("http://127.0.0.1:{port}/missing"))
            .await
            .expect_err("404");
        assert!(err.to_string().contains("404"), "{err}");
        server.join().expect("server");
    }
}
