//! The container's log file, in Docker's json-file format: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-27T10:00:00.123456789Z"}`, one record per
//! line of output (a trailing partial line is its own record).

use std::fs::File;
use std::io::Write;
use std::path::Path;

pub struct LogFile {
    file: File,
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogFile { file })
    }

    pub fn write(&mut self, stream: &str, data: &[u8]) {
        let time = rfc3339_nano(now());
        let mut out = Vec::with_capacity(data.len() + 64);
        for line in data.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(b"{\"log\":\"");
            escape_json(&String::from_utf8_lossy(line), &mut out);
            out.extend_from_slice(b"\",\"stream\":\"");
            out.extend_from_slice(stream.as_bytes());
            out.extend_from_slice(b"\",\"time\":\"");
            out.extend_from_slice(time.as_bytes());
            out.extend_from_slice(b"\"}\n");
        }
        // A full disk must not stop the container: the record is dropped, as json-file does.
        let _ = self.file.write_all(&out);
    }
}

pub fn escape_json(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `2026-11-27T10:00:00.123456789Z` for nanoseconds since the epoch.
pub fn rfc3339_nano(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano(1_795_000_000_123_456_789),
            "2026-11-18T11:06:40.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn records_split_per_line_and_escape() {
        let dir = std::env::temp_dir().join(format!("berth-shim-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let mut l = LogFile::open(&dir).expect("open");
        l.write("stdout", b"a\"b\nc\\d\npartial");
        let text = std::fs::read_to_string(&dir).expect("read");
        let _ = std::fs::remove_file(&dir);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(r#"{"log":"a\"b\n","stream":"stdout","time":""#));
        assert!(lines[1].starts_with(r#"{"log":"c\\d\n""#));
        assert!(lines[2].starts_with(r#"{"log":"partial""#));
    }
}
