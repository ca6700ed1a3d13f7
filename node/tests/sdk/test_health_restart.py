"""Probes survive a restart of berthd: run in two phases around a `kill -9` of the daemon
(node/tests/e2e_sdk.rs drives it). BERTH_PHASE=before makes a healthy container; after,
berthd restarted must still call it healthy at once and keep probing it."""

import os
import time
import unittest

import docker

from sdkcommon import IMAGE

NAME = "hc-survivor"
MS = 1_000_000


def wait_status(c, want, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.reload()
        h = c.attrs["State"].get("Health")
        if h and h["Status"] == want:
            return h
        time.sleep(0.05)
    raise AssertionError(f"health never became {want!r}: {c.attrs['State'].get('Health')!r}")


class Before(unittest.TestCase):
    def test_make_a_healthy_container(self):
        client = docker.from_env(timeout=30)
        c = client.containers.run(
            IMAGE, ["sh", "-c", "touch /tmp/ok; exec sleep 300"], name=NAME, detach=True,
            healthcheck={"test": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 200 * MS,
                         "retries": 2})
        wait_status(c, "healthy")


class After(unittest.TestCase):
    def test_still_healthy_and_still_probed(self):
        client = docker.from_env(timeout=30)
        c = client.containers.get(NAME)
        restarted = time.time()
        self.assertEqual(c.status, "running")
        # The recorded status, at once: no trip back through `starting`.
        self.assertEqual(c.attrs["State"]["Health"]["Status"], "healthy")
        # New probes run: the log gains results made after the restart.
        deadline = time.monotonic() + 10
        newest = ""
        while time.monotonic() < deadline:
            c.reload()
            newest = c.attrs["State"]["Health"]["Log"][-1]["End"]
            if newest > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(restarted + 1)):
                break
            time.sleep(0.1)
        else:
            self.fail(f"no probe since the restart: last ended {newest}")
        since = int(time.time()) - 1
        c.exec_run(["rm", "/tmp/ok"])
        wait_status(c, "unhealthy")
        evs = list(client.events(since=since, until=int(time.time()) + 1, decode=True,
                                 filters={"container": c.id, "event": "health_status"}))
        self.assertEqual([e["Action"] for e in evs], ["health_status: unhealthy"])
        c.remove(force=True)


if __name__ == "__main__":
    phase = os.environ.get("BERTH_PHASE", "before")
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Before if phase == "before" else After)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    raise SystemExit(0 if result.wasSuccessful() else 1)
