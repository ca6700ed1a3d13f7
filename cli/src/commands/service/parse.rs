//! Values of the service flags that have a syntax of their own: `--secret`/`--config`
//! (`name` or `source=,target=,uid=,gid=,mode=`), `--publish` (`[published:]target[/proto]`
//! or `published=,target=,protocol=,mode=`), `--network` (`name` or `name=,alias=`) and
//! `--placement-pref` (`spread=<descriptor>`). Errors are docker's sentences, without the
//! `invalid argument … for … flag:` wrapper ([`crate::opts::flag_error`] adds it).

use serde_json::{json, Value};

/// A `--secret` or `--config` reference before its name is resolved to an ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

impl FileRef {
    /// The spec entry, `id_key`/`name_key` being `SecretID`/`SecretName` or the config pair.
    pub fn to_json(&self, id: &str, id_key: &str, name_key: &str) -> Value {
        json!({
            "File": {"Name": self.target, "UID": self.uid, "GID": self.gid, "Mode": self.mode},
            id_key: id,
            name_key: self.source,
        })
    }
}

/// Parses a number like Go's `strconv.ParseUint(s, 0, 32)`: `0400` and `0o400` octal, `0x`
/// hex, `0b` binary, anything else decimal.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let bad = || format!("strconv.ParseUint: parsing {s:?}: invalid syntax");
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (r, 8)
    } else if let Some(r) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix('0').filter(|r| !r.is_empty()) {
        (r, 8)
    } else {
        (s, 10)
    };
    u32::from_str_radix(digits, radix).map_err(|_| bad())
}

/// `--secret`/`--config`: a bare name, or `source=,target=,uid=,gid=,mode=`.
pub fn parse_file_ref(s: &str) -> Result<FileRef, String> {
    let mut r = FileRef {
        source: String::new(),
        target: String::new(),
        uid: "0".into(),
        gid: "0".into(),
        mode: 0o444,
    };
    if !s.contains('=') {
        r.source = s.to_string();
    } else {
        for field in s.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))?;
            match k.to_ascii_lowercase().as_str() {
                "source" | "src" => r.source = v.to_string(),
                "target" => r.target = v.to_string(),
                "uid" => r.uid = v.to_string(),
                "gid" => r.gid = v.to_string(),
                "mode" => r.mode = parse_mode(v)?,
                _ => return Err(format!("invalid field in secret request: {k}")),
            }
        }
    }
    if r.source.is_empty() {
        return Err("source is required".to_string());
    }
    if r.target.is_empty() {
        r.target = r.source.clone();
    }
    Ok(r)
}

fn port_number(s: &str, what: &str) -> Result<u64, String> {
    s.parse::<u16>()
        .map(u64::from)
        .map_err(|_| format!("invalid {what} port ({s}): must be a number between 0 and 65535"))
}

fn port_range(s: &str) -> Result<(u64, u64), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a, "target")?, port_number(b, "target")?);
            if b < a {
                return Err(format!("invalid range specified for the port: {s}"));
            }
            Ok((a, b))
        }
        None => {
            let p = port_number(s, "target")?;
            Ok((p, p))
        }
    }
}

fn port_config(proto: &str, target: u64, published: u64, mode: &str) -> Value {
    let mut p = json!({"Protocol": proto, "TargetPort": target, "PublishMode": mode});
    if published != 0 {
        p["PublishedPort"] = json!(published);
    }
    p
}

/// `--publish`, long (`published=8080,target=80,protocol=udp,mode=host`) or short
/// (`8080:80/udp`, `80`, ranges `8000-8001:80-81`) syntax: one or more `PortConfig`s.
pub fn parse_publish(s: &str) -> Result<Vec<Value>, String> {
    if s.contains('=') {
        return parse_publish_long(s).map(|p| vec![p]);
    }
    let (ports, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (published, target) = match ports.rsplit_once(':') {
        Some((pubd, _)) if pubd.contains(':') => {
            return Err(format!(
                "hostip is not supported: {s} (publish in swarm mode binds all addresses)"
            ))
        }
        Some((pubd, t)) => (Some(pubd), t),
        None => (None, ports),
    };
    let (t0, t1) = port_range(target)?;
    let (p0, p1) = match published {
        Some(p) if !p.is_empty() => port_range(p)?,
        _ => (0, 0),
    };
    if p0 != 0 && p1 - p0 != t1 - t0 {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {target} and {}",
            published.unwrap_or("")
        ));
    }
    Ok((0..=t1 - t0)
        .map(|i| {
            let published = if p0 == 0 { 0 } else { p0 + i };
            port_config(&proto, t0 + i, published, "ingress")
        })
        .collect())
}

fn parse_publish_long(s: &str) -> Result<Value, String> {
    let (mut proto, mut mode) = ("tcp".to_string(), "ingress".to_string());
    let (mut target, mut published) = (None, 0);
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field {field}"))?;
        match k.to_ascii_lowercase().as_str() {
            "mode" => {
                if !matches!(v, "ingress" | "host") {
                    return Err(format!(
                        "invalid publish mode value ({v}): must be either \"ingress\" or \"host\""
                    ));
                }
                mode = v.to_string();
            }
            "protocol" => {
                if !matches!(v, "tcp" | "udp" | "sctp") {
                    return Err(format!("invalid protocol value '{v}'"));
                }
                proto = v.to_string();
            }
            "target" => target = Some(port_number(v, "target")?),
            "published" => published = port_number(v, "published")?,
            _ => return Err(format!("invalid field key {k}")),
        }
    }
    let target = target.ok_or("missing mandatory field \"target\"")?;
    Ok(port_config(&proto, target, published, &mode))
}

/// `--network`: a name, or `name=N[,alias=A…][,driver-opt=k=v…]`.
pub fn parse_network(s: &str) -> Result<Value, String> {
    if !s.contains('=') {
        return Ok(json!({"Target": s}));
    }
    let mut target = String::new();
    let mut aliases = Vec::new();
    let mut driver_opts = serde_json::Map::new();
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))?;
        match k.to_ascii_lowercase().as_str() {
            "name" | "target" => target = v.to_string(),
            "alias" => aliases.push(Value::String(v.to_string())),
            "driver-opt" => {
                let (ok, ov) = v.split_once('=').ok_or_else(|| {
                    format!("invalid key value pair format in driver options: {v}")
                })?;
                driver_opts.insert(ok.to_string(), Value::String(ov.to_string()));
            }
            _ => return Err(format!("invalid field key {k}")),
        }
    }
    if target.is_empty() {
        return Err(format!("network name/id is not specified: {s}"));
    }
    let mut n = json!({"Target": target});
    if !aliases.is_empty() {
        n["Aliases"] = Value::Array(aliases);
    }
    if !driver_opts.is_empty() {
        n["DriverOpts"] = Value::Object(driver_opts);
    }
    Ok(n)
}

/// `--placement-pref spread=node.labels.zone`.
pub fn parse_placement_pref(s: &str) -> Result<Value, String> {
    let (strategy, arg) = s.split_once('=').ok_or_else(|| {
        "placement preference must be of the format \"<strategy>=<arg>\"".to_string()
    })?;
    if !strategy.eq_ignore_ascii_case("spread") {
        return Err(format!(
            "unsupported placement preference {strategy} (only spread is supported)"
        ));
    }
    Ok(json!({"Spread": {"SpreadDescriptor": arg}}))
}

/// Splits a command line the way a POSIX shell splits words (`--entrypoint`, `--args`):
/// single and double quotes, backslash escapes.
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unterminated quote in {s:?}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_config_references() {
        let r = parse_file_ref("source=db,target=db_pw,uid=100,gid=101,mode=0400").expect("ref");
        assert_eq!(
            r.to_json("ID1", "SecretID", "SecretName"),
            json!({"File": {"Name": "db_pw", "UID": "100", "GID": "101", "Mode": 256},
                   "SecretID": "ID1", "SecretName": "db"})
        );
        let r = parse_file_ref("c1").expect("short");
        assert_eq!(
            (r.target.as_str(), r.mode, r.uid.as_str()),
            ("c1", 0o444, "0")
        );
        let r = parse_file_ref("src=c1,target=/etc/app.conf,mode=0440").expect("config");
        assert_eq!((r.target.as_str(), r.mode), ("/etc/app.conf", 0o440));
        assert_eq!(parse_mode("292"), Ok(292));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_file_ref("target=x").is_err());
        assert!(parse_file_ref("source=x,bogus=1").is_err());
        assert!(parse_file_ref("source=x,mode=abc").is_err());
    }

    #[test]
    fn publish_long_and_short() {
        assert_eq!(
            parse_publish("8080:80").expect("short"),
            vec![
                json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"})
            ]
        );
        assert_eq!(
            parse_publish("53:53/udp").expect("udp")[0]["Protocol"],
            "udp"
        );
        assert_eq!(
            parse_publish("80").expect("target only"),
            vec![json!({"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"})]
        );
        assert_eq!(parse_publish("8000-8001:80-81").expect("range").len(), 2);
        assert_eq!(
            parse_publish("published=8080,target=80,mode=host,protocol=udp").expect("long"),
            vec![
                json!({"Protocol":"udp","TargetPort":80,"PublishedPort":8080,"PublishMode":"host"})
            ]
        );
        assert!(parse_publish("published=8080").is_err());
        assert!(parse_publish("target=80,mode=bridge").is_err());
        assert!(parse_publish("80/xyz").is_err());
        assert!(parse_publish("abc").is_err());
        assert!(parse_publish("1.2.3.4:80:80").is_err());
    }

    #[test]
    fn networks_prefs_and_words() {
        assert_eq!(parse_network("ov1").expect("name"), json!({"Target":"ov1"}));
        assert_eq!(
            parse_network("name=ov1,alias=web,alias=www").expect("long"),
            json!({"Target":"ov1","Aliases":["web","www"]})
        );
        assert!(parse_network("alias=x").is_err());
        assert_eq!(
            parse_placement_pref("spread=node.labels.zone").expect("pref"),
            json!({"Spread":{"SpreadDescriptor":"node.labels.zone"}})
        );
        assert!(parse_placement_pref("binpack=x").is_err());
        assert_eq!(
            shell_words(r#"sh -c "echo 'hi there'" a\ b"#).expect("words"),
            vec!["sh", "-c", "echo 'hi there'", "a b"]
        );
        assert!(shell_words("'open").is_err());
    }
}
