"""An instant stand-in for a Docker API daemon, to measure the docker CLI's own floor: what
`docker run --rm busybox true` and `docker build` cost when the daemon answers at once. Every
engine driven by the stock CLI pays this floor, so it bounds the CLI-timed ratios from below.

It answers exactly the requests those two commands send (ping, create, hijacked attach, wait
with condition, start, build) and nothing else (404). Unix socket only.
"""

from __future__ import annotations

import json
import os
import socket
import threading

CID = "0" * 64
_API = "1.45"


class StandIn:
    def __init__(self, path: str):
        self.path = path
        self._exited = threading.Event()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self._srv.bind(path)
        self._srv.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                c, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = self._body(c, headers, buf)
                buf = b""
                if not self._answer(c, method, path, body):
                    return
        except OSError:
            return
        finally:
            c.close()

    @staticmethod
    def _body(c: socket.socket, headers: dict, buf: bytes) -> bytes:
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(buf) < n:
                buf += c.recv(65536)
            return buf[:n]
        if "chunked" in headers.get("transfer-encoding", ""):
            while not buf.endswith(b"0\r\n\r\n"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return buf

    def _answer(self, c: socket.socket, method: str, path: str, body: bytes) -> bool:
        """Writes the answer; returns False when the connection is done."""
        def send(status: str, data: bytes = b"", ctype: str = "application/json") -> None:
            c.sendall(f"HTTP/1.1 {status}\r\nApi-Version: {_API}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode() + (b"" if method == "HEAD" else data))

        route = path.split("?", 1)[0]
        if route.endswith("/_ping"):
            send("200 OK", b"OK", "text/plain")
        elif route.endswith("/containers/create"):
            self._exited.clear()
            send("201 Created", json.dumps({"Id": CID, "Warnings": []}).encode())
        elif route.endswith("/attach"):
            c.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                      b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            self._exited.wait(30)
            return False
        elif route.endswith("/wait"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            self._exited.wait(30)
            data = b'{"StatusCode":0}\n'
            c.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        elif route.endswith("/start"):
            send("204 No Content")
            self._exited.set()
        elif route.endswith("/build"):
            lines = [{"stream": "Step 1/1 : FROM busybox\n"}, {"stream": " ---> 0123456789ab\n"},
                     {"aux": {"ID": "sha256:" + "1" * 64}},
                     {"stream": "Successfully built 0123456789ab\n"}]
            data = b"".join(json.dumps(x).encode() + b"\r\n" for x in lines)
            send("200 OK", data)
        else:
            send("404 Not Found", b'{"message":"not served by the stand-in"}')
        return True
