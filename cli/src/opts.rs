//! Parsers for flag values, matching the docker CLI's accepted syntax and error wording:
//! memory sizes (`64m`, `1g`), `--cpus` (exact rationals → NanoCpus), `-p` port specs,
//! `--ulimit`, `--restart`, `--mount`, `--device`, env files, labels, `--filter`, Go durations
//! and the `--since/--until` timestamps.
//!
//! Every parser returns `Err(String)` with the bare reason; [`flag_error`] wraps it in the
//! `invalid argument "<value>" for "<flag>" flag: <reason>` sentence docker prints.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// `invalid argument "64x" for "-m, --memory" flag: invalid size: '64x'`.
pub fn flag_error(value: &str, flag: &str, reason: &str) -> String {
    format!("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")
}

/// Parses a size like docker's `units.RAMInBytes`: `64m`, `1g`, `512k`, `1.5GB`, `10 MiB`,
/// `1024`; the multipliers are binary (k = 1024). Errors read `invalid size: '<value>'` or
/// `invalid suffix: '<suffix>'`.
pub fn parse_ram(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing \"{num}\": invalid syntax"))?;
    if size < 0.0 || !size.is_finite() {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let mult: f64 = match lower.as_bytes()[0] {
        b'b' if lower.len() == 1 => return Ok(size as i64),
        b'k' => 1024f64,
        b'm' => 1024f64.powi(2),
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    match lower.len() {
        2 if &lower[1..] != "b" => return Err(bad()),
        3 if &lower[1..] != "ib" => return Err(bad()),
        _ => {}
    }
    Ok((size * mult) as i64)
}

/// Parses `--cpus` like docker's `NanoCPUs`: the value must be an exact rational whose product
/// with 10^9 is an integer (`0.5` → 500000000, `1/4` → 250000000).
pub fn parse_nano_cpus(s: &str) -> Result<i64, String> {
    let not_rational = || format!("failed to parse {s} as a rational number");
    if let Some((num, den)) = s.split_once('/') {
        let n: i128 = num.trim().parse().map_err(|_| not_rational())?;
        let d: i128 = den.trim().parse().map_err(|_| not_rational())?;
        if d == 0 {
            return Err(not_rational());
        }
        let scaled = n * 1_000_000_000;
        if scaled % d != 0 {
            return Err("value is too precise".to_string());
        }
        return i64::try_from(scaled / d).map_err(|_| "value is too large".to_string());
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (
            &s[..i],
            s[i + 1..].parse::<i32>().map_err(|_| not_rational())?,
        ),
        None => (s, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return Err(not_rational());
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err("value is too large".to_string());
    }
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| not_rational())?
    };
    let mut scale = exp + 9 - frac_part.len() as i32;
    while scale > 0 {
        value = value.checked_mul(10).ok_or("value is too large")?;
        scale -= 1;
    }
    while scale < 0 {
        if value % 10 != 0 {
            return Err("value is too precise".to_string());
        }
        value /= 10;
        scale += 1;
    }
    let value = if neg { -value } else { value };
    i64::try_from(value).map_err(|_| "value is too large".to_string())
}

/// `ExposedPorts` and `PortBindings` of a create body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PortMap {
    pub exposed: BTreeMap<String, ()>,
    pub bindings: BTreeMap<String, Vec<(String, String)>>,
}

impl PortMap {
    pub fn exposed_json(&self) -> Value {
        Value::Object(
            self.exposed
                .keys()
                .map(|k| (k.clone(), json!({})))
                .collect(),
        )
    }

    pub fn bindings_json(&self) -> Value {
        Value::Object(
            self.bindings
                .iter()
                .map(|(k, v)| {
                    let list: Vec<Value> = v
                        .iter()
                        .map(|(ip, port)| json!({"HostIp": ip, "HostPort": port}))
                        .collect();
                    (k.clone(), Value::Array(list))
                })
                .collect(),
        )
    }
}

fn parse_port_range(s: &str) -> Result<(u64, u64), String> {
    if s.is_empty() {
        return Err("empty string specified for ports.".to_string());
    }
    match s.split_once('-') {
        None => {
            let p: u16 = s.parse().map_err(|_| format!("invalid port: {s}"))?;
            Ok((p as u64, p as u64))
        }
        Some((a, b)) => {
            let start: u16 = a.parse().map_err(|_| format!("invalid port: {s}"))?;
            let end: u16 = b.parse().map_err(|_| format!("invalid port: {s}"))?;
            if end < start {
                return Err(format!("invalid range specified for the port: {s}"));
            }
            Ok((start as u64, end as u64))
        }
    }
}

/// Adds one `-p` spec (`[ip:][hostPort:]containerPort[/proto]`, ranges allowed) to `map`.
pub fn add_port_spec(map: &mut PortMap, raw: &str) -> Result<(), String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((p, proto)) if !proto.is_empty() => (p, proto.to_ascii_lowercase()),
        Some((p, _)) => (p, "tcp".to_string()),
        None => (container, "tcp".to_string()),
    };
    if ip.starts_with('[') && ip.ends_with(']') {
        ip = ip[1..ip.len() - 1].to_string();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let count = end - start + 1;
    for i in 0..count {
        let key = format!("{}/{}", start + i, proto);
        let mut hport = String::new();
        if !host_port.is_empty() {
            hport = (hstart + i).to_string();
            if count == 1 && hstart != hend {
                hport = format!("{hport}-{hend}");
            }
        }
        map.exposed.insert(key.clone(), ());
        map.bindings
            .entry(key)
            .or_default()
            .push((ip.clone(), hport));
    }
    Ok(())
}

/// Adds an `--expose` value (`80`, `8000-8010/udp`) to `map.exposed`.
pub fn add_expose(map: &mut PortMap, raw: &str) -> Result<(), String> {
    let (ports, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let (start, end) = parse_port_range(ports)
        .map_err(|e| format!("invalid range format for --expose: {raw}, error: {e}"))?;
    for p in start..=end {
        map.exposed.insert(format!("{p}/{proto}"), ());
    }
    Ok(())
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Parses `--ulimit name=soft[:hard]` into `{"Name","Soft","Hard"}`.
pub fn parse_ulimit(s: &str) -> Result<Value, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let vals: Vec<&str> = limits.split(':').collect();
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"))
    };
    let (soft, hard) = match vals.as_slice() {
        [soft] => {
            let s = parse(soft)?;
            (s, s)
        }
        [soft, hard] => (parse(soft)?, parse(hard)?),
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// Parses `--restart` (`no`, `always`, `unless-stopped`, `on-failure[:N]`).
pub fn parse_restart(s: &str) -> Result<Value, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match name {
        "" | "no" | "always" | "unless-stopped" => {
            if count.is_some() {
                return Err(format!(
                    "maximum retry count cannot be used with restart policy '{name}'"
                ));
            }
            let name = if name.is_empty() { "no" } else { name };
            Ok(json!({"Name": name, "MaximumRetryCount": 0}))
        }
        "on-failure" => {
            let n = match count {
                None => 0,
                Some(c) => c
                    .parse::<i64>()
                    .map_err(|_| format!("maximum retry count must be an integer: {c}"))?,
            };
            if n < 0 {
                return Err(format!(
                    "invalid restart policy: maximum retry count cannot be negative: {n}"
                ));
            }
            Ok(json!({"Name": "on-failure", "MaximumRetryCount": n}))
        }
        other => Err(format!("invalid restart policy '{other}'")),
    }
}

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

/// Parses `--device /dev/a[:/dev/b[:rwm]]`.
pub fn parse_device(s: &str) -> Result<Value, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let valid_perms = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, x] if valid_perms(x) => (*h, *h, *x),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => {
            if !valid_perms(p) {
                return Err(format!("invalid device mode: {p}"));
            }
            (*h, *c, *p)
        }
        _ => return Err(format!("invalid device specification: {s}")),
    };
    if host.is_empty() {
        return Err(format!("invalid device specification: {s}"));
    }
    Ok(json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}))
}

/// Resolves a `-e` value: `K=V` as is, `K` from this process's environment when set.
pub fn resolve_env(s: &str) -> Result<String, String> {
    if s.starts_with('=') {
        return Err(format!("invalid environment variable: {s}"));
    }
    if s.contains('=') {
        return Ok(s.to_string());
    }
    Ok(match std::env::var(s) {
        Ok(v) => format!("{s}={v}"),
        Err(_) => s.to_string(),
    })
}

/// Parses an env file: `K=V` lines, `K` alone taken from the environment (and dropped when
/// unset), blank lines and `#` comments skipped.
pub fn parse_env_file(
    content: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (line, None),
        };
        if name.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if name.contains(char::is_whitespace) {
            return Err(format!(
                "variable '{name}' contains whitespaces (line {})",
                i + 1
            ));
        }
        match value {
            Some(v) => out.push(format!("{name}={v}")),
            None => {
                if let Some(v) = lookup(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// Parses label lines (`--label k=v`, `--label k`, label files) into a map.
pub fn parse_labels<S: AsRef<str>>(items: &[S]) -> Map<String, Value> {
    let mut m = Map::new();
    for item in items {
        let item = item.as_ref();
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    m
}

/// Parses `KEY=VALUE` options (`--opt`, `--log-opt`, `--sysctl`) into a map.
pub fn parse_kv_map<S: AsRef<str>>(items: &[S], what: &str) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for item in items {
        let item = item.as_ref();
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("invalid {what}: {item} (expected key=value)"))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

/// Validates `--add-host host:ip` (or `host=ip`) and returns the `host:ip` form.
pub fn parse_add_host(s: &str) -> Result<String, String> {
    let bad = || format!("bad format for add-host: \"{s}\"");
    let (host, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(bad)?;
    if host.is_empty() || ip.is_empty() {
        return Err(bad());
    }
    let ip_trim = ip.trim_start_matches('[').trim_end_matches(']');
    if ip_trim != "host-gateway" && ip_trim.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: \"{ip}\""));
    }
    Ok(format!("{host}:{ip_trim}"))
}

/// Parses `--filter k=v` values into the map form `{"k":{"v":true}}`.
pub fn parse_filters<S: AsRef<str>>(items: &[S]) -> Result<Value, String> {
    let mut m: Map<String, Value> = Map::new();
    for item in items {
        let item = item.as_ref();
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {item}"))?;
        let entry = m
            .entry(k.trim().to_ascii_lowercase())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(inner) = entry {
            inner.insert(v.trim().to_string(), Value::Bool(true));
        }
    }
    Ok(Value::Object(m))
}

/// Parses a Go duration (`1h30m`, `10s`, `1.5h`, `300ms`) into seconds.
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += n * mult;
    }
    Ok(if neg { -total } else { total })
}

/// Converts a `--since/--until` value into what the API takes (`unix[.nanos]`): a Go duration
/// (relative to `now_unix`), a unix timestamp, or an RFC 3339-like date/time.
pub fn parse_timestamp(value: &str, now_unix: f64) -> Result<String, String> {
    if value != "0" {
        if let Ok(d) = parse_go_duration(value) {
            return Ok(format!("{}", (now_unix - d).floor() as i64));
        }
    }
    if let Some((secs, nanos)) = value.split_once('.') {
        if !secs.is_empty()
            && secs.chars().all(|c| c.is_ascii_digit())
            && nanos.chars().all(|c| c.is_ascii_digit())
        {
            return Ok(value.to_string());
        }
    } else if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        return Ok(value.to_string());
    }
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let out = |t: chrono::DateTime<chrono::FixedOffset>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(out(t));
    }
    let local = |naive: NaiveDateTime| -> Option<String> {
        chrono::Local
            .from_local_datetime(&naive)
            .single()
            .map(|t| out(t.fixed_offset()))
    };
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(value, layout) {
            if let Some(s) = local(n) {
                return Ok(s);
            }
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(s) = d.and_hms_opt(0, 0, 0).and_then(local) {
            return Ok(s);
        }
    }
    Err(format!(
        "failed to parse value as time or duration: \"{value}\""
    ))
}

/// Parses `--tmpfs /path[:opts]` entries into the `Tmpfs` map.
pub fn parse_tmpfs<S: AsRef<str>>(items: &[S]) -> Map<String, Value> {
    let mut m = Map::new();
    for item in items {
        let item = item.as_ref();
        let (path, opts) = item.split_once(':').unwrap_or((item, ""));
        m.insert(path.to_string(), Value::String(opts.to_string()));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("64m"), Ok(67_108_864));
        assert_eq!(parse_ram("1g"), Ok(1_073_741_824));
        assert_eq!(parse_ram("1GB"), Ok(1_073_741_824));
        assert_eq!(parse_ram("512k"), Ok(524_288));
        assert_eq!(parse_ram("1.5m"), Ok(1_572_864));
        assert_eq!(parse_ram("1024"), Ok(1024));
        assert_eq!(parse_ram("10 MiB"), Ok(10_485_760));
        assert_eq!(parse_ram("64x"), Err("invalid suffix: 'x'".to_string()));
        assert_eq!(parse_ram("1kbb"), Err("invalid suffix: 'kbb'".to_string()));
        assert_eq!(parse_ram("abc"), Err("invalid size: 'abc'".to_string()));
        assert_eq!(parse_ram("-1"), Err("invalid size: '-1'".to_string()));
        assert!(parse_ram("").is_err());
        assert!(parse_ram("1.2.3m").is_err());
        assert_eq!(
            flag_error(
                "64x",
                "-m, --memory",
                &parse_ram("64x").expect_err("64x is invalid")
            ),
            "invalid argument \"64x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
    }

    #[test]
    fn nano_cpus() {
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus("1.25"), Ok(1_250_000_000));
        assert_eq!(parse_nano_cpus("1/4"), Ok(250_000_000));
        assert_eq!(parse_nano_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("1e-3"), Ok(1_000_000));
        assert_eq!(
            parse_nano_cpus("0.0000000001"),
            Err("value is too precise".to_string())
        );
        assert_eq!(
            parse_nano_cpus("abc"),
            Err("failed to parse abc as a rational number".to_string())
        );
    }

    #[test]
    fn port_specs() {
        let mut m = PortMap::default();
        add_port_spec(&mut m, "127.0.0.1:8081:80").expect("spec");
        add_port_spec(&mut m, "53:53/udp").expect("spec");
        add_port_spec(&mut m, "9000").expect("spec");
        add_port_spec(&mut m, "[::1]:8443:443").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![("127.0.0.1".to_string(), "8081".to_string())]
        );
        assert_eq!(
            m.bindings["53/udp"],
            vec![(String::new(), "53".to_string())]
        );
        assert_eq!(m.bindings["9000/tcp"], vec![(String::new(), String::new())]);
        assert_eq!(
            m.bindings["443/tcp"],
            vec![("::1".to_string(), "8443".to_string())]
        );
        assert_eq!(
            m.exposed_json(),
            serde_json::json!({"443/tcp":{}, "53/udp":{}, "80/tcp":{}, "9000/tcp":{}})
        );
    }

    #[test]
    fn port_ranges() {
        let mut m = PortMap::default();
        add_port_spec(&mut m, "8000-8001:80-81").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![(String::new(), "8000".to_string())]
        );
        assert_eq!(
            m.bindings["81/tcp"],
            vec![(String::new(), "8001".to_string())]
        );
        let mut m = PortMap::default();
        add_port_spec(&mut m, "8000-8010:80").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![(String::new(), "8000-8010".to_string())]
        );
        let mut m = PortMap::default();
        assert_eq!(
            add_port_spec(&mut m, "8000-8002:80-81"),
            Err(
                "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
                    .to_string()
            )
        );
        assert_eq!(
            add_port_spec(&mut m, "80/xyz"),
            Err("invalid proto: xyz".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "abc"),
            Err("invalid containerPort: abc".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "x:80"),
            Err("invalid hostPort: x".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "1.2.3:80:80"),
            Err("invalid IP address: 1.2.3".to_string())
        );
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048"),
            Ok(json!({"Name":"nofile","Soft":1024,"Hard":2048}))
        );
        assert_eq!(
            parse_ulimit("nproc=64"),
            Ok(json!({"Name":"nproc","Soft":64,"Hard":64}))
        );
        assert_eq!(
            parse_ulimit("bogus=1"),
            Err("invalid ulimit type: bogus".to_string())
        );
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            parse_restart("no"),
            Ok(json!({"Name":"no","MaximumRetryCount":0}))
        );
        assert_eq!(
            parse_restart("on-failure:3"),
            Ok(json!({"Name":"on-failure","MaximumRetryCount":3}))
        );
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

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
    fn env_files_and_envs() {
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let got =
            parse_env_file("# c\nA=1\n\n  B=two words\nHOME_X\nMISSING\n", lookup).expect("parse");
        assert_eq!(got, vec!["A=1", "B=two words", "HOME_X=/root"]);
        assert!(parse_env_file("BAD NAME=1", lookup).is_err());
        assert_eq!(resolve_env("A=b"), Ok("A=b".to_string()));
        assert!(resolve_env("=b").is_err());
    }

    #[test]
    fn filters_map_form() {
        let f = parse_filters(&["status=exited", "label=a=b", "status=created"]).expect("filters");
        assert_eq!(
            f,
            json!({"status":{"exited":true,"created":true},"label":{"a=b":true}})
        );
        assert!(parse_filters(&["nokey"]).is_err());
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(parse_go_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_go_duration("300ms"), Ok(0.3));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("10x").is_err());
        assert_eq!(parse_timestamp("10m", 1000.0), Ok("400".to_string()));
        assert_eq!(
            parse_timestamp("1700000000", 0.0),
            Ok("1700000000".to_string())
        );
        assert_eq!(
            parse_timestamp("1700000000.5", 0.0),
            Ok("1700000000.5".to_string())
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", 0.0),
            Ok("1700000000.000000000".to_string())
        );
        assert!(parse_timestamp("garbage", 0.0).is_err());
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_add_host("db:10.0.0.2"), Ok("db:10.0.0.2".to_string()));
        assert_eq!(parse_add_host("db=::1"), Ok("db:::1".to_string()));
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host("db:notanip").is_err());
        assert_eq!(
            parse_device("/dev/fuse"),
            Ok(
                json!({"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"})
            )
        );
        assert_eq!(parse_tmpfs(&["/run:rw,size=64m", "/tmp"]), {
            let mut m = Map::new();
            m.insert("/run".into(), json!("rw,size=64m"));
            m.insert("/tmp".into(), json!(""));
            m
        });
        let mut ports = PortMap::default();
        add_expose(&mut ports, "7000-7001/udp").expect("expose");
        assert!(ports.exposed.contains_key("7001/udp"));
    }
}
