"""`rclone serve s3` (the reference rclone 1.75.2) as a second real S3 server for tests: it
checks SigV4 signatures, which moto does not, and stores objects as files under a directory
(a bucket is a top-level directory), so what a client wrote can be read on disk.

    with RcloneS3(root_dir) as srv:       # srv.endpoint, srv.access_key_id, srv.secret_access_key
        srv.make_bucket("b")

The key pair is made up for the test (it is in the child's argv: rclone takes --auth-key there).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests import rclone_ref

ACCESS_KEY_ID = "PYCLONERCLONES3TEST1"
SECRET_ACCESS_KEY = "pyclone-rclone-serve-s3-test-secret-0000"


class RcloneS3:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.access_key_id, self.secret_access_key = ACCESS_KEY_ID, SECRET_ACCESS_KEY
        self.port = 0
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RcloneS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        binary = rclone_ref.require()
        self.root.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root.parent),
               "RCLONE_CONFIG": "/dev/null"}
        log = open(self.root.parent / f"rclone-serve-s3-{self.port}.log", "wb")
        self._child = subprocess.Popen(
            [binary, "serve", "s3", "--addr", f"127.0.0.1:{self.port}", "--auth-key",
             f"{self.access_key_id},{self.secret_access_key}", str(self.root)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self._child.poll() is not None:
                    break
                time.sleep(0.05)
        self.close()
        raise RuntimeError("rclone serve s3 did not start")

    def make_bucket(self, name: str) -> str:
        (self.root / name).mkdir(exist_ok=True)
        return name

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def rclone_s3_server(tmp: Path) -> Iterator[RcloneS3]:
    """A session fixture's body: skips (fails under PYCLONE_REQUIRE_RCLONE=1) where rclone
    1.75.2 is not installed."""
    rclone_ref.require()
    with RcloneS3(tmp / "root") as srv:
        yield srv
