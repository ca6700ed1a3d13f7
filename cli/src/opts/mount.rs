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
    let mut fields = MountFields {
        kind: "volume".to_string(),
        ..Default::default()
    };
    for field in s.split(',') {
        let field = field.trim();
        if !field.is_empty() {
            fields.set(field)?;
        }
    }
    fields.finish()
}

/// A `--mount` value's fields as they are read: the Mount's own, and each type's options
/// (checked against the type once all are read).
#[derive(Default)]
struct MountFields {
    kind: String,
    mount: Map<String, Value>,
    bind: Map<String, Value>,
    volume: Map<String, Value>,
    tmpfs: Map<String, Value>,
    labels: Map<String, Value>,
    driver_opts: Map<String, Value>,
    driver: Option<String>,
}

impl MountFields {
    /// Reads one `key=value` (or bare `key` for booleans) field.
    fn set(&mut self, field: &str) -> Result<(), String> {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        let flag = |v: Option<&str>| parse_bool_opt(&key, v).map(Value::Bool);
        match key.as_str() {
            "type" => self.kind = need(val)?,
            "source" | "src" => put(&mut self.mount, "Source", need(val)?.into()),
            "target" | "dst" | "destination" => put(&mut self.mount, "Target", need(val)?.into()),
            "readonly" | "ro" => put(&mut self.mount, "ReadOnly", flag(val)?),
            "consistency" => put(&mut self.mount, "Consistency", need(val)?.into()),
            "bind-propagation" => put(&mut self.bind, "Propagation", need(val)?.into()),
            "bind-nonrecursive" => put(&mut self.bind, "NonRecursive", flag(val)?),
            "volume-nocopy" => put(&mut self.volume, "NoCopy", flag(val)?),
            "volume-label" => {
                let v = need(val)?;
                let (k, lv) = v.split_once('=').unwrap_or((&v, ""));
                put(&mut self.labels, k, lv.into());
            }
            "volume-driver" => self.driver = Some(need(val)?),
            "volume-opt" => {
                let v = need(val)?;
                let (k, ov) = v.split_once('=').unwrap_or((&v, ""));
                put(&mut self.driver_opts, k, ov.into());
            }
            "tmpfs-size" => {
                let v = need(val)?;
                put(&mut self.tmpfs, "SizeBytes", Value::from(parse_ram(&v)?));
            }
            "tmpfs-mode" => {
                let v = need(val)?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("invalid value for {key}: {v}"))?;
                put(&mut self.tmpfs, "Mode", Value::from(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
        Ok(())
    }

    /// Checks the type, the required fields and that each option suits the type, and makes
    /// the Mount object.
    fn finish(mut self) -> Result<Value, String> {
        let kind = self.kind.clone();
        if !matches!(
            kind.as_str(),
            "bind" | "volume" | "tmpfs" | "npipe" | "cluster"
        ) {
            return Err(format!("invalid mount type: {kind}"));
        }
        if !self.mount.contains_key("Target") {
            return Err("target is required".to_string());
        }
        if kind == "bind" && !self.mount.contains_key("Source") {
            return Err("source is required when specifying bind mount".to_string());
        }
        self.mount
            .insert("Type".into(), Value::String(kind.clone()));
        if !self.labels.is_empty() {
            self.volume
                .insert("Labels".into(), Value::Object(self.labels));
        }
        if self.driver.is_some() || !self.driver_opts.is_empty() {
            self.volume.insert(
                "DriverConfig".into(),
                json!({"Name": self.driver.unwrap_or_default(), "Options": Value::Object(self.driver_opts)}),
            );
        }
        let options = [
            ("bind", "BindOptions", self.bind),
            ("volume", "VolumeOptions", self.volume),
            ("tmpfs", "TmpfsOptions", self.tmpfs),
        ];
        for (only_for, field, opts) in options {
            if opts.is_empty() {
                continue;
            }
            if kind != only_for {
                return Err(format!(
                    "cannot mix '{only_for}-*' options with mount type '{kind}'"
                ));
            }
            self.mount.insert(field.into(), Value::Object(opts));
        }
        Ok(Value::Object(self.mount))
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.insert(key.to_string(), value);
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
    fn mount_options_must_suit_the_type() {
        assert_eq!(
            parse_mount("type=bind,src=/a,dst=/b,volume-nocopy"),
            Err("cannot mix 'volume-*' options with mount type 'bind'".to_string())
        );
        assert_eq!(
            parse_mount("type=volume,dst=/b,bind-propagation=rshared,tmpfs-mode=700"),
            Err("cannot mix 'bind-*' options with mount type 'volume'".to_string())
        );
        assert_eq!(
            parse_mount("dst=/b,volume-label=a=b,volume-driver=local,volume-opt=o=1,ro=false"),
            Ok(
                json!({"Type":"volume","Target":"/b","ReadOnly":false,"VolumeOptions":{
                "Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"o":"1"}}}})
            )
        );
        assert_eq!(
            parse_mount("dst=/b,color=red"),
            Err("unexpected key 'color' in 'color=red'".to_string())
        );
        assert_eq!(
            parse_mount("dst"),
            Err("invalid field 'dst' must be a key=value pair".to_string())
        );
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
