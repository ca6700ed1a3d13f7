//! `ADD <url>`: a plain HTTP/1.0 GET (redirects followed), the body kept in memory up to a
//! limit. `https` is refused with a clear message: the daemon carries no TLS client for this
//! yet.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::BuildError;

const MAX_BODY: u64 = 1 << 30;
const TIMEOUT: Duration = Duration::from_secs(60);

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

/// Downloads `url`; a non-2xx answer is an error naming the status.
pub fn get(url: &str) -> Result<Vec<u8>, BuildError> {
    let mut url = url.to_owned();
    for _ in 0..5 {
        match get_once(&url)? {
            Answer::Body(b) => return Ok(b),
            Answer::Redirect(to) => {
                url = if to.starts_with("http://") || to.starts_with("https://") {
                    to
                } else {
                    let base = url.split_once("://").map_or("", |(_, r)| r);
                    let host = base.split('/').next().unwrap_or("");
                    format!("http://{host}/{}", to.trim_start_matches('/'))
                };
            }
        }
    }
    Err(BuildError::Invalid(format!(
        "too many redirects fetching {url}"
    )))
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

fn get_once(url: &str) -> Result<Answer, BuildError> {
    let fail = |m: String| BuildError::Invalid(format!("failed to fetch {url}: {m}"));
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(fail("only http:// URLs are supported by ADD here".into()));
    };
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    let path = path.split('#').next().unwrap_or("/").to_owned();
    let addr = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_owned()
    } else {
        format!("{hostport}:80")
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail(format!("no address for {hostport}")))?;
    let mut s = TcpStream::connect_timeout(&sock, TIMEOUT).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: berth-builder\r\nAccept: */*\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    s.take(MAX_BODY + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| fail(e.to_string()))?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("malformed HTTP answer".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| fail("malformed HTTP status line".into()))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    if (300..400).contains(&status) {
        if let Some(loc) = header("location") {
            return Ok(Answer::Redirect(loc));
        }
    }
    if !(200..300).contains(&status) {
        return Err(fail(format!("HTTP status {status}")));
    }
    let mut body = raw.split_off(end + 4);
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < n {
            return Err(fail(format!("short body: {} of {n} bytes", body.len())));
        }
        body.truncate(n);
    }
    Ok(Answer::Body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fetching_from_loopback() {
        assert_eq!(
            file_name("http://h/a/b.tar.gz?x=1"),
            Some("b.tar.gz".into())
        );
        assert_eq!(file_name("http://h/"), None);
        assert_eq!(file_name("http://h"), None);
        assert!(is_url("https://x") && !is_url("ftp://x"));

        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            for reply in [
                "HTTP/1.0 302 Found\r\nLocation: /real\r\n\r\n".to_owned(),
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_owned(),
                "HTTP/1.0 404 Not Found\r\n\r\n".to_owned(),
            ] {
                let (mut c, _) = l.accept().expect("accept");
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                c.write_all(reply.as_bytes()).expect("write");
            }
        });
        let body = get(&format!("http://127.0.0.1:{port}/file")).expect("get");
        assert_eq!(body, b"hello");
        let err = get(&format!("http://127.0.0.1:{port}/missing")).expect_err("404");
        assert!(err.to_string().contains("404"), "{err}");
        server.join().expect("server");
        assert!(get("https://127.0.0.1:1/x").is_err());
    }
}
