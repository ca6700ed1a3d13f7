//! The shim's poll loop: the process's output, the control socket and SIGCHLD.
//!
//! Control protocol (`berth_common::shim_protocol`, which berthd uses too), one text line per
//! request on `control.sock`: `start` → `ok` | `err MSG`; `wait` → `exit CODE NANOS` once the
//! process has exited; `kill SIG` / `resize H W` / `close-stdin` → `ok` | `err MSG`;
//! `attach IOE` (three 0/1 digits: stdin, stdout, stderr) → `ok`, then the connection is a stream:
//! output goes out in Docker's 8-byte multiplexed frames (`berth_common::stream`), bytes coming
//! in go to the process's stdin, and a half-close from the client closes stdin when
//! `--stdin-once` was given.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use berth_common::shim_protocol::{AttachStreams, Exit, Reply, Request, RequestError, EXIT_FILE};
use berth_common::stream::{frame, StreamId};

use crate::args::{Args, Mode};
use crate::logfile::{self, LogFile};
use crate::runtime::{self, Runtime};

/// Output buffered for one slow client before it is dropped.
const MAX_CLIENT_BACKLOG: usize = 4 << 20;

struct Output {
    /// `None` once the process's side is closed (EOF, or EIO on a pty).
    fd: Option<OwnedFd>,
    stream: StreamId,
}

impl Output {
    /// poll(2) ignores negative descriptors.
    fn raw(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }
}

#[derive(PartialEq)]
enum Kind {
    Command,
    Attach(AttachStreams),
    Waiter,
}

struct Conn {
    sock: UnixStream,
    kind: Kind,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    read_closed: bool,
    dead: bool,
}

pub struct Loop {
    pub log: Option<LogFile>,
    listener: UnixListener,
    sigfd: OwnedFd,
    outputs: Vec<Output>,
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_once: bool,
    pty: Option<RawFd>,
    conns: Vec<Conn>,
    pid: Option<i32>,
    exit: Option<(i32, i64)>,
    started: bool,
    state: std::path::PathBuf,
    init: bool,
    id: String,
    root: std::path::PathBuf,
}

fn nonblock(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we hold; only flips O_NONBLOCK.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

impl Loop {
    pub fn new(args: &Args, listener: UnixListener) -> Result<Self, String> {
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listener: {e}"))?;
        let mut mask = nix::sys::signal::SigSet::empty();
        mask.add(nix::sys::signal::Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| format!("block SIGCHLD: {e}"))?;
        let sfd = nix::sys::signalfd::SignalFd::with_flags(
            &mask,
            nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        )
        .map_err(|e| format!("signalfd: {e}"))?;
        let sigfd: OwnedFd = sfd.into();
        Ok(Loop {
            log: None,
            listener,
            sigfd,
            outputs: Vec::new(),
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_once: args.stdin_once,
            pty: None,
            conns: Vec::new(),
            pid: None,
            exit: None,
            started: false,
            state: args.state.clone(),
            init: matches!(args.mode, Mode::Init { .. }),
            id: args.id.clone(),
            root: args.root.clone(),
        })
    }

    pub fn set_pid(&mut self, pid: i32) {
        self.pid = Some(pid);
    }
    pub fn set_stdin(&mut self, w: OwnedFd) {
        nonblock(w.as_raw_fd());
        self.stdin = Some(w);
    }
    pub fn add_output(&mut self, fd: OwnedFd, stream: StreamId) {
        nonblock(fd.as_raw_fd());
        self.outputs.push(Output {
            fd: Some(fd),
            stream,
        });
    }
    /// A TTY: one master both for output (`read_fd`) and for input and resizes (`write_fd`).
    pub fn set_pty(&mut self, read_fd: OwnedFd, write_fd: OwnedFd) {
        self.pty = Some(write_fd.as_raw_fd());
        self.add_output(read_fd, StreamId::Stdout);
        self.set_stdin(write_fd);
    }

    /// Runs until the process has exited, its output is drained and everyone is told.
    pub fn run(
        &mut self,
        runtime: &Runtime,
        mut start: impl FnMut(&mut Loop) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            self.poll_once(&mut start)?;
            if self.exit.is_some() {
                break;
            }
        }
        self.drain_outputs();
        if let Some(log) = self.log.as_mut() {
            log.flush_partial();
        }
        self.finish(runtime);
        Ok(())
    }

    fn poll_once(
        &mut self,
        start: &mut impl FnMut(&mut Loop) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(self.sigfd.as_raw_fd(), libc::POLLIN));
        fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
        for o in &self.outputs {
            fds.push(pfd(o.raw(), libc::POLLIN));
        }
        let stdin_slot = fds.len();
        if let (Some(w), false) = (&self.stdin, self.stdin_buf.is_empty()) {
            fds.push(pfd(w.as_raw_fd(), libc::POLLOUT));
        }
        let conn_base = fds.len();
        for c in &self.conns {
            let mut ev = 0;
            if !c.read_closed && (self.stdin_buf.len() < MAX_CLIENT_BACKLOG) {
                ev |= libc::POLLIN;
            }
            if !c.outbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(pfd(c.sock.as_raw_fd(), ev));
        }
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(format!("poll: {e}"));
        }
        if fds[0].revents != 0 {
            self.on_sigchld();
        }
        if fds[1].revents != 0 {
            self.accept();
        }
        for i in 0..self.outputs.len() {
            if fds[2 + i].revents != 0 {
                self.read_output(i);
            }
        }
        if stdin_slot < conn_base && fds[stdin_slot].revents != 0 {
            self.flush_stdin();
        }
        let n_conns = fds.len() - conn_base;
        for i in 0..n_conns {
            let re = fds[conn_base + i].revents;
            if re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_conn(i, start);
            }
            if re & libc::POLLOUT != 0 {
                self.write_conn(i);
            }
        }
        self.conns.retain(|c| !c.dead);
        Ok(())
    }

    fn on_sigchld(&mut self) {
        let mut buf = [0u8; 128];
        // SAFETY: reading signalfd records into a local buffer of the right size.
        while unsafe { libc::read(self.sigfd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0
        {
        }
        while let Some((pid, code)) = runtime::reap() {
            if Some(pid) == self.pid {
                self.exit = Some((code, logfile::now()));
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            let _ = sock.set_nonblocking(true);
            self.conns.push(Conn {
                sock,
                kind: Kind::Command,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                read_closed: false,
                dead: false,
            });
        }
    }

    /// Reads what the process wrote; returns false at EOF.
    fn read_output(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let fd = self.outputs[i].raw();
        if fd < 0 {
            return false;
        }
        // SAFETY: reading into a local buffer from a descriptor we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN))
        {
            // EOF, or EIO on a pty whose other side is gone.
            self.outputs[i].fd = None;
            return false;
        }
        if n < 0 {
            return true;
        }
        let data = &buf[..n as usize];
        let stream = self.outputs[i].stream;
        if let Some(log) = self.log.as_mut() {
            log.write(
                if stream == StreamId::Stderr {
                    "stderr"
                } else {
                    "stdout"
                },
                data,
            );
        }
        let f = frame(stream, data);
        for c in &mut self.conns {
            if let Kind::Attach(on) = c.kind {
                if (stream == StreamId::Stdout && on.stdout)
                    || (stream == StreamId::Stderr && on.stderr)
                {
                    if c.outbuf.len() > MAX_CLIENT_BACKLOG {
                        c.dead = true;
                        continue;
                    }
                    c.outbuf.extend_from_slice(&f);
                }
            }
        }
        for i in 0..self.conns.len() {
            if !self.conns[i].outbuf.is_empty() {
                self.write_conn(i);
            }
        }
        true
    }

    fn flush_stdin(&mut self) {
        let Some(w) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        // SAFETY: writing from our own buffer to a descriptor we own.
        let n = unsafe {
            libc::write(
                w.as_raw_fd(),
                self.stdin_buf.as_ptr().cast(),
                self.stdin_buf.len(),
            )
        };
        if n > 0 {
            self.stdin_buf.drain(..n as usize);
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
            // The process closed its stdin: discard what it will never read.
            self.stdin_buf.clear();
            self.stdin = None;
        }
        if self.stdin_buf.is_empty() && self.close_stdin_when_flushed() {
            self.close_stdin();
        }
    }

    fn close_stdin_when_flushed(&self) -> bool {
        self.stdin_once
            && self.pty.is_none()
            && self
                .conns
                .iter()
                .any(|c| matches!(c.kind, Kind::Attach(on) if on.stdin) && c.read_closed)
    }

    fn close_stdin(&mut self) {
        if self.pty.is_none() {
            self.stdin = None;
        }
    }

    fn read_conn(&mut self, i: usize, start: &mut impl FnMut(&mut Loop) -> Result<(), String>) {
        let mut buf = [0u8; 32 * 1024];
        let n = match self.conns[i].sock.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        if n == 0 {
            let c = &mut self.conns[i];
            c.read_closed = true;
            match c.kind {
                Kind::Attach(on) if on.stdin && self.stdin_buf.is_empty() && self.stdin_once => {
                    self.close_stdin();
                }
                Kind::Command => c.dead = true,
                _ => {}
            }
            return;
        }
        match self.conns[i].kind {
            Kind::Attach(on) => {
                if on.stdin && self.stdin.is_some() {
                    self.stdin_buf.extend_from_slice(&buf[..n]);
                    self.flush_stdin();
                }
            }
            Kind::Waiter => {}
            Kind::Command => {
                self.conns[i].inbuf.extend_from_slice(&buf[..n]);
                if let Some(pos) = self.conns[i].inbuf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.conns[i].inbuf.drain(..=pos).collect();
                    let rest: Vec<u8> = std::mem::take(&mut self.conns[i].inbuf);
                    let line = String::from_utf8_lossy(&line).trim().to_owned();
                    self.command(i, &line, start);
                    // Bytes sent right behind `attach` are already stdin.
                    let attached_stdin = matches!(self.conns[i].kind, Kind::Attach(on) if on.stdin);
                    if !rest.is_empty() && attached_stdin {
                        self.stdin_buf.extend_from_slice(&rest);
                        self.flush_stdin();
                    }
                }
            }
        }
    }

    fn command(
        &mut self,
        i: usize,
        line: &str,
        start: &mut impl FnMut(&mut Loop) -> Result<(), String>,
    ) {
        let reply = match Request::parse(line) {
            Ok(req) => match self.act(i, req, start) {
                Some(reply) => reply,
                // A waiter is answered when the process exits.
                None => return,
            },
            Err(RequestError::BadSignal) if self.pid.is_none() => {
                Reply::Err("process is not running".to_owned())
            }
            Err(e) => Reply::Err(e.to_string()),
        };
        self.conns[i]
            .outbuf
            .extend_from_slice(reply.to_line().as_bytes());
        self.write_conn(i);
    }

    /// Carries out one request from connection `i`; `None` when the answer comes later.
    fn act(
        &mut self,
        i: usize,
        req: Request,
        start: &mut impl FnMut(&mut Loop) -> Result<(), String>,
    ) -> Option<Reply> {
        Some(match req {
            Request::Start if self.started => Reply::Err("already started".to_owned()),
            Request::Start => {
                self.started = true;
                match start(self) {
                    // The pid lets berthd report an exec's process (`exec inspect`).
                    Ok(()) => Reply::Ok(self.pid.map(|p| p.to_string()).unwrap_or_default()),
                    Err(e) => {
                        // The process never ran: report it as exited so everyone moves on.
                        if self.pid.is_none() || self.init {
                            self.exit.get_or_insert((127, logfile::now()));
                        }
                        Reply::Err(e)
                    }
                }
            }
            Request::Attach(streams) => {
                self.conns[i].kind = Kind::Attach(streams);
                // Acknowledged, so berthd knows output from here on reaches this client.
                Reply::ok()
            }
            Request::Wait => {
                self.conns[i].kind = Kind::Waiter;
                let (code, at_nanos) = self.exit?;
                Reply::Exit(Exit {
                    code: code.into(),
                    at_nanos,
                })
            }
            Request::Kill(sig) => match self.pid {
                Some(pid) => {
                    // SAFETY: kill(2) with a pid we created and a validated signal number.
                    if unsafe { libc::kill(pid, sig) } == 0 {
                        Reply::ok()
                    } else {
                        Reply::Err(format!("kill: {}", std::io::Error::last_os_error()))
                    }
                }
                None => Reply::Err("process is not running".to_owned()),
            },
            Request::Resize { height, width } => match self.pty {
                Some(fd) => {
                    let ws = libc::winsize {
                        ws_row: height,
                        ws_col: width,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
                    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
                    Reply::ok()
                }
                None => Reply::Err("not a tty".to_owned()),
            },
            Request::CloseStdin => {
                self.close_stdin();
                Reply::ok()
            }
        })
    }

    fn write_conn(&mut self, i: usize) {
        let c = &mut self.conns[i];
        while !c.outbuf.is_empty() {
            match c.sock.write(&c.outbuf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    /// After exit: read what is left in the pipes (without blocking on processes that still
    /// hold them open).
    fn drain_outputs(&mut self) {
        for i in 0..self.outputs.len() {
            for _ in 0..1024 {
                if !self.read_output(i) {
                    break;
                }
                let mut p = libc::pollfd {
                    fd: self.outputs[i].raw(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on the stack.
                if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
                    break;
                }
            }
        }
    }

    fn finish(&mut self, runtime: &Runtime) {
        // A waiter whose `wait` line arrived but was not read yet still gets its answer.
        for c in &mut self.conns {
            if c.kind == Kind::Command {
                let mut buf = [0u8; 64];
                if let Ok(n) = c.sock.read(&mut buf) {
                    c.inbuf.extend_from_slice(&buf[..n]);
                }
                if c.inbuf
                    .starts_with(Request::Wait.to_line().trim_end().as_bytes())
                {
                    c.kind = Kind::Waiter;
                }
            }
        }
        let (code, at_nanos) = self.exit.unwrap_or((137, logfile::now()));
        let exit = Exit {
            code: code.into(),
            at_nanos,
        };
        let msg = Reply::Exit(exit).to_line();
        // The exit file is in place (renamed, not yet fsynced) before anyone is told, so a
        // berthd that connects too late finds it; the fsync follows, off the critical path.
        let exit_path = self.state.join(EXIT_FILE);
        let _ = crate::write_file_renamed(&exit_path, exit.to_file().as_bytes());
        for c in &mut self.conns {
            match c.kind {
                Kind::Waiter => c.outbuf.extend_from_slice(msg.as_bytes()),
                Kind::Attach(_) => {}
                Kind::Command => c.dead = true,
            }
            let _ = c.sock.set_nonblocking(false);
            let _ = c
                .sock
                .set_write_timeout(Some(std::time::Duration::from_secs(5)));
            if !c.dead {
                let _ = c.sock.write_all(&c.outbuf);
            }
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        if let Ok(f) = std::fs::File::open(&exit_path) {
            let _ = f.sync_all();
        }
        if self.init {
            if let Err(e) = runtime.delete(&self.id, &self.root) {
                eprintln!("berth-shim: {e}");
            }
        }
    }
}
