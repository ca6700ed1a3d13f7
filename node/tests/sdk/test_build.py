"""Builds through the SDK: a RUN step's stderr is in the output stream beside its stdout; a
failed RUN's `errorDetail` carries its exit code as dockerd's (`code`); `cache_from` naming
only images that do not exist means no cache hits at all."""

import io
import json
import tarfile
import unittest
import uuid

from sdkcommon import IMAGE, SdkTest


def context(dockerfile):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class Build(SdkTest):
    def build(self, dockerfile, **kw):
        """The decoded messages of a build's output stream."""
        tag = f"sdk-build-{uuid.uuid4().hex[:8]}"
        out = list(self.client.api.build(fileobj=context(dockerfile), custom_context=True,
                                         tag=tag, decode=True, rm=True, **kw))
        if not any("error" in m for m in out):
            self.addCleanup(self.client.images.remove, tag, force=True)
        return out

    def streamed(self, msgs):
        return "".join(m.get("stream", "") for m in msgs)

    def test_run_stderr_is_in_the_stream(self):
        msgs = self.build(f"FROM {IMAGE}\nRUN echo to-out; echo to-err >&2\n")
        text = self.streamed(msgs)
        self.assertIn("to-out", text)
        self.assertIn("to-err", text)

    def test_failed_run_error_detail_has_the_code(self):
        msgs = self.build(f"FROM {IMAGE}\nRUN exit 3\n")
        err = [m for m in msgs if "errorDetail" in m]
        self.assertEqual(len(err), 1, msgs)
        self.assertEqual(err[0]["errorDetail"]["code"], 3)
        self.assertIn("returned a non-zero code: 3", err[0]["errorDetail"]["message"])
        self.assertEqual(err[0]["error"], err[0]["errorDetail"]["message"])

    def test_cache_from_a_missing_image_means_no_cache(self):
        df = f"FROM {IMAGE}\nRUN echo {uuid.uuid4().hex} > /stamp\n"
        self.build(df)
        again = self.streamed(self.build(df))
        self.assertIn("Using cache", again)
        missing = f"no-such-image-{uuid.uuid4().hex[:8]}:latest"
        text = self.streamed(self.build(df, cache_from=[missing]))
        self.assertNotIn("Using cache", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
