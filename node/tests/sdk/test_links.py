"""Legacy links through the SDK (`links={"db": "alias"}`, sent as `HostConfig.Links`): the
linking container's environment and /etc/hosts, `HostConfig.Links` as dockerd shows it,
`remove_container("/parent/alias", link=True)`, and the 400 for a missing container."""

import unittest
import uuid

import docker

from sdkcommon import IMAGE, SdkTest


class Links(SdkTest):
    def test_link_env_hosts_inspect_and_removal(self):
        tag = uuid.uuid4().hex[:8]
        db = self.run_container(["sleep", "300"], name=f"db-{tag}", environment={"WHO": "db"},
                                ports={"5432/tcp": None})
        db.reload()
        ip = db.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        web = self.run_container(["sleep", "300"], name=f"web-{tag}", links={db.name: "pg"})
        web.reload()
        self.assertEqual(web.attrs["HostConfig"]["Links"], [f"/{db.name}:/{web.name}/pg"])
        _, out = web.exec_run(["env"])
        env = out.decode().splitlines()
        for want in [f"PG_PORT=tcp://{ip}:5432", f"PG_PORT_5432_TCP_ADDR={ip}",
                     "PG_PORT_5432_TCP_PORT=5432", "PG_PORT_5432_TCP_PROTO=tcp",
                     f"PG_NAME=/{web.name}/pg", "PG_ENV_WHO=db"]:
            self.assertIn(want, env)
        _, hosts = web.exec_run(["cat", "/etc/hosts"])
        self.assertIn(f"{ip}\tpg {db.id[:12]} {db.name}", hosts.decode().splitlines())

        self.client.api.remove_container(f"/{web.name}/pg", link=True)
        web.reload()
        self.assertIsNone(web.attrs["HostConfig"]["Links"])
        db.reload()
        self.assertEqual(db.status, "running")
        with self.assertRaises(docker.errors.NotFound):
            self.client.api.remove_container(f"/{web.name}/pg", link=True)

    def test_missing_container(self):
        with self.assertRaises(docker.errors.APIError) as e:
            self.client.containers.create(IMAGE, ["true"], links={"nope-" + uuid.uuid4().hex: "x"})
        self.assertEqual(e.exception.status_code, 400)
        self.assertIn("could not get container for nope-", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
