//! Times in flags: Go durations (`1h30m`, `300ms`) and the `--since/--until` values, which
//! become the `unix[.nanos]` strings the API takes.

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

/// Parses a Go duration flag value (`--cert-expiry 2160h`) into nanoseconds, as the swarm
/// specs carry them. Go has no day unit, so `90d` is refused with Go's message.
pub fn parse_go_duration_nanos(s: &str) -> Result<i64, String> {
    let secs = parse_go_duration(s)?;
    let nanos = (secs * 1e9).round();
    if !nanos.is_finite() || nanos.abs() > i64::MAX as f64 {
        return Err(format!("time: invalid duration \"{s}\""));
    }
    Ok(nanos as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_durations_in_nanoseconds() {
        assert_eq!(parse_go_duration_nanos("1h"), Ok(3_600_000_000_000));
        assert_eq!(
            parse_go_duration_nanos("2160h0m0s"),
            Ok(7_776_000_000_000_000)
        );
        assert_eq!(parse_go_duration_nanos("5s"), Ok(5_000_000_000));
        assert_eq!(parse_go_duration_nanos("250ms"), Ok(250_000_000));
        // Go's time.ParseDuration has no day unit; docker refuses `90d` the same way.
        assert_eq!(
            parse_go_duration_nanos("90d"),
            Err("time: unknown unit \"d\" in duration \"90d\"".to_string())
        );
        assert!(parse_go_duration_nanos("").is_err());
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
}
