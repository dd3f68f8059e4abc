"""The managed (v2) plugin: built from Debian packages and the zipapp, created, enabled, used by a
container, disabled (SIGTERM as PID 1 must stop it quickly) and removed."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from dockercli import docker

REPO = Path(__file__).resolve().parents[2]
NAME = "pyclonetest/pyclone:e2e"
IMAGE = "pyclone-test-bb:latest"


@pytest.fixture
def plugin_dir(docker_ready) -> Path:
    out = REPO / "build" / "plugin" / "pyclone-amd64"
    pyz = REPO / "dist" / "pyclone-docker-amd64.pyz"
    if not pyz.exists():
        subprocess.run(["python3", str(REPO / "build_zipapp.py"), "--arch", "amd64"], check=True, cwd=REPO)
    if not (out / "config.json").exists() or (out / "rootfs/pyclone-docker.pyz").read_bytes() != pyz.read_bytes():
        subprocess.run(["bash", str(REPO / "tools" / "build_plugin.sh"), "amd64"], check=True, cwd=REPO,
                       capture_output=True, timeout=1200)
    return out


@pytest.mark.docker
def test_managed_plugin_lifecycle(plugin_dir: Path, tmp_path: Path) -> None:
    config, cache = tmp_path / "config", tmp_path / "cache"
    config.mkdir()
    cache.mkdir()
    docker("plugin", "rm", "-f", NAME, check=False)
    docker("plugin", "create", NAME, str(plugin_dir))
    vol = f"pycmanaged{os.getpid()}"
    try:
        docker("plugin", "set", NAME, f"config.source={config}", f"cache.source={cache}", "args=-v")
        t0 = time.monotonic()
        docker("plugin", "enable", "--timeout", "60", NAME)
        enable_s = time.monotonic() - t0
        docker("volume", "create", "-d", NAME, "-o", "type=local", "-o", "path=/data/cache/vol1data", vol)
        out = docker("run", "--rm", "-v", f"{vol}:/data", IMAGE, "sh", "-c", "echo hi > /data/f; cat /data/f")
        assert out.stdout.strip() == "hi"
        assert (cache / "vol1data" / "f").read_text() == "hi\n"  # it went through the plugin's mount
        assert (cache / "docker-plugin.state").exists()
        docker("volume", "rm", vol)
        t0 = time.monotonic()
        docker("plugin", "disable", NAME)
        disable_s = time.monotonic() - t0
        print(f"enable {enable_s:.1f}s, disable {disable_s:.1f}s")
        assert disable_s < 10, f"disable took {disable_s:.1f}s: SIGTERM as PID 1 not handled?"
    finally:
        docker("volume", "rm", "-f", vol, check=False)
        docker("plugin", "disable", "-f", NAME, check=False)
        docker("plugin", "rm", "-f", NAME, check=False)
