"""The results: a plain-text table for stdout (and the README) and a JSON document.

Table columns: metric, Berth median, reference (Docker) median, ratio Berth/Docker, Berth
min–max, Docker min–max, [Podman median and min–max when Podman ran], the target from the
issues where one exists, and whether Berth meets it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

from .metrics import Bench, Metric


def fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit == "MB":
        return f"{x:.2f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def target_met(m: Metric, ref: str) -> str:
    """'yes', 'no', or '—' when there is no target or not enough data to judge."""
    t = m.target
    b, r = m.summary("berth"), m.summary(ref)
    if not t or m.na or not b:
        return "—"
    if t["kind"] == "abs_max":
        return "yes" if b["median"] <= t["value"] else "no"
    if not r or r["median"] == 0:
        return "—"
    if t["kind"] == "ratio_max":
        return "yes" if b["median"] / r["median"] <= t["value"] else "no"
    if t["kind"] == "speedup_min":
        return "yes" if r["median"] / b["median"] >= t["value"] else "no"
    return "—"


def table(bench: Bench, ref: str = "docker") -> str:
    names = [e.name for e in bench.engines]
    others = [n for n in names if n not in ("berth", ref)]
    ref_label = ref.capitalize()
    head = ["metric", "unit", "Berth", ref_label, f"Berth/{ref_label}", "Berth min–max",
            f"{ref_label} min–max"]
    for o in others:
        head += [o.capitalize(), f"{o.capitalize()} min–max"]
    head += ["target", "met"]
    rows = [head]
    for m in bench.metrics.values():
        tgt = m.target["text"] if m.target else ""
        if m.na:
            na = f"n/a (not implemented yet: {m.na})"
            row = [m.title, m.unit, na, "", "", "", ""] + ["", ""] * len(others) + [tgt, "—"]
            rows.append(row)
            continue

        def cell(name: str) -> tuple[str, str]:
            s = m.summary(name)
            if s:
                return fmt(s["median"], m.unit), f"{fmt(s['min'], m.unit)}–{fmt(s['max'], m.unit)}"
            if name in m.errors:
                return "error", ""
            return "—", ""

        b, bmm = cell("berth")
        r, rmm = cell(ref) if ref in names else ("not run", "")
        bs, rs = m.summary("berth"), m.summary(ref)
        ratio = f"{bs['median'] / rs['median']:.2f}" if bs and rs and rs["median"] else "—"
        row = [m.title, m.unit, b, r, ratio, bmm, rmm]
        for o in others:
            row += list(cell(o))
        row += [tgt, target_met(m, ref)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(widths[j]) for j, c in enumerate(r)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def footnotes(bench: Bench) -> str:
    notes = ["* default network: the `bridge` network on both engines (a veth on the "
             "engine's bridge, NAT); each engine runs in its own network namespace."]
    for m in bench.metrics.values():
        if m.note and not m.na:
            notes.append(f"{m.title}: {m.note}")
    return "\n".join(notes)


def machine() -> dict:
    cpu_model = ""
    for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in open("/proc/meminfo", encoding="utf-8"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    os_name = ""
    try:
        for line in open("/etc/os-release", encoding="utf-8"):
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    debian = ""
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        pass
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu_model": cpu_model,
            "mem_gib": round(mem_kib / 1024 / 1024, 1), "os": os_name,
            "debian_version": debian, "loadavg_at_start": os.getloadavg()}


def to_json(bench: Bench, started: _dt.datetime, duration_s: float, config: dict,
            skipped: dict, leftovers: list[str], machine_info: dict) -> dict:
    metrics = []
    names = [e.name for e in bench.engines]
    for m in bench.metrics.values():
        d = {"id": m.id, "title": m.title, "unit": m.unit, "better": m.better,
             "target": m.target, "note": m.note or None}
        if m.na:
            d["not_implemented"] = m.na
        else:
            d["engines"] = {n: {"summary": m.summary(n), "samples": m.samples.get(n, []),
                                "error": m.errors.get(n)} for n in names}
            bs, rs = m.summary("berth"), m.summary("docker")
            d["ratio_berth_docker"] = (bs["median"] / rs["median"]
                                       if bs and rs and rs["median"] else None)
            d["target_met"] = target_met(m, "docker")
        metrics.append(d)
    return {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 1),
        "machine": machine_info,
        "config": config,
        "engines": {e.name: e.version for e in bench.engines},
        "skipped_engines": skipped,
        "metrics": metrics,
        "problems": bench.problems,
        "cleanup_leftovers": leftovers,
    }


def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
