"""The http backend under faults (issue 14), through tests/support/faultproxy.py in front of a
real nginx: a reset mid-body and 503s are retried, a body that keeps breaking is EIO (never a
short file), a HEAD that fails drops only that entry from the listing (as rclone).
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend, BackendContext, read_full
from tests.support.faultproxy import FaultProxy
from tests.support.webservers import WebServer, web_server

MiB = 1 << 20
DATA = random.Random(5).randbytes(3 * MiB)


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with web_server("nginx", tmp_path_factory.mktemp("web-faults")) as srv:
        (srv.root / "big").write_bytes(DATA)
        (srv.root / "small").write_bytes(b"small")
        for p in srv.root.iterdir():
            os.chmod(p, 0o644)
        yield srv


@pytest.fixture
def proxy(nginx: WebServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", urlsplit(nginx.url).port or 80) as p:
        yield p


def backend(nginx: WebServer, proxy: FaultProxy, retries: int = 5) -> Backend:
    url = proxy.endpoint + urlsplit(nginx.url).path
    return fsmod.new_fs(f":http,url='{url}':", fsmod.FsContext(backend=BackendContext(low_level_retries=retries)))


def read_all(b: Backend, path: str) -> bytes:
    r = b.open_read(path)
    out, buf = bytearray(), bytearray(256 * 1024)
    try:
        while n := read_full(r, memoryview(buf)):
            out += buf[:n]
    finally:
        r.close()
    return bytes(out)


def test_a_reset_mid_body_is_resumed(nginx: WebServer, proxy: FaultProxy) -> None:
    rule = proxy.reset_after(500_000, method="GET", path="/big$", times=2)
    assert read_all(backend(nginx, proxy), "big") == DATA
    assert rule.fired == 2


def test_503_is_retried(nginx: WebServer, proxy: FaultProxy) -> None:
    proxy.status(503, method="GET", times=2)
    proxy.status(503, method="HEAD", times=2)
    b = backend(nginx, proxy)
    assert sorted(e.name for e in b.list("")) == ["big", "small"]
    assert read_all(b, "small") == b"small"


def test_a_body_that_keeps_breaking_is_eio(nginx: WebServer, proxy: FaultProxy) -> None:
    proxy.truncate_after(100_000, method="GET", path="/big$", times=None)
    with pytest.raises(OSError) as e:
        read_all(backend(nginx, proxy, retries=3), "big")
    assert e.value.errno == errno.EIO


def test_a_failing_head_drops_only_that_entry(nginx: WebServer, proxy: FaultProxy) -> None:
    proxy.status(403, method="HEAD", path="/small$", times=None)
    assert [e.name for e in backend(nginx, proxy).list("")] == ["big"]  # rclone: skipped, a debug line
