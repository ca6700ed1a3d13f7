"""Registry pull: an image of busybox plus several ~50 MB layers, served by Debian's
docker-registry on 127.0.0.1 inside each engine's own network namespace, pulled into an empty
image store through the stock docker CLI.

Both engines pull byte-identical blobs: Berth pushes the image once to its registry, and the
registry's storage directory is copied for Docker's. Docker's dockerd reaches its registry as
an insecure registry on loopback (its default for 127.0.0.0/8), Berth likewise.

Reported: wall time of `docker pull` (the ratio is the speed-up), and extraction throughput,
the image's uncompressed size over that time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

REGISTRY = "/usr/bin/docker-registry"


def _layer(name: str, size: int, seed: int) -> bytes:
    """A layer tar holding one file of base64 text from random bytes: gzip gets it down to
    ~75 %, so decompression does real work, yet it is far from trivially compressible."""
    rnd = random.Random(seed)
    raw = rnd.randbytes(size * 3 // 4)
    data = base64.b64encode(raw)[:size]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        d = tarfile.TarInfo("data")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        t.addfile(d)
        f = tarfile.TarInfo(f"data/{name}")
        f.size, f.mode = len(data), 0o644
        t.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def make_archive(workdir: Path, busybox_tar: Path, layers: int, size: int,
                 tag: str) -> tuple[Path, int]:
    """A docker-archive of busybox + `layers` layers of `size` bytes; returns it and the
    total uncompressed size of its layers."""
    blobs = [busybox_tar.read_bytes()] + [_layer(f"f{i}", size, 1000 + i) for i in range(layers)]
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    names = [f"l{i}.tar" for i in range(len(blobs))]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode()
    out = workdir / "pullbench.tar"
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
        for name, data in list(zip(names, blobs)) + [("config.json", config),
                                                     ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return out, sum(len(b) for b in blobs)


class LocalRegistry:
    """docker-registry inside a network namespace, on 127.0.0.1:port, storage in `dir`."""

    def __init__(self, netns: str, dir: Path, port: int):
        self.netns, self.dir, self.port = netns, dir, port
        self.addr = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        (self.dir / "storage").mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'storage'}\n"
            f"http:\n  addr: {self.addr}\n  secret: berth-bench\n")
        log = open(self.dir / "registry.log", "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.netns}", REGISTRY, "serve", str(cfg)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.time() + 15
        while time.time() < deadline:
            cp = subprocess.run(
                ["nsenter", f"--net=/var/run/netns/{self.netns}", "curl", "-s", "-o",
                 "/dev/null", "-w", "%{http_code}", f"http://{self.addr}/v2/"],
                capture_output=True)
            if cp.stdout == b"200":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not start in {self.netns}: "
                           + (self.dir / "registry.log").read_text(errors="replace")[-500:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def available() -> tuple[bool, str]:
    if not os.path.exists(REGISTRY):
        return False, "docker-registry not installed (scripts/deps installs it)"
    return True, ""


def copy_storage(src: LocalRegistry, dst: LocalRegistry) -> None:
    shutil.copytree(src.dir / "storage", dst.dir / "storage", dirs_exist_ok=True)
