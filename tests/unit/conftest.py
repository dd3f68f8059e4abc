"""Unit-test setup: the `rclone` marker for cross-checks against the real rclone binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

import pytest

RCLONE = shutil.which("rclone")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rclone: cross-checks against the real rclone binary (skipped without it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if RCLONE:
        return
    skip = pytest.mark.skip(reason="rclone binary not installed")
    for item in items:
        if "rclone" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def run_rclone(tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """Run rclone with a clean environment: no user config, no stray RCLONE_* variables."""
    assert RCLONE is not None

    def run(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None,
            binary: bool = False) -> subprocess.CompletedProcess:
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
        if "TZ" in os.environ:  # local time must agree with this process
            clean["TZ"] = os.environ["TZ"]
        clean.update(env or {})
        return subprocess.run([RCLONE, *args], env=clean, input=stdin, capture_output=True,
                              text=not binary, timeout=60, check=False)

    return run
