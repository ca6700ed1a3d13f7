"""IPv6 through the SDK: `enable_ipv6` networks with an IPv6 subnet (or none: a unique-local
/64), addresses from IPAM and fixed ones (`ipv6_address`), inspect's IPv6 fields, routes and
traffic between containers over IPv6, AAAA answers of the embedded DNS, /etc/hosts, ports
published on IPv6 and reached through the host, and the errors dockerd gives for bad input.

Every address here is inside networks this test makes (the daemon runs in a network
namespace of its own), so no traffic leaves the machine."""

import ipaddress
import time
import unittest
import uuid

import docker
from docker.types import IPAMConfig, IPAMPool

from sdkcommon import IMAGE, SdkTest


class Ipv6(SdkTest):
    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        # A /48 of the unique-local space, different per run, written as the daemon
        # writes addresses (no leading zeros).
        a, b, c = int(self.tag[:2], 16), int(self.tag[2:6], 16), int(self.tag[6:8], 16)
        self.prefix = f"fd{a:02x}:{b:x}:{c:x}"

    def network(self, suffix, subnet6=None, **kw):
        pools = [IPAMPool(subnet=subnet6)] if subnet6 else []
        n = self.client.networks.create(
            f"v6{suffix}-{self.tag}", driver="bridge", enable_ipv6=True,
            ipam=IPAMConfig(pool_configs=pools) if pools else None, **kw)
        self.addCleanup(n.remove)
        return n

    def endpoint(self, c, net):
        c.reload()
        return c.attrs["NetworkSettings"]["Networks"][net.name]

    def exec_ok(self, c, cmd):
        code, out = c.exec_run(cmd)
        self.assertEqual(code, 0, f"{cmd}: {out.decode(errors='replace')}")
        return out.decode()

    def test_network_addresses_and_inspect(self):
        subnet = f"{self.prefix}:1::/64"
        n = self.network("a", subnet)
        n.reload()
        self.assertTrue(n.attrs["EnableIPv6"])
        configs = n.attrs["IPAM"]["Config"]
        self.assertEqual(len(configs), 2, configs)
        v6 = [c for c in configs if ":" in c["Subnet"]]
        self.assertEqual(v6, [{"Subnet": subnet, "Gateway": f"{self.prefix}:1::1"}])
        a = self.run_container(["sleep", "300"], name=f"a-{self.tag}", network=n.name)
        ep = self.endpoint(a, n)
        self.assertIn(ipaddress.ip_address(ep["GlobalIPv6Address"]), ipaddress.ip_network(subnet))
        self.assertEqual(ep["GlobalIPv6PrefixLen"], 64)
        self.assertEqual(ep["IPv6Gateway"], f"{self.prefix}:1::1")
        self.assertTrue(ep["IPAddress"], "IPv4 stays on")
        n.reload()
        shown = n.attrs["Containers"][a.id]
        self.assertEqual(shown["IPv6Address"], f"{ep['GlobalIPv6Address']}/64")
        # In the container: the address (usable at once, no DAD wait) and the default route.
        addr = self.exec_ok(a, ["ip", "-6", "addr", "show", "eth0"])
        line = [l for l in addr.splitlines() if f"{ep['GlobalIPv6Address']}/64" in l]
        self.assertEqual(len(line), 1, addr)
        self.assertNotIn("tentative", line[0])
        route = self.exec_ok(a, ["ip", "-6", "route"])
        self.assertIn(f"default via {self.prefix}:1::1", route)
        hosts = self.exec_ok(a, ["cat", "/etc/hosts"])
        self.assertIn(ep["GlobalIPv6Address"], hosts)

    def test_traffic_dns_and_fixed_addresses(self):
        n = self.network("b", f"{self.prefix}:2::/64")
        fixed = f"{self.prefix}:2::99"
        api = self.client.api
        cfg = api.create_networking_config(
            {n.name: api.create_endpoint_config(ipv6_address=fixed)})
        cid = api.create_container(
            IMAGE, ["httpd", "-f", "-p", "80", "-h", "/etc"], name=f"srv-{self.tag}",
            networking_config=cfg, host_config=api.create_host_config(network_mode=n.name))["Id"]
        srv = self.client.containers.get(cid)
        self._containers.append(srv)
        self.assertEqual(srv.attrs["NetworkSettings"]["Networks"][n.name]["IPAMConfig"]["IPv6Address"], fixed)
        srv.start()
        self.assertEqual(self.endpoint(srv, n)["GlobalIPv6Address"], fixed)
        cli = self.run_container(["sleep", "300"], name=f"cli-{self.tag}", network=n.name)
        self.exec_ok(cli, ["ping", "-c", "1", "-W", "5", fixed])
        # The embedded DNS answers AAAA with the IPv6 address, A with the IPv4 one.
        out = self.exec_ok(cli, ["nslookup", "-type=aaaa", f"srv-{self.tag}", "127.0.0.11"])
        self.assertIn(fixed, out)
        out = self.exec_ok(cli, ["nslookup", "-type=a", f"srv-{self.tag}", "127.0.0.11"])
        self.assertIn(self.endpoint(srv, n)["IPAddress"], out)
        body = self.wget(cli, f"http://[{fixed}]:80/hostname")
        self.assertEqual(body.strip(), srv.attrs["Config"]["Hostname"])
        # The same fixed address again: taken.
        with self.assertRaises(docker.errors.APIError) as e:
            other = api.create_container(
                IMAGE, ["sleep", "300"], networking_config=cfg,
                host_config=api.create_host_config(network_mode=n.name))["Id"]
            self._containers.append(self.client.containers.get(other))
            api.start(other)
        self.assertIn("Address already in use", str(e.exception))

    def wget(self, c, url):
        deadline = time.monotonic() + 10
        while True:
            # (busybox's wget crashes on `-T` with an IPv6 literal: no -T.)
            code, out = c.exec_run(["wget", "-q", "-O", "-", url])
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(code, 0, f"wget {url}: {out.decode(errors='replace')}")
        return out.decode()

    def test_published_ports_on_ipv6(self):
        n1 = self.network("p", f"{self.prefix}:3::/64")
        n2 = self.network("q", f"{self.prefix}:4::/64")
        srv = self.run_container(["httpd", "-f", "-p", "80", "-h", "/etc"],
                                 network=n1.name, ports={"80/tcp": None})
        srv.reload()
        bindings = srv.attrs["NetworkSettings"]["Ports"]["80/tcp"]
        ips = sorted(b["HostIp"] for b in bindings)
        self.assertEqual(ips, ["0.0.0.0", "::"], bindings)
        ports = {b["HostPort"] for b in bindings}
        self.assertEqual(len(ports), 1, "the same host port on both families")
        port = ports.pop()
        # From another network, through that network's gateway (an address of the host).
        cli = self.run_container(["sleep", "300"], network=n2.name)
        body = self.wget(cli, f"http://[{self.prefix}:4::1]:{port}/hostname")
        self.assertEqual(body.strip(), srv.attrs["Config"]["Hostname"])
        body = self.wget(cli, f"http://{self.endpoint(cli, n2)['Gateway']}:{port}/hostname")
        self.assertEqual(body.strip(), srv.attrs["Config"]["Hostname"])
        # An IPv6 host address for a container without IPv6: refused at start, said why.
        plain = self.client.networks.create(f"v4-{self.tag}", driver="bridge")
        self.addCleanup(plain.remove)
        c = self.create_container(["sleep", "300"], network=plain.name,
                                  ports={"80/tcp": ("::", None)})
        with self.assertRaises(docker.errors.APIError) as e:
            c.start()
        self.assertIn("has no IPv6 address", str(e.exception))

    def test_unique_local_subnet_when_none_is_given(self):
        n1, n2 = self.network("u1"), self.network("u2")
        subnets = []
        for n in (n1, n2):
            n.reload()
            v6 = [c["Subnet"] for c in n.attrs["IPAM"]["Config"] if ":" in c["Subnet"]]
            self.assertEqual(len(v6), 1, n.attrs["IPAM"])
            net = ipaddress.ip_network(v6[0])
            self.assertEqual(net.prefixlen, 64)
            self.assertTrue(net.subnet_of(ipaddress.ip_network("fd00::/8")), net)
            subnets.append(net)
        self.assertFalse(subnets[0].overlaps(subnets[1]))
        c = self.run_container(["sleep", "300"], network=n1.name)
        self.assertIn(ipaddress.ip_address(self.endpoint(c, n1)["GlobalIPv6Address"]), subnets[0])

    def test_bad_input(self):
        subnet = f"{self.prefix}:5::/64"
        self.network("x", subnet)
        cases = [
            # The same subnet again: the pool overlaps (403, as dockerd).
            (dict(enable_ipv6=True, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])),
             403, "Pool overlaps"),
            (dict(enable_ipv6=True, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="zz::/64")])),
             400, "invalid CIDR"),
            (dict(enable_ipv6=True, ipam=IPAMConfig(pool_configs=[
                IPAMPool(subnet=f"{self.prefix}:6::/64", gateway=f"{self.prefix}:7::1")])),
             400, "not in the subnet"),
            (dict(enable_ipv6=True, ipam=IPAMConfig(pool_configs=[
                IPAMPool(subnet=f"{self.prefix}:9::/64"), IPAMPool(subnet=f"{self.prefix}:a::/64")])),
             400, "one IPv6"),
        ]
        for i, (kw, status, text) in enumerate(cases):
            with self.subTest(i=i), self.assertRaises(docker.errors.APIError) as e:
                n = self.client.networks.create(f"bad{i}-{self.tag}", driver="bridge", **kw)
                n.remove()
            self.assertEqual(e.exception.status_code, status, str(e.exception))
            self.assertIn(text, str(e.exception))
        # EnableIPv6 false with an IPv6 subnet (the SDK leaves a false flag out: raw body).
        api = self.client.api
        with self.assertRaises(docker.errors.APIError) as e:
            api._result(api._post_json(api._url("/networks/create"), data={
                "Name": f"bad-off-{self.tag}", "EnableIPv6": False,
                "IPAM": {"Config": [{"Subnet": f"{self.prefix}:8::/64"}]}}), True)
        self.assertEqual(e.exception.status_code, 400, str(e.exception))
        self.assertIn("IPv6 disabled", str(e.exception))
        names = [n.name for n in self.client.networks.list()]
        self.assertFalse([n for n in names if n.startswith("bad") and n.endswith(self.tag)],
                         "a refused create leaves nothing")
        # A fixed IPv6 address: only in a user-given subnet, inside it, and only with IPv6 on.
        auto = self.network("auto")
        plain = self.client.networks.create(f"plain-{self.tag}", driver="bridge")
        self.addCleanup(plain.remove)
        given = self.client.networks.get(f"v6x-{self.tag}")
        for net, addr, text in [
            (auto, "fd00::5", "user configured subnets"),
            (given, f"{self.prefix}:f::5", "no configured subnet"),
            (plain, f"{self.prefix}:5::5", "IPv6 is not enabled"),
        ]:
            with self.subTest(net=net.name), self.assertRaises(docker.errors.APIError) as e:
                api = self.client.api
                cfg = api.create_networking_config(
                    {net.name: api.create_endpoint_config(ipv6_address=addr)})
                cid = api.create_container(IMAGE, ["true"], networking_config=cfg,
                                           host_config=api.create_host_config(network_mode=net.name))["Id"]
                api.remove_container(cid)
            self.assertEqual(e.exception.status_code, 400, str(e.exception))
            self.assertIn(text, str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
