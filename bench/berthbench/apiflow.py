"""The daemon's share of `docker run --rm` and `docker build`: the same requests the stock
CLI sends, sent by this process over the engine's unix socket, timed from the first request
written to the last answer read. The CLI's own cost (a Go process start-up of ~20 ms here, the
same for every engine) is left out, so these rows show what each daemon spends.

`run_rm`: POST /containers/create (AutoRemove), POST /containers/{id}/attach (hijacked,
stdout+stderr), POST /containers/{id}/wait?condition=removed, POST /containers/{id}/start,
then read until the attach stream ends and the wait answers — the order docker CLI 28 uses.
`build`: POST /build with the context tar (classic builder), read to the end of the stream.
`exec_run`: what the SDK's `exec_run("true")` sends: POST /containers/{id}/exec, POST
/exec/{id}/start (hijacked, read to the end of the stream), GET /exec/{id}/json for the exit
code.
"""

from __future__ import annotations

import json
import socket
import threading
import time

API = "/v1.41"   # the highest version both reference engines speak


class ApiError(Exception):
    pass


def _connect(sock: str, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    return s


def _send(s: socket.socket, method: str, path: str, body: bytes = b"",
          ctype: str = "application/json", extra: str = "") -> None:
    head = (f"{method} {API}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berthbench\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n")
    s.sendall(head.encode() + body)


def _read_head(s: socket.socket) -> tuple[int, dict, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ApiError("connection closed before the response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def _read_body(s: socket.socket, headers: dict, rest: bytes) -> bytes:
    """Reads one response body: Content-Length, chunked (to the 0-length chunk) or to EOF."""
    buf = rest

    def more() -> bool:
        nonlocal buf
        try:
            chunk = s.recv(65536)
        except socket.timeout as e:
            raise ApiError("timed out reading the response") from e
        buf += chunk
        return bool(chunk)

    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n and more():
            pass
        return buf[:n]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out, pos = b"", 0
        while True:
            while b"\r\n" not in buf[pos:]:
                if not more():
                    return out
            end = buf.index(b"\r\n", pos)
            size = int(buf[pos:end].split(b";")[0], 16)
            while len(buf) < end + 2 + size + 2:
                if not more():
                    return out + buf[end + 2:]
            if size == 0:
                return out
            out += buf[end + 2:end + 2 + size]
            pos = end + 2 + size + 2
    while more():
        pass
    return buf


def _request(sock: str, method: str, path: str, obj=None, timeout: float = 60.0):
    s = _connect(sock, timeout)
    try:
        body = json.dumps(obj).encode() if obj is not None else b""
        _send(s, method, path, body)
        status, headers, rest = _read_head(s)
        if status in (204, 304):
            return status, b""
        return status, _read_body(s, headers, rest)
    finally:
        s.close()


def run_rm(sock: str, network: str | None, timeout: float = 60.0) -> float:
    """One `docker run --rm busybox true` as the CLI sends it; returns wall ms."""
    host = {"AutoRemove": True}
    if network:
        host["NetworkMode"] = network
    t0 = time.perf_counter()
    status, data = _request(sock, "POST", "/containers/create",
                            {"Image": "busybox", "Cmd": ["true"], "AttachStdout": True,
                             "AttachStderr": True, "HostConfig": host}, timeout)
    if status != 201:
        raise ApiError(f"create: HTTP {status}: {data[:200]!r}")
    cid = json.loads(data)["Id"]
    att = _connect(sock, timeout)
    wait = _connect(sock, timeout)
    try:
        _send(att, "POST", f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1",
              extra="Connection: Upgrade\r\nUpgrade: tcp\r\n")
        status, _, rest = _read_head(att)
        if status not in (101, 200):
            raise ApiError(f"attach: HTTP {status}")
        _send(wait, "POST", f"/containers/{cid}/wait?condition=removed")
        errors: list[str] = []

        def drain_attach() -> None:
            try:
                while att.recv(65536):
                    pass
            except OSError as e:
                errors.append(f"attach stream: {e}")

        reader = threading.Thread(target=drain_attach)
        reader.start()
        status, data = _request(sock, "POST", f"/containers/{cid}/start", None, timeout)
        if status != 204:
            raise ApiError(f"start: HTTP {status}: {data[:200]!r}")
        status, headers, rest = _read_head(wait)
        body = _read_body(wait, headers, rest)
        if status != 200 or b"StatusCode" not in body:
            raise ApiError(f"wait: HTTP {status}: {body[:200]!r}")
        reader.join(timeout)
        if errors:
            raise ApiError(errors[0])
    finally:
        att.close()
        wait.close()
    return (time.perf_counter() - t0) * 1000.0


def build(sock: str, context_tar: bytes, tag: str, nocache: bool,
          timeout: float = 300.0) -> float:
    """One classic-builder build of `context_tar`; returns wall ms. Fails on errorDetail."""
    q = f"/build?t={tag}&rm=1&forcerm=1" + ("&nocache=1" if nocache else "")
    t0 = time.perf_counter()
    s = _connect(sock, timeout)
    try:
        _send(s, "POST", q, context_tar, ctype="application/x-tar")
        status, headers, rest = _read_head(s)
        body = _read_body(s, headers, rest)
    finally:
        s.close()
    ms = (time.perf_counter() - t0) * 1000.0
    if status != 200 or b"errorDetail" in body:
        raise ApiError(f"build: HTTP {status}: {body[-300:]!r}")
    if b"Successfully tagged" not in body:
        raise ApiError(f"build: no 'Successfully tagged' in the stream: {body[-300:]!r}")
    return ms


def exec_run(sock: str, cid: str, cmd: list[str], timeout: float = 60.0) -> tuple[float, bytes]:
    """One `exec_run(cmd)` as the Docker SDK for Python does it; returns wall ms and the
    multiplexed output. Fails unless the exit code is 0."""
    t0 = time.perf_counter()
    status, data = _request(sock, "POST", f"/containers/{cid}/exec",
                            {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True}, timeout)
    if status != 201:
        raise ApiError(f"exec create: HTTP {status}: {data[:200]!r}")
    eid = json.loads(data)["Id"]
    s = _connect(sock, timeout)
    try:
        _send(s, "POST", f"/exec/{eid}/start", json.dumps({"Detach": False, "Tty": False}).encode(),
              extra="Connection: Upgrade\r\nUpgrade: tcp\r\n")
        status, _, out = _read_head(s)
        if status not in (101, 200):
            raise ApiError(f"exec start: HTTP {status}")
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    status, data = _request(sock, "GET", f"/exec/{eid}/json", None, timeout)
    ms = (time.perf_counter() - t0) * 1000.0
    if status != 200 or json.loads(data).get("ExitCode") != 0:
        raise ApiError(f"exec inspect: HTTP {status}: {data[:200]!r}")
    return ms, out
