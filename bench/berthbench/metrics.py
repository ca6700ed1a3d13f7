"""The measurements. Every timed step goes through the stock docker CLI (or raw HTTP for the
API latency test) against each engine's own socket, and engines alternate: iteration i runs
Berth then Docker, iteration i+1 Docker then Berth, so slow drift of the machine (other load,
page cache, thermal) hits both alike.

Each function fills one or more `Metric`s in `Bench.metrics`; an engine that fails a step is
recorded with the exact command and error (in `Bench.problems`) and skipped for the rest of
that metric, so one broken feature does not sink the whole run.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import threading
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field

from . import apiflow, pullbench, sysutil
from .engines import DOCKER_CLI, Engine, EngineError
from .standin import StandIn
from .loadgen import run_load

# Set when the run is interrupted: client threads stop starting new containers.
STOP = threading.Event()


@dataclass
class Config:
    n: int = 30                 # iterations of the sequential latency metrics
    rounds: int = 5             # rounds of the throughput metrics (concurrency, API load)
    conc_clients: int = 8       # concurrent `docker run -d` clients
    conc_per_client: int = 5    # containers each client starts per round
    api_clients: int = 32
    api_requests: int = 3200    # per round per engine
    api_time_bound_s: float = 30.0
    api_containers: int = 10
    settle_s: float = 5.0
    warmup: int = 1
    pull_layers: int = 4        # ~50 MB layers of the registry pull image (plus busybox)
    pull_layer_mb: int = 50
    pull_rounds: int = 3
    health_containers: int = 50  # containers with a 1 s healthcheck
    health_window_s: float = 20.0  # how long their CPU is measured


@dataclass
class Metric:
    id: str
    title: str
    unit: str
    better: str = "lower"                       # "lower" or "higher"
    target: dict | None = None                  # {"kind", "value", "text"}
    samples: dict = field(default_factory=dict)  # engine name -> [float]
    errors: dict = field(default_factory=dict)   # engine name -> str
    na: str | None = None                        # "not implemented yet: issue N"
    note: str = ""

    def add(self, engine: str, value: float) -> None:
        self.samples.setdefault(engine, []).append(value)

    def summary(self, engine: str) -> dict | None:
        xs = self.samples.get(engine) or []
        if not xs:
            return None
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


# Runs inside an engine's network namespace: prints "ready", then polls
# http://127.0.0.1:PORT/passwd and prints time.monotonic() at the first 200 (nothing after 30 s).
_HTTP_POLLER = """
import socket, sys, time
port = int(sys.argv[1])
print("ready", flush=True)
end = time.monotonic() + 30
req = b"GET /passwd HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n"
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(req)
            status = s.recv(64).split(b"\\r\\n")[0].split()
            if status[1:2] == [b"200"]:
                print(time.monotonic(), flush=True)
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.002)
"""


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


class Bench:
    def __init__(self, engines: list[Engine], cfg: Config, log):
        self.engines = engines
        self.cfg = cfg
        self.log = log
        self.metrics: dict[str, Metric] = {}
        self.problems: list[dict] = []

    # -- helpers -------------------------------------------------------------------------
    def metric(self, id: str, title: str, unit: str, **kw) -> Metric:
        m = Metric(id=id, title=title, unit=unit, **kw)
        self.metrics[id] = m
        return m

    def order(self, i: int) -> list[Engine]:
        """Alternating order: even iterations in the given order, odd ones reversed."""
        return list(self.engines) if i % 2 == 0 else list(reversed(self.engines))

    def fail(self, m: Metric | None, e: Engine, err: Exception, cmd: str) -> None:
        msg = str(err)
        if m is not None and e.name not in m.errors:
            m.errors[e.name] = msg
        self.problems.append({"engine": e.name, "metric": m.id if m else None,
                              "command": cmd, "error": msg,
                              "daemon_log_tail": e.log_tail(8)})
        self.log(f"  ! {e.name}: {msg}")

    @staticmethod
    def timed(e: Engine, *args: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        cp = e.cli(*args)
        return (time.perf_counter() - t0) * 1000.0, cp.stdout.decode().strip()

    # -- 5. idle RSS -----------------------------------------------------------------------
    def idle_rss(self) -> None:
        """Daemon RSS (VmRSS) after startup, the busybox image imported, no containers and a
        settle period. Berth: berthd. Docker: dockerd + its managed containerd."""
        m = self.metric("idle_rss", "daemon idle RSS (image loaded, 0 containers)", "MB",
                        target={"kind": "abs_max", "value": 20.0, "text": "≤ 20 MB"})
        m.note = "Docker = dockerd + containerd"
        time.sleep(self.cfg.settle_s)
        for _ in range(5):
            for e in self.engines:
                kib = e.daemon_rss_kib()
                if kib:
                    m.add(e.name, kib / 1024.0)
            time.sleep(0.2)

    # -- 1. run --rm -------------------------------------------------------------------------
    def run_rm(self, network: str | None) -> None:
        """Wall time of `docker run --rm busybox true` through the stock CLI: create, attach,
        start, wait, remove. With network None it is each engine's default network."""
        if network is None:
            m = self.metric("run_rm_default", "run --rm busybox true (default bridge network*)", "ms",
                            target={"kind": "ratio_max", "value": 0.10,
                                    "text": "≤ 0.10× Docker"})
            args = ["run", "--rm", "busybox", "true"]
        else:
            m = self.metric(f"run_rm_{network}", f"run --rm --network {network} busybox true",
                            "ms", target={"kind": "ratio_max", "value": 0.10,
                                          "text": "≤ 0.10× Docker"})
            args = ["run", "--rm", "--network", network, "busybox", "true"]
        self._sequential(m, lambda e: self.timed(e, *args)[0], "docker " + " ".join(args))

    def _sequential(self, m: Metric, measure, cmd: str) -> None:
        """warmup + n alternating iterations of `measure(engine) -> ms` into `m`; an engine
        that fails is recorded with `cmd` and skipped for the rest of the metric."""
        dead: set[str] = set()
        for i in range(self.cfg.warmup + self.cfg.n):
            for e in self.order(i):
                if e.name in dead:
                    continue
                try:
                    ms = measure(e)
                except (EngineError, apiflow.ApiError, OSError) as err:
                    self.fail(m, e, err if isinstance(err, EngineError) else EngineError(str(err)),
                              cmd)
                    dead.add(e.name)
                    continue
                if i >= self.cfg.warmup:
                    m.add(e.name, ms)

    def run_rm_api(self, network: str | None) -> None:
        """The daemon's share of `run --rm busybox true`: the CLI's requests (create, attach,
        wait removed, start) sent over the socket by this process, without the CLI's ~20 ms
        Go start-up (see apiflow.py)."""
        label = "default network*" if network is None else f"--network {network}"
        m = self.metric(f"run_rm_api_{network or 'default'}",
                        f"run --rm busybox true, daemon's share via the API ({label})", "ms",
                        note="same requests as the CLI, sent by the harness",
                        target={"kind": "ratio_max", "value": 0.10, "text": "≤ 0.10× dockerd"})
        self._sequential(m, lambda e: apiflow.run_rm(str(e.sock), network, timeout=e.cli_timeout),
                         "API run --rm")

    def cli_floor(self, workdir) -> None:
        """The stock docker CLI against an instant stand-in daemon (standin.py): the part of
        every CLI-timed figure that no engine can remove. Shown under each engine because each
        pays it; it is one measurement, not a comparison."""
        m_run = self.metric("cli_floor_run", "docker CLI alone: run --rm against an instant stand-in",
                            "ms", note="the CLI's own cost, paid by every engine (standin.py)")
        m_build = self.metric("cli_floor_build",
                              "docker CLI alone: build against an instant stand-in", "ms",
                              note="the CLI's own cost, paid by every engine (standin.py)")
        sock = workdir / "standin.sock"
        ctx = workdir / "standin-ctx"
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(self.BUILD_DOCKERFILE)
        (ctx / "file.txt").write_text("bench file\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env |= {"DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0",
                "DOCKER_CONFIG": str(workdir / "standin-cli"), "DOCKER_CLI_HINTS": "false"}
        server = StandIn(str(sock))
        try:
            for i in range(self.cfg.warmup + self.cfg.n):
                for m, argv in ((m_run, ["run", "--rm", "busybox", "true"]),
                                (m_build, ["build", "-t", "standin:x", "."])):
                    t0 = time.perf_counter()
                    cp = subprocess.run([DOCKER_CLI, *argv], env=env, cwd=ctx,
                                        capture_output=True, timeout=60)
                    ms = (time.perf_counter() - t0) * 1000.0
                    if cp.returncode != 0:
                        err = EngineError(cp.stderr.decode(errors="replace").strip())
                        for e in self.engines:
                            m.errors[e.name] = str(err)
                        continue
                    if i >= self.cfg.warmup:
                        for e in self.engines:
                            m.add(e.name, ms)
        finally:
            server.close()

    # -- healthchecks and exec ----------------------------------------------------------------
    def exec_round_trip(self) -> None:
        """`exec_run("true")` through the API as the Docker SDK for Python sends it (create,
        hijacked start read to its end, inspect), in one running container per engine."""
        m = self.metric("exec_run", "exec_run(\"true\") via the API, p50", "ms")
        m99 = self.metric("exec_run_p99", "  same, p99", "ms")
        for e in self.engines:
            try:
                cid = e.cli("run", "-d", "busybox", "sleep", "1000").stdout.decode().strip()
            except EngineError as err:
                self.fail(m, e, err, "docker run -d busybox sleep 1000")
                continue
            xs: list[float] = []
            try:
                for i in range(self.cfg.warmup + 4 * self.cfg.n):
                    ms, _ = apiflow.exec_run(str(e.sock), cid, ["true"], timeout=e.cli_timeout)
                    if i >= self.cfg.warmup:
                        xs.append(ms)
            except (apiflow.ApiError, OSError) as err:
                self.fail(m, e, EngineError(str(err)), "API exec_run true")
            finally:
                e.remove_containers([cid])
            if xs:
                m.add(e.name, percentile(xs, 50))
                m99.add(e.name, percentile(xs, 99))

    @staticmethod
    def _cpu_ticks(pids: set[int]) -> dict[int, int]:
        """utime + stime + cutime + cstime of each pid (what it and the children it reaped
        used), in clock ticks."""
        out = {}
        for p in pids:
            stat = sysutil.read_text(f"/proc/{p}/stat")
            if not stat:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            out[p] = sum(int(x) for x in fields[11:15])
        return out

    def health_overhead(self) -> None:
        """K containers running `sleep`, first without a healthcheck, then with `--health-cmd
        true --health-interval 1s` (all healthy first): the CPU the engine spends over a window
        (daemon and per-container helpers, with every process they reaped: probe execs and
        the probes themselves), and their RSS."""
        k, window = self.cfg.health_containers, self.cfg.health_window_s
        hz = os.sysconf("SC_CLK_TCK")
        m_cpu = self.metric("health_cpu", f"CPU with {k} containers probed every 1 s",
                            "% of a core", note="daemon + helpers + what they reaped")
        m_base = self.metric("health_cpu_base", f"  same {k} containers, no healthcheck",
                             "% of a core")
        m_rss = self.metric("health_rss", f"daemon + helpers RSS, {k} probed containers", "MB")
        for e in self.engines:
            for probed in (False, True):
                m = m_cpu if probed else m_base
                hc = ["--health-cmd", "true", "--health-interval", "1s"] if probed else []
                ids: list[str] = []
                try:
                    for _ in range(k):
                        cp = e.cli("run", "-d", *hc, "busybox", "sleep", "1000")
                        ids.append(cp.stdout.decode().strip())
                    deadline = time.monotonic() + 30 + k
                    while probed and time.monotonic() < deadline:
                        healthy = e.cli("ps", "-q", "--filter", "health=healthy").stdout.split()
                        if len(healthy) >= k:
                            break
                        time.sleep(0.5)
                    else:
                        if probed:
                            raise EngineError(f"{e.name}: not all {k} containers became healthy")
                    time.sleep(2.0)
                    pids = set(e.daemon_pids()) | set(e.shim_pids())
                    t0, before = time.monotonic(), self._cpu_ticks(pids)
                    time.sleep(window)
                    t1, after = time.monotonic(), self._cpu_ticks(pids)
                    used = sum(after[p] - before[p] for p in after if p in before)
                    m.add(e.name, 100.0 * used / hz / (t1 - t0))
                    if probed:
                        rss = e.daemon_rss_kib() + e.shim_rss_kib()[0]
                        m_rss.add(e.name, rss / 1024.0)
                except EngineError as err:
                    self.fail(m, e, err, "docker run -d " + " ".join(hc) + " busybox sleep 1000")
                finally:
                    e.remove_containers(ids)

    # -- 2, 4, 6. run -d, ps, per-container RSS, rm -f ------------------------------------------
    def run_d_ps_rss_rm(self) -> None:
        """N sequential `run -d busybox sleep 1000` per engine (each timed), then `ps -a`
        with those N containers present, then the RSS of the per-container helpers with the
        N containers running, then `rm -f` of each container (each timed)."""
        n = self.cfg.n
        m_run = self.metric("run_d", "run -d busybox sleep 1000, per container", "ms")
        m_ps = self.metric("ps", f"ps -a with {n} containers", "ms")
        m_shim = self.metric("shim_rss", f"overhead RSS per running container (K={n})", "MB",
                             target={"kind": "abs_max", "value": 1.5, "text": "≤ 1.5 MB"})
        m_shim.note = ("sum of VmRSS of the per-container helpers / K; Berth: berth-shim (and any "
                       "other per-container helper of berthd), "
                       "Docker: containerd-shim-runc-v2")
        m_pss = self.metric("shim_pss", f"  same, PSS (shared pages split) (K={n})", "MB")
        m_priv = self.metric("shim_private", f"  same, private pages only (K={n})", "MB")
        m_grow = self.metric("daemon_rss_growth", f"daemon RSS growth per container (K={n})",
                             "MB")
        m_rm = self.metric("rm_f", "rm -f per running container", "ms")

        base_rss = {e.name: e.daemon_rss_kib() for e in self.engines}
        ids: dict[str, list[str]] = {e.name: [] for e in self.engines}
        dead: set[str] = set()
        args = ["run", "-d", "busybox", "sleep", "1000"]
        for i in range(n):
            for e in self.order(i):
                if e.name in dead:
                    continue
                try:
                    ms, cid = self.timed(e, *args)
                except EngineError as err:
                    self.fail(m_run, e, err, "docker " + " ".join(args))
                    dead.add(e.name)
                    continue
                m_run.add(e.name, ms)
                ids[e.name].append(cid)

        for i in range(self.cfg.warmup + n):
            for e in self.order(i):
                if e.name in dead or e.name in m_ps.errors:
                    continue
                try:
                    ms, out = self.timed(e, "ps", "-a")
                except EngineError as err:
                    self.fail(m_ps, e, err, "docker ps -a")
                    continue
                rows = len(out.splitlines()) - 1
                if rows != len(ids[e.name]):
                    self.fail(m_ps, e, EngineError(
                        f"ps -a listed {rows} containers, expected {len(ids[e.name])}"),
                        "docker ps -a")
                if i >= self.cfg.warmup:
                    m_ps.add(e.name, ms)

        time.sleep(min(2.0, self.cfg.settle_s))
        for _ in range(3):
            for e in self.engines:
                k = len(ids[e.name])
                if not k or e.name in dead:
                    continue
                kib, count = e.shim_rss_kib()
                if count != k and e.name not in m_shim.errors:
                    self.fail(m_shim, e, EngineError(
                        f"found {count} shim processes for {k} running containers"),
                        "(process scan)")
                m_shim.add(e.name, kib / 1024.0 / k)
                pss, priv = e.shim_pss_private_kib()
                m_pss.add(e.name, pss / 1024.0 / k)
                m_priv.add(e.name, priv / 1024.0 / k)
                m_grow.add(e.name, (e.daemon_rss_kib() - base_rss[e.name]) / 1024.0 / k)
            time.sleep(0.3)

        for i in range(n):
            for e in self.order(i):
                if i >= len(ids[e.name]):
                    continue
                try:
                    ms, _ = self.timed(e, "rm", "-f", ids[e.name][i])
                except EngineError as err:
                    self.fail(m_rm, e, err, f"docker rm -f {ids[e.name][i]}")
                    continue
                m_rm.add(e.name, ms)

    # -- 3. concurrent run -d --------------------------------------------------------------------
    def concurrent_starts(self) -> None:
        """Containers started per second: `conc_clients` client threads, each looping
        `docker run -d busybox sleep 1000` `conc_per_client` times; rate = started / wall
        time of the round. One round per engine, engines alternating, `rounds` rounds."""
        c, per = self.cfg.conc_clients, self.cfg.conc_per_client
        m = self.metric("conc_starts", f"containers started/s, {c} concurrent clients",
                        "1/s", better="higher")
        argv = ["run", "-d", "busybox", "sleep", "1000"]
        for r in range(self.cfg.rounds):
            for e in self.order(r):
                if e.name in m.errors:
                    continue
                started: list[str] = []
                failures: list[str] = []
                lock = threading.Lock()

                def client(e=e, started=started, failures=failures, lock=lock):
                    for _ in range(per):
                        if STOP.is_set():
                            return
                        try:
                            cp = e.cli(*argv)
                            with lock:
                                started.append(cp.stdout.decode().strip())
                        except EngineError as err:
                            with lock:
                                failures.append(str(err))

                threads = [threading.Thread(target=client, daemon=True) for _ in range(c)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
                wall = time.perf_counter() - t0
                if failures:
                    self.fail(m, e, EngineError(f"{len(failures)}/{c * per} failed; first: "
                                                f"{failures[0]}"),
                              "docker " + " ".join(argv) + f"  (x{c} concurrent)")
                else:
                    m.add(e.name, len(started) / wall)
                e.remove_containers(started)

    # -- 7. API latency under load --------------------------------------------------------------
    def api_latency(self) -> None:
        """p50/p99 latency of GET /containers/json with `api_containers` running, from
        `api_clients` keep-alive connections (fixed request count and time bound) per round;
        the figures are the medians over the rounds of each round's p50/p99."""
        cfg = self.cfg
        m50 = self.metric("api_p50", f"GET /containers/json p50, {cfg.api_clients} clients",
                          "ms")
        m99 = self.metric("api_p99", f"GET /containers/json p99, {cfg.api_clients} clients",
                          "ms")
        mrps = self.metric("api_rps", "GET /containers/json throughput", "req/s",
                           better="higher")
        ids: dict[str, list[str]] = {}
        for e in self.engines:
            ids[e.name] = []
            try:
                for _ in range(cfg.api_containers):
                    ids[e.name].append(e.cli("run", "-d", "busybox", "sleep", "1000")
                                       .stdout.decode().strip())
            except EngineError as err:
                self.fail(m50, e, err, "docker run -d busybox sleep 1000")
        for r in range(cfg.rounds):
            for e in self.order(r):
                if e.name in m50.errors:
                    continue
                res = run_load(str(e.sock), "/containers/json", cfg.api_clients,
                               cfg.api_requests, cfg.api_time_bound_s)
                if res.errors or not res.latencies_ms:
                    self.fail(m50, e, EngineError(
                        f"{res.errors} failed requests of {cfg.api_requests}; "
                        f"e.g. {res.error_samples[:2]}"), "GET /containers/json (loadgen)")
                    continue
                if res.timed_out:
                    m50.note = (f"round hit the {cfg.api_time_bound_s:.0f} s bound before "
                                f"{cfg.api_requests} requests")
                m50.add(e.name, percentile(res.latencies_ms, 50))
                m99.add(e.name, percentile(res.latencies_ms, 99))
                mrps.add(e.name, res.rps)
        for e in self.engines:
            e.remove_containers(ids[e.name])

    # -- publish → first HTTP 200 ----------------------------------------------------------------
    def publish_http(self) -> None:
        """From `docker run -d -p PORT:80 busybox httpd` being issued to the first HTTP 200
        through 127.0.0.1:PORT in the engine's namespace. A poller started beforehand inside
        that namespace (connect + GET every 2 ms) reports the CLOCK_MONOTONIC time of the
        first 200, so its own start-up is not counted."""
        m = self.metric("publish_http", "run -d -p → first HTTP 200", "ms",
                        target={"kind": "ratio_max", "value": 0.2, "text": "≤ 0.2× Docker"})
        dead: set[str] = set()
        port = 18100
        for i in range(self.cfg.warmup + self.cfg.n):
            for e in self.order(i):
                if e.name in dead:
                    continue
                port += 1
                poller = subprocess.Popen(
                    ["nsenter", f"--net=/var/run/netns/{e.netns}", sys.executable, "-c",
                     _HTTP_POLLER, str(port)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                cid = None
                try:
                    if poller.stdout is None or poller.stdout.readline().strip() != "ready":
                        raise EngineError("HTTP poller did not start")
                    t0 = time.monotonic()
                    cp = e.cli("run", "-d", "-p", f"{port}:80", "busybox",
                               "httpd", "-f", "-p", "80", "-h", "/etc")
                    cid = cp.stdout.decode().strip()
                    line = poller.stdout.readline().strip()
                    if not line:
                        raise EngineError(f"no HTTP 200 on 127.0.0.1:{port} within 30 s")
                    if i >= self.cfg.warmup:
                        m.add(e.name, (float(line) - t0) * 1000.0)
                except EngineError as err:
                    self.fail(m, e, err, f"docker run -d -p {port}:80 busybox httpd")
                    dead.add(e.name)
                finally:
                    poller.kill()
                    poller.wait()
                    if cid:
                        e.remove_containers([cid])

    # -- registry pull ---------------------------------------------------------------------
    def registry_pull(self, workdir, busybox_tar) -> None:
        """`docker pull` of busybox + several ~50 MB layers from a docker-registry on loopback
        in each engine's netns, into an empty store; see pullbench.py."""
        cfg = self.cfg
        m = self.metric("pull", f"registry pull (busybox + {cfg.pull_layers}×"
                        f"{cfg.pull_layer_mb} MB layers, local registry)", "ms",
                        target={"kind": "speedup_min", "value": 1.5, "text": "≥ 1.5× faster"})
        x = self.metric("pull_extract", "registry pull: extraction throughput "
                        "(uncompressed MB / pull time)", "MB/s", better="higher")
        x.note = "machine: gzip ~100 MB/s, zstd ~450 MB/s single-threaded decompression"
        ok, why = pullbench.available()
        berth = next((e for e in self.engines if e.name == "berth"), None)
        if not ok or berth is None:
            m.na = x.na = why or "needs the berth engine"
            return
        archive, total = pullbench.make_archive(workdir, busybox_tar, cfg.pull_layers,
                                                cfg.pull_layer_mb << 20, "pullbench:1")
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 30000
        regs = {e.name: pullbench.LocalRegistry(e.netns, workdir / f"registry-{e.name}", port)
                for e in self.engines}
        ref = f"127.0.0.1:{port}/pullbench:1"
        try:
            regs["berth"].start()
            try:
                berth.cli("load", "-i", str(archive), timeout=600)
                berth.cli("tag", "pullbench:1", ref)
                berth.cli("push", ref, timeout=600)
                berth.cli("rmi", ref, "pullbench:1")
            except EngineError as err:
                self.fail(m, berth, err, f"docker push {ref}")
                return
            for e in self.engines:
                if e.name != "berth":
                    pullbench.copy_storage(regs["berth"], regs[e.name])
                    regs[e.name].start()
            for i in range(cfg.pull_rounds):
                for e in self.order(i):
                    if e.name in m.errors:
                        continue
                    try:
                        t0 = time.perf_counter()
                        e.cli("pull", ref, timeout=900)
                        ms = (time.perf_counter() - t0) * 1000.0
                        m.add(e.name, ms)
                        x.add(e.name, total / 1e6 / (ms / 1000.0))
                        e.cli("rmi", ref)
                        e.cli("image", "prune", "-f")
                    except EngineError as err:
                        self.fail(m, e, err, f"docker pull {ref}")
        finally:
            for r in regs.values():
                r.stop()
            archive.unlink(missing_ok=True)

    # -- Dockerfile builds (classic builder) ----------------------------------------------------
    BUILD_DOCKERFILE = ("FROM busybox\n"
                        "RUN echo built > /built\n"
                        "COPY file.txt /file.txt\n"
                        "ENV MODE=bench\n"
                        'CMD ["cat", "/built", "/file.txt"]\n')

    @staticmethod
    def _context_tar(ctx) -> bytes:
        """The build context as the CLI sends it: an uncompressed tar of the directory."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name in sorted(os.listdir(ctx)):
                t.add(os.path.join(ctx, name), arcname=name)
        return buf.getvalue()

    @staticmethod
    def _build(e: Engine, ctx, *args: str) -> float:
        """`DOCKER_BUILDKIT=0 docker build ARGS .` in `ctx`; returns wall ms."""
        env = e.env() | {"DOCKER_BUILDKIT": "0"}
        argv = e.cli_argv("build", *args, ".")
        t0 = time.perf_counter()
        cp = subprocess.run(argv, env=env, cwd=ctx, capture_output=True, timeout=e.cli_timeout)
        ms = (time.perf_counter() - t0) * 1000.0
        if cp.returncode != 0:
            raise EngineError(f"{e.name}: `docker build {' '.join(args)} .` exited "
                              f"{cp.returncode}: {cp.stderr.decode(errors='replace').strip()}")
        return ms

    def builds(self) -> None:
        """A five-step Dockerfile (FROM busybox, RUN, COPY, ENV, CMD) through the classic
        builder (`DOCKER_BUILDKIT=0 docker build`): cold = `--no-cache`, every step runs;
        cached = the same build again, every step from the cache."""
        m_cold = self.metric("build_cold", "Dockerfile build, cold (5 steps, --no-cache)", "ms",
                             target={"kind": "ratio_max", "value": 1 / 3,
                                     "text": "≤ 1/3× Docker"})
        m_hot = self.metric("build_cached", "Dockerfile build, fully cached (5 steps)", "ms",
                            target={"kind": "ratio_max", "value": 0.2, "text": "≤ 1/5× Docker"})
        m_cold_api = self.metric("build_cold_api", "Dockerfile build, cold, daemon's share via the API",
                                 "ms", note="POST /build with the same context, sent by the harness",
                                 target={"kind": "ratio_max", "value": 1 / 3,
                                         "text": "≤ 1/3× dockerd"})
        m_hot_api = self.metric("build_cached_api",
                                "Dockerfile build, fully cached, daemon's share via the API", "ms",
                                note="POST /build with the same context, sent by the harness",
                                target={"kind": "ratio_max", "value": 0.2,
                                        "text": "≤ 1/5× dockerd"})
        ctxs = {}
        for e in self.engines:
            ctx = e.root / "build-ctx"
            ctx.mkdir(parents=True, exist_ok=True)
            (ctx / "Dockerfile").write_text(self.BUILD_DOCKERFILE)
            (ctx / "file.txt").write_text("bench file\n")
            ctxs[e.name] = ctx
        context_tar = self._context_tar(ctxs[self.engines[0].name]) if self.engines else b""
        dead: set[str] = set()
        tags: dict[str, list[str]] = {e.name: [] for e in self.engines}
        for i in range(self.cfg.warmup + self.cfg.n):
            for e in self.order(i):
                if e.name in dead:
                    continue
                tag = f"bench-build:{i}"
                try:
                    cold = self._build(e, ctxs[e.name], "--no-cache", "-t", tag)
                    hot = self._build(e, ctxs[e.name], "-t", tag)
                except (EngineError, subprocess.TimeoutExpired) as err:
                    self.fail(m_cold, e, EngineError(str(err)), "docker build .")
                    dead.add(e.name)
                    continue
                tags[e.name].append(tag)
                if i >= self.cfg.warmup:
                    m_cold.add(e.name, cold)
                    m_hot.add(e.name, hot)
                try:
                    cold = apiflow.build(str(e.sock), context_tar, tag, nocache=True)
                    hot = apiflow.build(str(e.sock), context_tar, tag, nocache=False)
                except (apiflow.ApiError, OSError) as err:
                    self.fail(m_cold_api, e, EngineError(str(err)), "API POST /build")
                    dead.add(e.name)
                    continue
                if i >= self.cfg.warmup:
                    m_cold_api.add(e.name, cold)
                    m_hot_api.add(e.name, hot)
        for e in self.engines:
            if tags[e.name]:
                e.cli("rmi", *tags[e.name], check=False, timeout=120)
