"""lib/listeners.py: the unix socket's mode, the listen backlog, the open-files limit."""

from __future__ import annotations

import os
import resource
import socket
import stat
from pathlib import Path

from pyclone_docker.lib import listeners


def test_unix_listener_is_born_0660_and_replaces_only_a_stale_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sock")
    first = listeners.unix_listener(path, os.getgid())
    first.close()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket left by a killed run
    stale.close()
    second = listeners.unix_listener(path, os.getgid())
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        second.close()
    assert not os.path.exists(path)
    (tmp_path / "file").write_text("x")
    try:
        listeners.unix_listener(str(tmp_path / "file"), os.getgid())
    except RuntimeError as e:
        assert "not a socket" in str(e)
    else:
        raise AssertionError("a regular file was replaced by the socket")


def test_the_backlog_is_the_kernels_maximum() -> None:
    assert listeners.BACKLOG == socket.SOMAXCONN >= 128


def test_the_open_files_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        listeners.raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
