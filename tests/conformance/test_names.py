"""Conformance of a Backend: names (unicode, spaces, punctuation, length 255) and deep paths."""

from __future__ import annotations

import errno
import unicodedata

import pytest

from pyclone_docker.backends.base import FEATURE_DIR_MOVE, FEATURE_MOVE, Backend

from .conftest import BackendCase
from .helpers import data, get, gone_or_empty, listing, put, raises

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")
NAMES = {
    "nfc": NFC,
    "nfd": NFD,
    "space": "with space",
    "leading-space": " leading",
    "trailing-space": "trailing ",
    "hash-percent-query-star": "#%?*",
    "mixed-punctuation": "100% #1? [a]{b}(c) &=+;,'\"!@$^~`",
    "colon": "remote:path",
    "backslash": "back\\slash",
    "dots": "..name..",
    "hidden": ".hidden",
    "dash": "-dash",
    "cjk": "日本語のファイル",
    "emoji": "emoji 🎉",
    "control-tab": "tab\tname",
    "ascii-255": "a" * 255,
    "utf8-255-bytes": "é" * 127 + "a",  # 255 bytes in UTF-8
}


@pytest.fixture(params=list(NAMES.values()), ids=list(NAMES))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_file_name_round_trip(backend: Backend, name: str) -> None:
    content = data(1000, len(name))
    put(backend, name, content)
    assert list(listing(backend)) == [name]  # the very same code points
    st = backend.stat(name)
    assert (st.name, st.size, st.is_dir) == (name, 1000, False)
    assert get(backend, name) == content
    assert get(backend, name, 10, 20) == content[10:30]
    backend.delete(name)
    assert backend.list("") == []


def test_directory_name_round_trip(backend: Backend, name: str) -> None:
    backend.mkdir(name)
    put(backend, f"{name}/{name}", b"inner")
    assert listing(backend)[name].is_dir
    assert list(listing(backend, name)) == [name]
    assert get(backend, f"{name}/{name}") == b"inner"
    with raises(errno.ENOTEMPTY, errno.EEXIST):
        backend.rmdir(name)
    backend.delete(f"{name}/{name}")
    backend.rmdir(name)
    assert backend.list("") == []


@pytest.mark.needs(FEATURE_MOVE)
def test_move_file_to_and_from_the_name(backend: Backend, name: str) -> None:
    put(backend, "plain", b"moved")
    backend.mkdir("d")
    backend.move("plain", f"d/{name}")
    assert list(listing(backend, "d")) == [name]
    backend.move(f"d/{name}", "back")
    assert get(backend, "back") == b"moved"
    gone_or_empty(backend, "d")  # an object store's directory goes with its last object


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_directory_to_the_name(backend: Backend, name: str) -> None:
    put(backend, "t/f", b"x")
    backend.move("t", name)
    assert get(backend, f"{name}/f") == b"x"
    assert list(listing(backend)) == [name]


def test_nfc_and_nfd_spellings(backend: Backend, case: BackendCase) -> None:
    assert NFC != NFD
    put(backend, NFC, b"composed")
    put(backend, NFD, b"decomposed")
    names = sorted(listing(backend))
    if case.unicode_normalizes:
        assert len(names) == 1
        return
    assert names == sorted([NFC, NFD])
    assert get(backend, NFC) == b"composed" and get(backend, NFD) == b"decomposed"


def test_name_longer_than_the_limit(backend: Backend, case: BackendCase) -> None:
    if not case.max_name_bytes:
        pytest.skip(f"{case.id} declares no name length limit")
    too_long = "b" * (case.max_name_bytes + 1)
    with raises(errno.ENAMETOOLONG):
        put(backend, too_long, b"x")
    with raises(errno.ENAMETOOLONG):
        backend.mkdir(too_long)
    assert backend.list("") == []


def test_deep_path_of_20_levels(backend: Backend) -> None:
    levels = [f"level {i:02d} ü#%" for i in range(20)]
    path = ""
    for part in levels:
        path = f"{path}/{part}" if path else part
        backend.mkdir(path)
    leaf = f"{path}/leaf.bin"
    content = data(70_000, 27)
    put(backend, leaf, content)
    assert backend.stat(leaf).size == 70_000
    assert get(backend, leaf) == content
    assert list(listing(backend, path)) == ["leaf.bin"]
    walk = ""
    for i, part in enumerate(levels[:-1]):
        walk = f"{walk}/{part}" if walk else part
        assert list(listing(backend, walk)) == [levels[i + 1]]
    with raises(errno.ENOTEMPTY, errno.EEXIST):
        backend.rmdir(path)
    backend.delete(leaf)
    for i in range(len(levels), 0, -1):
        backend.rmdir("/".join(levels[:i]))
    assert backend.list("") == []


def test_deep_path_made_by_an_upload(backend: Backend) -> None:
    levels = [f"{i:02d}-" + "x" * 90 for i in range(20)]  # about 1.9 KB of path
    leaf = "/".join([*levels, "f"])
    put(backend, leaf, b"bottom")
    assert get(backend, leaf) == b"bottom"
    for i in range(1, len(levels) + 1):
        entry = backend.stat("/".join(levels[:i]))
        assert entry.is_dir and entry.name == levels[i - 1]


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_of_a_deep_tree(backend: Backend) -> None:
    leaf = "/".join(f"d{i}" for i in range(20)) + "/f"
    put(backend, leaf, b"deep")
    backend.move("d0", "moved")
    assert get(backend, "moved" + leaf[2:]) == b"deep"
    assert list(listing(backend)) == ["moved"]
