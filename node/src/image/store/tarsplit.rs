//! Byte-exact layer tars without keeping a second copy of the files.
//!
//! A layer's diff id is the sha256 of its tar, so `save` must hand back exactly the bytes that
//! were loaded, or `docker load` rejects the layer and image ids change. While a layer is
//! unpacked, the [`Recorder`] sits between the decompressor and the tar parser: it hashes every
//! byte and writes a recipe, `tar-split.gz`, holding every byte that is not regular-file
//! content (headers, long names, pax records, padding, the end blocks) plus, for each regular
//! file, a reference to where its content now lives in the diff directory. The
//! [`Reassembler`] replays the recipe to stream the original tar again.
//!
//! ```text
//!  decompressed tar ─► Recorder ─► tar parser ─► diff/…            (file content)
//!                         └─ sha256 (diff id) + tar-split.gz        (everything else)
//!  save: tar-split.gz + diff/… ─► Reassembler ─► the same bytes
//! ```
//! Recipe records: `R <u32 len> <bytes>` raw bytes, `F <u64 size> <u32 len> <path>` file
//! content, `E` end. A file whose content is later replaced within the same layer is moved to
//! `shadow/<n>` first (see `unpack.rs`); those moves are listed in the layer's metadata.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;

const MAGIC: &[u8; 4] = b"BTS1";
const RAW_FLUSH: usize = 64 * 1024;
pub const FILE_NAME: &str = "tar-split.gz";

struct RecState {
    pos: u64,
    hasher: Sha256,
    out: GzEncoder<BufWriter<File>>,
    raw: Vec<u8>,
    hole: (u64, u64),
    zero_tail: u64,
    files: u64,
}

impl RecState {
    fn flush_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        self.out.write_all(b"R")?;
        self.out.write_all(&(self.raw.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.raw)?;
        self.raw.clear();
        Ok(())
    }

    fn take(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        let (hs, he) = self.hole;
        let start = self.pos;
        let end = start + bytes.len() as u64;
        // Only the parts outside the hole [hs, he) are recorded.
        let raw_parts = [(start, end.min(hs)), (start.max(he), end)];
        if end > hs && start < he {
            self.zero_tail = 0;
        }
        for (a, b) in raw_parts {
            if a < b {
                let part = &bytes[(a - start) as usize..(b - start) as usize];
                match part.iter().rposition(|x| *x != 0) {
                    None => self.zero_tail += part.len() as u64,
                    Some(i) => self.zero_tail = (part.len() - i - 1) as u64,
                }
                self.raw.extend_from_slice(part);
            }
        }
        self.pos = end;
        if self.raw.len() >= RAW_FLUSH {
            self.flush_raw()?;
        }
        Ok(())
    }
}

/// Records the stream read through it; see the module docs.
pub struct Recorder<R> {
    inner: R,
    state: Rc<RefCell<RecState>>,
}

/// The unpacker's side of a [`Recorder`]: announces regular-file content.
#[derive(Clone)]
pub struct RecorderHandle(Rc<RefCell<RecState>>);

impl<R: Read> Recorder<R> {
    pub fn new(inner: R, recipe: &Path) -> io::Result<(Self, RecorderHandle)> {
        let file = File::create(recipe)?;
        let mut out = GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        out.write_all(MAGIC)?;
        let state = Rc::new(RefCell::new(RecState {
            pos: 0,
            hasher: Sha256::new(),
            out,
            raw: Vec::new(),
            hole: (0, 0),
            zero_tail: 0,
            files: 0,
        }));
        Ok((
            Recorder {
                inner,
                state: state.clone(),
            },
            RecorderHandle(state),
        ))
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.borrow_mut().take(&buf[..n])?;
        Ok(n)
    }
}

impl RecorderHandle {
    /// The bytes `[start, start + size)` are the content of the file now at `path` (relative
    /// to the diff directory). Must be called before they are read. Returns the file's index.
    pub fn begin_file(&self, start: u64, size: u64, path: &Path) -> io::Result<u64> {
        let mut s = self.0.borrow_mut();
        if start != s.pos {
            return Err(io::Error::other(format!(
                "tar-split: file data at {start} but stream at {}",
                s.pos
            )));
        }
        s.flush_raw()?;
        let p = path.as_os_str().as_bytes();
        s.out.write_all(b"F")?;
        s.out.write_all(&size.to_le_bytes())?;
        s.out.write_all(&(p.len() as u32).to_le_bytes())?;
        s.out.write_all(p)?;
        s.hole = (start, start + size);
        s.files += 1;
        Ok(s.files - 1)
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.0.borrow().pos
    }

    /// Whether the stream so far ends with an all-zero 512-byte block (a tar end marker),
    /// as opposed to stopping at a header boundary, which is how a truncated tar looks.
    pub fn ended_with_zero_block(&self) -> bool {
        let s = self.0.borrow();
        s.pos.is_multiple_of(512) && s.zero_tail >= 512
    }

    /// Ends the recipe; returns the diff id and the tar's size. Call after the stream was
    /// read to its end and the recorder dropped or no longer read.
    pub fn finish(self) -> io::Result<(Digest, u64)> {
        let state = Rc::try_unwrap(self.0)
            .map_err(|_| io::Error::other("tar-split recorder still in use"))?
            .into_inner();
        let RecState {
            pos,
            hasher,
            mut out,
            mut raw,
            ..
        } = state;
        if !raw.is_empty() {
            out.write_all(b"R")?;
            out.write_all(&(raw.len() as u32).to_le_bytes())?;
            out.write_all(&raw)?;
            raw.clear();
        }
        out.write_all(b"E")?;
        let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((Digest::from_hasher(hasher), pos))
    }
}

enum Cur {
    Raw(Vec<u8>, usize),
    File(File, u64, PathBuf),
    Next,
    Done,
}

/// Streams a layer's original tar from its recipe and diff directory.
pub struct Reassembler {
    src: GzDecoder<BufReader<File>>,
    diff: PathBuf,
    layer: PathBuf,
    shadows: BTreeMap<u64, String>,
    index: u64,
    cur: Cur,
}

impl Reassembler {
    /// `layer` holds `tar-split.gz`, `diff/` and any `shadow/` files.
    pub fn open(layer: &Path, shadows: BTreeMap<u64, String>) -> io::Result<Self> {
        let f = File::open(layer.join(FILE_NAME))?;
        let mut src = GzDecoder::new(BufReader::new(f));
        let mut magic = [0u8; 4];
        src.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a berth tar-split recipe",
            ));
        }
        Ok(Reassembler {
            src,
            diff: layer.join("diff"),
            layer: layer.to_owned(),
            shadows,
            index: 0,
            cur: Cur::Next,
        })
    }

    fn next_record(&mut self) -> io::Result<Cur> {
        let mut tag = [0u8; 1];
        self.src.read_exact(&mut tag)?;
        match tag[0] {
            b'R' => {
                let mut len = [0u8; 4];
                self.src.read_exact(&mut len)?;
                let mut raw = vec![0u8; u32::from_le_bytes(len) as usize];
                self.src.read_exact(&mut raw)?;
                Ok(Cur::Raw(raw, 0))
            }
            b'F' => {
                let mut size = [0u8; 8];
                self.src.read_exact(&mut size)?;
                let mut len = [0u8; 4];
                self.src.read_exact(&mut len)?;
                let mut p = vec![0u8; u32::from_le_bytes(len) as usize];
                self.src.read_exact(&mut p)?;
                let path = match self.shadows.get(&self.index) {
                    Some(s) => self.layer.join(s),
                    None => self.diff.join(std::ffi::OsStr::from_bytes(&p)),
                };
                self.index += 1;
                let f = File::open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Ok(Cur::File(f, u64::from_le_bytes(size), path))
            }
            b'E' => Ok(Cur::Done),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("tar-split: bad record {other:#x}"),
            )),
        }
    }
}

impl Read for Reassembler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.cur {
                Cur::Done => return Ok(0),
                Cur::Next => self.cur = self.next_record()?,
                Cur::Raw(raw, at) => {
                    if *at == raw.len() {
                        self.cur = Cur::Next;
                        continue;
                    }
                    let n = buf.len().min(raw.len() - *at);
                    buf[..n].copy_from_slice(&raw[*at..*at + n]);
                    *at += n;
                    return Ok(n);
                }
                Cur::File(f, left, path) => {
                    if *left == 0 {
                        self.cur = Cur::Next;
                        continue;
                    }
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{} is shorter than the layer recorded", path.display()),
                        ));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_replays_exact_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("diff")).expect("mkdir");
        // A fake stream: 10 raw bytes, 5 bytes of "file", 3 raw bytes.
        let stream = b"HEADER0000hello\0\0\0".to_vec();
        std::fs::write(dir.path().join("diff").join("f"), b"hello").expect("write");
        let (mut rec, handle) =
            Recorder::new(&stream[..], &dir.path().join(FILE_NAME)).expect("recorder");
        let mut head = [0u8; 10];
        rec.read_exact(&mut head).expect("head");
        handle.begin_file(10, 5, Path::new("f")).expect("begin");
        io::copy(&mut rec, &mut io::sink()).expect("rest");
        drop(rec);
        let (digest, size) = handle.finish().expect("finish");
        assert_eq!(size, stream.len() as u64);
        assert_eq!(digest, Digest::of_bytes(&stream));

        let mut out = Vec::new();
        Reassembler::open(dir.path(), BTreeMap::new())
            .expect("open")
            .read_to_end(&mut out)
            .expect("replay");
        assert_eq!(out, stream);
    }

    #[test]
    fn zero_tail_counts_only_raw_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut stream = vec![1u8; 512];
        stream.extend_from_slice(&[0u8; 512]);
        let (mut rec, handle) =
            Recorder::new(&stream[..], &dir.path().join(FILE_NAME)).expect("recorder");
        let mut first = [0u8; 512];
        rec.read_exact(&mut first).expect("read");
        // Zero bytes that are file content are not an end marker.
        handle.begin_file(512, 512, Path::new("z")).expect("begin");
        io::copy(&mut rec, &mut io::sink()).expect("rest");
        assert!(!handle.ended_with_zero_block());
    }
}
