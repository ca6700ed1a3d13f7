"""`attach` through the Docker SDK: `stream=False` answers with the logs so far and closes
(it must not wait for the container to end), and `detachKeys` ends an attach or exec
without stopping the container."""

import socket
import time
import unittest

from sdkcommon import SdkTest


def raw_sock(sock):
    return getattr(sock, "_sock", sock)


class AttachNoStream(SdkTest):
    def test_logs_without_stream_returns_promptly(self):
        c = self.run_container(["sh", "-c", "echo one; echo two >&2; sleep 300"])
        self.wait_logs(c, b"two")
        t0 = time.monotonic()
        out = c.attach(stdout=True, stderr=True, stream=False, logs=True)
        took = time.monotonic() - t0
        self.assertLess(took, 5.0, "attach(stream=False) waited for the container")
        self.assertEqual(sorted(out.splitlines()), [b"one", b"two"])
        c.reload()
        self.assertEqual(c.status, "running")

    def test_logs_demux_stdout_only(self):
        c = self.run_container(["sh", "-c", "echo one; echo two >&2; sleep 300"])
        self.wait_logs(c, b"two")
        out = c.attach(stdout=True, stderr=False, stream=False, logs=True)
        self.assertEqual(out, b"one\n")

    def test_logs_tty(self):
        c = self.run_container(["sh", "-c", "echo one; sleep 300"], tty=True)
        self.wait_logs(c, b"one")
        out = c.attach(stdout=True, stderr=True, stream=False, logs=True)
        self.assertEqual(out, b"one\r\n")

    def test_no_logs_no_stream_is_empty(self):
        c = self.run_container(["sh", "-c", "echo one; sleep 300"])
        self.wait_logs(c, b"one")
        t0 = time.monotonic()
        out = c.attach(stdout=True, stderr=True, stream=False, logs=False)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(out, b"")

    def test_logs_of_stopped_container(self):
        c = self.run_container(["sh", "-c", "echo done"])
        c.wait(timeout=10)
        t0 = time.monotonic()
        out = c.attach(stdout=True, stderr=True, stream=False, logs=True)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(out, b"done\n")

    def test_stream_sees_new_output(self):
        c = self.run_container(["sh", "-c", "sleep 0.5; echo later; sleep 0.5"])
        out = b"".join(c.attach(stdout=True, stderr=True, stream=True, logs=True))
        self.assertEqual(out, b"later\n")


class DetachKeys(SdkTest):
    def assert_detached(self, sock, keys):
        s = raw_sock(sock)
        s.sendall(keys)
        time.sleep(0.5)
        # The daemon closes its end on detach: a unix socket's write then fails.
        with self.assertRaises(OSError):
            for _ in range(10):
                s.sendall(b"make sure the socket is closed\n")
                time.sleep(0.05)
        sock.close()

    def test_attach_custom_keys(self):
        c = self.run_container("cat", stdin_open=True, tty=True)
        sock = self.client.api.attach_socket(
            c.id, {"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-x"}
        )
        self.assert_detached(sock, b"\x18")
        c.reload()
        self.assertEqual(c.status, "running")

    def test_attach_default_keys(self):
        c = self.run_container("cat", stdin_open=True, tty=True)
        sock = self.client.api.attach_socket(c.id, {"stdin": 1, "stdout": 1, "stream": 1})
        self.assert_detached(sock, b"\x10\x11")
        c.reload()
        self.assertEqual(c.status, "running")

    def test_exec_custom_keys(self):
        c = self.run_container(["sleep", "300"])
        api = self.client.api
        ex = api.exec_create(c.id, "cat", stdin=True, tty=True, detach_keys="ctrl-x")
        sock = api.exec_start(ex["Id"], tty=True, socket=True)
        self.assert_detached(sock, b"\x18")
        c.reload()
        self.assertEqual(c.status, "running")


if __name__ == "__main__":
    unittest.main(verbosity=2)
