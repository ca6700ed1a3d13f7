//! Reading a container's log across the files the shim rotates (shim/src/logfile.rs):
//! `<file>.N-1[.gz]` … `<file>.1[.gz]`, then the live `<file>`, in that order, and on while
//! the live file grows or is rotated away.
//!
//! ```text
//!   read_all:  open live, then .1 … .N-1 (plain, else .gz)   ─► lines, oldest file first
//!   poll:      live grew?         ─► its new complete lines
//!              live renamed away? ─► rest of the old one, then every newer file (first record
//!                                    later than the last line read), then the new live one
//!              live truncated?    ─► from its start (max-file 1)
//! ```
//! The shim stamps every record strictly later than the one before, so record times order
//! lines across files: when a file is entered after another, its leading lines at or before
//! the last time read are ones already seen (a rotation raced the opening) and are skipped.
//! Lines are handed out as written, without their newline; a partial last line waits.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a callback says after a line: go on, or stop reading.
pub type Emit<'a> = dyn FnMut(&str) -> bool + 'a;

/// `<file>.<n>` or `<file>.<n>.gz`, as the shim names them.
fn numbered(base: &Path, n: u32, gz: bool) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

/// The time of a record line (`"time":"…"`), in nanoseconds since the epoch.
pub fn record_time(line: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(borrow)]
        time: std::borrow::Cow<'a, str>,
    }
    let t: T = serde_json::from_str(line).ok()?;
    chrono::DateTime::parse_from_rfc3339(&t.time)
        .ok()?
        .timestamp_nanos_opt()
}

/// A rotated (finished) file: nothing is written to it any more.
struct Rotated {
    reader: Box<dyn BufRead + Send>,
    /// Its first line, when it was read ahead to place the file in time.
    first: Option<String>,
}

impl Rotated {
    /// The plain file if it is there, else its `.gz` (the shim writes the `.gz` before it
    /// removes the plain one, so one of the two opens unless the file is gone).
    fn open(base: &Path, n: u32) -> Option<Rotated> {
        let reader: Box<dyn BufRead + Send> = match File::open(numbered(base, n, false)) {
            Ok(f) => Box::new(BufReader::with_capacity(64 << 10, f)),
            Err(_) => {
                let f = File::open(numbered(base, n, true)).ok()?;
                Box::new(BufReader::with_capacity(
                    64 << 10,
                    flate2::read::GzDecoder::new(f),
                ))
            }
        };
        Some(Rotated {
            reader,
            first: None,
        })
    }

    fn next_line(&mut self, buf: &mut Vec<u8>) -> Option<String> {
        if let Some(l) = self.first.take() {
            return Some(l);
        }
        buf.clear();
        match self.reader.read_until(b'\n', buf) {
            Ok(n) if n > 0 && buf.ends_with(b"\n") => {
                Some(String::from_utf8_lossy(&buf[..n - 1]).into_owned())
            }
            _ => None,
        }
    }

    /// Time of the first record; the line is kept for reading.
    fn first_time(&mut self) -> Option<i64> {
        let mut buf = Vec::new();
        let l = self.next_line(&mut buf)?;
        let t = record_time(&l);
        self.first = Some(l);
        t
    }
}

/// The live file, read as it grows.
struct Live {
    file: File,
    /// (device, inode): tells a renamed-away file from the one now at the path.
    id: (u64, u64),
    /// Bytes consumed so far (complete lines plus `pending`).
    read: u64,
    pending: Vec<u8>,
}

impl Live {
    fn open(path: &Path) -> Option<Live> {
        let file = File::open(path).ok()?;
        let m = file.metadata().ok()?;
        Some(Live {
            file,
            id: (m.dev(), m.ino()),
            read: 0,
            pending: Vec::new(),
        })
    }
}

/// A reader over one container's log files.
pub struct LogReader {
    base: PathBuf,
    /// Files kept by the shim, the live one included (the highest number is this minus 1).
    max_files: u32,
    live: Option<Live>,
    /// The last line handed out: its time is where reading stands.
    last: String,
    /// Set when a file was entered after another: skip its lines up to this time.
    skip_until: Option<i64>,
    /// Lines handed out so far.
    handed: usize,
}

impl LogReader {
    pub fn new(base: PathBuf, max_files: u32) -> LogReader {
        LogReader {
            base,
            max_files: max_files.max(1),
            live: None,
            last: String::new(),
            skip_until: None,
            handed: 0,
        }
    }

    /// Hands `emit` every complete record there is now, oldest first. Returns false when
    /// `emit` asked to stop.
    pub fn read_all(&mut self, emit: &mut Emit<'_>) -> bool {
        // The live file first, so that a rotation while the others open can only make a
        // file appear twice (skipped by time), never go missing.
        self.live = Live::open(&self.base);
        let mut older: Vec<Rotated> = (1..self.max_files)
            .filter_map(|n| Rotated::open(&self.base, n))
            .collect();
        older.reverse();
        for f in older {
            if !self.drain_rotated(f, emit) {
                return false;
            }
        }
        self.enter_file();
        self.read_live(emit).0
    }

    /// Hands `emit` what was written since the last call, following rotations. Returns
    /// (go on, lines handed out).
    pub fn poll(&mut self, emit: &mut Emit<'_>) -> (bool, usize) {
        let Some(live) = &self.live else {
            self.live = Live::open(&self.base);
            self.enter_file();
            return self.read_live(emit);
        };
        let was = live.id;
        let (go, n) = self.read_live(emit);
        if !go || n > 0 {
            return (go, n);
        }
        let Ok(now) = std::fs::metadata(&self.base) else {
            // Between the rename and the new file: next time.
            return (true, 0);
        };
        if (now.dev(), now.ino()) != was {
            return self.follow_rotation(emit);
        }
        if now.len() < self.live.as_ref().map_or(0, |l| l.read) {
            // Truncated (max-file 1): from its start again.
            if let Some(l) = &mut self.live {
                let _ = l.file.seek(SeekFrom::Start(0));
                l.read = 0;
                l.pending.clear();
            }
            self.enter_file();
            return self.read_live(emit);
        }
        (true, 0)
    }

    /// The live file was renamed away: finish it (the shim writes nothing to it after the
    /// rename), then read every file newer than it, ending on the new live file.
    fn follow_rotation(&mut self, emit: &mut Emit<'_>) -> (bool, usize) {
        let before = self.handed;
        if !self.read_live(emit).0 {
            return (false, self.handed - before);
        }
        let cursor = record_time(&self.last);
        self.live = Live::open(&self.base);
        let mut newer = Vec::new();
        for i in 1..self.max_files {
            let Some(mut f) = Rotated::open(&self.base, i) else {
                continue;
            };
            match (f.first_time(), cursor) {
                (Some(t), Some(c)) if t <= c => break,
                _ => newer.push(f),
            }
        }
        newer.reverse();
        for f in newer {
            if !self.drain_rotated(f, emit) {
                return (false, self.handed - before);
            }
        }
        self.enter_file();
        let go = self.read_live(emit).0;
        (go, self.handed - before)
    }

    /// A file is entered after another: its lines up to the last one read are repeats.
    fn enter_file(&mut self) {
        if !self.last.is_empty() {
            self.skip_until = record_time(&self.last);
        }
    }

    /// Reads a whole rotated file.
    fn drain_rotated(&mut self, mut f: Rotated, emit: &mut Emit<'_>) -> bool {
        self.enter_file();
        let mut buf = Vec::new();
        while let Some(line) = f.next_line(&mut buf) {
            if !self.hand_out(&line, emit) {
                return false;
            }
        }
        true
    }

    /// Reads the live file's new complete lines.
    fn read_live(&mut self, emit: &mut Emit<'_>) -> (bool, usize) {
        let Some(mut live) = self.live.take() else {
            return (true, 0);
        };
        let before = self.handed;
        let mut chunk = vec![0u8; 64 << 10];
        let mut go = true;
        'read: loop {
            let n = match live.file.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            live.read += n as u64;
            live.pending.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(i) = live.pending[start..].iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&live.pending[start..start + i]).into_owned();
                start += i + 1;
                if !self.hand_out(&line, emit) {
                    go = false;
                    break 'read;
                }
            }
            live.pending.drain(..start);
        }
        self.live = Some(live);
        (go, self.handed - before)
    }

    /// Hands one line out, unless it is one already seen (see the module doc).
    fn hand_out(&mut self, line: &str, emit: &mut Emit<'_>) -> bool {
        if let Some(c) = self.skip_until {
            match record_time(line) {
                Some(t) if t > c => self.skip_until = None,
                _ => return true,
            }
        }
        self.last.clear();
        self.last.push_str(line);
        self.handed += 1;
        emit(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes records the way the shim does: strictly later times, rotation by rename.
    struct Writer {
        base: PathBuf,
        max_files: u32,
        compress: bool,
        n: u32,
    }

    impl Writer {
        fn line(n: u32) -> String {
            format!(
                r#"{{"log":"line {n}\n","stream":"stdout","time":"2026-01-01T00:00:00.{n:09}Z"}}"#
            )
        }

        fn write(&mut self, count: u32) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.base)
                .expect("open live");
            for _ in 0..count {
                writeln!(f, "{}", Self::line(self.n)).expect("write");
                self.n += 1;
            }
        }

        fn rotate(&mut self) {
            let gz = self.compress;
            let _ = std::fs::remove_file(numbered(&self.base, self.max_files - 1, gz));
            for i in (2..self.max_files).rev() {
                let _ =
                    std::fs::rename(numbered(&self.base, i - 1, gz), numbered(&self.base, i, gz));
            }
            std::fs::rename(&self.base, numbered(&self.base, 1, false)).expect("rename");
            if gz {
                let plain = numbered(&self.base, 1, false);
                let data = std::fs::read(&plain).expect("read");
                let mut enc = flate2::write::GzEncoder::new(
                    File::create(numbered(&self.base, 1, true)).expect("create gz"),
                    flate2::Compression::fast(),
                );
                enc.write_all(&data).expect("gzip");
                enc.finish().expect("finish");
                std::fs::remove_file(plain).expect("rm");
            }
            File::create(&self.base).expect("new live");
        }
    }

    fn setup(max_files: u32, compress: bool) -> (tempfile::TempDir, Writer, LogReader) {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("c-json.log");
        let w = Writer {
            base: base.clone(),
            max_files,
            compress,
            n: 0,
        };
        (dir, w, LogReader::new(base, max_files))
    }

    /// The numbers of the lines handed out.
    fn numbers(lines: &[String]) -> Vec<u32> {
        lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["log"].as_str().expect("log")[5..]
                    .trim()
                    .parse()
                    .expect("n")
            })
            .collect()
    }

    fn read_all(r: &mut LogReader) -> Vec<u32> {
        let mut got = Vec::new();
        r.read_all(&mut |l| {
            got.push(l.to_owned());
            true
        });
        numbers(&got)
    }

    fn poll(r: &mut LogReader) -> Vec<u32> {
        let mut got = Vec::new();
        r.poll(&mut |l| {
            got.push(l.to_owned());
            true
        });
        numbers(&got)
    }

    #[test]
    fn times_parse() {
        assert_eq!(
            record_time(&Writer::line(7)),
            Some(1_767_225_600_000_000_007)
        );
        assert_eq!(record_time("garbage"), None);
    }

    #[test]
    fn reads_rotated_files_oldest_first() {
        for compress in [false, true] {
            let (_d, mut w, mut r) = setup(3, compress);
            for _ in 0..4 {
                w.write(5);
                w.rotate();
            }
            w.write(2);
            // Files kept: .2 (10..15), .1 (15..20), live (20..22).
            assert_eq!(read_all(&mut r), (10..22).collect::<Vec<_>>(), "{compress}");
        }
    }

    #[test]
    fn follows_across_one_or_several_rotations() {
        for compress in [false, true] {
            let (_d, mut w, mut r) = setup(4, compress);
            w.write(3);
            assert_eq!(read_all(&mut r), [0, 1, 2]);
            assert!(poll(&mut r).is_empty());
            w.write(2);
            w.rotate();
            w.write(1);
            // What was written before the rename, then the new file.
            assert_eq!(poll(&mut r), [3, 4]);
            assert_eq!(poll(&mut r), [5]);
            // Two rotations between polls: the file in between is not skipped.
            w.write(2);
            w.rotate();
            w.write(2);
            w.rotate();
            w.write(1);
            assert_eq!(poll(&mut r), [6, 7]);
            assert_eq!(poll(&mut r), [8, 9, 10]);
            assert!(poll(&mut r).is_empty());
        }
    }

    #[test]
    fn partial_lines_wait_and_truncation_restarts() {
        let (_d, mut w, mut r) = setup(1, false);
        w.write(2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&w.base)
            .expect("open");
        let next = Writer::line(2);
        f.write_all(&next.as_bytes()[..10]).expect("write");
        assert_eq!(read_all(&mut r), [0, 1]);
        f.write_all(&next.as_bytes()[10..]).expect("write");
        f.write_all(b"\n").expect("write");
        w.n = 3;
        assert_eq!(poll(&mut r), [2]);
        // max-file 1: the shim truncates the same file.
        File::create(&w.base).expect("truncate");
        w.write(1);
        assert_eq!(poll(&mut r), [3]);
    }

    #[test]
    fn a_file_seen_twice_is_not_repeated() {
        // As when a rotation races read_all: the live file was read, then shows up again as
        // `.1` with more lines.
        let (_d, mut w, mut r) = setup(3, false);
        w.write(3);
        assert_eq!(read_all(&mut r), [0, 1, 2]);
        w.write(1);
        w.rotate();
        let mut again = LogReader::new(w.base.clone(), 3);
        assert_eq!(read_all(&mut again), [0, 1, 2, 3]);
        // The reader that had the old live file picks up exactly where it was.
        assert_eq!(poll(&mut r), [3]);
        w.write(1);
        assert_eq!(poll(&mut r), [4]);
        let mut dup = LogReader::new(w.base.clone(), 3);
        dup.last = Writer::line(3);
        assert!(dup.drain_rotated(
            Rotated::open(&w.base, 1).expect("open .1"),
            &mut |_| panic!("lines up to the last one read are repeats")
        ));
    }
}
