"""The managed (v2) plugin: `make plugin` (Debian rootfs + zipapp + config.json), `docker plugin
create`, enable, a volume used by a container, disable (SIGTERM to the plugin as PID 1 must stop it
well within dockerd's 10 s) and rm. The fixtures remove volumes and the plugin even on failure."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockercli import docker

with warnings.catch_warnings():  # `slow` is not registered in conftest.py: select with -m slow / "not slow"
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NAME = "pyclonetest/pyclone:e2e"
IMAGE = "pyclone-test-bb:latest"
DOCKERD_LOG = Path(os.environ.get("DOCKERD_LOG", "/tmp/dockerd.log"))


def host_arch() -> str:
    bits = struct.calcsize("P") * 8
    machine = os.uname().machine
    return "amd64" if machine == "x86_64" else "arm64" if bits == 64 else "armv7"


def dockerd_log_from(offset: int, plugin_id: str) -> list[str]:
    """The plugin's own output: dockerd logs it at level=error with a plugin=<id> suffix."""
    try:
        with open(DOCKERD_LOG, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if f"plugin={plugin_id}" in line]


def log_size() -> int:
    try:
        return DOCKERD_LOG.stat().st_size
    except OSError:
        return 0


def remove_plugin(name: str) -> None:
    """Volumes of the plugin, then the plugin itself (each step tolerates absence)."""
    if docker("plugin", "inspect", name, check=False).returncode:
        return
    if docker("plugin", "inspect", "-f", "{{.Enabled}}", name, check=False).stdout.strip() == "true":
        for vol in docker("volume", "ls", "-q", "--filter", f"driver={name}", check=False).stdout.split():
            docker("volume", "rm", "-f", vol, check=False)
    docker("plugin", "disable", "-f", name, check=False)
    docker("plugin", "rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def plugin_dir(docker_ready: str) -> Path:
    """build/plugin/pyclone-<arch>, built or reused by `make plugin`."""
    arch = host_arch()
    out = REPO / "build" / "plugin" / f"pyclone-{arch}"
    res = subprocess.run(["make", "-C", str(REPO), "plugin", f"PLUGIN_ARCH={arch}"],
                         capture_output=True, text=True, timeout=1800, check=False)
    if res.returncode:
        pytest.fail(f"make plugin failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}", pytrace=False)
    pyz = out / "rootfs" / "pyclone-docker.pyz"
    assert (out / "config.json").is_file() and pyz.is_file()
    assert pyz.read_bytes() == (REPO / "dist" / f"pyclone-docker-{arch}.pyz").read_bytes()
    return out


@pytest.fixture
def host_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """The plugin's config and cache sources: they must exist before `docker plugin enable`."""
    config, cache = tmp_path / "config", tmp_path / "cache"
    config.mkdir()
    cache.mkdir()
    (config / "rclone.conf").touch()
    return config, cache


@pytest.fixture
def managed_plugin(plugin_dir: Path, host_dirs: tuple[Path, Path]) -> Iterator[str]:
    """`docker plugin create`d (disabled) with config/cache pointed at the test's dirs; the plugin id."""
    remove_plugin(NAME)  # a leftover of an interrupted run
    docker("plugin", "create", NAME, str(plugin_dir))
    plugin_id = ""
    try:
        plugin_id = docker("plugin", "inspect", "-f", "{{.Id}}", NAME).stdout.strip()
        config, cache = host_dirs
        docker("plugin", "set", NAME, f"config.source={config}", f"cache.source={cache}")
        yield plugin_id
    finally:
        remove_plugin(NAME)
        propagated = Path("/var/lib/docker/plugins") / plugin_id / "propagated-mount"
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            left = [line.split()[4] for line in f if plugin_id and f"/{plugin_id}/" in line.split()[4]]
        assert not left, f"mounts of the plugin left behind: {left}"
        assert not plugin_id or not propagated.exists(), f"{propagated} left behind"


def test_managed_plugin_lifecycle(managed_plugin: str, host_dirs: tuple[Path, Path]) -> None:
    plugin_id = managed_plugin
    _config, cache = host_dirs
    vol = f"pycmanaged{os.getpid()}"
    # PYCLONE_VERBOSE=2 must give DEBUG lines; args must not be empty (moby bug), so a no-op flag
    docker("plugin", "set", NAME, "PYCLONE_VERBOSE=2", "args=--vfs-cache-mode=off")
    log_start = log_size()

    t0 = time.monotonic()
    docker("plugin", "enable", "--timeout", "60", NAME)
    enable_s = time.monotonic() - t0
    sock = Path("/run/docker/plugins") / plugin_id / "pyclone.sock"
    assert sock.is_socket(), f"{sock} missing after enable"

    docker("volume", "create", "-d", NAME, "-o", "type=local", "-o", "path=/data/cache/vol1data", vol)
    info = docker("volume", "inspect", "-f", "{{.Driver}} {{.Mountpoint}}", vol).stdout.split()
    assert info[0] == NAME
    out = docker("run", "--rm", "-v", f"{vol}:/data", IMAGE, "sh", "-c", "echo hi > /data/f; cat /data/f")
    assert out.stdout.strip() == "hi"
    assert (cache / "vol1data" / "f").read_text() == "hi\n"  # written through the plugin's FUSE mount
    assert (cache / "docker-plugin.state").exists()
    docker("volume", "rm", vol)

    t0 = time.monotonic()
    docker("plugin", "disable", NAME)
    disable_s = time.monotonic() - t0
    lines = dockerd_log_from(log_start, plugin_id)
    print(f"\nmanaged plugin: enable {enable_s:.2f}s, disable {disable_s:.2f}s, "
          f"{len(lines)} log lines, volume mountpoint {info[1]}")
    assert disable_s < 10, f"disable took {disable_s:.1f}s: SIGTERM as PID 1 not handled?\n" + "\n".join(lines[-30:])
    if DOCKERD_LOG.exists():
        assert any(re.search(r"DEBUG\s*:", line) for line in lines), (
            "PYCLONE_VERBOSE=2 gave no DEBUG output:\n" + "\n".join(lines[-30:]))
        assert any("signal received: SIGTERM" in line for line in lines), "\n".join(lines[-30:])
    docker("plugin", "rm", NAME)
    assert docker("plugin", "inspect", NAME, check=False).returncode != 0
