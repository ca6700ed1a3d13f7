//! The container's log file, in Docker's json-file format: one JSON object per line,
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-27T10:00:00.123456789Z"}`, one record per
//! line of output (an unfinished line waits for its newline, up to 16 KiB, or the process's
//! exit), and its rotation.
//!
//! ```text
//!  output ─► records ─► <file>              (the live file; appended, 0640)
//!                  size ≥ max-size before a record?  rotate, then write the record:
//!                    <file>.N-2 → <file>.N-1, …, <file>.1 → <file>.2, <file> → <file>.1,
//!                    new empty <file>; with compress: <file>.1 → <file>.1.gz (.gz names
//!                    throughout); with max-file 1 the live file is truncated instead
//! ```
//! Invariants readers (berthd's `logs`) rely on: a file only ever grows until it is renamed
//! (or, with one file, truncated); nothing is written to a file after its rename; every
//! record's time is strictly later than the one before it, across files; a compressed file
//! appears under its `.gz` name complete (written aside, then renamed) before the plain one
//! is unlinked. Rotation and compression run here, in the shim, so they go on while berthd
//! is down. Compression is inline (gzip level 1), which pauses reading the container's
//! output for the few milliseconds per MB it takes.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// When to rotate: from `--log-max-size`, `--log-max-file`, `--log-compress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes after which the next record goes to a new file (at least 1).
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
    /// Gzip rotated files.
    pub compress: bool,
}

pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the live file.
    size: u64,
    rotation: Option<Rotation>,
    /// Time of the last record, nanoseconds since the epoch.
    last: i64,
    clock: TimeFormat,
    /// The unfinished last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
}

/// A line longer than this is written in pieces of this size (Docker's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

fn open_live(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).mode(0o640);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

/// `<file>.<n>` or `<file>.<n>.gz`.
pub fn numbered(path: &Path, n: u32, gz: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

impl LogFile {
    /// Opens (appending to) the live file; a compression that a killed shim left half done
    /// is finished first.
    pub fn open(path: &Path, rotation: Option<Rotation>) -> std::io::Result<Self> {
        let file = open_live(path, false)?;
        let size = file.metadata()?.len();
        if rotation.as_ref().is_some_and(|r| r.compress) {
            let plain = numbered(path, 1, false);
            if plain.exists() {
                if let Err(e) = compress(&plain, &numbered(path, 1, true)) {
                    eprintln!("berth-shim: compress {}: {e}", plain.display());
                }
            }
        }
        Ok(LogFile {
            path: path.to_owned(),
            file,
            size,
            rotation,
            last: 0,
            clock: TimeFormat::default(),
            partial: [Vec::new(), Vec::new()],
        })
    }

    pub fn write(&mut self, stream: &str, data: &[u8]) {
        self.write_at(stream, data, now());
    }

    /// Writes the complete lines of `data` (after what was held back of this stream) as
    /// records stamped from `now` on, each one nanosecond after the one before at least, so
    /// that times order records even across rotated files. A line is held back until its
    /// newline comes, unless it reaches 16 KiB (Docker's copier does the same).
    fn write_at(&mut self, stream: &str, data: &[u8], now: i64) {
        let s = usize::from(stream == "stderr");
        let mut partial = std::mem::take(&mut self.partial[s]);
        let mut out = Vec::with_capacity(data.len() + 96);
        let mut rest = data;
        while let Some(k) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(k + 1);
            if partial.is_empty() {
                self.record(&mut out, stream, line, now);
            } else {
                partial.extend_from_slice(line);
                self.record(&mut out, stream, &partial, now);
                partial.clear();
            }
            rest = tail;
        }
        partial.extend_from_slice(rest);
        while partial.len() >= MAX_LINE {
            self.record(&mut out, stream, &partial[..MAX_LINE], now);
            partial.drain(..MAX_LINE);
        }
        self.partial[s] = partial;
        self.flush(&mut out);
    }

    /// Writes the lines held back, without their newline (at the process's exit).
    pub fn flush_partial(&mut self) {
        for (s, stream) in ["stdout", "stderr"].into_iter().enumerate() {
            let partial = std::mem::take(&mut self.partial[s]);
            if !partial.is_empty() {
                let mut out = Vec::with_capacity(partial.len() + 96);
                self.record(&mut out, stream, &partial, now());
                self.flush(&mut out);
            }
        }
    }

    /// Appends one record to `out`, first rotating when the file is full.
    fn record(&mut self, out: &mut Vec<u8>, stream: &str, line: &[u8], now: i64) {
        let t = now.max(self.last + 1);
        self.last = t;
        if self.full(out.len()) {
            self.flush(out);
            self.rotate();
        }
        out.extend_from_slice(b"{\"log\":\"");
        escape_json(&String::from_utf8_lossy(line), out);
        out.extend_from_slice(b"\",\"stream\":\"");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        self.clock.push(t, out);
        out.extend_from_slice(b"\"}\n");
    }

    /// Whether the live file, with `pending` bytes more, has reached the size limit (so a
    /// file is at most max-size plus one record, as with Docker).
    fn full(&self, pending: usize) -> bool {
        let size = self.size + pending as u64;
        self.rotation
            .as_ref()
            .is_some_and(|r| size > 0 && size >= r.max_size)
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        // A full disk must not stop the container: the record is dropped, as json-file does.
        match self.file.write_all(out) {
            Ok(()) => self.size += out.len() as u64,
            Err(_) => {
                self.size = self.file.metadata().map_or(self.size, |m| m.len());
            }
        }
        out.clear();
    }

    fn rotate(&mut self) {
        let Some(r) = self.rotation.clone() else {
            return;
        };
        if let Err(e) = shift(&self.path, r.max_files, r.compress) {
            eprintln!("berth-shim: rotate {}: {e}", self.path.display());
        }
        // With one file, the same file is truncated (the rename above was skipped).
        match open_live(&self.path, true) {
            Ok(f) => {
                self.file = f;
                self.size = 0;
            }
            Err(e) => eprintln!("berth-shim: reopen {}: {e}", self.path.display()),
        }
        if r.compress && r.max_files > 1 {
            let plain = numbered(&self.path, 1, false);
            if let Err(e) = compress(&plain, &numbered(&self.path, 1, true)) {
                eprintln!("berth-shim: compress {}: {e}", plain.display());
            }
            // The compressor's few hundred KiB go back to the system: the shim's resident
            // size is paid once per container.
            // SAFETY: malloc_trim only releases free heap pages; no pointer is involved.
            unsafe { libc::malloc_trim(0) };
        }
    }
}

/// Renames the files one number up, dropping the oldest, and the live file to `.1`
/// (dockerd's `rotate`). Nothing happens with fewer than two files.
fn shift(path: &Path, max_files: u32, gz: bool) -> std::io::Result<()> {
    if max_files < 2 {
        return Ok(());
    }
    let ignore_missing = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    ignore_missing(std::fs::remove_file(numbered(path, max_files - 1, gz)))?;
    for i in (2..max_files).rev() {
        ignore_missing(std::fs::rename(
            numbered(path, i - 1, gz),
            numbered(path, i, gz),
        ))?;
    }
    ignore_missing(std::fs::rename(path, numbered(path, 1, false)))
}

/// Gzips `src` into `dst` (written aside, then renamed), then removes `src`.
fn compress(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut tmp = dst.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut input = File::open(src)?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let done = std::io::copy(&mut input, &mut enc).and_then(|_| enc.finish().map(drop));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dst)?;
    std::fs::remove_file(src)
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

/// RFC 3339 timestamps with the date and time of the current second kept, so that a record
/// costs formatting nine digits.
#[derive(Default)]
struct TimeFormat {
    secs: Option<i64>,
    /// `2026-11-27T10:00:00.`
    prefix: String,
}

impl TimeFormat {
    fn push(&mut self, nanos: i64, out: &mut Vec<u8>) {
        let secs = nanos.div_euclid(1_000_000_000);
        if self.secs != Some(secs) {
            let full = rfc3339_nano(nanos);
            self.prefix = full[..full.len() - 10].to_owned();
            self.secs = Some(secs);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let mut frac = nanos.rem_euclid(1_000_000_000);
        let mut digits = [b'0'; 9];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
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
    use std::io::Read;

    /// A scratch directory removed on drop.
    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!(
                "berth-shim-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("mkdir");
            Dir(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn read(p: &Path) -> String {
        let mut s = String::new();
        if p.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(File::open(p).expect("open"))
                .read_to_string(&mut s)
                .expect("gunzip");
        } else {
            File::open(p)
                .expect("open")
                .read_to_string(&mut s)
                .expect("read");
        }
        s
    }

    /// The `log` fields of a file's records, in order.
    fn logs(p: &Path) -> Vec<String> {
        read(p)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["log"].as_str().expect("log").to_owned()
            })
            .collect()
    }

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
        let mut f = TimeFormat::default();
        for t in [
            1_795_000_000_123_456_789,
            1_795_000_000_000_000_001,
            1_795_000_001_500_000_000,
        ] {
            let mut out = Vec::new();
            f.push(t, &mut out);
            assert_eq!(String::from_utf8(out).expect("utf8"), rfc3339_nano(t));
        }
    }

    #[test]
    fn records_split_per_line_and_escape() {
        let d = Dir::new("records");
        let p = d.0.join("x-json.log");
        let mut l = LogFile::open(&p, None).expect("open");
        l.write_at("stdout", b"a\"b\nc\\d\npart", 5_000_000_000);
        let text = read(&p);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "the unfinished line waits: {text}");
        assert_eq!(
            lines[0],
            r#"{"log":"a\"b\n","stream":"stdout","time":"1970-01-01T00:00:05.000000000Z"}"#
        );
        // One nanosecond apart: times order records, even within one read.
        assert!(lines[1].starts_with(
            r#"{"log":"c\\d\n","stream":"stdout","time":"1970-01-01T00:00:05.000000001Z""#
        ));
        // The other stream's lines don't mix with it; the rest of the line completes it.
        l.write_at("stderr", b"err\n", 6_000_000_000);
        l.write_at("stdout", b"ial\nmore", 7_000_000_000);
        assert_eq!(logs(&p), ["a\"b\n", "c\\d\n", "err\n", "partial\n"]);
        // A clock that goes back does not reorder records.
        l.write_at("stderr", b"late\n", 1);
        assert!(read(&p).contains(
            r#""log":"late\n","stream":"stderr","time":"1970-01-01T00:00:07.000000001Z""#
        ));
        // At exit, what is held back is written as it is.
        l.flush_partial();
        assert_eq!(logs(&p).last().map(String::as_str), Some("more"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let d = Dir::new("long");
        let p = d.0.join("x-json.log");
        let mut l = LogFile::open(&p, None).expect("open");
        let long = vec![b'x'; 40 * 1024];
        for piece in long.chunks(7000) {
            l.write("stdout", piece);
        }
        l.write("stdout", b"\n");
        let sizes: Vec<usize> = logs(&p).iter().map(String::len).collect();
        assert_eq!(sizes, [16 * 1024, 16 * 1024, 8 * 1024 + 1]);
    }

    /// 100-byte records: `{"log":"<n>…\n",…}`.
    fn line(n: usize) -> Vec<u8> {
        let mut l = format!("{n:04}").into_bytes();
        l.resize(20, b'.');
        l.push(b'\n');
        l
    }

    #[test]
    fn rotates_by_size_keeping_max_files() {
        let d = Dir::new("rotate");
        let p = d.0.join("x-json.log");
        let rot = Rotation {
            max_size: 1000,
            max_files: 3,
            compress: false,
        };
        let mut l = LogFile::open(&p, Some(rot)).expect("open");
        // 40 records in chunks of 3 lines: rotation happens between lines, not chunks.
        let mut all = Vec::new();
        for n in 0..40 {
            all.extend(line(n));
        }
        for chunk in all.chunks(3 * 21) {
            l.write("stdout", chunk);
        }
        assert_eq!(names(&d.0), ["x-json.log", "x-json.log.1", "x-json.log.2"]);
        let rec = read(&p).lines().next().expect("a record").len() + 1;
        for f in ["x-json.log.1", "x-json.log.2"] {
            let size = std::fs::metadata(d.0.join(f)).expect("stat").len() as usize;
            // Up to max-size plus one record.
            assert!(size >= 1000 && size < 1000 + rec, "{f}: {size}");
        }
        let mut seen: Vec<String> = Vec::new();
        for f in ["x-json.log.2", "x-json.log.1", "x-json.log"] {
            seen.extend(logs(&d.0.join(f)));
        }
        // The newest records, in order, none lost between the files kept.
        let first: usize = seen[0][..4].parse().expect("number");
        let want: Vec<String> = (first..40)
            .map(|n| String::from_utf8(line(n)).expect("utf8"))
            .collect();
        assert_eq!(seen, want);
        assert!(first > 0, "old records were dropped");
    }

    #[test]
    fn compresses_rotated_files_and_finishes_interrupted_work() {
        let d = Dir::new("gz");
        let p = d.0.join("x-json.log");
        let rot = Rotation {
            max_size: 500,
            max_files: 3,
            compress: true,
        };
        {
            let mut l = LogFile::open(&p, Some(rot.clone())).expect("open");
            for n in 0..30 {
                l.write("stderr", &line(n));
            }
        }
        assert_eq!(
            names(&d.0),
            ["x-json.log", "x-json.log.1.gz", "x-json.log.2.gz"]
        );
        let mut seen = logs(&d.0.join("x-json.log.2.gz"));
        seen.extend(logs(&d.0.join("x-json.log.1.gz")));
        seen.extend(logs(&p));
        assert_eq!(
            seen.last().map(String::as_str),
            Some("0029................\n")
        );
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
        // A shim killed between rename and compression left a plain `.1`: the next one
        // compresses it when it opens the log.
        std::fs::remove_file(d.0.join("x-json.log.1.gz")).expect("rm");
        std::fs::write(d.0.join("x-json.log.1"), b"{\"log\":\"x\\n\"}\n").expect("write");
        let _l = LogFile::open(&p, Some(rot)).expect("reopen");
        assert_eq!(
            names(&d.0),
            ["x-json.log", "x-json.log.1.gz", "x-json.log.2.gz"]
        );
        assert_eq!(logs(&d.0.join("x-json.log.1.gz")), ["x\n"]);
    }

    #[test]
    fn one_file_is_truncated_and_reopen_appends() {
        let d = Dir::new("trunc");
        let p = d.0.join("x-json.log");
        let rot = Rotation {
            max_size: 300,
            max_files: 1,
            compress: false,
        };
        {
            let mut l = LogFile::open(&p, Some(rot.clone())).expect("open");
            for n in 0..10 {
                l.write("stdout", &line(n));
            }
        }
        assert_eq!(names(&d.0), ["x-json.log"]);
        let kept = logs(&p);
        assert!(kept.len() < 10 && kept.last().is_some_and(|l| l.starts_with("0009")));
        // A new shim (container restart) appends and counts what is there.
        let mut l = LogFile::open(&p, Some(rot)).expect("reopen");
        l.write("stdout", &line(10));
        let after = logs(&p);
        assert!(
            after.len() == kept.len() + 1 || after.len() == 1,
            "{after:?}"
        );
        assert!(after.last().is_some_and(|l| l.starts_with("0010")));
    }
}
