"""Restart policies are validated as dockerd 20.10 does: a retry count only goes with
on-failure."""

import unittest

import docker

from sdkcommon import SdkTest


class RestartPolicy(SdkTest):
    def assert_refused(self, name, count, create=True):
        with self.assertRaises(docker.errors.APIError) as cm:
            policy = {"Name": name, "MaximumRetryCount": count}
            if create:
                self.create_container("true", restart_policy=policy)
            else:
                c = self.create_container("true")
                c.update(restart_policy=policy)
        self.assertEqual(cm.exception.status_code, 400)
        return str(cm.exception.explanation)

    def test_always_with_retry_count(self):
        msg = self.assert_refused("always", 3)
        self.assertIn("maximum retry count cannot be used with restart policy 'always'", msg)

    def test_unless_stopped_with_retry_count(self):
        msg = self.assert_refused("unless-stopped", 1)
        self.assertIn(
            "maximum retry count cannot be used with restart policy 'unless-stopped'", msg
        )

    def test_update_always_with_retry_count(self):
        msg = self.assert_refused("always", 2, create=False)
        self.assertIn("maximum retry count cannot be used with restart policy 'always'", msg)

    def test_negative_retry_count(self):
        msg = self.assert_refused("on-failure", -1)
        self.assertIn("maximum retry count cannot be negative", msg)

    def test_valid_policies(self):
        for name, count in [("on-failure", 3), ("always", 0), ("unless-stopped", 0), ("no", 0)]:
            c = self.create_container(
                "true", restart_policy={"Name": name, "MaximumRetryCount": count}
            )
            c.reload()
            self.assertEqual(c.attrs["HostConfig"]["RestartPolicy"]["Name"], name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
