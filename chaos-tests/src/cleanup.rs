//! Finding and removing what a run left: processes (by cgroup, by a path in their command
//! line), mounts under a root, cgroups by name; and `Footprint`, which lists whatever of a
//! run is still there after its `Cluster` was dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `input` (if any) on its stdin and piped output, killing it after
/// `timeout`.
pub(crate) fn output_within_input(
    cmd: &mut Command,
    timeout: Duration,
    input: Option<&[u8]>,
) -> Output {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        // Dropped at the end of the thread: the child sees end of input.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let status = child.wait().expect("wait for child");
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Every cgroup directory named `name` (in each v1 hierarchy, the unified one, or at the
/// top of a pure v2 mount).
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join(name)];
    if let Ok(rd) = std::fs::read_dir(base) {
        dirs.extend(rd.flatten().map(|e| e.path().join(name)));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

fn pids_below(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            pids_below(&e.path(), out);
        }
    }
}

/// Processes whose command line mentions `needle` (berthd, shims, docker CLIs of a run).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn live_pids(root: &Path, cgroup_parent: &str) -> Vec<i32> {
    let mut pids = pids_mentioning(&root.display().to_string());
    for d in cgroup_dirs(cgroup_parent) {
        pids_below(&d, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// SIGKILLs every process in `cgroup_parent`'s cgroups or naming `root`, until none is left
/// (up to 5 s).
pub(crate) fn kill_leftovers(root: &Path, cgroup_parent: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = live_pids(root, cgroup_parent);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points at or below `root` in this mount namespace.
fn mounts_under(root: &Path) -> Vec<String> {
    let prefix = root.display().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|t| t.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Lazily unmounts everything at or below `root`, deepest first.
pub(crate) fn unmount_under(root: &Path) {
    let mut targets = mounts_under(root);
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let Ok(c) = std::ffi::CString::new(t) else {
            continue;
        };
        // SAFETY: umount2 with a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            remove_tree(&e.path());
        }
    }
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

/// Removes every cgroup named `name`, and those below it, deepest first.
pub(crate) fn remove_cgroups(name: &str) {
    for d in cgroup_dirs(name) {
        remove_tree(&d);
    }
}

/// The names a run owns, kept to check after the cluster is gone that nothing is left.
#[derive(Clone, Debug)]
pub struct Footprint {
    run: String,
    root: PathBuf,
}

impl Footprint {
    pub(crate) fn new(run: &str, root: &Path) -> Footprint {
        Footprint {
            run: run.to_owned(),
            root: root.to_owned(),
        }
    }

    /// Everything of the run still present: namespaces, links in this namespace, processes,
    /// mounts, cgroups, the root directory. Empty when the run cleaned up after itself.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let netns = std::fs::read_dir("/var/run/netns")
            .into_iter()
            .flatten()
            .flatten();
        left.extend(netns.map(|e| e.file_name().to_string_lossy().into_owned()));
        let links = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten();
        left.extend(links.map(|e| e.file_name().to_string_lossy().into_owned()));
        left.retain(|n| n.contains(&self.run));
        let root = self.root.display().to_string();
        left.extend(
            pids_mentioning(&root)
                .iter()
                .map(|p| format!("process {p}")),
        );
        left.extend(
            mounts_under(&self.root)
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        if self.root.exists() {
            left.push(format!("directory {root}"));
        }
        let cg = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten();
        for hier in cg.map(|e| e.path()) {
            if hier.to_string_lossy().contains(&self.run) {
                left.push(format!("cgroup {}", hier.display()));
            }
            for e in std::fs::read_dir(&hier).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().contains(&self.run) {
                    left.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
        left
    }
}
