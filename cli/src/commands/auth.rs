//! Registry credentials (`login`/`logout`) and the `X-Registry-Auth` header.
//!
//! Credentials live in `$BERTH_CONFIG/config.json` (default `~/.berth/config.json`) as
//! `{"auths": {"<server>": {"auth": base64("user:password")}}}`, the layout docker uses.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use clap::Args;
use serde_json::{json, Map, Value};

use crate::client::Client;

/// The key Docker Hub credentials are stored under.
pub const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";

fn config_path() -> PathBuf {
    let dir = std::env::var_os("BERTH_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".berth")))
        .unwrap_or_else(|| PathBuf::from(".berth"));
    dir.join("config.json")
}

fn load() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

fn save(v: &Value) -> Result<()> {
    let path = config_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(v).context("encoding config")?;
    // Credentials: readable by the owner only.
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The config key for a registry host (`docker.io` → the Hub's v1 URL).
pub fn server_key(registry: &str) -> String {
    match registry {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DEFAULT_SERVER.to_string(),
        other => other
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

/// The stored credentials for `key` as the daemon takes them (`username`, `password`,
/// `serveraddress`), if `auth` holds any.
fn credentials(key: &str, entry: &Value) -> Option<Value> {
    let encoded = entry["auth"].as_str()?;
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let (user, pass) = decoded.split_once(':').unwrap_or((&decoded, ""));
    Some(json!({"username": user, "password": pass, "serveraddress": key}))
}

/// `X-Registry-Auth` for `registry`: base64url JSON credentials, `e30=` (`{}`) when none.
pub fn registry_auth(registry: &str) -> String {
    let cfg = load();
    let key = server_key(registry);
    match credentials(&key, &cfg["auths"][&key]) {
        Some(c) => URL_SAFE.encode(c.to_string()),
        None => URL_SAFE.encode("{}"),
    }
}

/// `X-Registry-Config` for builds: every stored credential by server, as base64url JSON, so
/// FROM pulls authenticate.
pub fn registry_config() -> String {
    let cfg = load();
    let all: Map<String, Value> = cfg["auths"]
        .as_object()
        .map(|auths| {
            auths
                .iter()
                .filter_map(|(k, e)| credentials(k, e).map(|c| (k.clone(), c)))
                .collect()
        })
        .unwrap_or_default();
    URL_SAFE.encode(Value::Object(all).to_string())
}

/// `berth login`
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Registry server
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

fn prompt(text: &str, echo: bool) -> Result<String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let raw = if echo {
        None
    } else {
        crate::tty::NoEcho::enter()
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from stdin")?;
    if raw.is_some() {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn login(client: &Client, args: LoginArgs) -> Result<()> {
    let server = server_key(args.server.as_deref().unwrap_or(""));
    if args.password.is_some() && args.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match args.username {
        Some(u) => u,
        None => {
            if args.password_stdin {
                bail!("Must provide --username with --password-stdin");
            }
            prompt("Username: ", true)?
        }
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut s)
            .context("reading password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match args.password {
            Some(p) => p,
            None => prompt("Password: ", false)?,
        }
    };
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    let body = json!({"username": username, "password": password, "serveraddress": server});
    let resp: Value = client.post_json("/auth", Some(&body)).await?;
    let mut cfg = load();
    let auths = cfg
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| json!({})));
    if let Some(Value::Object(auths)) = auths {
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::String(STANDARD.encode(format!("{username}:{password}"))),
        );
        auths.insert(server, Value::Object(entry));
    }
    save(&cfg)?;
    println!("{}", resp["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

/// `berth logout`
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry server
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

pub fn logout(args: LogoutArgs) -> Result<()> {
    let server = server_key(args.server.as_deref().unwrap_or(""));
    let mut cfg = load();
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|a| a.remove(&server))
        .is_some();
    if !removed {
        println!("Not logged in to {server}");
        return Ok(());
    }
    println!("Removing login credentials for {server}");
    save(&cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys() {
        assert_eq!(server_key("docker.io"), DEFAULT_SERVER);
        assert_eq!(server_key(""), DEFAULT_SERVER);
        assert_eq!(server_key("https://127.0.0.1:5000/"), "127.0.0.1:5000");
    }

    #[test]
    fn empty_auth_is_braces() {
        assert_eq!(URL_SAFE.encode("{}"), "e30=");
    }
}
