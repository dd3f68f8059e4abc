"""Data integrity with fio --verify=crc32c through real mounts, per cache mode.

Mode off is left out on purpose: fio lays its file out and reopens it O_RDWR without
O_TRUNC, which rclone's mode off refuses (EPERM) and so do we; tests/integration/test_api.py
checks off-mode data integrity with sequential writes and reads instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Plugin

pytestmark = pytest.mark.skipif(shutil.which("fio") is None, reason="fio not installed")


@pytest.mark.parametrize("mode, rw", [("minimal", "randwrite"), ("writes", "randwrite"), ("full", "randrw")])
def test_fio_verify(plugin: Plugin, data_dir: Path, tmp_path: Path, mode: str, rw: str) -> None:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": mode, "Opts": {"type": "local", "path": str(data_dir),
                                                        "vfs-cache-mode": mode}})
    mp = c.ok("VolumeDriver.Mount", {"Name": mode, "ID": "t"})["Mountpoint"]
    try:
        res = subprocess.run(["fio", "--name=verify", f"--directory={mp}", "--size=32M", "--bs=16k",
                              "--ioengine=psync", f"--rw={rw}", "--verify=crc32c", "--do_verify=1",
                              "--verify_fatal=1", "--verify_state_save=0", "--randrepeat=1", "--numjobs=2",
                              "--group_reporting"],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fio writes into its cwd
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert "verify" in res.stdout and "err=" not in res.stdout.replace("err= 0", "")
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": mode, "ID": "t"})
    files = sorted(data_dir.glob("verify.*"))
    assert len(files) == 2 and all(f.stat().st_size == 32 << 20 for f in files)  # uploaded whole
    assert not list(Path.cwd().glob("*-verify.state"))  # nothing left where the tests were started
