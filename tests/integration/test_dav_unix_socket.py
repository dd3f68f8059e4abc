"""webdav over a unix domain socket (rclone's `unix_socket`), on rclone 1.75.2's own `serve
webdav --addr unix://...` with basic auth: our backend writes, lists, reads and renames through
the socket, and rclone's client (`--webdav-unix-socket`) reads what we wrote."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import BackendContext
from tests import rclone_ref
from tests.support.davservers import PASSWORD, USER, stop_child


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Path, Path]]:
    """(the socket, the directory it serves)."""
    d = Path(tempfile.mkdtemp(prefix="pyc-davsock-", dir="/tmp"))
    sock, root = d / "dav.sock", d / "root"
    root.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d), "RCLONE_CONFIG": "/dev/null",
           "RCLONE_PASS": PASSWORD}
    proc = subprocess.Popen([rclone_ref.require(), "serve", "webdav", "--addr", f"unix://{sock}", "--user", USER,
                             str(root)], stdout=subprocess.DEVNULL, stderr=open(d / "rclone.log", "wb"), env=env)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (d / "rclone.log").read_text()
            time.sleep(0.05)
        yield sock, root
    finally:
        stop_child(proc)
        subprocess.run(["rm", "-rf", str(d)], check=False)


def test_a_volume_over_a_unix_socket(served: tuple[Path, Path]) -> None:
    sock, root = served
    spec = (f":webdav,url='http://localhost/',vendor=rclone,user={USER},pass={obscure.obscure(PASSWORD)},"
            f"unix_socket='{sock}':vol")
    be = fsmod.new_fs(spec, fsmod.FsContext())
    try:
        be.mkdir("")
        w = be.open_write("d/f.txt", 13, 1_600_000_000 * 10**9)
        w.write(memoryview(b"over a socket"))
        w.close()
        assert [e.name for e in be.list("d")] == ["f.txt"]
        r = be.open_read("d/f.txt", 5)
        buf = memoryview(bytearray(64))
        n = r.readinto(buf)
        r.close()
        assert bytes(buf[:n]) == b"a socket"
        be.move("d/f.txt", "d/g.txt")
        assert (root / "vol/d/g.txt").read_bytes() == b"over a socket"
        assert be.stat("d/g.txt").mtime_ns == 1_600_000_000 * 10**9
    finally:
        be.shutdown()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "RCLONE_CONFIG": "/dev/null",
           "RCLONE_WEBDAV_PASS": obscure.obscure(PASSWORD)}
    out = subprocess.run([rclone_ref.require(), "cat", "--webdav-unix-socket", str(sock), "--webdav-url",
                          "http://localhost/", "--webdav-user", USER, ":webdav:vol/d/g.txt"], env=env,
                         capture_output=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout == b"over a socket", out.stderr


def test_a_missing_socket_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sock"
    be = fsmod.new_fs(f":webdav,url='http://localhost/',unix_socket='{missing}':x",
                      fsmod.FsContext(backend=BackendContext(low_level_retries=1)))
    try:
        with pytest.raises(OSError) as info:
            be.list("")
        assert str(missing) in str(info.value), info.value
    finally:
        be.shutdown()
