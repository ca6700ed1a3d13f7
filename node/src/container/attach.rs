//! Attach and exec: the hijacked client connection spliced to the shim's attach stream.
//!
//! ```text
//!  client ◄── frames (non-TTY) / raw bytes (TTY) ── berthd ◄── frames ── shim ◄── process
//!  client ──► stdin bytes (detach keys watched) ──► berthd ──► shim ──► process stdin
//! ```
//! An attach made before start is registered synchronously (so no output is missed) and
//! served when the shim exists, before the process is started.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_api::backend::{AttachHandle, AttachOptions, ByteStream, Hijacked, LogOptions};
use berth_common::shim_protocol::{Reply, Request};
use berth_common::stream::{frame, Demux, StreamId};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::model::ExecSpec;
use super::{exec_process, shim, spec, user, ContainerError, Containers, Ctr, Exec, ExecState};

/// An attach waiting for the container to start.
pub struct Pending {
    opts: AttachOptions,
    io: oneshot::Receiver<Hijacked>,
    tty: bool,
}

/// Docker's `detachKeys` syntax: `ctrl-p,ctrl-q`, `a`, `ctrl-@`...
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ContainerError> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => {
                    return Err(ContainerError::Invalid(format!(
                        "Invalid detach keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ContainerError::Invalid(format!(
                "Invalid detach keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

/// Connects to the shim's attach stream and waits for its acknowledgement.
async fn open_attach(
    run: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<UnixStream, ContainerError> {
    let streams = shim::AttachStreams {
        stdin,
        stdout,
        stderr,
    };
    let mut s = shim::attach(run, streams).await?;
    // Exactly the acknowledgement: what follows it is already the stream.
    let expected = Reply::ok().to_line();
    let mut ack = vec![0u8; expected.len()];
    s.read_exact(&mut ack)
        .await
        .map_err(|e| ContainerError::io("attach to shim", run, e))?;
    if ack != expected.as_bytes() {
        return Err(ContainerError::Runtime("shim refused the attach".into()));
    }
    Ok(s)
}

/// Copies both ways until the process's output ends (or the client detaches).
/// `before_close` runs between the end of output and closing the client (exec uses it to
/// make sure its exit code is recorded before the client asks for it).
async fn splice(
    client: Hijacked,
    shim_conn: UnixStream,
    tty: bool,
    stdin: bool,
    detach: Vec<u8>,
    before_close: Option<BoxFuture<'static, ()>>,
) {
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim_conn.into_split();
    let input = async move {
        if !stdin {
            // Still read, to notice the client going away.
            let mut sink = [0u8; 1024];
            while matches!(cr.read(&mut sink).await, Ok(n) if n > 0) {}
            return false;
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = sw.shutdown().await;
                    return false;
                }
                Ok(n) => n,
            };
            let data = &buf[..n];
            if !detach.is_empty() {
                for (i, b) in data.iter().enumerate() {
                    if *b == detach[matched] {
                        matched += 1;
                        if matched == detach.len() {
                            let _ = sw.write_all(&data[..i + 1 - matched.min(i + 1)]).await;
                            return true;
                        }
                    } else {
                        matched = usize::from(*b == detach[0]);
                    }
                }
            }
            if sw.write_all(data).await.is_err() {
                return false;
            }
        }
    };
    let output = async move {
        let mut demux = Demux::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tty {
                demux.push(&buf[..n]);
                while let Ok(Some((_, payload))) = demux.next_frame() {
                    if cw.write_all(&payload).await.is_err() {
                        return;
                    }
                }
            } else if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            let _ = cw.flush().await;
        }
        if let Some(f) = before_close {
            let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
        }
        let _ = cw.shutdown().await;
    };
    tokio::pin!(output);
    tokio::select! {
        _ = &mut output => {}
        detached = input => {
            if !detached {
                // Client closed its side (stdin EOF): keep sending output until it ends.
                output.await;
            }
        }
    }
}

/// Writes a log snapshot (already framed for non-TTY containers) to an attached client.
async fn write_logs(io: &mut Hijacked, logs: ByteStream) {
    let mut stream = logs.stream;
    while let Some(chunk) = stream.next().await {
        if io.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = io.flush().await;
}

impl Containers {
    pub async fn attach(
        &self,
        key: &str,
        opts: AttachOptions,
    ) -> Result<AttachHandle, ContainerError> {
        let c = self.get(key)?;
        let rec = c.record();
        let tty = rec.config.tty;
        let detach = parse_detach_keys(opts.detach_keys.as_deref().unwrap_or("ctrl-p,ctrl-q"))?;
        let stdin = opts.stdin && rec.config.open_stdin;
        if !opts.stream {
            // As dockerd: the logs so far (if asked), then the connection closes.
            let logs = self.attach_logs(key, &opts).await?;
            self.emit(&c, "attach", &[]);
            return Ok(AttachHandle {
                tty,
                serve: Box::new(move |mut io| {
                    Box::pin(async move {
                        if let Some(l) = logs {
                            write_logs(&mut io, l).await;
                        }
                        let _ = io.shutdown().await;
                    })
                }),
            });
        }
        let (tx, rx) = oneshot::channel::<Hijacked>();
        let _op = c.op.lock().await;
        if !c.is_running() {
            c.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Pending { opts, io: rx, tty });
            let serve: Box<dyn FnOnce(Hijacked) -> BoxFuture<'static, ()> + Send> =
                Box::new(move |io| {
                    Box::pin(async move {
                        let _ = tx.send(io);
                    })
                });
            return Ok(AttachHandle { tty, serve });
        }
        drop(rx);
        let run = self.paths(&c.id).run;
        let conn = open_attach(&run, stdin, opts.stdout, opts.stderr).await?;
        // `logs` with `stream`: what was logged before the attach, then the live stream.
        let logs = self.attach_logs(key, &opts).await?;
        self.emit(&c, "attach", &[]);
        Ok(AttachHandle {
            tty,
            serve: Box::new(move |mut io| {
                Box::pin(async move {
                    if let Some(l) = logs {
                        write_logs(&mut io, l).await;
                    }
                    splice(io, conn, tty, stdin, detach, None).await
                })
            }),
        })
    }

    /// The logs an attach with `logs=true` sends first: everything logged so far.
    async fn attach_logs(
        &self,
        key: &str,
        opts: &AttachOptions,
    ) -> Result<Option<ByteStream>, ContainerError> {
        if !opts.logs || !(opts.stdout || opts.stderr) {
            return Ok(None);
        }
        let lo = LogOptions {
            stdout: opts.stdout,
            stderr: opts.stderr,
            ..Default::default()
        };
        Ok(Some(self.logs(key, lo).await?))
    }

    /// Connects the attaches made before start to the new shim (called before `start`).
    pub(crate) async fn serve_pending(&self, id: &str, run: &Path) {
        let Ok(c) = self.get(id) else { return };
        let pending: Vec<Pending> = c
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        let open_stdin = c.record().config.open_stdin;
        for p in pending {
            let Ok(Ok(io)) = tokio::time::timeout(Duration::from_secs(5), p.io).await else {
                continue;
            };
            let stdin = p.opts.stdin && open_stdin;
            let detach =
                parse_detach_keys(p.opts.detach_keys.as_deref().unwrap_or("ctrl-p,ctrl-q"))
                    .unwrap_or_default();
            match open_attach(run, stdin, p.opts.stdout, p.opts.stderr).await {
                Ok(conn) => {
                    self.emit(&c, "attach", &[]);
                    tokio::spawn(splice(io, conn, p.tty, stdin, detach, None));
                }
                Err(e) => tracing::warn!(container_id = %id, error = %e, "attach"),
            }
        }
    }

    pub async fn resize(&self, key: &str, h: u16, w: u16) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        if !c.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.record().config.tty {
            let _ = shim::request(
                &self.paths(&c.id).run,
                Request::Resize {
                    height: h,
                    width: w,
                },
            )
            .await;
        }
        Ok(())
    }

    pub async fn exec_create(&self, key: &str, cfg: ExecSpec) -> Result<String, ContainerError> {
        let c = self.get(key)?;
        if !c.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.status() == "paused" {
            return Err(ContainerError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        self.sweep_execs();
        let id = hex::encode(rand::random::<[u8; 32]>());
        let cmdline = event_cmdline(&cfg.cmd);
        let (done, _) = tokio::sync::watch::channel(None);
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config: cfg,
            state: Default::default(),
            done,
        });
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), exec);
        self.emit(
            &c,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Forgets execs that ended more than [`EXEC_KEEP`] ago (dockerd's exec garbage
    /// collection), so a long-lived daemon doesn't keep every exec it ever ran.
    fn sweep_execs(&self) {
        let now = std::time::Instant::now();
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| {
                let st = e.state.lock().unwrap_or_else(|p| p.into_inner());
                st.exited_at
                    .is_none_or(|t| now.duration_since(t) < EXEC_KEEP)
            });
    }

    /// Drops an exec from the exec table (a healthcheck probe once it has its result).
    pub(crate) fn forget_exec(&self, exec_id: &str) {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(exec_id);
    }

    /// Sends a signal to an exec's process (a probe that timed out).
    pub(crate) async fn exec_signal(&self, exec_id: &str, signal: i32) {
        let Ok(ex) = self.exec(exec_id) else {
            return;
        };
        let state = exec_state_dir(&self.paths(&ex.container_id).run, exec_id);
        if let Err(e) = shim::request(&state, Request::Kill(signal)).await {
            tracing::debug!(container_id = %ex.container_id, error = %e, "signal exec");
        }
    }

    fn exec(&self, id: &str) -> Result<Arc<Exec>, ContainerError> {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(format!("No such exec instance: {id}")))
    }

    /// What an exec's exit code will be sent on (`None` until it has exited).
    pub(crate) fn exec_done(
        &self,
        exec_id: &str,
    ) -> Result<tokio::sync::watch::Receiver<Option<i64>>, ContainerError> {
        Ok(self.exec(exec_id)?.done.subscribe())
    }

    /// Starts the exec'd process before answering, so its output is buffered in the shim
    /// until the client's connection is spliced in.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
    ) -> Result<AttachHandle, ContainerError> {
        let ex = self.exec(exec_id)?;
        mark_started(&ex, exec_id)?;
        let c = self.get(&ex.container_id)?;
        if !c.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let cfg = ex.config.clone();
        let stdin = cfg.attach_stdin && !detach;
        let state = exec_state_dir(&self.paths(&c.id).run, exec_id);
        std::fs::create_dir_all(&state).map_err(|e| ContainerError::io("create", &state, e))?;
        let cleanup = scopeguard(state.clone());
        self.spawn_exec_shim(&c, exec_id, &cfg, &state, stdin)
            .await?;
        let conn = if detach {
            None
        } else {
            Some(open_attach(&state, stdin, cfg.attach_stdout, cfg.attach_stderr).await?)
        };
        // The waiter asks before start, so even an instant exit is reported to it.
        let mut waiter = shim::connect(&state).await?;
        waiter
            .write_all(Request::Wait.to_line().as_bytes())
            .await
            .map_err(|e| ContainerError::io("write to shim", &state, e))?;
        let started = shim::request_text(&state, Request::Start).await;
        cleanup.disarm();
        let start_err = started.as_ref().err().map(|e| e.to_string());
        {
            let mut st = ex.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = started.is_ok();
            if let Ok(pid) = started.as_deref().unwrap_or("").trim().parse::<i64>() {
                st.pid = pid;
            }
        }
        self.emit(
            &c,
            &format!("exec_start: {}", event_cmdline(&cfg.cmd)),
            &[("execID", exec_id.to_owned())],
        );
        self.watch_exec_exit(ex.clone(), c, waiter, state, start_err.clone());
        let mut done = ex.done.subscribe();
        let recorded: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = done.wait_for(|v| v.is_some()).await;
        });
        let serve = exec_serve(&cfg, conn, start_err, stdin, recorded);
        Ok(AttachHandle {
            tty: cfg.tty,
            serve,
        })
    }

    /// Writes the exec's `process.json` into its state directory and spawns its shim.
    async fn spawn_exec_shim(
        &self,
        c: &Ctr,
        exec_id: &str,
        cfg: &ExecSpec,
        state: &Path,
        stdin: bool,
    ) -> Result<(), ContainerError> {
        let rec = c.record();
        let process = self.exec_process(&rec, cfg)?;
        let process_path = state.join("process.json");
        std::fs::write(
            &process_path,
            serde_json::to_vec(&process).unwrap_or_default(),
        )
        .map_err(|e| ContainerError::io("write", &process_path, e))?;
        let runtime_bin = self.inner.cfg.runtimes.get(&rec.runtime).cloned();
        shim::spawn(shim::Spawn {
            shim: &self.inner.cfg.shim_path,
            mode: "exec",
            id: &c.id,
            state,
            root: &self.paths(&c.id).runtime_root(),
            runtime: runtime_bin.as_deref(),
            tty: cfg.tty,
            stdin,
            stdin_once: true,
            extra: vec![
                ("--exec-id", exec_id.to_owned()),
                ("--process", process_path.display().to_string()),
            ],
        })
        .await?;
        Ok(())
    }

    /// Records the exec's exit code when its shim reports it (or 126/127 at once when it
    /// never started), sends `exec_die`, and removes its state directory.
    fn watch_exec_exit(
        &self,
        ex: Arc<Exec>,
        c: Arc<Ctr>,
        waiter: UnixStream,
        state: std::path::PathBuf,
        start_err: Option<String>,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            let code = match &start_err {
                Some(msg) => exec_failure_code(msg),
                None => wait_on(waiter)
                    .await
                    .or_else(|| shim::read_exit_file(&state))
                    .map(|e| e.code)
                    .unwrap_or(137),
            };
            {
                let mut st = ex.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.exit_code = Some(code);
                st.exited_at = Some(std::time::Instant::now());
            }
            let _ = ex.done.send(Some(code));
            me.emit(
                &c,
                "exec_die",
                &[("execID", ex.id.clone()), ("exitCode", code.to_string())],
            );
            let _ = tokio::fs::remove_dir_all(&state).await;
        });
    }

    /// The exec's OCI process: the container's (see exec_process.rs) with the exec's command,
    /// environment, working directory, user and terminal.
    fn exec_process(&self, rec: &super::Record, cfg: &ExecSpec) -> Result<Value, ContainerError> {
        let root = crate::fsroot::Root::open(std::path::Path::new(&format!(
            "/proc/{}/root",
            rec.state.pid
        )))
        .map_err(ContainerError::internal)?;
        let u = if cfg.user.is_empty() {
            rec.config.user.clone()
        } else {
            cfg.user.clone()
        };
        let ids = user::resolve(&root, &u, &rec.host_config.group_add)?;
        // As at start: the links' variables under the container's own (dockerd's order).
        let link_env = self.resolve_links(rec).map(|v| v.env).unwrap_or_default();
        let mut env = super::links::merge_env(link_env, &rec.config.env);
        for e in &cfg.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        let privileged_caps = if cfg.privileged && !rec.host_config.privileged {
            let mut host = rec.host_config.clone();
            host.privileged = true;
            Some(spec::capabilities(&host)?)
        } else {
            None
        };
        let cwd = if !cfg.working_dir.is_empty() {
            cfg.working_dir.clone()
        } else if !rec.config.working_dir.is_empty() {
            rec.config.working_dir.clone()
        } else {
            "/".into()
        };
        let init = exec_process::container_process(&self.paths(&rec.id).bundle())?;
        Ok(exec_process::build(
            &init,
            &exec_process::ExecOverrides {
                args: cfg.cmd.clone(),
                env,
                cwd,
                terminal: cfg.tty,
                uid: ids.uid,
                gid: ids.gid,
                additional_gids: ids.additional,
                privileged_caps,
                console_size: cfg.console_size,
            },
        ))
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<Value, ContainerError> {
        let ex = self.exec(exec_id)?;
        let st: ExecState = ex.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cfg = &ex.config;
        let (entry, args) = cfg
            .cmd
            .split_first()
            .map(|(a, b)| (a.clone(), b.to_vec()))
            .unwrap_or_default();
        Ok(json!({
            "ID": ex.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": { "tty": cfg.tty, "entrypoint": entry, "arguments": args, "privileged": cfg.privileged, "user": cfg.user },
            "OpenStdin": cfg.attach_stdin,
            "OpenStderr": cfg.attach_stderr,
            "OpenStdout": cfg.attach_stdout,
            "CanRemove": false,
            "ContainerID": ex.container_id,
            "DetachKeys": cfg.detach_keys,
            "Pid": st.pid,
        }))
    }

    pub async fn exec_resize(&self, exec_id: &str, h: u16, w: u16) -> Result<(), ContainerError> {
        let ex = self.exec(exec_id)?;
        if ex.config.tty {
            let state = exec_state_dir(&self.paths(&ex.container_id).run, exec_id);
            let _ = shim::request(
                &state,
                Request::Resize {
                    height: h,
                    width: w,
                },
            )
            .await;
        }
        Ok(())
    }
}

/// An exec's command as dockerd writes it in `exec_create`/`exec_start` events: the
/// entrypoint, a space, then the arguments (so `true` alone is `"true "`).
fn event_cmdline(cmd: &[String]) -> String {
    match cmd.split_first() {
        Some((entry, args)) => format!("{entry} {}", args.join(" ")),
        None => " ".into(),
    }
}

/// How long an ended exec stays inspectable.
const EXEC_KEEP: Duration = Duration::from_secs(5 * 60);

/// `<run>/e/<12 hex>`: short, for the 108-byte limit on socket paths.
fn exec_state_dir(run: &Path, exec_id: &str) -> std::path::PathBuf {
    run.join("e").join(&exec_id[..exec_id.len().min(12)])
}

/// Removes a directory on drop unless disarmed (an exec that failed to set up).
struct DirGuard(Option<std::path::PathBuf>);

/// An exec runs once: marks it started, or says it already has.
fn mark_started(ex: &Exec, exec_id: &str) -> Result<(), ContainerError> {
    let mut st = ex.state.lock().unwrap_or_else(|p| p.into_inner());
    if st.started {
        return Err(ContainerError::Conflict(format!(
            "Error: Exec command {exec_id} has already run"
        )));
    }
    st.started = true;
    Ok(())
}

/// What serves the client's hijacked connection: the runtime's refusal (then the stream
/// closes once the exit code is recorded), the process's streams, or nothing (detached).
fn exec_serve(
    cfg: &ExecSpec,
    conn: Option<UnixStream>,
    start_err: Option<String>,
    stdin: bool,
    recorded: BoxFuture<'static, ()>,
) -> Box<dyn FnOnce(Hijacked) -> BoxFuture<'static, ()> + Send> {
    let tty = cfg.tty;
    match (conn, start_err) {
        (_, Some(msg)) => Box::new(move |mut io: Hijacked| {
            Box::pin(async move {
                let text = format!("OCI runtime exec failed: {msg}\r\n");
                let bytes = if tty {
                    text.into_bytes()
                } else {
                    frame(StreamId::Stderr, text.as_bytes())
                };
                let _ = io.write_all(&bytes).await;
                recorded.await;
                let _ = io.shutdown().await;
            })
        }),
        (Some(conn), None) => {
            let detach_keys = parse_detach_keys(if cfg.detach_keys.is_empty() {
                "ctrl-p,ctrl-q"
            } else {
                &cfg.detach_keys
            })
            .unwrap_or_default();
            Box::new(move |io| Box::pin(splice(io, conn, tty, stdin, detach_keys, Some(recorded))))
        }
        (None, None) => Box::new(|_| Box::pin(async {})),
    }
}

fn scopeguard(p: std::path::PathBuf) -> DirGuard {
    DirGuard(Some(p))
}

impl DirGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Docker's exit codes for a process that could not be started.
fn exec_failure_code(msg: &str) -> i64 {
    if msg.contains("not found") || msg.contains("No such file") {
        127
    } else {
        126
    }
}

/// Reads the `exit` line of a connection that already sent `wait`.
async fn wait_on(conn: UnixStream) -> Option<shim::Exit> {
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).await.ok()?;
    let mut it = line.trim().strip_prefix("exit ")?.split_whitespace();
    Some(shim::Exit {
        code: it.next()?.parse().ok()?,
        at_nanos: it.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_syntax() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").expect("default"),
            vec![16, 17]
        );
        assert_eq!(parse_detach_keys("a,ctrl-@").expect("mixed"), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }

    #[test]
    fn exec_events_name_the_command_like_dockerd() {
        let cmd = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(event_cmdline(&cmd(&["true"])), "true ");
        assert_eq!(
            event_cmdline(&cmd(&["/bin/sh", "-c", "echo hi"])),
            "/bin/sh -c echo hi"
        );
    }

    #[test]
    fn failure_codes() {
        assert_eq!(
            exec_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(exec_failure_code("permission denied"), 126);
    }
}
