"""The http backend behind a redirecting front (every request answered with a 307 to a real
nginx with autoindex): listings, HEADs and ranged reads follow the redirects as rclone 1.75.2's do,
and a name that nginx sends on to its index page (http://host/dir to /dir/) is a directory."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend, read_full
from tests import rclone_ref
from tests.integration.test_httpclient_support import Server, reply
from tests.support.rclonecli import RcloneCli
from tests.support.webservers import WebServer, web_server


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with web_server("nginx", tmp_path_factory.mktemp("web-redirects")) as srv:
        (srv.root / "sub").mkdir()
        (srv.root / "sub/inner.txt").write_bytes(b"inner")
        (srv.root / "file.txt").write_bytes(b"0123456789")
        for p in (srv.root / "sub", srv.root / "sub/inner.txt", srv.root / "file.txt"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        yield srv


@pytest.fixture
def front(nginx: WebServer) -> Iterator[Server]:
    origin = nginx.url.split("/", 3)
    srv = Server(lambda h, seen, n: reply(h, 307, b"", {"Location": "/".join(origin[:3]) + seen.path}))
    try:
        yield srv
    finally:
        srv.close()


def _url(front: Server, nginx: WebServer) -> str:
    return front.url + "/" + nginx.url.split("/", 3)[3]  # the front, with nginx's path


def _backend(front: Server, nginx: WebServer) -> Backend:
    return fsmod.new_fs(f":http,url='{_url(front, nginx)}':", fsmod.FsContext())


def test_listing_heads_and_reads_follow_redirects(front: Server, nginx: WebServer, tmp_path) -> None:
    be = _backend(front, nginx)
    try:
        got = {e.name: (e.is_dir, e.size) for e in be.list("")}
        assert got == {"sub": (True, 0), "file.txt": (False, 10)}, got
        assert be.stat("file.txt").size == 10
        r = be.open_read("file.txt", 3, 4)
        buf = memoryview(bytearray(16))
        n = read_full(r, buf)
        r.close()
        assert bytes(buf[:n]) == b"3456"
        assert be.stat("sub").is_dir  # HEAD sub: 307, then nginx's 301 to sub/: a directory
        with pytest.raises(OSError) as err:
            be.open_read("sub")
        assert err.value.errno == errno.EISDIR
        assert [e.name for e in be.list("sub")] == ["inner.txt"]
        assert {s.method for s in front.stats.requests} == {"GET", "HEAD"}
    finally:
        be.shutdown()
    rc = RcloneCli(rclone_ref.require(), tmp_path, remote=lambda p: f":http,url='{_url(front, nginx)}':{p}")
    assert rc.run("cat", rc.remote("file.txt")).stdout == b"0123456789"
    assert sorted(rc.run("lsf", rc.remote("")).stdout.split()) == [b"file.txt", b"sub/"]
