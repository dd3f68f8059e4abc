"""webdav's pacer_min_sleep, and webdav behind a redirecting front (a loopback server that
answers every request with a 307 to the real wsgidav, with basic auth): redirects are followed as
rclone 1.75.2 follows them, credentials reach another host name only with auth_redirect, and
rclone's own client agrees on each case."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend
from tests import rclone_ref
from tests.integration.test_httpclient_support import Server, reply
from tests.support.davservers import DavServer, dav_server
from tests.support.rclonecli import RcloneCli


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with dav_server("wsgidav", tmp_path_factory.mktemp("wsgidav")) as srv:
        (srv.root / "vol").mkdir()
        (srv.root / "vol/hello.txt").write_bytes(b"hello through a redirect")
        yield srv


def _front(target: str) -> Server:
    """Every request answered by a 307 to `target` + its path."""
    return Server(lambda h, seen, n: reply(h, 307, b"", {"Location": target + seen.path}))


def _backend(front: Server, dav: DavServer, **opts: str) -> Backend:
    extra = "".join(f",{k}={v}" for k, v in opts.items())
    spec = f":webdav,url='{front.url}/dav',user={dav.user},pass={obscure.obscure(dav.password)}{extra}:vol"
    return fsmod.new_fs(spec, fsmod.FsContext())


def _rclone(tmp_path: Path, front: Server, dav: DavServer, *flags: str) -> RcloneCli:
    return RcloneCli(rclone_ref.require(), tmp_path, remote=lambda p: f":webdav:vol/{p}",
                     env={"RCLONE_WEBDAV_URL": f"{front.url}/dav", "RCLONE_WEBDAV_USER": dav.user,
                          "RCLONE_WEBDAV_PASS": obscure.obscure(dav.password)},
                     lsjson_args=flags)


def _read(be: Backend, path: str) -> bytes:
    r = be.open_read(path)
    buf = memoryview(bytearray(1024))
    n = r.readinto(buf)
    r.close()
    return bytes(buf[:n])


def test_same_host_redirects_carry_every_operation(dav: DavServer, tmp_path: Path) -> None:
    front = _front(dav.url.rsplit("/dav", 1)[0])  # 127.0.0.1 to 127.0.0.1: credentials go along
    be = _backend(front, dav)
    try:
        assert [e.name for e in be.list("")] == ["hello.txt"]
        assert be.stat("hello.txt").size == 24
        assert _read(be, "hello.txt") == b"hello through a redirect"
        be.mkdir("d")
        w = be.open_write("d/small.txt", 5, 1_600_000_000 * 10**9)
        w.write(memoryview(b"small"))
        w.close()
        assert (dav.root / "vol/d/small.txt").read_bytes() == b"small"
        be.delete("d/small.txt")  # (no MOVE: its Destination names the front, which the server refuses)
        be.rmdir("d")
        assert not (dav.root / "vol/d").exists()
        methods = {s.method for s in front.stats.requests}
        assert {"PROPFIND", "GET", "MKCOL", "PUT", "DELETE"} <= methods, methods
        rc = _rclone(tmp_path, front, dav)
        assert rc.run("cat", rc.remote("hello.txt")).stdout == b"hello through a redirect"
    finally:
        be.shutdown()
        front.close()


def test_another_host_gets_the_credentials_only_with_auth_redirect(dav: DavServer, tmp_path: Path) -> None:
    front = _front(dav.url.rsplit("/dav", 1)[0].replace("127.0.0.1", "localhost"))
    plain, kept = _backend(front, dav), _backend(front, dav, auth_redirect="true")
    try:
        with pytest.raises(OSError) as err:
            plain.list("")
        assert err.value.errno == errno.EACCES and "401" in str(err.value), err.value
        assert [e.name for e in kept.list("")] == ["hello.txt"]
        assert _read(kept, "hello.txt") == b"hello through a redirect"
        rc = _rclone(tmp_path, front, dav)
        refused = rc.run("lsf", rc.remote(""), check=False)
        assert refused.returncode != 0 and b"401" in refused.stderr
        assert rc.run("lsf", "--webdav-auth-redirect", rc.remote("")).stdout == b"hello.txt\n"
        # rclone reads the file through the listing (its PROPFIND of one path, a file's stat, does
        # not keep the credentials even with auth_redirect; ours does, as the README says)
        cat = rc.run("cat", "--webdav-auth-redirect", "--include", "hello.txt", rc.remote(""))
        assert cat.stdout == b"hello through a redirect"
    finally:
        plain.shutdown()
        kept.shutdown()
        front.close()


def test_pacer_min_sleep_spaces_the_calls_and_0_turns_it_off(dav: DavServer) -> None:
    spec = f":webdav,url='{dav.url}',user={dav.user},pass={obscure.obscure(dav.password)}"
    paced = fsmod.new_fs(spec + ",pacer_min_sleep=200ms:vol", fsmod.FsContext())
    unpaced = fsmod.new_fs(spec + ",pacer_min_sleep=0:vol", fsmod.FsContext())
    try:
        t0 = time.monotonic()
        for _ in range(4):
            assert [e.name for e in paced.list("")] == ["hello.txt"]
        assert time.monotonic() - t0 >= 0.6  # three waits of 200 ms at least
        for _ in range(4):
            assert [e.name for e in unpaced.list("")] == ["hello.txt"]
    finally:
        paced.shutdown()
        unpaced.shutdown()
