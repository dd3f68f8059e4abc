"""The read-only part of the conformance suite: what a read-only backend (http) must do with a
tree someone else wrote. Each case's `served` directory is filled on the local disk first, then
the backend is made over it. A writable backend (local) runs the same reads, so a broken backend
fails here the same way.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pyclone_docker.backends.base import Backend

from .case import BackendCase
from .helpers import data, get, raises

T = 1_600_000_000  # seconds: HTTP's Last-Modified has no fraction
TREE = {
    "plain.txt": 5,
    "empty": 0,
    "big.bin": 300_000,
    "space name .txt": 3,
    "Grüße ☃ 日本語.txt": 11,
    "punct '$&+,;=@[]!~#%.txt": 7,
    "dir/inner.txt": 9,
    "dir/sub dir/deep.txt": 13,
    "ünï cødé/f": 1,
}


@pytest.fixture
def ro(ro_case: BackendCase, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    assert ro_case.served is not None
    root = ro_case.served(tmp_path, request)
    for i, (rel, size) in enumerate(sorted(TREE.items())):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        p.write_bytes(data(size, i))
        os.chmod(p, 0o644)
        os.utime(p, (T + i, T + i))
    (root / "empty dir").mkdir(mode=0o755)
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        os.chmod(d, 0o755)
    b = ro_case.make(tmp_path, request)
    request.addfinalizer(b.shutdown)
    return b


def _content(rel: str) -> bytes:
    i = sorted(TREE).index(rel)
    return data(TREE[rel], i)


def _mtime(rel: str) -> int:
    return (T + sorted(TREE).index(rel)) * 10**9


def _heads(b: Backend) -> bool:
    return not getattr(b, "no_head", False)


def test_listing_names_sizes_and_modtimes(ro: Backend) -> None:
    entries = {e.name: e for e in ro.list("")}
    assert sorted(entries) == sorted(["plain.txt", "empty", "big.bin", "space name .txt", "Grüße ☃ 日本語.txt",
                                      "punct '$&+,;=@[]!~#%.txt", "dir", "ünï cødé", "empty dir"])
    assert entries["dir"].is_dir and entries["empty dir"].is_dir and not entries["big.bin"].is_dir
    if _heads(ro):
        for rel in ("plain.txt", "empty", "big.bin", "Grüße ☃ 日本語.txt", "punct '$&+,;=@[]!~#%.txt"):
            assert entries[rel].size == TREE[rel], rel
            assert entries[rel].mtime_ns == _mtime(rel), rel


def test_nested_directories(ro: Backend) -> None:
    assert sorted(e.name for e in ro.list("dir")) == ["inner.txt", "sub dir"]
    assert [e.name for e in ro.list("dir/sub dir")] == ["deep.txt"]
    assert [e.name for e in ro.list("ünï cødé")] == ["f"]
    assert ro.list("empty dir") == []


def test_stat_of_files_and_directories(ro: Backend) -> None:
    f = ro.stat("dir/sub dir/deep.txt")
    assert not f.is_dir
    if _heads(ro):
        assert f.size == 13 and f.mtime_ns == _mtime("dir/sub dir/deep.txt")
    assert ro.stat("dir").is_dir and ro.stat("dir/sub dir").is_dir and ro.stat("").is_dir


def test_missing_names_are_enoent(ro: Backend) -> None:
    for path in ("nope", "dir/nope", "nope/deeper"):
        if _heads(ro):  # with no_head a name is taken as a file unchecked, as rclone's NewObject does
            with raises(errno.ENOENT):
                ro.stat(path)
        with raises(errno.ENOENT):
            ro.list(path + "/x" if path == "nope" else path)
        with raises(errno.ENOENT):
            get(ro, path)


@pytest.mark.parametrize("rel", sorted(TREE))
def test_whole_reads(ro: Backend, rel: str) -> None:
    assert get(ro, rel) == _content(rel)


@pytest.mark.parametrize("offset, length", [(0, 1), (1, 10), (65_536, 100_000), (299_999, 1), (123_456, -1)])
def test_ranged_reads(ro: Backend, offset: int, length: int) -> None:
    want = _content("big.bin")
    assert get(ro, "big.bin", offset, length) == want[offset:offset + length if length >= 0 else None]


def test_reads_at_and_past_the_end(ro: Backend) -> None:
    assert get(ro, "big.bin", 300_000) == b""
    assert get(ro, "big.bin", 400_000) == b""
    assert get(ro, "empty") == b""


def test_every_write_is_erofs(ro: Backend) -> None:
    if ro.type_name != "http":
        pytest.skip(f"{ro.type_name} is writable: only its reads are checked here")
    for call in (lambda: ro.open_write("new", 1), lambda: ro.mkdir("d2"), lambda: ro.rmdir("empty dir"),
                 lambda: ro.delete("plain.txt"), lambda: ro.move("plain.txt", "moved"),
                 lambda: ro.set_modtime("plain.txt", 0)):
        with raises(errno.EROFS):
            call()
    assert get(ro, "plain.txt") == _content("plain.txt")
