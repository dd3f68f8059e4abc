"""The shipped systemd units: systemd-analyze verify, and the settings that matter."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify(tmp_path: Path) -> None:
    for unit in UNITS.iterdir():
        shutil.copy(unit, tmp_path / unit.name)
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
                         capture_output=True, text=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    assert res.returncode == 0, res.stderr
    assert "pyclone-docker" not in res.stderr, res.stderr  # no warnings about our units


def read(name: str) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(strict=False)
    cp.optionxform = str  # keys are case sensitive
    cp.read(UNITS / name)
    return cp


def test_socket_is_0660_and_before_docker() -> None:
    sock = read("pyclone-docker.socket")
    assert sock["Socket"]["ListenStream"] == "/run/docker/plugins/pyclone.sock"
    assert sock["Socket"]["SocketMode"] == "0660"
    assert "docker.service" in sock["Unit"]["Before"]


def test_service_is_notify_and_stops_cleanly() -> None:
    svc = read("pyclone-docker.service")["Service"]
    assert svc["Type"] == "notify"
    assert "serve docker" in svc["ExecStart"]
    assert svc["KillMode"] == "mixed"
