//! The local terminal: is-a-TTY checks, raw mode (restored on drop), window size, and a stdin
//! pump that reads on a plain thread so a blocked read never holds up the async runtime.

use std::io::Write;
use std::os::fd::BorrowedFd;

use nix::sys::termios::{self, SetArg, Termios};
use tokio::sync::mpsc;

/// Whether `fd` is a terminal.
pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number; an invalid fd yields 0.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn stdin_is_tty() -> bool {
    is_tty(libc::STDIN_FILENO)
}

pub fn stdout_is_tty() -> bool {
    is_tty(libc::STDOUT_FILENO)
}

pub fn stderr_is_tty() -> bool {
    is_tty(libc::STDERR_FILENO)
}

/// The window size of the terminal on `fd` as `(rows, cols)`, if it is one.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer we pass, which is valid and
    // properly aligned for the duration of the call.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    if rc == 0 && (ws.ws_row > 0 || ws.ws_col > 0) {
        Some((ws.ws_row, ws.ws_col))
    } else {
        None
    }
}

/// Width of the terminal on stdout (or stderr), 0 when neither is one.
pub fn width() -> u16 {
    size(libc::STDOUT_FILENO)
        .or_else(|| size(libc::STDERR_FILENO))
        .map(|(_, w)| w)
        .unwrap_or(0)
}

/// Puts stdin into raw mode; the previous settings come back when this is dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Enters raw mode if stdin is a terminal.
    pub fn enter() -> Option<RawMode> {
        if !stdin_is_tty() {
            return None;
        }
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Turns off echo on stdin (password prompts); restored on drop.
pub struct NoEcho {
    saved: Termios,
}

impl NoEcho {
    pub fn enter() -> Option<NoEcho> {
        if !stdin_is_tty() {
            return None;
        }
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let saved = termios::tcgetattr(fd).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(fd, SetArg::TCSANOW, &quiet).ok()?;
        Some(NoEcho { saved })
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Reads stdin on a dedicated thread; `None` from the receiver means EOF (or a read error).
pub fn stdin_pump() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, with its true length.
            let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if n == 0 {
                return;
            }
            if tx.blocking_send(buf[..n as usize].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Parses docker's detach key syntax (`ctrl-p,ctrl-q`, `a,ctrl-@`) into bytes.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let key = key.trim();
        if let Some(c) = key.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_alphabetic() => {
                    c.as_bytes()[0].to_ascii_lowercase() - b'a' + 1
                }
                _ => return Err(format!("Unknown character: '{key}'")),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{key}'"));
        }
    }
    Ok(out)
}

/// Watches stdin for the detach sequence, passing everything else through. Bytes that could
/// start the sequence are held back until it is clear they do not.
pub struct EscapeFilter {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeFilter {
    pub fn new(keys: Vec<u8>) -> EscapeFilter {
        EscapeFilter { keys, matched: 0 }
    }

    /// Returns the bytes to forward and whether the full sequence was typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Writes to stdout and flushes (ignores a closed stdout).
pub fn write_stdout(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(data);
    let _ = out.flush();
}

/// Which standard stream a [`StdSink`] writes to.
#[derive(Clone, Copy)]
pub enum Std {
    Out,
    Err,
}

/// An `AsyncWrite` over the process's stdout or stderr that writes through and flushes at once
/// (a prompt without a newline must show up immediately).
pub struct StdSink(pub Std);

impl tokio::io::AsyncWrite for StdSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let res = match self.0 {
            Std::Out => {
                let mut o = std::io::stdout().lock();
                o.write_all(buf).and_then(|_| o.flush())
            }
            Std::Err => {
                let mut e = std::io::stderr().lock();
                e.write_all(buf).and_then(|_| e.flush())
            }
        };
        std::task::Poll::Ready(res.map(|_| buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("a,ctrl-@"), Ok(vec![b'a', 0]));
        assert!(parse_detach_keys("ctrl-pp").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn escape_filter_detects_sequence() {
        let mut f = EscapeFilter::new(vec![16, 17]);
        assert_eq!(f.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(f.feed(&[16]), (vec![], false));
        assert_eq!(f.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(f.feed(&[b'a', 16, 16, 17]), (vec![b'a', 16], true));
    }
}
