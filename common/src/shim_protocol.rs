//! The control protocol between berthd and `berth-shim`: one text line per request on the
//! shim's `control.sock`, one line back. berthd writes requests and reads replies
//! (`node/src/container/shim.rs`); the shim reads requests and writes replies
//! (`shim/src/control.rs`).
//!
//! ```text
//!  start        → ok [PID] | err MSG
//!  wait         → exit CODE NANOS       (once the process has exited)
//!  kill SIG     → ok | err MSG
//!  resize H W   → ok | err MSG
//!  close-stdin  → ok | err MSG
//!  attach IOE   → ok, then the connection carries Docker's multiplexed frames out
//!                 (crate::stream) and raw stdin in; IOE: three 0/1 digits for stdin,
//!                 stdout, stderr
//! ```
//!
//! The shim also answers its spawn on stdout with one reply line (`ok PID` or `err MSG`), and
//! writes the exit file `exit` in its state directory as `CODE NANOS`.
//!
//! The wire format is frozen: shims outlive berthd, so a berthd after an upgrade talks to
//! shims started by the one before. Change it only by adding requests.

use std::fmt;

/// The control socket's file name in the shim's state directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// The exit file's name in the shim's state directory.
pub const EXIT_FILE: &str = "exit";

/// Which of the process's streams an attach connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl AttachStreams {
    /// Output only: what an `attach` without digits asks for.
    pub const OUTPUT: AttachStreams = AttachStreams {
        stdin: false,
        stdout: true,
        stderr: true,
    };

    fn digits(self) -> String {
        [self.stdin, self.stdout, self.stderr]
            .iter()
            .map(|on| if *on { '1' } else { '0' })
            .collect()
    }

    /// Reads the digits; a missing or non-`1` digit is off.
    fn parse(digits: &str) -> AttachStreams {
        let on = |k: usize| digits.as_bytes().get(k) == Some(&b'1');
        AttachStreams {
            stdin: on(0),
            stdout: on(1),
            stderr: on(2),
        }
    }
}

/// A request to the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Start the created process.
    Start,
    /// Answer with the exit once the process has exited (right away if it has).
    Wait,
    /// Send a signal (by number) to the process.
    Kill(i32),
    /// Set the TTY's size, in rows and columns.
    Resize { height: u16, width: u16 },
    /// Close the process's stdin.
    CloseStdin,
    /// Turn this connection into an attach stream.
    Attach(AttachStreams),
}

/// A request line the shim cannot act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The first word names no request.
    Unknown(String),
    /// `kill` without a signal number.
    BadSignal,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Unknown(verb) => write!(f, "unknown command {verb:?}"),
            RequestError::BadSignal => f.write_str("bad signal"),
        }
    }
}

impl std::error::Error for RequestError {}

impl Request {
    /// The request as sent, newline included.
    pub fn to_line(&self) -> String {
        match self {
            Request::Start => "start\n".to_owned(),
            Request::Wait => "wait\n".to_owned(),
            Request::Kill(sig) => format!("kill {sig}\n"),
            Request::Resize { height, width } => format!("resize {height} {width}\n"),
            Request::CloseStdin => "close-stdin\n".to_owned(),
            Request::Attach(streams) => format!("attach {}\n", streams.digits()),
        }
    }

    /// Reads a request line (surrounding white space and words past the last one a request
    /// takes are ignored; a `resize` size that is not a number is 0).
    pub fn parse(line: &str) -> Result<Request, RequestError> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("");
        let mut number = || {
            words
                .next()
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0)
        };
        Ok(match verb {
            "start" => Request::Start,
            "wait" => Request::Wait,
            "kill" => Request::Kill(
                words
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or(RequestError::BadSignal)?,
            ),
            "resize" => {
                let height = number();
                let width = number();
                Request::Resize { height, width }
            }
            "close-stdin" => Request::CloseStdin,
            "attach" => Request::Attach(
                words
                    .next()
                    .map_or(AttachStreams::OUTPUT, AttachStreams::parse),
            ),
            other => return Err(RequestError::Unknown(other.to_owned())),
        })
    }
}

/// How a process ended: its exit code (128 + signal when killed) and when, in nanoseconds
/// since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i64,
    pub at_nanos: i64,
}

impl Exit {
    /// The exit file's content.
    pub fn to_file(&self) -> String {
        format!("{} {}\n", self.code, self.at_nanos)
    }

    /// Reads `CODE NANOS` (the exit file, or a `wait` reply after its `exit`).
    pub fn parse(s: &str) -> Option<Exit> {
        let mut it = s.split_whitespace();
        Some(Exit {
            code: it.next()?.parse().ok()?,
            at_nanos: it.next()?.parse().ok()?,
        })
    }
}

/// A reply from the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; what follows `ok` (the pid, for `start` and the spawn), possibly empty.
    Ok(String),
    /// Failed, with the message.
    Err(String),
    /// The answer to `wait`.
    Exit(Exit),
}

impl Reply {
    /// A plain `ok`.
    pub fn ok() -> Reply {
        Reply::Ok(String::new())
    }

    /// The reply as sent, newline included.
    pub fn to_line(&self) -> String {
        match self {
            Reply::Ok(rest) if rest.is_empty() => "ok\n".to_owned(),
            Reply::Ok(rest) => format!("ok {rest}\n"),
            Reply::Err(msg) => format!("err {msg}\n"),
            Reply::Exit(e) => format!("exit {}", e.to_file()),
        }
    }

    /// Reads a reply line; `None` when it is none of the three.
    pub fn parse(line: &str) -> Option<Reply> {
        let line = line.trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "ok" => Some(Reply::Ok(rest.to_owned())),
            "err" => Some(Reply::Err(rest.to_owned())),
            "exit" => Exit::parse(rest).map(Reply::Exit),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes shims in the field send and expect; changing any of them strands the
    /// containers of a berthd that is upgraded while they run.
    #[test]
    fn the_wire_format_is_frozen() {
        let requests = [
            (Request::Start, "start\n"),
            (Request::Wait, "wait\n"),
            (Request::Kill(9), "kill 9\n"),
            (Request::Kill(15), "kill 15\n"),
            (
                Request::Resize {
                    height: 24,
                    width: 80,
                },
                "resize 24 80\n",
            ),
            (Request::CloseStdin, "close-stdin\n"),
            (
                Request::Attach(AttachStreams {
                    stdin: true,
                    stdout: false,
                    stderr: true,
                }),
                "attach 101\n",
            ),
        ];
        for (req, line) in requests {
            assert_eq!(req.to_line(), line);
            assert_eq!(Request::parse(line), Ok(req), "{line:?}");
        }
        let exit = Exit {
            code: 137,
            at_nanos: 1_700_000_000_000_000_000,
        };
        let replies = [
            (Reply::ok(), "ok\n"),
            (Reply::Ok("42".into()), "ok 42\n"),
            (
                Reply::Err("boom: no such file".into()),
                "err boom: no such file\n",
            ),
            (Reply::Exit(exit), "exit 137 1700000000000000000\n"),
        ];
        for (reply, line) in replies {
            assert_eq!(reply.to_line(), line);
            assert_eq!(Reply::parse(line), Some(reply), "{line:?}");
        }
        assert_eq!(exit.to_file(), "137 1700000000000000000\n");
        assert_eq!(Exit::parse(&exit.to_file()), Some(exit));
    }

    #[test]
    fn requests_parse_as_the_shim_always_has() {
        assert_eq!(
            Request::parse("attach"),
            Ok(Request::Attach(AttachStreams::OUTPUT))
        );
        assert_eq!(
            Request::parse("attach 1"),
            Ok(Request::Attach(AttachStreams {
                stdin: true,
                stdout: false,
                stderr: false
            }))
        );
        assert_eq!(
            Request::parse("resize x"),
            Ok(Request::Resize {
                height: 0,
                width: 0
            })
        );
        assert_eq!(Request::parse("  start  \r"), Ok(Request::Start));
        assert_eq!(Request::parse("kill TERM"), Err(RequestError::BadSignal));
        let e = Request::parse("dance").expect_err("unknown");
        assert_eq!(e.to_string(), "unknown command \"dance\"");
        assert_eq!(
            Request::parse("").map_err(|e| e.to_string()),
            Err("unknown command \"\"".to_owned())
        );
    }

    #[test]
    fn replies_and_exits_parse() {
        assert_eq!(Reply::parse("ok"), Some(Reply::ok()));
        assert_eq!(Reply::parse("err"), Some(Reply::Err(String::new())));
        assert_eq!(Reply::parse(""), None);
        assert_eq!(Reply::parse("exit garbage"), None);
        assert_eq!(Reply::parse("hello"), None);
        assert!(Exit::parse("garbage").is_none());
    }
}
