"""Response shapes the SDKs index: inspect has every key dockerd 20.10 returns for the same
create request, list fields are `[]` where dockerd answers `[]`, `null` in request bodies is
"absent", network names with spaces, `Parent` of committed images, `runc` as a runtime."""

import os
import unittest

import docker

from sdkcommon import IMAGE, SdkTest

# Keys of dockerd 20.10's `GET /containers/{id}/json` for `docker create busybox sleep 1`.
DOCKERD_INSPECT = {
    "": ["AppArmorProfile", "Args", "Config", "Created", "Driver", "ExecIDs", "GraphDriver",
         "HostConfig", "HostnamePath", "HostsPath", "Id", "Image", "LogPath", "MountLabel",
         "Mounts", "Name", "NetworkSettings", "Path", "Platform", "ProcessLabel",
         "ResolvConfPath", "RestartCount", "State"],
    "State": ["Dead", "Error", "ExitCode", "FinishedAt", "OOMKilled", "Paused", "Pid",
              "Restarting", "Running", "StartedAt", "Status"],
    "HostConfig": [
        "AutoRemove", "Binds", "BlkioDeviceReadBps", "BlkioDeviceReadIOps",
        "BlkioDeviceWriteBps", "BlkioDeviceWriteIOps", "BlkioWeight", "BlkioWeightDevice",
        "CapAdd", "CapDrop", "Cgroup", "CgroupParent", "CgroupnsMode", "ConsoleSize",
        "ContainerIDFile", "CpuCount", "CpuPercent", "CpuPeriod", "CpuQuota",
        "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuShares", "CpusetCpus", "CpusetMems",
        "DeviceCgroupRules", "DeviceRequests", "Devices", "Dns", "DnsOptions", "DnsSearch",
        "ExtraHosts", "GroupAdd", "IOMaximumBandwidth", "IOMaximumIOps", "IpcMode",
        "Isolation", "KernelMemory", "KernelMemoryTCP", "Links", "LogConfig", "MaskedPaths",
        "Memory", "MemoryReservation", "MemorySwap", "MemorySwappiness", "NanoCpus",
        "NetworkMode", "OomKillDisable", "OomScoreAdj", "PidMode", "PidsLimit", "PortBindings",
        "Privileged", "PublishAllPorts", "ReadonlyPaths", "ReadonlyRootfs", "RestartPolicy",
        "Runtime", "SecurityOpt", "ShmSize", "UTSMode", "Ulimits", "UsernsMode",
        "VolumeDriver", "VolumesFrom"],
    "Config": ["AttachStderr", "AttachStdin", "AttachStdout", "Cmd", "Domainname",
               "Entrypoint", "Env", "Hostname", "Image", "Labels", "OnBuild", "OpenStdin",
               "StdinOnce", "Tty", "User", "Volumes", "WorkingDir"],
    "NetworkSettings": ["Bridge", "EndpointID", "Gateway", "GlobalIPv6Address",
                        "GlobalIPv6PrefixLen", "HairpinMode", "IPAddress", "IPPrefixLen",
                        "IPv6Gateway", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen",
                        "MacAddress", "Networks", "Ports", "SandboxID", "SandboxKey",
                        "SecondaryIPAddresses", "SecondaryIPv6Addresses"],
    "GraphDriver": ["Data", "Name"],
}


class Shapes(SdkTest):
    def test_inspect_has_every_key_dockerd_has(self):
        c = self.create_container(["sleep", "1"])
        body = self.client.api.inspect_container(c.id)
        for where, keys in DOCKERD_INSPECT.items():
            have = body if where == "" else body[where]
            missing = sorted(set(keys) - set(have))
            self.assertEqual(missing, [], f"{where or 'top level'} lacks {missing}")
        h = body["HostConfig"]
        self.assertEqual(h["DeviceCgroupRules"], None)
        self.assertEqual(h["Isolation"], "")
        self.assertEqual(h["UTSMode"], "")
        self.assertEqual(h["MemorySwappiness"], None)
        self.assertEqual(h["VolumeDriver"], "")
        self.assertIn("/proc/kcore", h["MaskedPaths"])
        self.assertEqual(h["Runtime"], "berth")

    @unittest.skipUnless(os.path.exists("/usr/sbin/runc"), "runc is not installed")
    def test_runc_is_a_runtime_when_installed(self):
        info = self.client.info()
        self.assertIn("runc", info["Runtimes"])
        c = self.run_container(["sh", "-c", "echo via-runc"], runtime="runc")
        self.assertEqual(c.wait()["StatusCode"], 0)
        self.assertEqual(c.logs(), b"via-runc\n")
        self.assertEqual(c.attrs["HostConfig"]["Runtime"], "runc")

    def test_volume_prune_lists_are_empty_not_null(self):
        out = self.client.api.prune_volumes()
        self.assertEqual(out["VolumesDeleted"], [])

    def test_network_create_takes_nulls_and_spaces(self):
        res = self.client.api._post_json(
            self.client.api._url("/networks/create"),
            data={"Name": "my net", "Driver": None, "IPAM": None, "Internal": None,
                  "Options": None, "Labels": None, "EnableIPv6": None})
        # _post_json drops top-level None: send the nulls raw too.
        self.client.api._raise_for_status(res)
        net = self.client.networks.get("my net")
        self.addCleanup(net.remove)
        self.assertEqual(net.name, "my net")
        raw = self.client.api.post(
            self.client.api._url("/networks/create"),
            data='{"Name": "nulls net", "Driver": null, "IPAM": null, "Internal": null,'
                 ' "CheckDuplicate": null, "Options": null, "Labels": null}',
            headers={"Content-Type": "application/json"})
        self.client.api._raise_for_status(raw)
        other = self.client.networks.get("nulls net")
        self.addCleanup(other.remove)
        c = self.run_container(["sleep", "300"], network="my net")
        c.reload()
        self.assertIn("my net", c.attrs["NetworkSettings"]["Networks"])

    def test_create_body_takes_nulls(self):
        raw = self.client.api.post(
            self.client.api._url("/containers/create"),
            data='{"Image": "%s", "Cmd": ["true"], "Hostname": null, "Tty": null, '
                 '"Labels": null, "HostConfig": {"Memory": null, "RestartPolicy": null, '
                 '"LogConfig": null, "Privileged": null}}' % IMAGE,
            headers={"Content-Type": "application/json"})
        self.client.api._raise_for_status(raw)
        cid = raw.json()["Id"]
        self._containers.append(self.client.containers.get(cid))

    def test_load_of_a_non_image_raises_image_load_error(self):
        with self.assertRaises(docker.errors.ImageLoadError):
            self.client.images.load(b"this is not an image archive")

    def test_commit_sets_parent(self):
        base = self.run_container(["sleep", "300"])
        img = base.commit(changes=["ENV A=1"])
        self.addCleanup(self.client.images.remove, img.id, force=True)
        self.assertEqual(img.attrs["Parent"], base.attrs["Image"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
