"""The docker CLI for tests that manage swarm and plugins themselves (no plugin fixture)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {res.stderr or res.stdout}")
    return res


def wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")
