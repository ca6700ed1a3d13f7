//! Human-readable rendering shared by the commands: sizes (`4.26MB`, `612KiB`), durations
//! (`3 seconds`, `About a minute`), truncation with `…`, short IDs, port lists, and JSON the way
//! the docker CLI prints it (re-indented raw bytes for `inspect`, HTML-escaped compact JSON for
//! `{{json .}}`).

use serde_json::Value;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Formats `x` like Go's `%.<prec>g`: at most `prec` significant digits, trailing zeros removed,
/// exponent notation only for very large or very small magnitudes.
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits first, then look at the exponent of the rounded value.
    let sci = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, x))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn scaled(size: f64, base: f64, units: &[&str]) -> (f64, usize) {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, i)
}

/// Decimal size with 4 significant digits, as docker's `units.HumanSize`: `1.98MB`, `0B`.
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// Decimal size with `prec` significant digits (`units.HumanSizeWithPrecision`).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (v, i) = scaled(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{}", fmt_g(v, prec), DECIMAL_UNITS[i])
}

/// Binary size with 4 significant digits, as docker's `units.BytesSize`: `612KiB`, `64MiB`.
pub fn bytes_size(size: f64) -> String {
    let (v, i) = scaled(size, 1024.0, &BINARY_UNITS);
    format!("{}{}", fmt_g(v, 4), BINARY_UNITS[i])
}

/// A duration in words, as docker's `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the unix time `created` (never negative).
pub fn age_secs(created: i64) -> f64 {
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    (now - created as f64).max(0.0)
}

/// `3 seconds ago` for a unix time.
pub fn ago(created: i64) -> String {
    format!("{} ago", human_duration(age_secs(created)))
}

/// Parses an RFC 3339 timestamp into unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// A unix time in docker's `CreatedAt` layout (`2006-01-02 15:04:05 -0700 MST`), local time.
pub fn created_at(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let zone = if t.offset().local_minus_utc() == 0 {
                "UTC".to_string()
            } else {
                t.format("%:z").to_string()
            };
            format!("{} {}", t.format("%Y-%m-%d %H:%M:%S %z"), zone)
        }
        None => unix.to_string(),
    }
}

/// Shortens `s` to `max` characters, ending in `…` when something was cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The 12-character form of an ID, without any `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// One entry of a container's port list, as `GET /containers/json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    pub ip: String,
    pub private: u16,
    pub public: u16,
    pub proto: String,
}

impl PortEntry {
    /// Reads `{IP, PrivatePort, PublicPort, Type}`.
    pub fn from_json(v: &Value) -> PortEntry {
        PortEntry {
            ip: v["IP"].as_str().unwrap_or("").to_string(),
            private: v["PrivatePort"].as_u64().unwrap_or(0) as u16,
            public: v["PublicPort"].as_u64().unwrap_or(0) as u16,
            proto: v["Type"].as_str().unwrap_or("tcp").to_string(),
        }
    }
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The `PORTS` column of `ps`: consecutive ports collapse into ranges, published ports show
/// `ip:host->ctr/proto`.
pub fn display_ports(ports: &[PortEntry]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.proto).cmp(&(b.private, &b.ip, b.public, &b.proto))
    });
    // (key, first, last) in the order the keys were first seen.
    let mut groups: Vec<(String, String, u16, u16)> = Vec::new();
    let mut finished: Vec<String> = Vec::new();
    let mut mappings: Vec<String> = Vec::new();
    for p in &ports {
        let (ip, key) = if p.ip.is_empty() {
            (String::new(), p.proto.clone())
        } else {
            if p.public != p.private {
                mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.proto
                ));
                continue;
            }
            (p.ip.clone(), format!("{}/{}", p.ip, p.proto))
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, ip, p.private, p.private)),
            Some(g) => {
                if p.private == g.3.wrapping_add(1) {
                    g.3 = p.private;
                } else {
                    finished.push(form_group(&g.1, &p.proto, g.2, g.3));
                    g.2 = p.private;
                    g.3 = p.private;
                }
            }
        }
    }
    for (key, ip, first, last) in &groups {
        let proto = key.rsplit('/').next().unwrap_or("tcp");
        finished.push(form_group(ip, proto, *first, *last));
    }
    finished.extend(mappings);
    finished.join(", ")
}

fn form_group(ip: &str, proto: &str, first: u16, last: u16) -> String {
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{}", join_host_port(ip, &group), group);
    }
    format!("{group}/{proto}")
}

/// Re-indents raw JSON with four spaces, keeping the daemon's key order and escapes (what
/// `docker inspect` prints). Falls back to the input when it is not JSON-shaped.
pub fn indent_json(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Empty containers stay on one line: `{}` and `[]`.
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Compact JSON the way Go's `json.Marshal` writes it (`<`, `>`, `&` escaped), as used by the
/// `{{json ...}}` template function.
pub fn go_json(v: &Value) -> String {
    crate::data::Data::from(v).to_go_json()
}

/// Quotes a string like Go's `strconv.Quote` (used for the `COMMAND` column).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--format` of an `inspect` with `--pretty`: `pretty` alone, never with more.
pub fn inspect_format(pretty: bool, format: Option<String>) -> anyhow::Result<Option<String>> {
    let format = if pretty {
        Some("pretty".to_string())
    } else {
        format
    };
    if let Some(f) = format.as_deref() {
        if f.starts_with("pretty") && f != "pretty" {
            anyhow::bail!("cannot supply extra formatting options to the pretty template");
        }
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_match_docker_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(486.0), "486B");
        assert_eq!(human_size(2048.0), "2.048kB");
        assert_eq!(human_size(3_965_000.0), "3.965MB");
        assert_eq!(human_size_prec(1_981_952.0, 3), "1.98MB");
        assert_eq!(human_size(999_950.0), "1000kB");
        assert_eq!(bytes_size(612.0 * 1024.0), "612KiB");
        assert_eq!(bytes_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(bytes_size(25_275_000_000.0), "23.54GiB");
    }

    #[test]
    fn fmt_g_like_go() {
        assert_eq!(fmt_g(1.5, 4), "1.5");
        assert_eq!(fmt_g(1234.5, 4), "1234");
        assert_eq!(fmt_g(12345.0, 4), "1.234e+04");
        assert_eq!(fmt_g(0.00001234, 4), "1.234e-05");
        assert_eq!(fmt_g(100.0, 3), "100");
    }

    #[test]
    fn durations_match_docker_units() {
        assert_eq!(human_duration(0.2), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(3.0), "3 seconds");
        assert_eq!(human_duration(65.0), "About a minute");
        assert_eq!(human_duration(150.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(3.0 * 3600.0), "3 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn ellipsis_cuts_with_marker() {
        assert_eq!(ellipsis("httpd -f -p 80", 20), "httpd -f -p 80");
        assert_eq!(ellipsis("abcdefghij", 5), "abcd…");
        assert_eq!(short_id("sha256:7cebfa74603a709f9ebee7b0"), "7cebfa74603a");
    }

    #[test]
    fn ports_like_ps() {
        let ports = vec![
            PortEntry {
                ip: "0.0.0.0".into(),
                private: 80,
                public: 8080,
                proto: "tcp".into(),
            },
            PortEntry {
                ip: "::".into(),
                private: 80,
                public: 8080,
                proto: "tcp".into(),
            },
        ];
        assert_eq!(
            display_ports(&ports),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        let exposed: Vec<PortEntry> = (80..=82)
            .map(|p| PortEntry {
                ip: String::new(),
                private: p,
                public: 0,
                proto: "tcp".into(),
            })
            .chain(std::iter::once(PortEntry {
                ip: String::new(),
                private: 53,
                public: 0,
                proto: "udp".into(),
            }))
            .collect();
        assert_eq!(display_ports(&exposed), "53/udp, 80-82/tcp");
        let same = vec![PortEntry {
            ip: "0.0.0.0".into(),
            private: 90,
            public: 90,
            proto: "tcp".into(),
        }];
        assert_eq!(display_ports(&same), "0.0.0.0:90->90/tcp");
    }

    #[test]
    fn indent_keeps_order_and_empties() {
        let raw = br#"[{"b":1,"a":{},"c":[],"d":["x",{"e":"{,}"}]}]"#;
        let want = "[\n    {\n        \"b\": 1,\n        \"a\": {},\n        \"c\": [],\n        \"d\": [\n            \"x\",\n            {\n                \"e\": \"{,}\"\n            }\n        ]\n    }\n]";
        assert_eq!(indent_json(raw), want);
    }

    #[test]
    fn go_json_escapes_html() {
        assert_eq!(
            go_json(&json!({"a": "x && y <z>"})),
            r#"{"a":"x \u0026\u0026 y \u003cz\u003e"}"#
        );
        assert_eq!(go_quote("a \"b\"\n"), r#""a \"b\"\n""#);
    }
}
