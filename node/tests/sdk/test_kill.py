"""`kill` with SIGKILL answers once the container has exited, as dockerd does; other signals
answer at once."""

import time
import unittest

from sdkcommon import SdkTest

ROUNDS = 10


class Kill(SdkTest):
    def test_sigkill_then_inspect_says_exited(self):
        for i in range(ROUNDS):
            c = self.run_container(["sleep", "300"])
            c.kill()
            c.reload()
            self.assertEqual(c.status, "exited", f"round {i}")
            self.assertEqual(c.attrs["State"]["ExitCode"], 137, f"round {i}")
            self.assertFalse(c.attrs["State"]["Running"], f"round {i}")

    def test_named_sigkill_waits_too(self):
        c = self.run_container(["sleep", "300"])
        c.kill(signal="SIGKILL")
        c.reload()
        self.assertEqual(c.status, "exited")

    def test_other_signal_answers_at_once(self):
        # PID 1 ignores signals it has no handler for: the container keeps running.
        c = self.run_container(["sleep", "300"])
        t0 = time.monotonic()
        c.kill(signal="SIGUSR1")
        self.assertLess(time.monotonic() - t0, 2.0)
        c.reload()
        self.assertEqual(c.status, "running")


if __name__ == "__main__":
    unittest.main(verbosity=2)
