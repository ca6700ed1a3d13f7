//! `--change` lines of `docker import` (and `docker commit`): the Dockerfile instructions that
//! only touch an image's config, applied to a [`ContainerConfig`].
//!
//! Accepted: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`, `SHELL`,
//! `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`. Exec form (`["a","b"]`) and shell form (wrapped
//! in the image's `Shell`, default `/bin/sh -c`) work as in a Dockerfile, and `ENTRYPOINT`
//! clears a `CMD` not set by an earlier line, as a build does.

use std::collections::BTreeMap;

use berth_api::models::ContainerConfig;
use serde_json::{json, Value};

use crate::image::error::ImageError;

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArgument(msg.into())
}

/// Applies each change line, in order.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ImageError> {
    let mut cmd_set = false;
    for line in changes.iter().flat_map(|c| c.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word.to_ascii_lowercase().as_str() {
            "cmd" => {
                cfg.cmd = command(rest, cfg)?;
                cmd_set = true;
            }
            "entrypoint" => {
                cfg.entrypoint = command(rest, cfg)?;
                if !cmd_set {
                    cfg.cmd.clear();
                }
            }
            "shell" => match json_array(rest) {
                Some(v) if !v.is_empty() => cfg.shell = Some(v),
                _ => {
                    return Err(invalid(format!(
                        "SHELL requires the arguments to be in JSON form: {rest}"
                    )))
                }
            },
            "env" => {
                for (k, v) in key_values(rest, "ENV")? {
                    let prefix = format!("{k}=");
                    let entry = format!("{k}={v}");
                    match cfg
                        .env
                        .iter_mut()
                        .find(|e| e.starts_with(&prefix) || **e == k)
                    {
                        Some(e) => *e = entry,
                        None => cfg.env.push(entry),
                    }
                }
            }
            "label" => {
                for (k, v) in key_values(rest, "LABEL")? {
                    cfg.labels.insert(k, v);
                }
            }
            "expose" => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for spec in words(rest)? {
                    for p in expand_port(&spec)? {
                        ports.insert(p, json!({}));
                    }
                }
            }
            "volume" => {
                let list = json_array(rest).map_or_else(|| words(rest), Ok)?;
                let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for v in list {
                    if v.trim().is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    vols.insert(v, json!({}));
                }
            }
            "workdir" => cfg.working_dir = workdir(&cfg.working_dir, rest)?,
            "user" => cfg.user = nonempty(rest, "USER")?.to_owned(),
            "stopsignal" => cfg.stop_signal = Some(nonempty(rest, "STOPSIGNAL")?.to_owned()),
            "onbuild" => {
                let inner = nonempty(rest, "ONBUILD")?;
                let first = inner
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(invalid(format!(
                        "{first} isn't allowed as an ONBUILD trigger"
                    )));
                }
                cfg.on_build
                    .get_or_insert_with(Vec::new)
                    .push(inner.to_owned());
            }
            "healthcheck" => cfg.healthcheck = Some(healthcheck(rest)?),
            other => return Err(invalid(format!("{other} is not a valid change command"))),
        }
    }
    Ok(())
}

fn nonempty<'a>(rest: &'a str, what: &str) -> Result<&'a str, ImageError> {
    if rest.is_empty() {
        Err(invalid(format!("{what} requires exactly one argument")))
    } else {
        Ok(rest)
    }
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// Exec form as given; shell form wrapped in the config's shell.
fn command(rest: &str, cfg: &ContainerConfig) -> Result<Vec<String>, ImageError> {
    if let Some(v) = json_array(rest) {
        return Ok(v);
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut v = cfg
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    v.push(rest.to_owned());
    Ok(v)
}

/// Splits shell-like words: whitespace separates, quotes group, backslash escapes.
fn words(s: &str) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(invalid(format!("unmatched ' in {s:?}"))),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(invalid(format!("unmatched \" in {s:?}"))),
                        },
                        Some(n) => cur.push(n),
                        None => return Err(invalid(format!("unmatched \" in {s:?}"))),
                    }
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

/// `K=V K2="v 2"`, or the legacy single pair `K some value`.
fn key_values(rest: &str, what: &str) -> Result<Vec<(String, String)>, ImageError> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if first.is_empty() {
        return Err(invalid(format!("{what} requires at least one argument")));
    }
    if !first.contains('=') {
        let value = rest[first.len()..].trim();
        if value.is_empty() {
            return Err(invalid(format!(
                "{what} {first}: must be of the form: name=value"
            )));
        }
        return Ok(vec![(first.to_owned(), words(value)?.join(" "))]);
    }
    words(rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(invalid(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, …
fn expand_port(spec: &str) -> Result<Vec<String>, ImageError> {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || invalid(format!("invalid containerPort: {spec}"));
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn workdir(current: &str, requested: &str) -> Result<String, ImageError> {
    let requested = nonempty(requested, "WORKDIR")?;
    let joined = if requested.starts_with('/') {
        requested.to_owned()
    } else {
        format!("/{current}/{requested}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Go durations as Dockerfiles write them (`30s`, `1m30s`, `500ms`), in nanoseconds.
fn duration_ns(s: &str) -> Result<i64, ImageError> {
    let bad = || invalid(format!("invalid duration {s:?}"));
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

fn healthcheck(rest: &str) -> Result<Value, ImageError> {
    let mut hc = serde_json::Map::new();
    let mut rest = rest.trim();
    if rest.eq_ignore_ascii_case("none") {
        return Ok(json!({ "Test": ["NONE"] }));
    }
    while let Some(flag) = rest.strip_prefix("--") {
        let (opt, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (name, value) = opt
            .split_once('=')
            .ok_or_else(|| invalid(format!("HEALTHCHECK: bad flag --{opt}")))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(invalid(format!("HEALTHCHECK: unknown flag --{name}"))),
        };
        let v = if key == "Retries" {
            json!(value
                .parse::<i64>()
                .map_err(|_| invalid(format!("HEALTHCHECK: bad retries {value:?}")))?)
        } else {
            json!(duration_ns(value)?)
        };
        hc.insert(key.into(), v);
        rest = tail.trim();
    }
    let (kw, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !kw.eq_ignore_ascii_case("cmd") || cmd.trim().is_empty() {
        return Err(invalid("HEALTHCHECK must be NONE or [OPTIONS] CMD command"));
    }
    let test = match json_array(cmd.trim()) {
        Some(v) => std::iter::once("CMD".to_owned()).chain(v).collect(),
        None => vec!["CMD-SHELL".to_owned(), cmd.trim().to_owned()],
    };
    hc.insert("Test".into(), json!(test));
    Ok(Value::Object(hc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(lines: &[&str]) -> Result<ContainerConfig, ImageError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &lines.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn the_usual_changes() {
        let c = apply(&[
            r#"CMD ["/bin/sh"]"#,
            "ENV A=b C=\"d e\"",
            "ENV LEGACY some value",
            "ENV A=z",
            "WORKDIR /x",
            "WORKDIR y/../z",
            "EXPOSE 80 53/udp 8000-8001",
            "USER nobody",
            "LABEL version=1 \"k k\"=v",
            "VOLUME /data /logs",
            "STOPSIGNAL SIGINT",
            "onbuild RUN echo hi",
        ])
        .expect("valid");
        assert_eq!(c.cmd, vec!["/bin/sh"]);
        assert_eq!(c.env, vec!["A=z", "C=d e", "LEGACY=some value"]);
        assert_eq!(c.working_dir, "/x/z");
        let ports: Vec<&String> = c.exposed_ports.as_ref().expect("ports").keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.user, "nobody");
        assert_eq!(c.labels.get("k k").map(String::as_str), Some("v"));
        assert_eq!(c.labels.get("version").map(String::as_str), Some("1"));
        assert_eq!(c.volumes.as_ref().expect("vols").len(), 2);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, Some(vec!["RUN echo hi".to_string()]));
    }

    #[test]
    fn shell_form_entrypoint_and_cmd_rules() {
        let c = apply(&["CMD echo hi", "ENTRYPOINT [\"/e\"]"]).expect("valid");
        assert_eq!(
            c.cmd,
            vec!["/bin/sh", "-c", "echo hi"],
            "CMD set earlier survives ENTRYPOINT"
        );
        assert_eq!(c.entrypoint, vec!["/e"]);
        let c = apply(&["SHELL [\"/bin/bash\",\"-lc\"]", "ENTRYPOINT run me"]).expect("valid");
        assert_eq!(c.entrypoint, vec!["/bin/bash", "-lc", "run me"]);
        let c = apply(&["HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/"])
            .expect("valid");
        let hc = c.healthcheck.expect("hc");
        assert_eq!(hc["Test"], json!(["CMD-SHELL", "curl -f http://x/"]));
        assert_eq!(hc["Interval"], json!(30_000_000_000i64));
        assert_eq!(hc["Retries"], json!(3));
    }

    #[test]
    fn bad_changes_are_rejected_with_the_value() {
        let e = apply(&["RUN rm -rf /"]).expect_err("RUN");
        assert_eq!(e.to_string(), "run is not a valid change command");
        assert!(apply(&["EXPOSE 80/foo"]).is_err());
        assert!(apply(&["EXPOSE abc"]).is_err());
        assert!(apply(&["ENV"]).is_err());
        assert!(apply(&["ENV =x"]).is_err());
        assert!(apply(&["SHELL /bin/sh"]).is_err());
        assert!(apply(&["LABEL a=\"unterminated"]).is_err());
        assert!(apply(&["ONBUILD FROM x"]).is_err());
    }
}
