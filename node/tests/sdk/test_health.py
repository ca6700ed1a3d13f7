"""Healthchecks as the Docker SDK sees them: State.Health in inspect, `health_status` events,
the probes' exec events, `(healthy)` in the list's Status, the `health` filter, timeouts,
`--no-healthcheck` and image healthchecks, and dockerd's validation messages."""

import os
import subprocess
import time
import unittest

import docker

from sdkcommon import IMAGE, SdkTest

MS = 1_000_000


def hc(test, interval_ms=200, timeout_ms=None, retries=None, start_period_ms=None):
    h = {"test": test, "interval": interval_ms * MS}
    if timeout_ms is not None:
        h["timeout"] = timeout_ms * MS
    if retries is not None:
        h["retries"] = retries
    if start_period_ms is not None:
        h["start_period"] = start_period_ms * MS
    return h


class Health(SdkTest):
    def health(self, c):
        c.reload()
        return c.attrs["State"].get("Health")

    def wait_status(self, c, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health(c)
            if h and h["Status"] == want:
                return h
            time.sleep(0.05)
        self.fail(f"health never became {want!r}: {self.health(c)!r}")

    def list_status(self, c):
        (row,) = self.client.api.containers(filters={"id": c.id})
        return row["Status"]

    def test_healthy_with_log_and_list_status(self):
        c = self.run_container(["sleep", "300"],
                               healthcheck=hc(["CMD-SHELL", "echo probe-ok"], interval_ms=300))
        first = self.health(c)
        self.assertEqual(first["Status"], "starting")
        self.assertEqual(first["FailingStreak"], 0)
        self.assertRegex(self.list_status(c), r"^Up .* \(health: starting\)$")
        self.assertEqual(c.health, "starting")
        h = self.wait_status(c, "healthy")
        self.assertEqual(h["FailingStreak"], 0)
        last = h["Log"][-1]
        self.assertEqual(last["ExitCode"], 0)
        self.assertEqual(last["Output"], "probe-ok\n")
        self.assertLessEqual(last["Start"], last["End"])
        self.assertRegex(self.list_status(c), r"^Up .* \(healthy\)$")
        # The log keeps the last five results.
        deadline = time.monotonic() + 10
        while len(self.health(c)["Log"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.7)
        self.assertEqual(len(self.health(c)["Log"]), 5)
        # Probes are gone once done: no exec of theirs lingers in ExecIDs.
        c.reload()
        self.assertIn(c.attrs["ExecIDs"], (None, []))

    def test_unhealthy_after_retries_and_back(self):
        c = self.run_container(["sleep", "300"],
                               healthcheck=hc(["CMD", "test", "-f", "/tmp/ok"], retries=2))
        h = self.wait_status(c, "unhealthy")
        self.assertGreaterEqual(h["FailingStreak"], 2)
        self.assertEqual(h["Log"][-1]["ExitCode"], 1)
        self.assertRegex(self.list_status(c), r"^Up .* \(unhealthy\)$")
        c.exec_run(["touch", "/tmp/ok"])
        h = self.wait_status(c, "healthy")
        self.assertEqual(h["FailingStreak"], 0)

    def test_events_for_status_changes_and_probes(self):
        since = int(time.time()) - 1
        c = self.run_container(["sleep", "300"],
                               healthcheck=hc(["CMD-SHELL", "test -f /tmp/ok"], retries=1))
        self.wait_status(c, "unhealthy")
        c.exec_run(["touch", "/tmp/ok"])
        self.wait_status(c, "healthy")
        c.exec_run(["rm", "/tmp/ok"])
        self.wait_status(c, "unhealthy")
        until = int(time.time()) + 2
        evs = list(self.client.events(since=since, until=until, decode=True,
                                      filters={"container": c.id, "event": "health_status"}))
        self.assertEqual([e["Action"] for e in evs],
                         ["health_status: unhealthy", "health_status: healthy",
                          "health_status: unhealthy"])
        self.assertEqual(evs[0]["Actor"]["Attributes"]["name"], c.name)
        self.assertEqual(evs[0]["status"], "health_status: unhealthy")
        # The whole action filters too, as in dockerd.
        healthy = list(self.client.events(since=since, until=until, decode=True,
                                          filters={"container": c.id,
                                                   "event": "health_status: healthy"}))
        self.assertEqual(len(healthy), 1)
        # Each probe is an exec, with dockerd's exec events.
        probes = list(self.client.events(since=since, until=until, decode=True,
                                         filters={"container": c.id, "type": "container"}))
        actions = [e["Action"] for e in probes]
        self.assertIn("exec_create: /bin/sh -c test -f /tmp/ok", actions)
        self.assertIn("exec_start: /bin/sh -c test -f /tmp/ok", actions)
        self.assertIn("exec_die", actions)

    def test_list_filter_health(self):
        good = self.run_container(["sleep", "300"], healthcheck=hc(["CMD", "true"]))
        bad = self.run_container(["sleep", "300"], healthcheck=hc(["CMD", "false"], retries=1))
        plain = self.run_container(["sleep", "300"])
        self.wait_status(good, "healthy")
        self.wait_status(bad, "unhealthy")

        def ids(value):
            return {c.id for c in self.client.containers.list(filters={"health": value})}

        mine = {good.id, bad.id, plain.id}
        self.assertEqual(ids("healthy") & mine, {good.id})
        self.assertEqual(ids("unhealthy") & mine, {bad.id})
        self.assertEqual(ids("none") & mine, {plain.id})
        self.assertEqual(ids("starting") & mine, set())
        with self.assertRaises(docker.errors.APIError) as e:
            self.client.containers.list(filters={"health": "sick"})
        self.assertEqual(e.exception.status_code, 400)
        self.assertIn("Unrecognised filter value for health: sick", str(e.exception))

    def test_timeout_kills_the_probe(self):
        c = self.run_container(
            ["sleep", "300"],
            healthcheck=hc(["CMD-SHELL", "echo slow; sleep 7"], interval_ms=100,
                           timeout_ms=300, retries=2))
        h = self.wait_status(c, "unhealthy")
        last = h["Log"][-1]
        self.assertEqual(last["ExitCode"], -1)
        self.assertEqual(last["Output"], "Health check exceeded timeout (300ms)")
        # Each timed-out probe was killed: at most the current one is still sleeping.
        time.sleep(1.0)
        ps = c.exec_run(["ps", "-o", "args"]).output.decode()
        sleeping = [line for line in ps.splitlines() if "sleep 7" in line]
        self.assertLessEqual(len(sleeping), 1, ps)

    def test_pause_stops_probes(self):
        c = self.run_container(["sleep", "300"], healthcheck=hc(["CMD", "true"]))
        self.wait_status(c, "healthy")
        since = int(time.time()) - 1
        paused_at = time.time_ns()
        c.pause()
        self.assertEqual(self.health(c)["Status"], "unhealthy")
        self.assertRegex(self.list_status(c), r"^Up .* \(Paused\)$")
        time.sleep(0.6)
        self.assertEqual(self.health(c)["Status"], "unhealthy", "no probe while paused")
        c.unpause()
        self.wait_status(c, "healthy")
        evs = list(self.client.events(since=since, until=int(time.time()) + 1, decode=True,
                                      filters={"container": c.id, "event": "health_status"}))
        after = [e["Action"] for e in evs if e["timeNano"] >= paused_at]
        self.assertEqual(after, ["health_status: healthy"])

    def test_start_period_holds_failures_back(self):
        c = self.run_container(["sleep", "300"],
                               healthcheck=hc(["CMD", "false"], interval_ms=100, retries=1,
                                              start_period_ms=1500))
        time.sleep(0.8)
        h = self.health(c)
        self.assertEqual(h["Status"], "starting")
        self.assertEqual(h["FailingStreak"], 0)
        self.assertTrue(h["Log"], "probes ran during the start period")
        self.wait_status(c, "unhealthy")

    def test_image_healthcheck_inherited_overridden_and_disabled(self):
        base = self.run_container(["sleep", "300"])
        img = base.commit(changes=["HEALTHCHECK --interval=200ms --retries=4 CMD [\"true\"]"])
        self.addCleanup(self.client.images.remove, img.id, force=True)
        self.assertEqual(img.attrs["Config"]["Healthcheck"]["Test"], ["CMD", "true"])

        inherited = self.client.containers.run(img.id, ["sleep", "300"], detach=True)
        self._containers.append(inherited)
        inherited.reload()
        self.assertEqual(inherited.attrs["Config"]["Healthcheck"],
                         {"Test": ["CMD", "true"], "Interval": 200 * MS, "Retries": 4})
        self.wait_status(inherited, "healthy")

        # Fields the user sets win; the rest come from the image.
        mixed = self.client.containers.run(img.id, ["sleep", "300"], detach=True,
                                           healthcheck={"test": ["CMD", "false"],
                                                        "retries": 1})
        self._containers.append(mixed)
        mixed.reload()
        self.assertEqual(mixed.attrs["Config"]["Healthcheck"],
                         {"Test": ["CMD", "false"], "Interval": 200 * MS, "Retries": 1})
        self.wait_status(mixed, "unhealthy")

        # --no-healthcheck: NONE, nothing probed, no State.Health.
        off = self.client.containers.run(img.id, ["sleep", "300"], detach=True,
                                         healthcheck={"test": ["NONE"]})
        self._containers.append(off)
        time.sleep(0.6)
        off.reload()
        # dockerd merges the image's other fields in too.
        self.assertEqual(off.attrs["Config"]["Healthcheck"],
                         {"Test": ["NONE"], "Interval": 200 * MS, "Retries": 4})
        self.assertNotIn("Health", off.attrs["State"])
        self.assertNotIn("health", self.list_status(off))

    def test_restart_starts_over(self):
        c = self.run_container(["sleep", "300"], healthcheck=hc(["CMD", "true"]))
        self.wait_status(c, "healthy")
        c.stop(timeout=0)
        # Once its probes stop, dockerd calls it unhealthy (no event); the log stays.
        h = self.health(c)
        self.assertEqual(h["Status"], "unhealthy")
        self.assertTrue(h["Log"])
        self.assertEqual({x.id for x in self.client.containers.list(
            all=True, filters={"health": "unhealthy"})} & {c.id}, {c.id})
        c.start()
        self.assertEqual(self.health(c)["Status"], "starting")
        self.wait_status(c, "healthy")

    def test_berth_cli_flags_and_ps(self):
        """`berth run --health-*` makes the healthcheck; `berth ps` shows and filters it."""
        here = os.path.dirname(os.path.abspath(__file__))
        berth = os.environ.get("BERTH_CLI") or os.path.join(
            here, "..", "..", "..", "target", "release", "berth")
        env = dict(os.environ, BERTH_HOST=os.environ["DOCKER_HOST"])

        def berth_ok(*args):
            cp = subprocess.run([berth, *args], env=env, capture_output=True, timeout=60)
            self.assertEqual(cp.returncode, 0, cp.stderr.decode())
            return cp.stdout.decode()

        cid = berth_ok("run", "-d", "--health-cmd", "test -f /tmp/ok", "--health-interval",
                       "200ms", "--health-retries", "1", "--health-start-interval", "100ms",
                       IMAGE, "sh", "-c", "touch /tmp/ok; exec sleep 300").strip()
        c = self.client.containers.get(cid)
        self._containers.append(c)
        self.assertEqual(c.attrs["Config"]["Healthcheck"],
                         {"Test": ["CMD-SHELL", "test -f /tmp/ok"], "Interval": 200 * MS,
                          "StartInterval": 100 * MS, "Retries": 1})
        self.wait_status(c, "healthy")
        line = berth_ok("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").strip()
        self.assertRegex(line, r"^Up .* \(healthy\)$")
        self.assertIn(cid[:12], berth_ok("ps", "-q", "--filter", "health=healthy"))
        c.exec_run(["rm", "/tmp/ok"])
        self.wait_status(c, "unhealthy")
        self.assertIn(cid[:12], berth_ok("ps", "-q", "--filter", "health=unhealthy"))
        self.assertNotIn(cid[:12], berth_ok("ps", "-q", "--filter", "health=healthy"))
        off = berth_ok("run", "-d", "--no-healthcheck", IMAGE, "sleep", "300").strip()
        self._containers.append(self.client.containers.get(off))
        self.assertIn(off[:12], berth_ok("ps", "-q", "--filter", "health=none"))

    def test_validation(self):
        cases = [
            ({"test": ["CMD", "true"], "interval": 1000}, "Interval in Healthcheck cannot be less than 1ms"),
            ({"test": ["CMD", "true"], "timeout": 999}, "Timeout in Healthcheck cannot be less than 1ms"),
            ({"test": ["CMD", "true"], "retries": -1}, "Retries in Healthcheck cannot be negative"),
            ({"test": ["CMD", "true"], "start_period": 5}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ]
        for h, msg in cases:
            with self.assertRaises(docker.errors.APIError) as e:
                self.client.containers.create(IMAGE, ["true"], healthcheck=h)
            self.assertEqual(e.exception.status_code, 400, h)
            self.assertIn(msg, str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
