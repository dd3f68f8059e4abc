"""Infinite Scale's tus uploads (issue 14, vendor infinitescale), against the stand-in of
tests/support/infinitescale.py (wsgidav for WebDAV, plus tus creation, core and termination).

The proof that the protocol is rclone's: rclone 1.75.2 and our backend upload the same file to
the same path, and the server sees the same requests: one POST to the directory (the same
Upload-Length, metadata and X-OC-Mtime) and PATCHes of 10 MiB from the same offsets. Beyond
rclone: a PATCH that breaks is resumed from the offset the server reports.
"""

from __future__ import annotations

import base64
import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import read_full
from tests import rclone_ref
from tests.support.infinitescale import InfiniteScaleServer, infinitescale_server
from tests.support.rclonecli import RcloneCli

MiB = 1 << 20
T = 1_600_000_000


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfiniteScaleServer]:
    with infinitescale_server(tmp_path_factory.mktemp("ocis")) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_faults(srv: InfiniteScaleServer) -> Iterator[None]:
    yield
    srv.faults()


def backend(srv: InfiniteScaleServer, root: str) -> Any:
    spec = f":webdav,url='{srv.url}',vendor=infinitescale,user={srv.user},pass={obscure.obscure(srv.password)}:{root}"
    be = fsmod.new_fs(spec, fsmod.FsContext())
    if not (srv.root / root).is_dir():
        be.mkdir("")
    return be


def upload(be: Any, path: str, data: bytes, mtime_s: int = T) -> None:
    w = be.open_write(path, len(data), mtime_s * 10**9)
    try:
        for i in range(0, len(data), 1 << 20):
            w.write(memoryview(data)[i:i + (1 << 20)])
    except BaseException:
        w.abort()
        raise
    w.close()


def tus_requests(srv: InfiniteScaleServer, since: int) -> list[tuple[Any, ...]]:
    """The tus requests after the first `since` of the log: (method, length, offset, upload
    length, metadata as a set, X-OC-Mtime); the upload's id left out."""
    out = []
    for r in srv.requests()[since:]:
        if r["method"] in ("POST", "PATCH", "HEAD", "DELETE") and (r["method"] == "POST" or "/data/" in r["path"]):
            meta = frozenset((r["metadata"] or "").split(",")) if r["metadata"] else None
            out.append((r["method"], r["length"], r["offset"], r["upload_length"], meta, r["x_oc_mtime"]))
    return out


def rclone(srv: InfiniteScaleServer, home: Path) -> RcloneCli:
    """rclone 1.75.2 on the stand-in (vendor infinitescale), the password through the environment."""
    return RcloneCli(rclone_ref.require(), home,
                     lambda path: f":webdav,url='{srv.url}',vendor=infinitescale,user={srv.user}:{path}",
                     env={"RCLONE_WEBDAV_PASS": obscure.obscure(srv.password)})


def test_a_file_goes_up_by_tus_as_rclone_sends_it(srv: InfiniteScaleServer, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(25 * MiB + 7)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    os.utime(src, (T, T))
    (srv.root / "same").mkdir()
    before = len(srv.requests())
    rc = rclone(srv, tmp_path)
    rc.run("copyto", "--ignore-checksum", str(src), rc.remote("same/big.bin"))
    theirs = tus_requests(srv, before)
    assert (srv.root / "same/big.bin").read_bytes() == data
    (srv.root / "same/big.bin").unlink()

    before = len(srv.requests())
    be = backend(srv, "same")
    try:
        upload(be, "big.bin", data)
        st = be.stat("big.bin")
        assert st.size == len(data) and st.mtime_ns == T * 10**9
    finally:
        be.shutdown()
    ours = tus_requests(srv, before)
    # the same but for the POST's X-OC-Mtime: rclone sends the time of the object it is making
    # (now), not the file's; ours is the file's, the time the metadata gives too
    assert [r[:5] for r in ours] == [r[:5] for r in theirs]
    assert [(m, n, off) for m, n, off, *_ in ours] == [
        ("POST", 0, None), ("PATCH", 10 * MiB, "0"), ("PATCH", 10 * MiB, str(10 * MiB)),
        ("PATCH", 5 * MiB + 7, str(20 * MiB))]
    meta = dict(p.split(" ") for p in ours[0][4])
    assert {k: base64.b64decode(v).decode() for k, v in meta.items()} == {
        "filename": "big.bin", "mtime": str(T), "filetype": "application/octet-stream"}
    assert ours[0][3] == str(len(data)) and ours[0][5] == str(T)
    assert (srv.root / "same/big.bin").read_bytes() == data and os.stat(srv.root / "same/big.bin").st_mtime == T
    assert srv.uploads_left() == []


def test_small_and_empty_files_and_what_rclone_reads_back(srv: InfiniteScaleServer, tmp_path: Path) -> None:
    be = backend(srv, "small")
    try:
        before = len(srv.requests())
        upload(be, "d/five.txt", b"12345")
        upload(be, "empty.txt", b"", T + 60)
        assert [m for m, *_ in tus_requests(srv, before)] == ["POST", "PATCH", "POST"]
        assert (srv.root / "small/d/five.txt").read_bytes() == b"12345"
        assert os.stat(srv.root / "small/empty.txt").st_size == 0
        assert os.stat(srv.root / "small/empty.txt").st_mtime == T + 60
        w = be.open_write("unknown.txt", -1, T * 10**9)  # a size not known: a plain PUT
        w.write(memoryview(b"streamed"))
        w.close()
        assert (srv.root / "small/unknown.txt").read_bytes() == b"streamed"
    finally:
        be.shutdown()
    rc = rclone(srv, tmp_path)
    out = rc.run("lsf", "-R", "--format", "pst", rc.remote("small")).stdout.decode()
    assert "d/five.txt;5;2020-09-13 12:26:40" in out.splitlines(), out


def test_what_rclone_uploads_by_tus_reads_back_here(srv: InfiniteScaleServer, tmp_path: Path) -> None:
    data = random.Random(4).randbytes(11 * MiB)
    src = tmp_path / "src"
    src.mkdir()
    (src / "r.bin").write_bytes(data)
    os.utime(src / "r.bin", (T + 1, T + 1))
    rc = rclone(srv, tmp_path)
    rc.run("copy", "--ignore-checksum", str(src), rc.remote("theirs"))
    be = backend(srv, "theirs")
    try:
        [e] = be.list("")
        assert (e.name, e.size, e.mtime_ns) == ("r.bin", len(data), (T + 1) * 10**9)
        reader = be.open_read("r.bin")
        buf = memoryview(bytearray(len(data) + 1))
        assert read_full(reader, buf) == len(data) and bytes(buf[:len(data)]) == data
        reader.close()
    finally:
        be.shutdown()


def test_a_patch_that_breaks_is_resumed_where_the_server_got_to(srv: InfiniteScaleServer, tmp_path: Path) -> None:
    data = random.Random(5).randbytes(12 * MiB)
    be = backend(srv, "faults")
    try:
        srv.faults(patch_cut=1, patch_503=1)
        before = len(srv.requests())
        upload(be, "resumed.bin", data)
        assert (srv.root / "faults/resumed.bin").read_bytes() == data
        seq = [(m, n, off) for m, n, off, *_ in tus_requests(srv, before)]
        # 503 (nothing kept), HEAD: 0; half of the piece kept then 500, HEAD: 5 MiB; the rest
        assert seq == [("POST", 0, None), ("PATCH", 10 * MiB, "0"), ("HEAD", 0, None), ("PATCH", 10 * MiB, "0"),
                       ("HEAD", 0, None), ("PATCH", 5 * MiB, str(5 * MiB)), ("PATCH", 2 * MiB, str(10 * MiB))], seq
        assert srv.uploads_left() == []
    finally:
        be.shutdown()
    # rclone 1.75.2 gives that upload up and starts a new one from the top (its --retries), the
    # first left on the server until it expires
    src = tmp_path / "cut.bin"
    src.write_bytes(data)
    srv.faults(patch_cut=1)
    before = len(srv.requests())
    rc = rclone(srv, tmp_path)
    rc.run("copyto", "--retries", "1", "--ignore-checksum", str(src), rc.remote("faults/cut.bin"))
    assert [m for m, *_ in tus_requests(srv, before)] == ["POST", "PATCH", "POST", "PATCH", "PATCH"]
    assert (srv.root / "faults/cut.bin").read_bytes() == data


def test_an_upload_cut_short_is_ended_and_leaves_nothing(srv: InfiniteScaleServer) -> None:
    be = backend(srv, "aborted")
    held = srv.uploads_left()  # (rclone's given-up upload of the test above stays until it expires)
    try:
        w = be.open_write("short.bin", 11 * MiB, T * 10**9)
        w.write(memoryview(b"z" * (10 * MiB + 1)))  # the first piece goes up
        with pytest.raises(OSError) as err:
            w.close()
        assert err.value.errno == errno.EIO and "announced" in str(err.value)
        assert srv.requests()[-1]["method"] == "DELETE"
        assert srv.uploads_left() == held
        assert not (srv.root / "aborted/short.bin").exists()
    finally:
        be.shutdown()
