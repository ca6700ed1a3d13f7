"""The engines under test. Each one gets, for this run only:

  * its own network namespace (`ip netns add`), entered with `nsenter --net=...` (not
    `ip netns exec`, which remounts /sys and hides the cgroup mounts from the daemon);
  * its own temporary data root, exec root, API socket and pidfile under the run's temp dir;
  * its own cgroup parent (Berth, Docker), so leftovers can be found and removed;
  * a busybox:latest image imported through its own socket with the stock docker CLI.

`Engine.cleanup()` removes all of it and is safe to call more than once, after a failure
half-way through setup, or from a signal handler's unwinding.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import sysutil

DOCKER_CLI = os.environ.get("BENCH_DOCKER_CLI", "/usr/local/bin/docker")
REPO = Path(__file__).resolve().parents[2]
BERTH_BIN = Path(os.environ.get("BENCH_BERTH_BIN", REPO / "target" / "release"))


class EngineError(RuntimeError):
    pass


def make_busybox_tar(workdir: Path) -> Path:
    """A busybox rootfs tar from the host's busybox-static: /bin/busybox, every applet as a
    symlink to it (except the applet named `busybox`), /etc/passwd and /etc/group."""
    rootfs = workdir / "rootfs"
    for d in ("bin", "etc", "tmp", "root"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    if not os.path.exists("/bin/busybox"):
        raise EngineError("/bin/busybox is missing: apt-get install -y busybox-static")
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "tmp").chmod(0o1777)
    tar = workdir / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    shutil.rmtree(rootfs)
    return tar


def _git_describe() -> str | None:
    """The commit of the source tree the Berth binaries come from, '+dirty' if modified."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                ".", ":!bench", ":!README.md"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (head + ("+dirty" if dirty else "")) or None


class Engine:
    """One daemon under test, driven through its unix socket by the stock docker CLI."""

    name = "engine"
    label = "Engine"
    cli_timeout = 120.0

    def __init__(self, run_id: str, base: Path):
        self.run_id = run_id
        self.root = base / self.name
        # The substring that marks every process of ours: our temp dir and a slash.
        self.marker = str(self.root) + "/"
        self.netns = f"{run_id}-{self.name}"
        self.cgroup_parent = f"{run_id}-{self.name}"
        self.sock = self.root / "api.sock"
        self.pidfile = self.root / "daemon.pid"
        self.logfile = self.root / "daemon.log"
        self.cli_config = self.root / "cli"
        self.proc: subprocess.Popen | None = None
        self.version: dict = {}
        self.started = False
        self._cleaned = False

    # -- to be provided by each engine --------------------------------------------------
    def daemon_argv(self) -> list[str]:
        raise NotImplementedError

    def daemon_pids(self) -> list[int]:
        """The daemon processes whose RSS counts as the engine's idle footprint."""
        raise NotImplementedError

    def shim_pids(self) -> list[int]:
        """Per-container helper processes (not the container's own processes)."""
        raise NotImplementedError

    @staticmethod
    def available() -> tuple[bool, str]:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.cli_config.mkdir(exist_ok=True)
        (self.cli_config / "config.json").write_text("{}\n")
        sysutil.netns_add(self.netns)
        argv = ["nsenter", f"--net=/var/run/netns/{self.netns}"] + self.daemon_argv()
        log = open(self.logfile, "ab")
        try:
            # Own session: a Ctrl-C in the terminal reaches us, not the daemon; we stop it
            # in order (containers first) from cleanup().
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        finally:
            log.close()
        self.started = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineError(f"{self.name} daemon exited ({self.proc.returncode}):\n"
                                  + self.log_tail())
            if self.ping():
                break
            time.sleep(0.05)
        else:
            raise EngineError(f"{self.name} daemon did not answer /_ping in {timeout}s:\n"
                              + self.log_tail())
        self.version = self._read_version()

    def ping(self) -> bool:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            s.connect(str(self.sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            s.close()
            return data.startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        text = sysutil.read_text(self.logfile)
        return "\n".join(text.splitlines()[-lines:])

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOCKER_") and k != "BERTH_HOST"}
        env["DOCKER_HOST"] = f"unix://{self.sock}"
        env["DOCKER_CONFIG"] = str(self.cli_config)
        env["DOCKER_CLI_HINTS"] = "false"
        return env

    def cli(self, *args: str, check: bool = True, timeout: float | None = None,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """Runs the stock docker CLI against this engine's socket."""
        try:
            cp = subprocess.run([DOCKER_CLI, *args], env=self.env(), capture_output=True,
                                timeout=timeout or self.cli_timeout, input=input)
        except subprocess.TimeoutExpired as e:
            raise EngineError(f"{self.name}: `docker {' '.join(args)}` timed out "
                              f"after {e.timeout}s") from None
        if check and cp.returncode != 0:
            raise EngineError(f"{self.name}: `docker {' '.join(args)}` exited "
                              f"{cp.returncode}: {cp.stderr.decode(errors='replace').strip()}")
        return cp

    def cli_argv(self, *args: str) -> list[str]:
        return [DOCKER_CLI, *args]

    def import_image(self, tar: Path) -> None:
        self.cli("import", "-c", 'CMD ["/bin/sh"]', str(tar), "busybox:latest")

    def _read_version(self) -> dict:
        cp = self.cli("version", "--format", "{{json .Server}}", check=False)
        try:
            server = json.loads(cp.stdout) or {}
        except ValueError:
            server = {}
        out = {"version": server.get("Version"), "api": server.get("ApiVersion")}
        for c in server.get("Components") or []:
            if c.get("Name") and c.get("Name") != "Engine":
                out[c["Name"].lower()] = c.get("Version")
        return out

    def container_ids(self) -> list[str]:
        cp = self.cli("ps", "-aq", "--no-trunc", check=False, timeout=60)
        return cp.stdout.decode().split()

    def remove_containers(self, ids: list[str] | None = None) -> None:
        ids = self.container_ids() if ids is None else ids
        for i in range(0, len(ids), 50):
            self.cli("rm", "-f", *ids[i:i + 50], check=False, timeout=180)

    def daemon_rss_kib(self) -> int:
        return sum(sysutil.rss_kib(p) for p in self.daemon_pids())

    def shim_rss_kib(self) -> tuple[int, int]:
        pids = self.shim_pids()
        return sum(sysutil.rss_kib(p) for p in pids), len(pids)

    def shim_pss_private_kib(self) -> tuple[int, int]:
        """Sum of Pss and of private pages over the per-container helper processes."""
        pss = priv = 0
        for p in self.shim_pids():
            m = sysutil.smaps_rollup_kib(p)
            pss += m["pss"]
            priv += m["private"]
        return pss, priv

    def extra_pids(self) -> set[int]:
        """Processes of ours that are neither in our cgroup nor carry our root in argv."""
        return set()

    def _our_pids(self, comm_prefix: str) -> list[int]:
        return [p for p in sysutil.pids_with_arg_prefix(self.marker)
                if sysutil.proc_comm(p).startswith(comm_prefix)]

    def cleanup(self) -> list[str]:
        """Removes everything this engine made. Returns a list of leftovers (ideally empty)."""
        if self._cleaned:
            return []
        self._cleaned = True
        problems: list[str] = []
        # 1. Containers, through the API, while the daemon still runs.
        if self.proc is not None and self.proc.poll() is None and self.ping():
            try:
                self.remove_containers()
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                problems.append(f"{self.name}: rm -f of containers failed: {e}")
        # 2. The daemon: SIGTERM, then SIGKILL.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name}: daemon ignored SIGTERM for 15 s; SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=10)
        # 3. Whatever is left: shims, containerd, containers (in our cgroups or carrying our
        #    root in their argv). Thaw first: frozen tasks cannot die.
        for _ in range(3):
            sysutil.thaw_cgroup(self.cgroup_parent)
            # (extra_pids is taken fresh each time, right before the kill: no stale pids)
            left = sysutil.pids_in_cgroup(self.cgroup_parent) | set(
                sysutil.pids_with_arg_prefix(self.marker)) | self.extra_pids()
            left.discard(os.getpid())
            if not left:
                break
            sysutil.kill_pids(left)
            sysutil.wait_gone(left, 5)
        # 4. Mounts under our roots, deepest first.
        stuck = sysutil.umount_under(str(self.root))
        if stuck:
            problems.append(f"{self.name}: mounts left: {stuck}")
        # 5. Network namespace.
        if self.started or sysutil.netns_exists(self.netns):
            sysutil.netns_delete(self.netns)
        # 6. Cgroups.
        left = sysutil.remove_cgroup(self.cgroup_parent)
        if left:
            problems.append(f"{self.name}: cgroups left: {left}")
        return problems


class Berth(Engine):
    name = "berth"
    label = "Berth"

    @staticmethod
    def available() -> tuple[bool, str]:
        missing = [b for b in ("berthd", "berth-shim") if not (BERTH_BIN / b).exists()]
        if missing:
            return False, f"missing {', '.join(missing)} in {BERTH_BIN} (cargo build --release)"
        return True, ""

    def snapshot_binaries(self) -> dict:
        """Copies berthd and its sibling binaries (berth-shim, berth-runtime, ...) into the
        run's temp dir, so a concurrent `cargo build` cannot swap them mid-run. berthd finds
        its helpers next to its own executable. Returns name -> {mtime, size} of the build."""
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        info = {}
        for f in sorted(BERTH_BIN.iterdir()):
            if (f.name.startswith("berth") and f.is_file() and os.access(f, os.X_OK)
                    and "." not in f.name):
                shutil.copy2(f, self.bin / f.name)
                st = f.stat()
                info[f.name] = {"mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                                        time.localtime(st.st_mtime)),
                                "size": st.st_size}
        return info

    def start(self, timeout: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.binaries = self.snapshot_binaries()
        super().start(timeout)
        self.version["binaries"] = self.binaries
        self.version["git"] = _git_describe()

    def daemon_argv(self) -> list[str]:
        return [str(self.bin / "berthd"),
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "-H", f"unix://{self.sock}",
                "--cgroup-parent", self.cgroup_parent,
                "--pidfile", str(self.pidfile)]

    def daemon_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def shim_pids(self) -> list[int]:
        """Every process of ours (our root in its argv) that is neither berthd nor inside a
        container's cgroup: the berth-shims and any helper they keep per container."""
        daemon = set(self.daemon_pids())
        in_containers = sysutil.pids_in_cgroup(self.cgroup_parent)
        return [p for p in sysutil.pids_with_arg_prefix(self.marker)
                if p not in daemon and p not in in_containers]


class Docker(Engine):
    name = "docker"
    label = "Docker"

    @staticmethod
    def available() -> tuple[bool, str]:
        if not shutil.which("dockerd") or not shutil.which("containerd"):
            return False, "dockerd not installed (apt-get install -y docker.io)"
        return True, ""

    def daemon_argv(self) -> list[str]:
        cfg = self.root / "daemon.json"
        cfg.write_text("{}\n")  # never the host's /etc/docker/daemon.json
        # No --containerd: dockerd starts its own managed containerd under --exec-root.
        return ["dockerd",
                "--config-file", str(cfg),
                "--host", f"unix://{self.sock}",
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.pidfile),
                "--cgroup-parent", self.cgroup_parent]

    def daemon_pids(self) -> list[int]:
        pids = [self.proc.pid] if self.proc and self.proc.poll() is None else []
        return pids + [p for p in self._our_pids("containerd")
                       if not sysutil.proc_comm(p).startswith("containerd-shim")]

    def shim_pids(self) -> list[int]:
        return self._our_pids("containerd-shim")


class Podman(Engine):
    """Podman's Docker-compatible API service (`podman system service`); conmon is its
    per-container helper, runc its runtime (crun refuses cgroup v1 hybrid hosts). Its
    containers.conf, storage, network configs and tmp dir all live under the run's temp dir.
    Used only when podman is installed."""

    name = "podman"
    label = "Podman"

    @staticmethod
    def available() -> tuple[bool, str]:
        if not shutil.which("podman"):
            return False, "podman not installed"
        return True, ""

    def daemon_argv(self) -> list[str]:
        conf = self.root / "containers.conf"
        for d in ("tmp", "networks"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        runc = shutil.which("runc") or "/usr/sbin/runc"
        # Podman asks for nofile=1048576 and nproc=4194304 by default; the hard limits here
        # may be lower and CAP_SYS_RESOURCE absent, so stay within the limits we have.
        ulimits = []
        for name, res in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
            soft, hard = resource.getrlimit(res)
            if hard != resource.RLIM_INFINITY:
                ulimits.append(f'"{name}={soft}:{hard}"')
        conf.write_text(
            "[containers]\n"
            + (f"default_ulimits = [{', '.join(ulimits)}]\n" if ulimits else "") +
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.root / "tmp" / "events.log"}"\n'
            'runtime = "runc"\n'
            f'[engine.runtimes]\nrunc = ["{runc}"]\n'
            "[network]\n"
            f'network_config_dir = "{self.root / "networks"}"\n')
        return ["env", f"CONTAINERS_CONF={conf}",
                "podman", "--root", str(self.root / "data"),
                "--runroot", str(self.root / "exec"),
                "--tmpdir", str(self.root / "tmp"),
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--runtime", runc,
                "system", "service", "--time", "0", f"unix://{self.sock}"]

    def daemon_pids(self) -> list[int]:
        return self._our_pids("podman")

    def shim_pids(self) -> list[int]:
        return self._our_pids("conmon")

    def extra_pids(self) -> set[int]:
        """Containers' processes: podman puts them under /libpod_parent, not a cgroup of
        ours, so find them as descendants of our conmons."""
        conmons = set(self.shim_pids())
        return sysutil.descendants(conmons) if conmons else set()


ALL_ENGINES = [Berth, Docker, Podman]
