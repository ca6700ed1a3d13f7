//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! ```text
//!  X-Registry-Auth (base64url JSON) ─► Credentials { username, password | auth | identitytoken }
//!  GET /v2/ → 401 WWW-Authenticate: Bearer realm="…",service="…"  ─► Challenge::Bearer
//!                                   Basic realm="…"                ─► Challenge::Basic
//! ```

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// What a client sent as `X-Registry-Auth` or the body of `POST /auth`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// `base64(user:password)`, as config files store it.
    pub auth: String,
    pub serveraddress: String,
    pub identitytoken: String,
    pub registrytoken: String,
}

impl Credentials {
    /// Credentials from the decoded header; `None` when it carries none.
    pub fn from_value(v: Option<&Value>) -> Option<Credentials> {
        let v = v?;
        let mut obj = serde_json::Map::new();
        for (k, val) in v.as_object()? {
            obj.insert(k.to_ascii_lowercase(), val.clone());
        }
        let mut c: Credentials = serde_json::from_value(Value::Object(obj)).ok()?;
        if c.username.is_empty() && !c.auth.is_empty() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(c.auth.trim()) {
                let s = String::from_utf8_lossy(&raw).into_owned();
                if let Some((u, p)) = s.split_once(':') {
                    c.username = u.to_owned();
                    c.password = p.to_owned();
                }
            }
        }
        let usable =
            !c.username.is_empty() || !c.identitytoken.is_empty() || !c.registrytoken.is_empty();
        usable.then_some(c)
    }

    /// `Basic base64(user:password)`.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// How a registry wants to be authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: String },
}

/// Parses a `WWW-Authenticate` value; unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm");
        (!realm.is_empty()).then(|| Challenge::Bearer {
            realm,
            service: get("service"),
        })
    } else {
        None
    }
}

/// Why a registry refused a request that carried a token: the `error` parameter of its Bearer
/// challenge (RFC 6750 §3.1), worded as Docker words it.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// `insufficient_scope`: the token does not grant the access asked for.
    Denied(String),
    /// `invalid_token`: expired, malformed or not signed by a trusted issuer.
    Unauthorized(String),
}

/// Reads the refusal of a `WWW-Authenticate: Bearer …,error="…"` value; `None` for other
/// schemes and for challenges without an `error`.
pub fn refusal(header: &str) -> Option<Refusal> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let description = get("error_description");
    match get("error")? {
        "insufficient_scope" => Some(Refusal::Denied(format!(
            "denied: {}",
            description.unwrap_or("requested access to the resource is denied")
        ))),
        "invalid_token" => Some(Refusal::Unauthorized(format!(
            "unauthorized: {}",
            description.unwrap_or("authentication required")
        ))),
        _ => None,
    }
}

/// `k1="v, 1",k2=v2` → pairs; quoted values may hold commas and `\"`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
}

/// The token endpoint's answer (`token`, or OAuth's `access_token`).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    /// Seconds the token is valid for (read leniently: some servers send floats).
    #[serde(default)]
    expires_in: Option<Value>,
}

impl TokenResponse {
    /// `expires_in` in whole seconds, when the server gave a usable number.
    pub fn expires_in(&self) -> Option<u64> {
        let v = self.expires_in.as_ref()?;
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    }

    pub fn into_token(self) -> Option<String> {
        [self.token, self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into()
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
        assert_eq!(parse_challenge("Negotiate abc"), None);
        let p = parse_params(r#"a="x\"y, z", b=plain ,c="""#);
        assert_eq!(
            p,
            vec![
                ("a".into(), "x\"y, z".into()),
                ("b".into(), "plain".into()),
                ("c".into(), String::new())
            ]
        );
    }

    #[test]
    fn token_responses() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).expect("json");
        assert_eq!(t.expires_in(), Some(300));
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"t","expires_in":"soon"}"#).expect("json");
        assert_eq!(t.expires_in(), None);
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"t","expires_in":60.5}"#).expect("json");
        assert_eq!(t.expires_in(), Some(60));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).expect("json");
        assert_eq!(t.into_token(), None);
    }

    #[test]
    fn bearer_refusals_read_like_docker() {
        assert_eq!(
            refusal(
                r#"Bearer realm="http://a/token",service="s",scope="repository:x:pull",error="insufficient_scope""#
            ),
            Some(Refusal::Denied(
                "denied: requested access to the resource is denied".into()
            ))
        );
        assert_eq!(
            refusal(r#"Bearer realm="r",error="invalid_token",error_description="token expired""#),
            Some(Refusal::Unauthorized("unauthorized: token expired".into()))
        );
        assert_eq!(refusal(r#"Bearer realm="r",service="s""#), None);
        assert_eq!(
            refusal(r#"Basic realm="r",error="insufficient_scope""#),
            None
        );
        assert_eq!(refusal("Bearer"), None);
    }

    #[test]
    fn credentials_from_header_json() {
        assert_eq!(Credentials::from_value(None), None);
        assert_eq!(Credentials::from_value(Some(&json!({}))), None);
        let c = Credentials::from_value(Some(&json!({
            "username": "u", "password": "p", "serveraddress": "127.0.0.1:5000"
        })))
        .expect("creds");
        assert_eq!(c.basic().as_deref(), Some("Basic dTpw"));
        let c = Credentials::from_value(Some(&json!({ "auth": "dTpw" }))).expect("auth");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let c = Credentials::from_value(Some(&json!({ "Username": "U", "Password": "P" })))
            .expect("capitalised keys");
        assert_eq!(c.username, "U");
    }
}
