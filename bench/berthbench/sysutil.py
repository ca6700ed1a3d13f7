"""Process, cgroup, mount and file helpers for setup and (above all) cleanup.

Everything here is scoped by a unique path prefix or cgroup name that belongs to this run,
so that nothing of other daemons on the machine (other engineers' berthd/dockerd) is touched.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def read_text(path: str | Path, default: str = "") -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return default


def proc_cmdline(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline")
    return [a for a in raw.split("\0") if a]


def proc_comm(pid: int) -> str:
    return read_text(f"/proc/{pid}/comm").strip()


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone or a kernel thread)."""
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def smaps_rollup_kib(pid: int) -> dict[str, int]:
    """Rss, Pss and Private (clean + dirty) of one process in KiB, from smaps_rollup.
    Pss splits shared pages (the binary's text, shared libraries) among their users."""
    out = {"rss": 0, "pss": 0, "private": 0}
    for line in read_text(f"/proc/{pid}/smaps_rollup").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        if key == "Rss":
            out["rss"] = int(parts[0])
        elif key == "Pss":
            out["pss"] = int(parts[0])
        elif key in ("Private_Clean", "Private_Dirty"):
            out["private"] += int(parts[0])
    return out


def pids_with_arg_prefix(prefix: str) -> list[int]:
    """Processes with any argv element containing `prefix` (our unique temp root + '/')."""
    me = os.getpid()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        if any(prefix in a for a in proc_cmdline(pid)):
            out.append(pid)
    return out


def cgroup_dirs(name: str) -> list[Path]:
    """Every directory of cgroup `name` (a top-level cgroup parent) in every hierarchy
    (v1 controllers, the named systemd hierarchy, the unified v2 mount or a pure v2 root)."""
    bases = [CGROUP_ROOT / name]
    try:
        for e in CGROUP_ROOT.iterdir():
            if e.is_dir() and not e.is_symlink():
                bases.append(e / name)
    except OSError:
        pass
    return [b for b in bases if b.is_dir()]


def walk_cgroup(base: Path) -> list[Path]:
    """All cgroup directories under `base`, deepest first."""
    dirs = []
    for root, subdirs, _files in os.walk(base):
        dirs.append(Path(root))
    dirs.sort(key=lambda p: len(p.parts), reverse=True)
    return dirs


def pids_in_cgroup(name: str) -> set[int]:
    pids: set[int] = set()
    for base in cgroup_dirs(name):
        for d in walk_cgroup(base):
            for line in read_text(d / "cgroup.procs").split():
                if line.strip().isdigit():
                    pids.add(int(line))
    return pids


def descendants(roots: set[int]) -> set[int]:
    """All descendants of the processes `roots` (not including them)."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        st = read_text(f"/proc/{pid}/stat")
        if ")" not in st:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(pid)
    out: set[int] = set()
    todo = list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def kill_pids(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def thaw_cgroup(name: str) -> None:
    """Frozen (paused) containers cannot die from SIGKILL until thawed."""
    for base in cgroup_dirs(name):
        for d in walk_cgroup(base):
            if (d / "freezer.state").exists():
                try:
                    (d / "freezer.state").write_text("THAWED")
                except OSError:
                    pass
            if (d / "cgroup.freeze").exists():
                try:
                    (d / "cgroup.freeze").write_text("0")
                except OSError:
                    pass


def remove_cgroup(name: str) -> list[str]:
    """rmdir every directory of cgroup `name`, deepest first. Returns what could not go."""
    left = []
    for base in cgroup_dirs(name):
        for d in walk_cgroup(base):
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                left.append(str(d))
    return left


def _unescape_mount(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 3 < len(path) and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or under `prefix` (a directory path), deepest first."""
    prefix = prefix.rstrip("/")
    out = []
    for line in read_text("/proc/self/mountinfo").splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        mp = _unescape_mount(fields[4])
        if mp == prefix or mp.startswith(prefix + "/"):
            out.append(mp)
    out.sort(key=lambda m: (m.count("/"), len(m)), reverse=True)
    return out


def umount_under(prefix: str) -> list[str]:
    """Lazily unmount everything under `prefix`, deepest first, until nothing is left."""
    for _ in range(5):
        mps = mounts_under(prefix)
        if not mps:
            return []
        for mp in mps:
            subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
    return mounts_under(prefix)


def safe_rmtree(root: str | Path) -> None:
    """rm -rf that never crosses into a mount point (it would delete files outside the run)."""
    root = Path(root)
    if not root.exists():
        return
    mounted = set(mounts_under(str(root)))
    try:
        root_dev = root.lstat().st_dev
    except OSError:
        return
    if str(root) in mounted:
        return

    def rm(path: Path) -> None:
        try:
            st = path.lstat()
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            if st.st_dev != root_dev or str(path) in mounted:
                return  # a mount point still here: leave it rather than recurse into it
            try:
                entries = list(os.scandir(path))
            except OSError:
                entries = []
            for e in entries:
                rm(Path(e.path))
            try:
                path.rmdir()
            except OSError:
                try:  # e.g. read-only bits set inside layers
                    os.chmod(path, 0o700)
                    path.rmdir()
                except OSError:
                    pass
        else:
            try:
                path.unlink()
            except OSError:
                pass

    rm(root)


def netns_add(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True,
                   capture_output=True)


def netns_delete(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/var/run/netns/{name}")


def wait_gone(pids, timeout: float) -> list[int]:
    """Waits until all `pids` have exited; returns those still alive."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if alive(p)]
        if left:
            time.sleep(0.05)
    return left


def alive(pid: int) -> bool:
    st = read_text(f"/proc/{pid}/stat")
    if not st:
        return False
    # state is the field after the parenthesised comm
    state = st.rsplit(")", 1)[-1].split()[0] if ")" in st else "?"
    return state != "Z"
