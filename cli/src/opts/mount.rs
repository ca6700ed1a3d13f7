//! Filesystem flags: `--mount` CSV specs, `-v` volume specs, and `--security-opt` values that
//! name a local file (a seccomp profile is sent inline, as docker does).

use serde_json::{json, Map, Value};

use super::parse_ram;

fn parse_bool_opt(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None => Ok(true),
        Some("1" | "true" | "True" | "TRUE" | "t" | "T") => Ok(true),
        Some("0" | "false" | "False" | "FALSE" | "f" | "F") => Ok(false),
        Some(other) => Err(format!("invalid value for {key}: {other}")),
    }
}

/// Parses `--mount type=bind,source=/a,target=/b,readonly` into a Mount object.
pub fn parse_mount(s: &str) -> Result<Value, String> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = Map::new();
    let mut driver_opts = Map::new();
    let mut driver: Option<String> = None;
    for field in s.split(',') {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "type" => kind = need(val)?,
            "source" | "src" => {
                m.insert("Source".into(), Value::String(need(val)?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), Value::String(need(val)?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), Value::Bool(parse_bool_opt(&key, val)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), Value::String(need(val)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), Value::String(need(val)?));
            }
            "bind-nonrecursive" => {
                bind.insert(
                    "NonRecursive".into(),
                    Value::Bool(parse_bool_opt(&key, val)?),
                );
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), Value::Bool(parse_bool_opt(&key, val)?));
            }
            "volume-label" => {
                let v = need(val)?;
                let (k, lv) = v.split_once('=').unwrap_or((&v, ""));
                labels.insert(k.to_string(), Value::String(lv.to_string()));
            }
            "volume-driver" => driver = Some(need(val)?),
            "volume-opt" => {
                let v = need(val)?;
                let (k, ov) = v.split_once('=').unwrap_or((&v, ""));
                driver_opts.insert(k.to_string(), Value::String(ov.to_string()));
            }
            "tmpfs-size" => {
                let v = need(val)?;
                tmpfs.insert("SizeBytes".into(), Value::from(parse_ram(&v)?));
            }
            "tmpfs-mode" => {
                let v = need(val)?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("invalid value for {key}: {v}"))?;
                tmpfs.insert("Mode".into(), Value::from(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !matches!(
        kind.as_str(),
        "bind" | "volume" | "tmpfs" | "npipe" | "cluster"
    ) {
        return Err(format!("invalid mount type: {kind}"));
    }
    if !m.contains_key("Target") {
        return Err("target is required".to_string());
    }
    if kind == "bind" && !m.contains_key("Source") {
        return Err("source is required when specifying bind mount".to_string());
    }
    m.insert("Type".into(), Value::String(kind.clone()));
    if !bind.is_empty() {
        if kind != "bind" {
            return Err(format!(
                "cannot mix 'bind-*' options with mount type '{kind}'"
            ));
        }
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(labels));
    }
    if driver.is_some() || !driver_opts.is_empty() {
        volume.insert(
            "DriverConfig".into(),
            json!({"Name": driver.unwrap_or_default(), "Options": Value::Object(driver_opts)}),
        );
    }
    if !volume.is_empty() {
        if kind != "volume" {
            return Err(format!(
                "cannot mix 'volume-*' options with mount type '{kind}'"
            ));
        }
        m.insert("VolumeOptions".into(), Value::Object(volume));
    }
    if !tmpfs.is_empty() {
        if kind != "tmpfs" {
            return Err(format!(
                "cannot mix 'tmpfs-*' options with mount type '{kind}'"
            ));
        }
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

/// The errno text docker shows for an I/O error (`no such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// What a `-v` value turns into.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    /// `-v /data`: an anonymous volume listed in `Volumes`.
    Anonymous(String),
    /// `-v src:dst[:opts]`: an entry of `HostConfig.Binds` (relative host paths made absolute).
    Bind(String),
}

/// Splits a `-v` value.
pub fn split_volume(spec: &str) -> Result<VolumeSpec, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [path] => {
            if !path.starts_with('/') {
                return Err(format!("invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{path}' mount path must be absolute"));
            }
            Ok(VolumeSpec::Anonymous(path.to_string()))
        }
        [src, rest @ ..] if rest.len() <= 2 => {
            if src.is_empty() || rest[0].is_empty() {
                return Err(format!("invalid volume specification: '{spec}'"));
            }
            let src = if src.starts_with('.') {
                match std::env::current_dir() {
                    Ok(cwd) => normalize(&cwd.join(src)),
                    Err(_) => src.to_string(),
                }
            } else {
                src.to_string()
            };
            let mut out = src;
            for r in rest {
                out.push(':');
                out.push_str(r);
            }
            Ok(VolumeSpec::Bind(out))
        }
        _ => Err(format!("invalid volume specification: '{spec}'")),
    }
}

/// Lexically cleans a path (`/a/./b/../c` → `/a/c`).
fn normalize(p: &std::path::Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().to_string()),
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// `seccomp=<file>` is sent as the file's JSON content, as docker does.
pub fn expand_security_opt(s: &str) -> Result<String, String> {
    let Some((key, value)) = s.split_once(['=', ':']) else {
        if s == "no-new-privileges" {
            return Ok(s.to_string());
        }
        return Err(format!("Invalid --security-opt: {s:?}"));
    };
    if key == "seccomp" && value != "unconfined" && value != "builtin" {
        let content = std::fs::read(value).map_err(|e| {
            format!(
                "opening seccomp profile ({value}) failed: {}",
                io_reason(&e)
            )
        })?;
        let parsed: Value = serde_json::from_slice(&content)
            .map_err(|e| format!("compacting json for seccomp profile ({value}) failed: {e}"))?;
        return Ok(format!("seccomp={parsed}"));
    }
    Ok(format!("{key}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        assert_eq!(
            parse_mount("type=bind,source=/a,target=/b,readonly"),
            Ok(json!({"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true}))
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m"),
            Ok(json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864}}))
        );
        assert_eq!(
            parse_mount("src=v1,dst=/data"),
            Ok(json!({"Type":"volume","Source":"v1","Target":"/data"}))
        );
        assert!(parse_mount("type=bind,target=/b").is_err());
        assert!(parse_mount("type=volume,source=x").is_err());
    }

    #[test]
    fn volume_specs() {
        assert_eq!(
            split_volume("/data"),
            Ok(VolumeSpec::Anonymous("/data".into()))
        );
        assert_eq!(
            split_volume("v1:/data:ro"),
            Ok(VolumeSpec::Bind("v1:/data:ro".into()))
        );
        assert!(split_volume("data").is_err());
        assert!(split_volume("a:b:c:d").is_err());
        match split_volume("./x:/y") {
            Ok(VolumeSpec::Bind(b)) => assert!(b.starts_with('/') && b.ends_with("/x:/y"), "{b}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
