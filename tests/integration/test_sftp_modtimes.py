"""Modification times over sftp set right after the last close: in cache mode off an empty
file is uploaded at FUSE's RELEASE, which arrives after close(2) has returned, so a utime(2)
straight after it used to race the upload (and lose, ~14 times in 20 here; rclone 1.75.2's
mount loses ~4 in 20)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.conftest import Plugin
from tests.integration.test_sftp_faults import mounted, server_dir, srv, volume_opts  # noqa: F401
from tests.support.sshd import SshServer

T = 1_600_000_000


@pytest.mark.parametrize("mode", ["off", "writes"])
def test_a_time_set_right_after_close_is_kept(plugin: Plugin, srv: SshServer, mode: str) -> None:  # noqa: F811
    d = server_dir(srv, f"mtimes-{mode}")
    with mounted(plugin, f"mt{mode}", volume_opts(srv, d, mode)) as mp:
        for i in range(20):
            f = mp / f"e{i}"
            with open(f, "wb"):
                pass
            os.utime(f, ns=(T * 10**9, T * 10**9))
            assert int(f.stat().st_mtime) == T, i  # what the mount shows at once
    # after the Unmount (which waits for uploads): every one on the server with that time
    for i in range(20):
        assert int(Path(d, f"e{i}").stat().st_mtime) == T, i
