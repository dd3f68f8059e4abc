"""ftp faults (issue 14): a download the server aborts mid-body is resumed where it broke, one
that keeps breaking is EIO and never a short file, a dropped control connection or a restarted
server is reconnected, and an upload cut by a server that went away is sent again by the
write-back. A wrong password is a clear error that shows no password.

Real parts: pyftpdlib (its test-only fault file aborts the next RETRs after N bytes with 426),
the TCP proxy of tests/support/tcpproxy.py in front of its control connection, the plugin as
a subprocess with FUSE mounts.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import BackendContext
from tests.support.pyftpd import PyFtpServer, pyftpd_server
from tests.support.tcpproxy import DelayProxy

from .conftest import Plugin
from .test_ftp_interop import ftp_opts, mount, unmount

MiB = 1 << 20


@pytest.fixture(scope="module")
def srv() -> Iterator[PyFtpServer]:
    yield from pyftpd_server()


@pytest.fixture
def payload(srv: PyFtpServer, request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """A 3 MiB file on the server's disk, in a directory of this test's own."""
    d = request.node.name.replace("[", "-").rstrip("]")
    os.makedirs(os.path.join(srv.root_dir, d), exist_ok=True)
    data = random.Random(d).randbytes(3 * MiB)
    Path(srv.root_dir, d, "f.bin").write_bytes(data)
    yield d, data
    srv.cut_downloads(0, 0)


def backend(srv: PyFtpServer, root: str, port: int | None = None, retries: int = 10):
    spec = (f":ftp,host={srv.host},port={port or srv.port},user={srv.user},"
            f"pass={obscure.obscure(srv.password)}:{root}")
    return fsmod.new_fs(spec, fsmod.FsContext(backend=BackendContext(low_level_retries=retries)))


def read_all(reader) -> bytes:
    out = bytearray()
    buf = memoryview(bytearray(256 * 1024))
    while n := reader.readinto(buf):
        out += buf[:n]
    return bytes(out)


def test_a_download_cut_mid_body_is_resumed_where_it_broke(srv: PyFtpServer, payload: tuple[str, bytes]) -> None:
    d, data = payload
    be = backend(srv, d)
    try:
        srv.cut_downloads(after=MiB + 17, count=2)
        r = be.open_read("f.bin")
        try:
            assert read_all(r) == data
        finally:
            r.close()
        assert srv.cuts_left() == 0  # both cuts happened, and each was resumed
        assert [e.name for e in be.list("")] == ["f.bin"]  # the connections are still good
    finally:
        be.shutdown()


def test_a_download_that_keeps_breaking_is_eio_never_a_short_file(srv: PyFtpServer,
                                                                  payload: tuple[str, bytes]) -> None:
    d, data = payload
    be = backend(srv, d, retries=3)
    try:
        srv.cut_downloads(after=MiB // 2, count=100)  # three tries: 1.5 of the 3 MiB
        r = be.open_read("f.bin")
        got = bytearray()
        buf = memoryview(bytearray(64 * 1024))
        with pytest.raises(OSError) as info:
            while n := r.readinto(buf):
                got += buf[:n]
        r.close()
        assert info.value.errno == errno.EIO and "cut at byte" in str(info.value)
        assert bytes(got) == data[:len(got)] and len(got) < len(data)  # what came is right, and it is not all
    finally:
        be.shutdown()


@pytest.mark.parametrize("mode", ["off", "full"])
def test_through_the_mount_a_cut_download_reads_right_or_eio(plugin: Plugin, srv: PyFtpServer,
                                                            payload: tuple[str, bytes], mode: str) -> None:
    d, data = payload
    name = f"cut-{mode}"
    mp = mount(plugin, name, ftp_opts(srv, d, **{"vfs-cache-mode": mode, "dir-cache-time": "0s"}))
    try:
        srv.cut_downloads(after=MiB // 2, count=3)
        assert (mp / "f.bin").read_bytes() == data  # each cut resumed
        Path(srv.root_dir, d, "g.bin").write_bytes(data)  # a file nothing has read yet
        # now every download breaks after 64 KiB: --low-level-retries (10) tries get 640 KiB of 3 MiB
        srv.cut_downloads(after=64 * 1024, count=1000)
        try:
            got = (mp / "g.bin").read_bytes()
        except OSError as e:
            assert e.errno == errno.EIO, e
        else:
            pytest.fail(f"a read that can't be served gave {len(got)} bytes "
                        f"({'the right ones' if got == data else 'wrong ones'}) instead of EIO")
    finally:
        srv.cut_downloads(0, 0)
        unmount(plugin, name)


def test_a_dropped_control_connection_is_replaced(srv: PyFtpServer, payload: tuple[str, bytes]) -> None:
    d, _ = payload
    with DelayProxy(srv.host, srv.port) as proxy:
        be = backend(srv, d, port=proxy.port)
        try:
            assert [e.name for e in be.list("")] == ["f.bin"]
            before = proxy.connections_accepted
            proxy.reset_all()
            assert [e.name for e in be.list("")] == ["f.bin"]  # reconnected and retried
            w = be.open_write("new.bin", 5)
            w.write(memoryview(b"hello"))
            w.close()
            proxy.reset_all()
            r = be.open_read("new.bin")
            assert read_all(r) == b"hello"
            r.close()
            assert proxy.connections_accepted > before
        finally:
            be.shutdown()


def test_a_restarted_server_is_reconnected(plugin: Plugin, srv: PyFtpServer, payload: tuple[str, bytes]) -> None:
    d, data = payload
    mp = mount(plugin, "restart", ftp_opts(srv, d, **{"vfs-cache-mode": "off", "dir-cache-time": "0s"}))
    try:
        assert os.listdir(mp) == ["f.bin"]
        srv.restart()
        assert os.listdir(mp) == ["f.bin"]
        assert (mp / "f.bin").read_bytes() == data
        (mp / "after.txt").write_bytes(b"after the restart")
        assert Path(srv.root_dir, d, "after.txt").read_bytes() == b"after the restart"
    finally:
        unmount(plugin, "restart")


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_an_upload_cut_by_the_server_going_away_is_sent_again(plugin: Plugin, srv: PyFtpServer, mode: str) -> None:
    d = f"upload-{mode}"
    data = random.Random(d).randbytes(40 * MiB)
    name = f"up-{mode}"
    mp = mount(plugin, name, ftp_opts(srv, d, **{"vfs-cache-mode": mode, "vfs-write-back": "0s"}))
    try:
        with open(mp / "big.bin", "wb") as f:
            f.write(data)
        target = Path(srv.root_dir, d)

        def partial_started() -> bool:
            return target.is_dir() and any(p.name.endswith(".partial") and p.stat().st_size > 0
                                           for p in target.iterdir())

        deadline = time.monotonic() + 30
        while not partial_started() and time.monotonic() < deadline:
            time.sleep(0.005)
        srv.stop()  # mid-upload: the data and control connections die with the server
        t = threading.Timer(1.0, srv.start)
        t.start()
        t.join()
    finally:
        unmount(plugin, name)  # waits for the write-back, which sends the file again
    assert Path(srv.root_dir, d, "big.bin").read_bytes() == data
    log = plugin.log.read_text()
    assert "upload of big.bin failed" in log and "will retry upload of big.bin" in log, "the upload was not cut"
    leftovers = [p.name for p in Path(srv.root_dir, d).iterdir() if p.name != "big.bin"]
    assert not leftovers, leftovers


def test_a_wrong_password_is_a_clear_error_that_shows_no_password(plugin: Plugin, srv: PyFtpServer) -> None:
    secret = "not-the-password-" + os.urandom(4).hex()
    opts = ftp_opts(srv, "x") | {"ftp-pass": obscure.obscure(secret)}
    err = plugin.client.err("VolumeDriver.Create", {"Name": "badpass", "Opts": opts})
    assert "login refused" in err and "530" in err, err
    assert secret not in err and obscure.obscure(secret) not in err
    assert secret not in plugin.log.read_text() and srv.password not in plugin.log.read_text()
