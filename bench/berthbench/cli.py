"""`bench/run`: starts every available engine (Berth always; Docker and Podman when
installed) side by side, each in its own network namespace with temporary roots, runs the
metrics alternating between engines, prints the table and writes the JSON, and removes
everything it made — also on Ctrl-C, SIGTERM or an error half-way.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from . import report, sysutil
from .engines import ALL_ENGINES, Engine, EngineError, make_busybox_tar
from .metrics import STOP, Bench, Config

BENCH_DIR = Path(__file__).resolve().parents[1]
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """Raised from the signal handler so that `finally:` cleanup runs."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark Berth against Docker (and Podman) on this machine, in one run.")
    p.add_argument("--n", type=int, default=None,
                   help="iterations of the sequential metrics (default 30; smoke 3)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds of the throughput metrics (default 5; smoke 1)")
    p.add_argument("--cluster", action="store_true",
                   help="run the cluster benchmark instead (target/release/cluster-bench; "
                        "its own options follow: --smoke, --engines, --dockerd, --json, ...)")
    p.add_argument("--scheduler", action="store_true",
                   help="run the scheduler placement benchmark instead "
                        "(target/release/scheduler-bench; no root; --smoke, --rounds, --json)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny N, finishes in well under a minute: proves the harness works")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "latest.json",
                   help="where to write the JSON results (default bench/results/latest.json)")
    p.add_argument("--engines", default="berth,docker,podman",
                   help="comma-separated engines to try (default: all that are installed)")
    p.add_argument("--only", default=None,
                   help="run only the steps whose title contains this text (e.g. 'registry pull')")
    p.add_argument("--settle", type=float, default=None,
                   help="seconds to let daemons settle before idle RSS (default 5; smoke 1)")
    return p.parse_args(argv)


def make_config(a: argparse.Namespace) -> Config:
    if a.smoke:
        cfg = Config(n=3, rounds=1, conc_per_client=1, api_requests=320, api_containers=3,
                     api_time_bound_s=10.0, settle_s=1.0, pull_layers=2, pull_layer_mb=4,
                     pull_rounds=1, health_containers=3, health_window_s=3.0)
    else:
        cfg = Config()
    if a.n is not None:
        cfg.n = max(1, a.n)
    if a.rounds is not None:
        cfg.rounds = max(1, a.rounds)
    if a.settle is not None:
        cfg.settle_s = max(0.0, a.settle)
    return cfg


def run_cluster_bench(argv: list[str]) -> int:
    """`bench/run --cluster ...`: hands over to the cluster benchmark, a Rust binary of the
    chaos-tests crate (it forms 3-manager clusters with the chaos harness). Builds nothing:
    the binary comes from `$BERTH_BIN_DIR` or target/release, like berthd."""
    bin_dir = Path(os.environ.get("BERTH_BIN_DIR") or BENCH_DIR.parent / "target" / "release")
    exe = bin_dir / "cluster-bench"
    if not exe.exists():
        print(f"{exe} missing: build the workspace first (cargo build --release --workspace)",
              file=sys.stderr)
        return 2
    os.execv(exe, [str(exe), *argv])
    return 2  # not reached


NOMAD_C1M_PLACEMENTS_PER_S = 3750  # HashiCorp C1M, 2016: 1,000,000 containers in < 5 min
SCHEDULER_AIM_PER_S = 10_000


def run_scheduler_bench(argv: list[str]) -> int:
    """`bench/run --scheduler [--smoke] [--rounds N] [--json PATH] [scheduler-bench options]`:
    placement throughput of the pure scheduler (berth-scheduler) on 1,000 simulated nodes,
    through target/release/scheduler-bench (built by `cargo build --release --workspace`; this
    builds nothing). Runs it `--rounds` times (default 3, smoke 1), reports the median, and
    writes every round to bench/results/scheduler-latest.json. Needs no root."""
    p = argparse.ArgumentParser(prog="bench/run --scheduler",
                                description="Placement throughput of the pure scheduler.")
    p.add_argument("--smoke", action="store_true", help="10,000 tasks, one round")
    p.add_argument("--rounds", type=int, default=None, help="runs to take the median of (3)")
    p.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "scheduler-latest.json")
    a, rest = p.parse_known_args(argv)
    bin_dir = Path(os.environ.get("BERTH_BIN_DIR") or BENCH_DIR.parent / "target" / "release")
    exe = bin_dir / "scheduler-bench"
    if not exe.exists():
        print(f"{exe} missing: build it first (cargo build --release -p berth-scheduler)",
              file=sys.stderr)
        return 2
    rounds = max(1, a.rounds if a.rounds is not None else (1 if a.smoke else 3))
    args = [str(exe), *(["--smoke"] if a.smoke else []), *rest]
    started_at = _dt.datetime.now(_dt.timezone.utc).astimezone()
    machine_info = report.machine()
    runs = []
    for i in range(rounds):
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            print(f"scheduler-bench failed (exit {proc.returncode}): {proc.stderr.strip()}",
                  file=sys.stderr)
            return 1
        run = json.loads(proc.stdout)
        runs.append(run)
        log(f"round {i + 1}/{rounds}: {run['placements_per_s']:,.0f} placements/s")
    rates = sorted(r["placements_per_s"] for r in runs)
    median = rates[len(rates) // 2]
    machine_info["loadavg_at_end"] = os.getloadavg()
    doc = {"started_at": started_at.isoformat(), "command": args, "rounds": runs,
           "placements_per_s_median": median,
           "reference": {"nomad_c1m_placements_per_s": NOMAD_C1M_PLACEMENTS_PER_S,
                         "aim_placements_per_s": SCHEDULER_AIM_PER_S},
           "machine": machine_info}
    report.write_json(a.json, doc)
    first = runs[0]
    verdict = "met" if median >= SCHEDULER_AIM_PER_S else "not met"
    print(f"Scheduler placement, {started_at:%Y-%m-%d %H:%M %Z}: {first['placed']:,} tasks on "
          f"{first['nodes']:,} simulated nodes ({first['eligible_nodes']} eligible), "
          f"{first['constraints']} constraints, {first['preferences']} spread preference, "
          f"{first['strategy']}, batches of {first['batch']}; {rounds} round(s)")
    print(f"placements/s: {median:,.0f} median (range {rates[0]:,.0f}–{rates[-1]:,.0f}); "
          f"Nomad C1M {NOMAD_C1M_PLACEMENTS_PER_S:,}/s = {median / NOMAD_C1M_PLACEMENTS_PER_S:.1f}×; "
          f"aim ≥ {SCHEDULER_AIM_PER_S:,}/s: {verdict}")
    print(f"place() call: p50 {first['call_us_p50']:.0f} µs, p99 {first['call_us_p99']:.0f} µs")
    print(f"JSON: {a.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--cluster" in argv:
        return run_cluster_bench([x for x in argv if x != "--cluster"])
    if "--scheduler" in argv:
        return run_scheduler_bench([x for x in argv if x != "--scheduler"])
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run needs root (network namespaces, mounts, cgroups)", file=sys.stderr)
        return 2
    cfg = make_config(a)
    wanted = [w.strip() for w in a.engines.split(",") if w.strip()]
    if "berth" not in wanted:
        wanted.insert(0, "berth")

    run_id = "bb" + secrets.token_hex(3)
    base = Path(tempfile.gettempdir()) / f"berthbench-{run_id}"
    started_at = _dt.datetime.now(_dt.timezone.utc).astimezone()
    t_start = time.monotonic()
    machine_info = report.machine()

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    old_handlers = {s: signal.signal(s, on_signal) for s in SIGNALS}
    engines: list[Engine] = []
    skipped: dict[str, str] = {}
    bench: Bench | None = None
    leftovers: list[str] = []
    status = 0
    try:
        base.mkdir(mode=0o700)
        for cls in ALL_ENGINES:
            if cls.name not in wanted:
                continue
            ok, why = cls.available()
            if not ok:
                skipped[cls.name] = why
                log(f"{cls.label}: skipped ({why})")
                if cls.name == "berth":
                    raise EngineError(f"Berth is not available: {why}")
                continue
            engines.append(cls(run_id, base))
        log(f"run {run_id}: engines {', '.join(e.name for e in engines)}; temp dir {base}; "
            f"n={cfg.n} rounds={cfg.rounds}")
        tar = make_busybox_tar(base)
        for e in list(engines):
            try:
                e.start()
                e.import_image(tar)
                log(f"{e.label} {e.version.get('version')} up (netns {e.netns})")
            except EngineError as err:
                if e.name == "berth":
                    raise
                skipped[e.name] = f"failed to start: {err}"
                log(f"{e.label}: skipped: {err}")
                engines.remove(e)
                leftovers += e.cleanup()

        bench = Bench(engines, cfg, log)
        steps = [("idle RSS", bench.idle_rss),
                 ("run --rm (default network)", lambda: bench.run_rm(None)),
                 ("run --rm --network none", lambda: bench.run_rm("none")),
                 ("docker CLI floor (instant stand-in daemon)", lambda: bench.cli_floor(base)),
                 ("run --rm via the API (default network)", lambda: bench.run_rm_api(None)),
                 ("run --rm via the API (--network none)", lambda: bench.run_rm_api("none")),
                 ("run -d / ps / RSS per container / rm -f", bench.run_d_ps_rss_rm),
                 ("concurrent run -d", bench.concurrent_starts),
                 ("API latency under load", bench.api_latency),
                 ("publish → first HTTP 200", bench.publish_http),
                 ("registry pull", lambda: bench.registry_pull(base, tar)),
                 ("Dockerfile builds", bench.builds),
                 ("exec round trip via the API", bench.exec_round_trip),
                 ("healthcheck overhead", bench.health_overhead)]
        if a.only:
            steps = [(t, f) for t, f in steps if a.only in t]
        for title, fn in steps:
            log(f"measuring: {title}")
            fn()
        if any(p["engine"] == "berth" for p in bench.problems):
            status = 1
    except Interrupted as sig:
        log(f"interrupted ({sig}); cleaning up")
        status = 130
    except EngineError as err:
        log(f"error: {err}")
        status = 1
    finally:
        # Cleanup must not be cut short by a second Ctrl-C.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        STOP.set()
        try:
            for e in reversed(engines):
                try:
                    leftovers += e.cleanup()
                except Exception as err:  # noqa: BLE001 - keep cleaning the others
                    leftovers.append(f"{e.name}: cleanup raised {err!r}")
            stuck = sysutil.umount_under(str(base))
            if stuck:
                leftovers.append(f"mounts left under {base}: {stuck}")
            else:
                sysutil.safe_rmtree(base)
                if base.exists():
                    leftovers.append(f"{base} could not be removed")
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            for s, h in old_handlers.items():
                signal.signal(s, h)
    for item in leftovers:
        log(f"cleanup: {item}")

    if bench is None or status == 130:
        return status or 1
    duration = time.monotonic() - t_start
    machine_info["loadavg_at_end"] = os.getloadavg()
    doc = report.to_json(bench, started_at, duration, asdict(cfg) | {"smoke": a.smoke},
                         skipped, leftovers, machine_info)
    report.write_json(a.json, doc)
    m = machine_info
    print(f"Berth benchmark {started_at:%Y-%m-%d %H:%M %Z} — {m['os']}, kernel {m['kernel']}, "
          f"{m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB; "
          + "; ".join(f"{e.label} {e.version.get('version')}" for e in bench.engines)
          + f"; n={cfg.n}, rounds={cfg.rounds}{' (smoke)' if a.smoke else ''}; "
          f"load average {m['loadavg_at_start'][0]:.1f} at start, "
          f"{m['loadavg_at_end'][0]:.1f} at end")
    print()
    print(report.table(bench))
    print()
    print(report.footnotes(bench))
    for name, why in skipped.items():
        print(f"{name}: not measured ({why})")
    if bench.problems:
        print("\nProblems seen:")
        for p in bench.problems:
            print(f"- {p['engine']} [{p['metric']}] `{p['command']}`: {p['error']}")
    print(f"\nJSON: {a.json}  ({duration:.0f} s)")
    return status
