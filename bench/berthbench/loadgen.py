"""A small HTTP/1.1 load generator over a unix socket: C client threads, each on one
keep-alive connection, sending the same GET until the fixed request count is reached or the
time bound passes (whichever comes first). It measures per-request latency (request written
-> whole response read). Traffic goes only to the engine's unix socket.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    timed_out: bool = False

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s > 0 else 0.0


class _Conn:
    def __init__(self, path: str, timeout: float):
        self.path, self.timeout = path, timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def connect(self) -> None:
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock, self.buf = s, b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _read_until(self, sep: bytes) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            self._fill()

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Sends one request; returns (status, body, server_wants_close)."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(raw)
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    # trailers until an empty line
                    while self._read_until(b"\r\n"):
                        pass
                    break
                parts.append(self._read_exact(size))
                self._read_exact(2)
            body = b"".join(parts)
        else:
            body = self._read_exact(int(headers.get("content-length", "0")))
        return status, body, headers.get("connection", "").lower() == "close"


def run_load(sock_path: str, path: str, clients: int, total_requests: int,
             time_bound_s: float, io_timeout_s: float = 10.0) -> LoadResult:
    """`clients` threads share `total_requests` GETs of `path` on `sock_path`; stops at the
    count or after `time_bound_s`. Non-200 answers and socket errors are counted as errors
    (their latency is not recorded)."""
    raw = (f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berthbench\r\n"
           "Accept: application/json\r\n\r\n").encode()
    result = LoadResult()
    lock = threading.Lock()
    remaining = [total_requests]
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or time.monotonic() > deadline[0]:
                return False
            remaining[0] -= 1
            return True

    def client() -> None:
        conn = _Conn(sock_path, io_timeout_s)
        local, errs, samples = [], 0, []
        try:
            conn.connect()
        except OSError as e:
            errs += 1
            samples.append(f"connect: {e}")
        start_gate.wait()
        while take():
            t0 = time.perf_counter()
            try:
                status, body, close = conn.request(raw)
                dt = (time.perf_counter() - t0) * 1000.0
                if status == 200:
                    local.append(dt)
                else:
                    errs += 1
                    if len(samples) < 3:
                        samples.append(f"HTTP {status}: {body[:200]!r}")
                if close:
                    conn.connect()
            except (OSError, ValueError, ConnectionError) as e:
                errs += 1
                if len(samples) < 3:
                    samples.append(f"{type(e).__name__}: {e}")
                try:
                    conn.connect()
                except OSError:
                    time.sleep(0.01)
        conn.close()
        with lock:
            result.latencies_ms.extend(local)
            result.errors += errs
            result.error_samples.extend(samples[: max(0, 5 - len(result.error_samples))])

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + time_bound_s
    t0 = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join(time_bound_s + io_timeout_s + 5)
    result.wall_s = time.perf_counter() - t0
    result.timed_out = remaining[0] > 0
    return result
