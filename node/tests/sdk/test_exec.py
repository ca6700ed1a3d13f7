"""`exec_run` through the Docker SDK returns the whole output.

The SDK reads the hijacked stream from the raw socket right after http.client has parsed
the `101 UPGRADED` head; stream bytes that reached the socket before the client read the
head sit in http.client's buffer and are lost. Each check repeats, since that is a race.
"""

import unittest

from sdkcommon import REPEAT, SdkTest


class ExecRun(SdkTest):
    def setUp(self):
        super().setUp()
        self.c = self.run_container(["sleep", "300"])

    def test_stdout_whole(self):
        for i in range(REPEAT):
            r = self.c.exec_run("echo hello world")
            self.assertEqual(r.exit_code, 0, f"run {i}")
            self.assertEqual(r.output, b"hello world\n", f"run {i}")

    def test_stdout_and_stderr_whole(self):
        for i in range(REPEAT):
            r = self.c.exec_run(["sh", "-c", "echo hello out; echo hello err >&2"])
            self.assertEqual(r.exit_code, 0, f"run {i}")
            # stdout and stderr are separate pipes: their relative order is not fixed.
            self.assertEqual(
                sorted(r.output.splitlines()), [b"hello err", b"hello out"], f"run {i}"
            )

    def test_demux_whole(self):
        for i in range(REPEAT):
            r = self.c.exec_run(
                ["sh", "-c", "echo hello out; echo hello err >&2"], demux=True
            )
            self.assertEqual(r.output, (b"hello out\n", b"hello err\n"), f"run {i}")

    def test_tty_whole(self):
        for i in range(REPEAT):
            r = self.c.exec_run("echo hello world", tty=True)
            self.assertEqual(r.exit_code, 0, f"run {i}")
            self.assertEqual(r.output, b"hello world\r\n", f"run {i}")

    def test_exit_code(self):
        r = self.c.exec_run(["sh", "-c", "echo bye; exit 3"])
        self.assertEqual((r.exit_code, r.output), (3, b"bye\n"))

    def test_stream(self):
        r = self.c.exec_run(["sh", "-c", "echo one; sleep 0.2; echo two"], stream=True)
        self.assertEqual(b"".join(r.output), b"one\ntwo\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
