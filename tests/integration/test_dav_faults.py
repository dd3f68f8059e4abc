"""webdav under faults (issue 14), through tests/support/faultproxy.py in front of a real Apache
mod_dav: resets mid-body and 5xx / 423 answers are retried, a body that keeps breaking is EIO
(never a short file), and no password shows in an error or the log.
"""

from __future__ import annotations

import errno
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend, BackendContext, read_full
from tests.support.davservers import DavServer, dav_server
from tests.support.faultproxy import FaultProxy

MiB = 1 << 20


@pytest.fixture(scope="module")
def apache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with dav_server("apache", tmp_path_factory.mktemp("dav-faults")) as srv:
        yield srv


@pytest.fixture
def proxy(apache: DavServer) -> Iterator[FaultProxy]:
    u = urlsplit(apache.url)
    with FaultProxy("127.0.0.1", u.port or 80) as p:
        yield p


def backend(apache: DavServer, proxy: FaultProxy, retries: int = 5) -> Backend:
    url = proxy.endpoint + urlsplit(apache.url).path
    ctx = fsmod.FsContext(backend=BackendContext(low_level_retries=retries))
    return fsmod.new_fs(f":webdav,url='{url}',user={apache.user},pass={obscure.obscure(apache.password)}:",
                        ctx)


def body(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def read_all(b: Backend, path: str) -> bytes:
    r = b.open_read(path)
    out = bytearray()
    buf = bytearray(256 * 1024)
    try:
        while n := read_full(r, memoryview(buf)):
            out += buf[:n]
    finally:
        r.close()
    return bytes(out)


def test_a_reset_mid_body_is_resumed_where_it_broke(apache: DavServer, proxy: FaultProxy) -> None:
    data = body(3 * MiB)
    (apache.root / "big").write_bytes(data)
    b = backend(apache, proxy)
    rule = proxy.reset_after(700_000, method="GET", times=2)
    assert read_all(b, "big") == data
    assert rule.fired == 2
    gets = [r for r in proxy.requests if r.method == "GET"]
    assert len(gets) == 3  # the first, then two resumes (ranged, from where the bytes stopped)


def test_a_body_that_keeps_breaking_is_eio_never_a_short_file(apache: DavServer, proxy: FaultProxy) -> None:
    (apache.root / "cut").write_bytes(body(2 * MiB, 2))
    b = backend(apache, proxy, retries=3)
    proxy.truncate_after(100_000, method="GET", times=None)
    with pytest.raises(OSError) as e:
        read_all(b, "cut")
    assert e.value.errno == errno.EIO
    assert proxy.count("GET") == 3  # --low-level-retries opens in all


@pytest.mark.parametrize("code", [503, 500, 423])
def test_5xx_and_locked_are_retried(apache: DavServer, proxy: FaultProxy, code: int) -> None:
    b = backend(apache, proxy)
    proxy.status(code, method="PROPFIND", times=2)
    proxy.status(code, method="PUT", times=1)
    w = b.open_write(f"f{code}", 5)
    w.write(memoryview(b"hello"))
    w.close()
    assert (apache.root / f"f{code}").read_bytes() == b"hello"
    assert [e.name for e in b.list("")].count(f"f{code}") == 1


def test_a_failed_upload_is_an_error_and_no_password_shows(apache: DavServer, proxy: FaultProxy,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    b = backend(apache, proxy, retries=2)
    proxy.status(507, method="PUT", times=None)  # Insufficient Storage, every time
    with caplog.at_level(logging.DEBUG, logger="pyclone"):
        w = b.open_write("full", 3)
        w.write(memoryview(b"abc"))
        with pytest.raises(OSError) as e:
            w.close()
    assert e.value.errno == errno.ENOSPC
    assert not (apache.root / "full").exists()
    assert apache.password not in str(e.value) and apache.password not in caplog.text
    assert obscure.obscure(apache.password) not in caplog.text


def test_wrong_password_is_eacces(apache: DavServer, proxy: FaultProxy) -> None:
    url = proxy.endpoint + urlsplit(apache.url).path
    b = fsmod.new_fs(f":webdav,url='{url}',user={apache.user},pass={obscure.obscure('wrong')}:", fsmod.FsContext())
    with pytest.raises(OSError) as e:
        b.list("")
    assert e.value.errno == errno.EACCES and "401" in str(e.value)


def test_a_listing_streams_10000_entries(apache: DavServer, proxy: FaultProxy, tmp_path: Path) -> None:
    d = apache.root / "many"
    d.mkdir()
    for i in range(10_000):
        (d / f"file-{i:05d}.txt").write_bytes(b"")
    b = backend(apache, proxy)
    names = [e.name for e in b.list("many")]
    assert len(names) == 10_000 and sorted(names)[0] == "file-00000.txt"
