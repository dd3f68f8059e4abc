"""Nextcloud's chunked uploads (issue 14, `nextcloud_chunk_size`), against the stand-in of
tests/support/nextcloud.py (wsgidav for WebDAV, plus Nextcloud's uploads endpoint; a PUT of
more than 2 MiB to the files endpoint is refused with 413, so a big file only arrives in pieces).

The proof that the protocol is rclone's: rclone 1.75.2 and our backend upload the same file to
the same path, and the server sees the same requests from the first DELETE to the MOVE: the same
directory (md5 of the path), piece names and lengths.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from tests import rclone_ref
from tests.support.nextcloud import NextcloudServer, nextcloud_server

from .conftest import Plugin

MiB = 1 << 20
T = 1_600_000_000


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NextcloudServer]:
    with nextcloud_server(tmp_path_factory.mktemp("nextcloud"), max_put=2 * MiB) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_faults(srv: NextcloudServer) -> Iterator[None]:
    yield
    srv.faults()


def spec(srv: NextcloudServer, root: str, chunk: str = "1Mi") -> str:
    return (f":webdav,url='{srv.url}',vendor=nextcloud,user={srv.user},pass={obscure.obscure(srv.password)},"
            f"nextcloud_chunk_size={chunk}:{root}")


def backend(srv: NextcloudServer, root: str, chunk: str = "1Mi") -> Any:
    """A backend on `root`, which exists (as the plugin's Mount makes it)."""
    be = fsmod.new_fs(spec(srv, root, chunk), fsmod.FsContext())
    if not (srv.root / root).is_dir():
        be.mkdir("")
    return be


def upload(be: Any, path: str, data: bytes, mtime_s: int = T) -> None:
    w = be.open_write(path, len(data), mtime_s * 10**9)
    try:
        for i in range(0, len(data), 300_000):
            w.write(memoryview(data)[i:i + 300_000])
    except BaseException:
        w.abort()
        raise
    w.close()


def chunk_requests(srv: NextcloudServer, since: int) -> list[tuple[str, str, int]]:
    """The requests to the uploads endpoint after the first `since` of the log."""
    return [(r["method"], r["path"], r["length"]) for r in srv.requests()[since:] if "/dav/uploads/" in r["path"]]


def test_a_big_file_goes_up_in_pieces_as_rclone_sends_them(srv: NextcloudServer, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(3 * MiB + 5)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    os.utime(src, (T, T))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "RCLONE_CONFIG": "/dev/null",
           "RCLONE_WEBDAV_PASS": obscure.obscure(srv.password)}
    before = len(srv.requests())
    remote = f":webdav,url='{srv.url}',vendor=nextcloud,user={srv.user},nextcloud_chunk_size=1Mi:same/big.bin"
    r = subprocess.run([rclone_ref.require(), "copyto", "--ignore-checksum", str(src), remote], env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    theirs = chunk_requests(srv, before)
    assert (srv.root / "same/big.bin").read_bytes() == data
    (srv.root / "same/big.bin").unlink()

    before = len(srv.requests())
    be = backend(srv, "same")
    try:
        upload(be, "big.bin", data)
        assert be.stat("big.bin").size == len(data) and be.stat("big.bin").mtime_ns == T * 10**9
    finally:
        be.shutdown()
    ours = chunk_requests(srv, before)
    assert ours == theirs
    assert [m for m, _, _ in ours] == ["DELETE", "MKCOL", "PUT", "PUT", "PUT", "PUT", "MOVE"]
    assert [n for m, _, n in ours if m == "PUT"] == [MiB, MiB, MiB, 5]
    assert (srv.root / "same/big.bin").read_bytes() == data and os.stat(srv.root / "same/big.bin").st_mtime == T
    assert srv.uploads_left() == []


def test_small_files_and_chunk_size_0_go_up_in_one_put(srv: NextcloudServer) -> None:
    be = backend(srv, "one")
    try:
        before = len(srv.requests())
        upload(be, "small.bin", b"x" * MiB)  # not more than the chunk size
        assert chunk_requests(srv, before) == []
        assert (srv.root / "one/small.bin").read_bytes() == b"x" * MiB
    finally:
        be.shutdown()
    be = backend(srv, "one", chunk="0")
    try:
        before = len(srv.requests())
        with pytest.raises(OSError) as info:  # one PUT of 3 MiB: the server refuses it
            upload(be, "big.bin", b"y" * (3 * MiB))
        assert info.value.errno == errno.EFBIG, info.value
        assert chunk_requests(srv, before) == []
    finally:
        be.shutdown()


def test_a_merge_still_running_423_then_404_is_done(srv: NextcloudServer) -> None:
    data = random.Random(2).randbytes(2 * MiB + 1)
    srv.faults(move_423=1)
    be = backend(srv, "locked")
    try:
        before = len(srv.requests())
        upload(be, "f.bin", data)
    finally:
        be.shutdown()
    assert [m for m, _, _ in chunk_requests(srv, before)][-2:] == ["MOVE", "MOVE"]
    assert (srv.root / "locked/f.bin").read_bytes() == data


def test_a_refused_piece_fails_the_upload_and_its_pieces_are_deleted(srv: NextcloudServer) -> None:
    srv.faults(chunk_507=1)
    be = backend(srv, "full")
    try:
        with pytest.raises(OSError) as info:
            upload(be, "f.bin", b"z" * (3 * MiB))
        assert "uploading chunk failed" in str(info.value) and "507" in str(info.value)
    finally:
        be.shutdown()
    assert not (srv.root / "full/f.bin").exists()
    assert srv.uploads_left() == []


def test_a_url_without_dav_files_user_is_rclones_error(srv: NextcloudServer) -> None:
    with pytest.raises(ValueError, match="nextcloud chunked uploads require you to use the /dav/files/USER"):
        fsmod.new_fs(f":webdav,url='{srv.url.replace('/dav/files/', '/webdav/')}',vendor=nextcloud:x",
                     fsmod.FsContext())


def test_through_the_mount_the_write_back_uploads_in_pieces(plugin: Plugin, srv: NextcloudServer) -> None:
    data = random.Random(3).randbytes(5 * MiB + 3)
    opts = {"type": "webdav", "webdav-url": srv.url, "webdav-vendor": "nextcloud", "webdav-user": srv.user,
            "webdav-pass": obscure.obscure(srv.password), "webdav-nextcloud-chunk-size": "1Mi", "path": "mounted",
            "vfs-cache-mode": "writes", "vfs-write-back": "0s"}
    plugin.client.ok("VolumeDriver.Create", {"Name": "nc", "Opts": opts})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": "nc", "ID": "t"})["Mountpoint"])
    before = len(srv.requests())
    try:
        with open(mp / "big.bin", "wb") as f:
            f.write(data)
            f.flush()
            os.utime(f.fileno(), (T, T))
    finally:
        plugin.client.ok("VolumeDriver.Unmount", {"Name": "nc", "ID": "t"})  # waits for the upload
        plugin.client.ok("VolumeDriver.Remove", {"Name": "nc"})
    assert (srv.root / "mounted/big.bin").read_bytes() == data
    assert os.stat(srv.root / "mounted/big.bin").st_mtime == T
    puts = [n for m, _, n in chunk_requests(srv, before) if m == "PUT"]
    assert puts == [MiB] * 5 + [3], puts


def test_a_move_whose_modtime_the_server_dropped_gets_it_back_by_proppatch(srv: NextcloudServer) -> None:
    be = backend(srv, "moves")
    try:
        upload(be, "a.txt", b"hello")  # one PUT, X-OC-Mtime accepted
        assert be.stat("a.txt").mtime_ns == T * 10**9
        be.move("a.txt", "b.txt")  # accepted: the modtime stays
        assert be.stat("b.txt").mtime_ns == T * 10**9
        before = len(srv.requests())
        srv.faults(move_touches=1)
        be.move("b.txt", "c.txt")  # the server stamped it now: rclone's fallback sets it again
        assert [r["method"] for r in srv.requests()[before:]].count("PROPPATCH") == 1
        assert be.stat("c.txt").mtime_ns == T * 10**9
        assert os.stat(srv.root / "moves/c.txt").st_mtime == T
    finally:
        be.shutdown()
