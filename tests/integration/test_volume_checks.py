"""Through the socket: impossible paths refused at Create, flags without effect said loudly."""

from __future__ import annotations

import time
from pathlib import Path

from .conftest import Plugin

NO_EFFECT = "no effect yet in pyclone-docker"


def _log_lines(p: Plugin, fragment: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in p.log_text().splitlines() if fragment in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_nul_and_absurd_paths_are_refused_at_create(plugin: Plugin, data_dir: Path) -> None:
    c = plugin.client
    for opts, fragment in (
        ({"type": "local", "path": f"{data_dir}/a\0b"}, 'option "path" contains a NUL byte'),
        ({"remote": f"{data_dir}/a\0b"}, 'option "remote" contains a NUL byte'),
        ({"type": "local", "path": "/" + "x" * 100_000}, 'option "path" is too long'),
        ({"remote": f"{data_dir}/" + "y" * 300}, "a local path component is at most 255 bytes"),
        ({"type": "local", "path": "/" + "z/" * 3000}, "a local path is at most 4095 bytes"),
    ):
        err = c.err("VolumeDriver.Create", {"Name": "bad", "Opts": opts})
        assert fragment in err, (opts, err)
    assert c.ok("VolumeDriver.List")["Volumes"] == []


def test_flags_without_effect_warn_at_start_and_at_create(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory(["--vfs-refresh", "--retries", "5", "--vfs-cache-mode", "writes"])
    start = _log_lines(p, NO_EFFECT)
    assert len(start) == 1 and "NOTICE" in start[0], start  # rclone's word for a warning
    assert "--vfs-refresh, --retries have no effect yet" in start[0]
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "v", "Opts": {"type": "local", "path": str(data_dir),
                                                       "vfs-links": "true", "local-links": "true"}})
    lines = _log_lines(p, 'volume "v": ')
    warned = [line for line in lines if NO_EFFECT in line]
    assert len(warned) == 1 and "NOTICE" in warned[0], lines
    assert '"v": --vfs-refresh, --vfs-links, --local-links have no effect yet' in warned[0]


def test_working_flags_do_not_warn(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory(["--vfs-cache-mode", "full", "--dir-cache-time", "1m", "--attr-timeout", "2s"])
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "w", "Opts": {"type": "local", "path": str(data_dir),
                                                       "read-only": "true", "local-copy-links": "true",
                                                       "vfs-refresh": "false"}})
    assert _log_lines(p, 'create volume "w"')  # the create is in the log by now
    assert NO_EFFECT not in p.log_text()
