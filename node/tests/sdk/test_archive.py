"""Archive calls (`put_archive`, `get_archive`, `HEAD .../archive`) see a container's volumes
and binds whatever its state (created, running, exited), as dockerd mounts them for these
calls; read-only mounts refuse writes with dockerd's words; nothing resolves out of the
container's root. `VolumeOptions.Subpath` (API 1.45) mounts a part of a named volume, and
refuses what does not exist or would leave the volume."""

import base64
import io
import json
import os
import shutil
import tarfile
import tempfile
import unittest
import uuid

import docker
from docker.types import Mount

from sdkcommon import IMAGE, SdkTest


def tar_of(files):
    """A tar holding `files` (name → bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def files_of(chunks):
    """name → bytes of the regular files in a tar given as chunks."""
    t = tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))
    return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


class Archive(SdkTest):
    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:10]
        self.hostdir = tempfile.mkdtemp(prefix="berth-sdk-bind-")
        self.addCleanup(shutil.rmtree, self.hostdir, True)

    def volume(self, suffix):
        v = self.client.volumes.create(name=f"arch-{self.tag}-{suffix}")
        # Cleanups run after tearDown has removed the containers.
        self.addCleanup(lambda: v.remove(force=True))
        return v

    def head_stat(self, c, path):
        res = self.client.api.head(
            self.client.api._url("/containers/{0}/archive", c.id), params={"path": path})
        self.client.api._raise_for_status(res)
        return json.loads(base64.b64decode(res.headers["X-Docker-Container-Path-Stat"]))

    def volume_files(self, vol, path="/v"):
        """The files at `path` of a volume, as another container sees them."""
        out = self.client.containers.run(
            IMAGE, ["sh", "-c", f"cd {path} && for f in *; do echo \"$f=$(cat $f)\"; done"],
            volumes=[f"{vol}:{path}"], remove=True)
        return out.decode()

    def test_volumes_and_binds_of_a_created_container(self):
        named = self.volume("named")
        c = self.create_container(
            ["sh", "-c", "cat /vol1/a /named/b /bind/c"],
            volumes=["/vol1", f"{named.name}:/named", f"{self.hostdir}:/bind"])
        for d, name in (("/vol1", "a"), ("/named", "b"), ("/bind", "c")):
            self.assertTrue(c.put_archive(d, tar_of({name: f"in {d}\n".encode()})))
            stat = self.head_stat(c, f"{d}/{name}")
            self.assertEqual(stat["name"], name)
            self.assertEqual(stat["size"], len(f"in {d}\n"))
            bits, stat = c.get_archive(f"{d}/{name}")
            self.assertEqual(files_of(bits), {name: f"in {d}\n".encode()})
        # What was put is in the volumes and the bind, not in the container's own layer.
        with open(os.path.join(self.hostdir, "c"), "rb") as f:
            self.assertEqual(f.read(), b"in /bind\n")
        self.assertEqual(self.volume_files(named.name), "b=in /named\n")
        c.start()
        self.assertEqual(c.wait()["StatusCode"], 0)
        self.assertEqual(c.logs(), b"in /vol1\nin /named\nin /bind\n")

    def test_exited_and_running_containers(self):
        c = self.run_container(["sh", "-c", "echo first > /vol1/x"], volumes=["/vol1"])
        self.assertEqual(c.wait()["StatusCode"], 0)
        bits, _ = c.get_archive("/vol1/x")
        self.assertEqual(files_of(bits), {"x": b"first\n"})
        self.assertTrue(c.put_archive("/vol1", tar_of({"y": b"while exited\n"})))
        self.assertEqual(self.head_stat(c, "/vol1/y")["size"], len(b"while exited\n"))
        r = self.run_container(["sleep", "300"], volumes=["/data"])
        self.assertTrue(r.put_archive("/data", tar_of({"z": b"while running\n"})))
        code, out = r.exec_run(["cat", "/data/z"])
        self.assertEqual((code, out), (0, b"while running\n"))
        code, _ = r.exec_run(["sh", "-c", "echo from inside > /data/w"])
        self.assertEqual(code, 0)
        bits, _ = r.get_archive("/data")
        self.assertEqual(files_of(bits), {"data/z": b"while running\n",
                                          "data/w": b"from inside\n"})

    def test_read_only_mounts_refuse_writes(self):
        ro = self.volume("ro")
        c = self.create_container(
            ["true"], read_only=True, volumes=[f"{ro.name}:/ro:ro", "/rw"])
        with self.assertRaises(docker.errors.APIError) as e:
            c.put_archive("/ro", tar_of({"f": b"x"}))
        self.assertEqual(e.exception.status_code, 403)
        self.assertIn("mounted volume is marked read-only", str(e.exception))
        with self.assertRaises(docker.errors.APIError) as e:
            c.put_archive("/", tar_of({"f": b"x"}))
        self.assertEqual(e.exception.status_code, 403)
        self.assertIn("container rootfs is marked read-only", str(e.exception))
        self.assertTrue(c.put_archive("/rw", tar_of({"f": b"into a writable volume"})))
        bits, _ = c.get_archive("/rw/f")
        self.assertEqual(files_of(bits), {"f": b"into a writable volume"})

    def test_links_in_a_volume_stay_inside_the_container(self):
        vol = self.volume("links")
        outside = tempfile.mkdtemp(prefix="berth-sdk-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        setup = self.run_container(
            ["sh", "-c", f"ln -s {outside} /v/out && ln -s ../../../../.. /v/up"],
            volumes=[f"{vol.name}:/v"])
        self.assertEqual(setup.wait()["StatusCode"], 0)
        c = self.create_container(["true"], volumes=[f"{vol.name}:/v"])
        # `out` names a host directory, which does not exist inside the container.
        with self.assertRaises(docker.errors.NotFound):
            c.put_archive("/v/out", tar_of({"pwned": b"x"}))
        self.assertEqual(os.listdir(outside), [])
        # `up` climbs to the container's root, not the host's.
        self.assertTrue(c.put_archive("/v/up/tmp", tar_of({f"mark-{self.tag}": b"x"})))
        self.assertFalse(os.path.exists(f"/tmp/mark-{self.tag}"))
        bits, _ = c.get_archive(f"/tmp/mark-{self.tag}")
        self.assertEqual(files_of(bits), {f"mark-{self.tag}": b"x"})


class Subpath(SdkTest):
    def setUp(self):
        super().setUp()
        self.vol = self.client.volumes.create(name=f"sub-{uuid.uuid4().hex[:10]}")
        self.addCleanup(lambda: self.vol.remove(force=True))
        fill = self.run_container(
            ["sh", "-c", "mkdir -p /v/sub /v/hack /v/empty && echo world > /v/sub/hello && "
                         "echo foo > /v/bar.txt && ln -s ../sub /v/hack/good && "
                         "ln -s / /v/hack/root && ln -s root /v/hack/bad"],
            volumes=[f"{self.vol.name}:/v"])
        self.assertEqual(fill.wait()["StatusCode"], 0)

    def mount(self, subpath, target="/m"):
        return [Mount(target, self.vol.name, subpath=subpath)]

    def run_out(self, subpath, cmd, target="/m"):
        c = self.run_container(cmd, mounts=self.mount(subpath, target))
        self.assertEqual(c.wait()["StatusCode"], 0, c.logs())
        return c.logs()

    def test_subdirectories_files_and_links_inside(self):
        self.assertEqual(self.run_out("sub", ["cat", "/m/hello"]), b"world\n")
        self.assertEqual(self.run_out("hack/good", ["cat", "/m/hello"]), b"world\n")
        self.assertEqual(self.run_out("bar.txt", ["cat", "/m"]), b"foo\n")
        # An empty subdirectory gets the image's content, as a whole volume would.
        self.assertEqual(self.run_out("empty", ["ls", "/bin/busybox"], target="/bin"),
                         b"/bin/busybox\n")

    def test_refusals(self):
        api = self.client.api
        with self.assertRaises(docker.errors.APIError) as e:
            self.create_container(["true"], mounts=self.mount("../../../etc/passwd"))
        self.assertEqual(e.exception.status_code, 400)
        self.assertIn("subpath must be a relative path within the volume", str(e.exception))
        for sub, code, says in (("nope", 404, "cannot access path"),
                                ("hack/root", 400, "escapes the base directory"),
                                ("hack/bad", 400, "escapes the base directory")):
            c = self.create_container(["true"], mounts=self.mount(sub))
            with self.assertRaises(docker.errors.APIError) as e:
                api.start(c.id)
            self.assertEqual(e.exception.status_code, code, sub)
            self.assertIn(says, str(e.exception), sub)
        # Nothing staged stays mounted after a failed start.
        with open("/proc/self/mountinfo") as f:
            self.assertNotIn("/subpaths/", f.read())

    def test_archive_through_a_subpath(self):
        c = self.create_container(["cat", "/m/put"], mounts=self.mount("sub"))
        self.assertTrue(c.put_archive("/m", tar_of({"put": b"via archive\n"})))
        c.start()
        self.assertEqual(c.wait()["StatusCode"], 0)
        self.assertEqual(c.logs(), b"via archive\n")
        out = self.client.containers.run(IMAGE, ["cat", "/v/sub/put"],
                                         volumes=[f"{self.vol.name}:/v"], remove=True)
        self.assertEqual(out, b"via archive\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
