"""ftp through rclone's socks_proxy (SOCKS5, with a user name and password) and http_proxy
(HTTP CONNECT): a real pyftpdlib, small real proxies (tests/support/proxies.py). Both the
control connection and every data connection go through the proxy, to the server as named.
And --bwlimit on ftp transfers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from tests.support.proxies import PROXY_PASS, PROXY_USER, Proxy
from tests.support.pyftpd import PyFtpServer, pyftpd_server


@pytest.fixture(scope="module")
def srv() -> Iterator[PyFtpServer]:
    yield from pyftpd_server()


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_ftp_through_a_proxy_with_credentials(srv: PyFtpServer, kind: str) -> None:
    proxy = Proxy(kind)
    try:
        where = (f"socks_proxy='{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{proxy.port}'" if kind == "socks5" else
                 f"http_proxy='http://{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{proxy.port}'")
        spec = (f":ftp,host=localhost,port={srv.port},user={srv.user},pass={obscure.obscure(srv.password)},"
                f"{where}:via-{kind}")
        be = fsmod.new_fs(spec, fsmod.FsContext())
        try:
            be.mkdir("")
            w = be.open_write("f.txt", 11)
            w.write(memoryview(b"hello proxy"))
            w.close()
            r = be.open_read("f.txt")
            buf = memoryview(bytearray(64))
            n = r.readinto(buf)
            assert bytes(buf[:n]) == b"hello proxy" and r.readinto(buf) == 0
            r.close()
            assert [e.name for e in be.list("")] == ["f.txt"]
        finally:
            be.shutdown()
        assert f"localhost:{srv.port}" in proxy.targets  # the control connection, to the server as named
        data = [t for t in proxy.targets if t != f"localhost:{srv.port}"]
        assert len(data) >= 3 and all(t.startswith("localhost:") for t in data), proxy.targets  # STOR, RETR, MLSD
        assert set(proxy.auths) == {f"{PROXY_USER}:{PROXY_PASS}"}
    finally:
        proxy.close()


def test_bwlimit_slows_an_ftp_download_and_an_upload(srv: PyFtpServer) -> None:
    """--bwlimit applies to ftp transfers (one process-wide bucket, as rclone's); the lower
    bound on the time taken is the property under test, loosely."""
    import time

    from pyclone_docker.backends.base import BackendContext
    from pyclone_docker.flags import ALL_OPTIONS

    data = b"f" * (400 * 1024)
    spec = f":ftp,host={srv.host},port={srv.port},user={srv.user},pass={obscure.obscure(srv.password)}:bw"

    def backend(table: str):
        # a timetable of this test's own: the buckets are process-wide, one per timetable, and one
        # another test left full would let a burst through
        return fsmod.new_fs(spec, fsmod.FsContext(backend=BackendContext(bwlimit=ALL_OPTIONS["bwlimit"].parse(table))))

    up = backend("190k:off")
    try:
        up.mkdir("")
        start = time.monotonic()
        w = up.open_write("f.bin", len(data))
        w.write(memoryview(data))
        w.close()
        assert time.monotonic() - start >= 1.5  # 400 KiB at 190 KiB/s
    finally:
        up.shutdown()
    down = backend("off:190k")
    try:
        start = time.monotonic()
        r = down.open_read("f.bin")
        got, buf = 0, memoryview(bytearray(64 * 1024))
        while n := r.readinto(buf):
            got += n
        r.close()
        assert got == len(data) and time.monotonic() - start >= 1.5
    finally:
        down.shutdown()
