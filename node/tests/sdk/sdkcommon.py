"""Shared helpers of the Docker SDK for Python tests.

The Rust test `node/tests/e2e_sdk.rs` runs each `test_*.py` here against a fresh berthd, with
DOCKER_HOST pointing at it and BERTH_TEST_IMAGE naming an image with busybox in it.
"""

import os
import time
import unittest

import docker

IMAGE = os.environ.get("BERTH_TEST_IMAGE", "busybox:latest")
# How often a racy check is repeated: the lost-output bug showed in most runs, not all.
REPEAT = int(os.environ.get("BERTH_SDK_REPEAT", "50"))


class SdkTest(unittest.TestCase):
    """A client per test; containers made through `self.run_container` are removed after."""

    def setUp(self):
        self.client = docker.from_env(timeout=30)
        self._containers = []

    def tearDown(self):
        for c in self._containers:
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        self.client.close()

    def run_container(self, command, **kw):
        c = self.client.containers.run(IMAGE, command, detach=True, **kw)
        self._containers.append(c)
        return c

    def create_container(self, command, **kw):
        c = self.client.containers.create(IMAGE, command, **kw)
        self._containers.append(c)
        return c

    def wait_logs(self, container, want, timeout=10.0):
        """Waits until the container's logs contain `want` (bytes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = container.logs()
            if want in logs:
                return logs
            time.sleep(0.05)
        self.fail(f"logs never contained {want!r}: {container.logs()!r}")
