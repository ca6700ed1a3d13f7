"""berthbench: Berth against Docker (and Podman when installed) on the same machine, in one run.

Modules:
  sysutil  -- /proc, cgroup, mount and netns helpers used by setup and cleanup
  engines  -- one daemon per engine, each in its own network namespace with temporary roots
  loadgen  -- a small HTTP/1.1-over-unix-socket load generator (threads, keep-alive)
  metrics  -- the measurements, alternating between engines
  report   -- the table printed to stdout and the JSON file
  cli      -- the `bench/run` entry point
"""
