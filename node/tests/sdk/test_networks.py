"""Networks through the SDK: a running container connected to a second user-defined network
keeps its one embedded DNS server, which answers names from every network it is on (and
forgets a network's names when it is disconnected); `EndpointConfig.MacAddress` and
`IPAMConfig.LinkLocalIPs` on create and connect, shown by inspect and set on the interface."""

import unittest
import uuid

import docker

from sdkcommon import IMAGE, SdkTest


class Networks(SdkTest):
    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]

    def network(self, suffix):
        n = self.client.networks.create(f"n{suffix}-{self.tag}", driver="bridge")
        # Cleanups run after tearDown has removed the containers.
        self.addCleanup(n.remove)
        return n

    def lookup(self, c, name):
        """The addresses the container's resolver gives for `name` ([] when none)."""
        # busybox's exit status also counts the AAAA query: read the answer section only.
        _, out = c.exec_run(["nslookup", "-type=a", name, "127.0.0.11"])
        text = out.decode()
        if "Name:" not in text:
            return []
        answer = text.split("Name:", 1)[1]
        return [line.split()[-1] for line in answer.splitlines() if line.startswith("Address")]

    def ip_on(self, c, net):
        c.reload()
        return c.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]

    def test_second_network_one_dns_for_both(self):
        n1, n2 = self.network("a"), self.network("b")
        a = self.run_container(["sleep", "300"], name=f"a-{self.tag}", network=n1.name)
        b = self.run_container(["sleep", "300"], name=f"b-{self.tag}", network=n2.name)
        c = self.run_container(["sleep", "300"], name=f"c-{self.tag}", network=n1.name)
        self.assertEqual(self.lookup(c, f"b-{self.tag}"), [])
        n2.connect(c)
        c.reload()
        self.assertEqual(sorted(c.attrs["NetworkSettings"]["Networks"]), sorted([n1.name, n2.name]))
        self.assertEqual(self.lookup(c, f"a-{self.tag}"), [self.ip_on(a, n1)])
        self.assertEqual(self.lookup(c, f"b-{self.tag}"), [self.ip_on(b, n2)])
        # b shares only n2 with c: it gets c's address there.
        self.assertEqual(self.lookup(b, f"c-{self.tag}"), [self.ip_on(c, n2)])
        n1.disconnect(c)
        self.assertEqual(self.lookup(c, f"a-{self.tag}"), [])
        self.assertEqual(self.lookup(c, f"b-{self.tag}"), [self.ip_on(b, n2)])

    def test_mac_address_and_link_local_ips(self):
        n1, n2 = self.network("m"), self.network("l")
        api = self.client.api
        net_cfg = api.create_networking_config({n1.name: api.create_endpoint_config(
            mac_address="02:42:ac:11:00:99", link_local_ips=["169.254.10.10"])})
        cid = api.create_container(IMAGE, ["sleep", "300"],
                                   networking_config=net_cfg,
                                   host_config=api.create_host_config(network_mode=n1.name))["Id"]
        c = self.client.containers.get(cid)
        self._containers.append(c)
        ep = c.attrs["NetworkSettings"]["Networks"][n1.name]
        self.assertEqual(ep["MacAddress"], "02:42:ac:11:00:99")
        self.assertEqual(ep["IPAMConfig"]["LinkLocalIPs"], ["169.254.10.10"])
        c.start()
        code, out = c.exec_run(["ip", "addr", "show", "eth0"])
        self.assertEqual(code, 0)
        self.assertIn("02:42:ac:11:00:99", out.decode())
        self.assertIn("169.254.10.10/16", out.decode())
        n2.connect(c, mac_address="02:42:ac:11:00:aa", link_local_ips=["169.254.20.20"])
        c.reload()
        ep = c.attrs["NetworkSettings"]["Networks"][n2.name]
        self.assertEqual(ep["MacAddress"], "02:42:ac:11:00:aa")
        self.assertEqual(ep["IPAMConfig"]["LinkLocalIPs"], ["169.254.20.20"])
        code, out = c.exec_run(["ip", "addr", "show", "eth1"])
        self.assertIn("02:42:ac:11:00:aa", out.decode())
        self.assertIn("169.254.20.20/16", out.decode())
        with self.assertRaises(docker.errors.APIError) as e:
            self.network("x").connect(c, link_local_ips=["not-an-ip"])
        self.assertEqual(e.exception.status_code, 400)
        self.assertIn("invalid link-local IP address: not-an-ip", str(e.exception))
        with self.assertRaises(docker.errors.APIError) as e:
            self.network("y").connect(c, mac_address="zz:zz")
        self.assertEqual(e.exception.status_code, 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
