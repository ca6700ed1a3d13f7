//! Parsers for flag values, matching the docker CLI's accepted syntax and error wording:
//! memory sizes (`64m`, `1g`), `--cpus` (exact rationals → NanoCpus), `-p` port specs,
//! `--ulimit`, `--restart`, `--mount`, `--device`, env files, labels, `--filter`, Go durations
//! and the `--since/--until` timestamps.
//!
//! Every parser returns `Err(String)` with the bare reason; [`flag_error`] wraps it in the
//! `invalid argument "<value>" for "<flag>" flag: <reason>` sentence docker prints.

pub mod mount;
pub mod ports;
pub mod time;

use serde_json::{json, Map, Value};

pub use mount::parse_mount;
pub use ports::{add_expose, add_port_spec, PortMap};
pub use time::{parse_go_duration, parse_go_duration_nanos, parse_timestamp};

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
