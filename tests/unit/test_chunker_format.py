"""chunker's format without rclone: chunk names, metadata bytes, and the layout a write leaves.

The vectors are rclone 1.75.2's (backend/chunker/chunker.go: makeChunkName, parseChunkName,
marshalSimpleJSON, unmarshalSimpleJSON; the layouts as `rclone copy` leaves them with
chunk_size=100Ki, checked by tests/integration/test_chunker_interop.py against the binary).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend, read_full
from pyclone_docker.backends.chunker import meta
from pyclone_docker.backends.chunker.names import ChunkName, ChunkNames, base36, new_xact_id
from pyclone_docker.backends.wrapping import WrappingBackend

KI = 1024


@pytest.mark.parametrize(("pattern", "start", "no", "want"), [
    ("*.rclone_chunk.###", 1, 0, "dir/f.rclone_chunk.001"),
    ("*.rclone_chunk.###", 1, 999, "dir/f.rclone_chunk.1000"),  # more digits are kept
    ("*.rclone_chunk.###", 0, 0, "dir/f.rclone_chunk.000"),
    ("*.#", 1, 9, "dir/f.10"),  # one hash: no padding
    ("*_part##of", 5, 0, "dir/f_part05of"),
    ("*.%d.#####", 1, 41, "dir/f.%d.00042"),  # a % is a literal
])
def test_chunk_names(pattern: str, start: int, no: int, want: str) -> None:
    names = ChunkNames(pattern, start)
    assert names.make("dir/f", no) == want
    assert names.parse(want) == ChunkName("dir/f", no, "", "")


def test_temporary_and_control_names() -> None:
    names = ChunkNames()
    assert names.make("a b.txt", 2, "", "exqvkg") == "a b.txt.rclone_chunk.003_exqvkg"
    assert names.make("x", 0, "", "ab") == "x.rclone_chunk.001_00ab"  # Go's "_%04s"
    assert names.parse("a b.txt.rclone_chunk.003_exqvkg") == ChunkName("a b.txt", 2, "", "exqvkg")
    assert names.make("x", -1, "meta") == "x.rclone_chunk._meta"
    assert names.parse("x.rclone_chunk._meta") == ChunkName("x", -1, "meta", "")
    # the obsolete decimal suffix reads as its base-36 transaction ID
    assert names.parse("x.rclone_chunk.002..tmp_1234567890") == ChunkName("x", 1, "", base36(1234567890))
    assert base36(1234567890) == "kf12oi"
    with pytest.raises(ValueError):
        names.make("x", -1, "")


@pytest.mark.parametrize("name", [
    "x", "x.rclone_chunk.01", "x.rclone_chunk.abc", ".rclone_chunk.001", "x.rclone_chunk.001_abc",
    "x.rclone_chunk.001_abcdefghij", "x.rclone_chunk._ab", "x.rclone_chunk._Meta", "x.rclone_chunk.000",
    "x.rclone_chunk.001\n", "x\n.rclone_chunk.001",
])
def test_not_chunk_names(name: str) -> None:
    # too few digits, no main name, a bad suffix or control type, a number below start_from (1),
    # a newline (Go's regexp: "." and "$" do not take one)
    assert ChunkNames().parse(name) is None


def test_main_name_is_not_greedy() -> None:
    names = ChunkNames()
    assert names.parse("f.rclone_chunk.001.rclone_chunk.002") == ChunkName("f.rclone_chunk.001", 1, "", "")
    assert names.parse("d/f.rclone_chunk.001_0000") == ChunkName("d/f", 0, "", "0000")


@pytest.mark.parametrize(("pattern", "why"), [
    ("x*.###", "pattern must start with asterisk"),
    ("*.##.#", "hashes (#) in pattern must be consecutive"),
    ("**.#", "pattern must have exactly one asterisk (*)"),
    ("*.chunk", "pattern must have a hash character (#)"),
    ("#*", "asterisk (*) in pattern must come before hashes (#)"),
    ("*/#", "directory separator prohibited"),
])
def test_bad_name_formats(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid name format '{pattern}': {why}")):
        ChunkNames(pattern)


def test_transaction_ids() -> None:
    rng = random.Random(1)
    xact = new_xact_id(now=1_700_000_000, rng=rng)
    assert len(xact) == 6 and xact[:4] == base36(1_700_000_000 % 1679609).rjust(4, "0")
    assert new_xact_id(now=5, rng=rng)[:4] == "0005"


def test_metadata_bytes() -> None:
    # as rclone wrote them (see the module doc)
    assert meta.marshal(250000, 3, md5="ce27c43ed43886404d810d857585a6c1") == \
        b'{"ver":1,"size":250000,"nchunks":3,"md5":"ce27c43ed43886404d810d857585a6c1"}'
    assert meta.marshal(1, 1, sha1="11f6ad8ec52a2984abaafd7c3b516503785c2072") == \
        b'{"ver":1,"size":1,"nchunks":1,"sha1":"11f6ad8ec52a2984abaafd7c3b516503785c2072"}'
    assert meta.marshal(250000, 3) == b'{"ver":1,"size":250000,"nchunks":3}'
    assert meta.marshal(5, 2, txn="exqvkg") == b'{"ver":2,"size":5,"nchunks":2,"txn":"exqvkg"}'


def test_metadata_parse() -> None:
    m = meta.unmarshal(b'{"ver":1,"size":250000,"nchunks":3,"md5":"ce27c43ed43886404d810d857585a6c1"}')
    assert (m.size, m.nchunks, m.md5, m.sha1, m.txn) == (250000, 3, "ce27c43ed43886404d810d857585a6c1", "", "")
    assert meta.unmarshal(b'{"VER":1,"Size":2,"nchunks":1}').size == 2  # Go's json folds key case
    for bad, why in ((b'{"ver":1,"size":2}', "missing required field"),
                     (b'{"ver":0,"size":2,"nchunks":1}', "wrong version"),
                     (b'{"ver":1,"size":-1,"nchunks":1}', "negative file size"),
                     (b'{"ver":1,"size":2,"nchunks":0}', "wrong number of chunks"),
                     (b'{"ver":1,"size":2,"nchunks":1,"md5":"abc"}', "wrong md5 hash"),
                     (b' {"ver":1,"size":2,"nchunks":1}', "invalid json"), (b"{" + b" " * 300 + b"}", "too big")):
        with pytest.raises(meta.MetaError, match=why) as err:
            meta.unmarshal(bad)
        assert not err.value.made_by_chunker
    with pytest.raises(meta.MetaError, match="upgrade rclone") as err:
        meta.unmarshal(b'{"ver":3,"size":2,"nchunks":1}')
    assert err.value.made_by_chunker
    assert meta.made_by_chunker(b'{"ver":1,"size":2,"nchunks":1}')
    assert not meta.made_by_chunker(b'{"hello":1}')
    assert meta.read_txn(b'{"ver":2,"size":5,"nchunks":2,"txn":"exqvkg"}') == "exqvkg"
    assert meta.read_txn(b'{"ver":"2","txn":"exqvkg"}') == ""  # Go's Unmarshal fails on the type


# --- the layout a write leaves, and reads over it -------------------------------------------

def _chunker(root: Path, opts: str = "") -> Backend:
    return fsmod.new_fs(f":chunker,remote='{root}',chunk_size=100Ki{opts}:", fsmod.FsContext())


def _put(b: Backend, path: str, content: bytes, size: int | None = None, piece: int = 7000) -> None:
    w = b.open_write(path, len(content) if size is None else size)
    for i in range(0, len(content), piece):
        w.write(memoryview(content[i:i + piece]))
    w.close()


def _get(b: Backend, path: str, offset: int = 0, length: int = -1) -> bytes:
    r = b.open_read(path, offset, length)
    try:
        buf = bytearray(b.stat(path).size + 1)
        return bytes(buf[:read_full(r, memoryview(buf))])
    finally:
        r.close()


def _layout(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in root.iterdir()}


DATA = random.Random(13).randbytes(250_000)


@pytest.mark.parametrize(("opts", "want"), [
    ("", {"big": 76, "big.rclone_chunk.001": 102400, "big.rclone_chunk.002": 102400, "big.rclone_chunk.003": 45200,
          "one": 1, "zero": 0}),
    (",meta_format=none,hash_type=none", {"big.rclone_chunk.001": 102400, "big.rclone_chunk.002": 102400,
                                          "big.rclone_chunk.003": 45200, "one.rclone_chunk.001": 1,
                                          "zero.rclone_chunk.001": 0}),
    (",hash_type=sha1all", {"big": 85, "big.rclone_chunk.001": 102400, "big.rclone_chunk.002": 102400,
                            "big.rclone_chunk.003": 45200, "one": 80, "one.rclone_chunk.001": 1, "zero": 80,
                            "zero.rclone_chunk.001": 0}),
    (",hash_type=none", {"big": 35, "big.rclone_chunk.001": 102400, "big.rclone_chunk.002": 102400,
                         "big.rclone_chunk.003": 45200, "one": 1, "zero": 0}),
])
@pytest.mark.parametrize("known_size", [True, False])
def test_write_layout_is_rclones(tmp_path: Path, opts: str, want: dict[str, int], known_size: bool) -> None:
    b = _chunker(tmp_path, opts)
    for name, content in (("big", DATA), ("one", b"x"), ("zero", b"")):
        _put(b, name, content, None if known_size else -1)
    assert _layout(tmp_path) == want
    assert sorted((e.name, e.size) for e in b.list("")) == [("big", 250000), ("one", 1), ("zero", 0)]
    if "big" in want:
        md = (tmp_path / "big").read_bytes()
        hashes = {"": f',"md5":"{hashlib.md5(DATA).hexdigest()}"', ",hash_type=sha1all":
                  f',"sha1":"{hashlib.sha1(DATA).hexdigest()}"'}
        assert md == b'{"ver":1,"size":250000,"nchunks":3' + hashes.get(opts, "").encode() + b"}"
    assert _get(b, "big") == DATA and _get(b, "one") == b"x" and _get(b, "zero") == b""
    for kind in b.hashes:
        assert b.hash("big", kind) == hashlib.new(kind, DATA).hexdigest()
        assert b.hash("one", kind) == hashlib.new(kind, b"x").hexdigest()


class _Opens(WrappingBackend):
    """Counts the wrapped remote's open_read calls (and their ranges)."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.name, inner.root, {}, inner)
        self.opens: list[tuple[str, int, int]] = []

    def open_read(self, path: str, offset: int = 0, length: int = -1):  # type: ignore[override]
        self.opens.append((path, offset, length))
        return super().open_read(path, offset, length)


def test_reads_open_only_the_chunks_they_cover(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    _put(b, "big", DATA)
    counting = _Opens(b.inner)
    b.inner = counting
    assert _get(b, "big", 102_399, 2) == DATA[102_399:102_401]
    assert counting.opens == [("big", 0, 76), ("big.rclone_chunk.001", 102_399, 1), ("big.rclone_chunk.002", 0, 1)]
    counting.opens.clear()
    assert _get(b, "big", 210_000, -1) == DATA[210_000:]
    assert [o[0] for o in counting.opens] == ["big", "big.rclone_chunk.003"]


def test_new_version_replaces_every_old_chunk(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    _put(b, "f", DATA)
    _put(b, "f", DATA[:150_000])  # 3 chunks -> 2
    assert _layout(tmp_path) == {"f": 76, "f.rclone_chunk.001": 102400, "f.rclone_chunk.002": 47600}
    _put(b, "f", b"small")  # -> a plain file
    assert _layout(tmp_path) == {"f": 5}
    assert _get(b, "f") == b"small"


def test_a_small_file_that_looks_like_metadata_gets_metadata(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    fake = b'{"ver":1,"size":9,"nchunks":2}'
    _put(b, "f", fake)
    assert _layout(tmp_path) == {"f": 72, "f.rclone_chunk.001": len(fake)}
    assert _get(b, "f") == fake


def test_aborted_and_failed_writes_leave_nothing(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    w = b.open_write("f", -1)
    w.write(memoryview(DATA))
    w.abort()
    assert _layout(tmp_path) == {}
    w = b.open_write("f", len(DATA) + 1)  # one byte short
    w.write(memoryview(DATA))
    with pytest.raises(OSError, match="incorrect upload size"):
        w.close()
    assert _layout(tmp_path) == {}


def test_temporary_chunks_are_hidden_and_orphans_skipped(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    _put(b, "f", DATA)
    (tmp_path / "f.rclone_chunk.001_abcdef").write_bytes(b"stale upload")
    (tmp_path / "g.rclone_chunk.001").write_bytes(b"orphan")
    assert [(e.name, e.size) for e in b.list("")] == [("f", 250000)]
    assert b.stat("f").size == 250000 and _get(b, "f") == DATA
    with pytest.raises(FileNotFoundError):
        b.stat("g")


def test_metadata_that_does_not_match_is_eio(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    _put(b, "f", DATA)
    os.remove(tmp_path / "f.rclone_chunk.003")
    (tmp_path / "f.rclone_chunk.004").write_bytes(b"x")  # chunk 3 missing: skipped in listings
    assert b.list("") == []
    os.remove(tmp_path / "f.rclone_chunk.004")
    assert b.stat("f").size == 204800  # listed from the chunks, as rclone lists it
    with pytest.raises(OSError, match="metadata doesn't match file size"):
        b.open_read("f")
    fail_hard = _chunker(tmp_path, ",fail_hard=true")
    (tmp_path / "f.rclone_chunk.004").write_bytes(b"x")
    with pytest.raises(OSError, match="missing chunks"):
        fail_hard.list("")


def test_move_renames_every_chunk(tmp_path: Path) -> None:
    b = _chunker(tmp_path)
    _put(b, "f", DATA)
    _put(b, "g", DATA[:120_000])
    b.move("f", "g")  # the old g's chunks go first
    assert _layout(tmp_path) == {"g": 76, "g.rclone_chunk.001": 102400, "g.rclone_chunk.002": 102400,
                                 "g.rclone_chunk.003": 45200}
    assert _get(b, "g") == DATA


def test_norename_keeps_temporary_names(tmp_path: Path) -> None:
    b = _chunker(tmp_path, ",transactions=norename")
    _put(b, "f", DATA)
    names = sorted(_layout(tmp_path))
    txn = names[1].rpartition("_")[2]
    assert names == ["f"] + [f"f.rclone_chunk.00{i}_{txn}" for i in (1, 2, 3)]
    md5 = hashlib.md5(DATA).hexdigest()
    assert (tmp_path / "f").read_text() == f'{{"ver":2,"size":250000,"nchunks":3,"md5":"{md5}","txn":"{txn}"}}'
    assert [(e.name, e.size) for e in b.list("")] == [("f", 250000)]
    assert _get(b, "f", 100_000, 10_000) == DATA[100_000:110_000]
    b.move("f", "h")
    assert _get(b, "h") == DATA
    b.delete("h")
    assert _layout(tmp_path) == {}


@pytest.mark.parametrize(("opts", "why"), [
    (",hash_type=sha256", "unsupported hash type 'sha256'"),
    (",meta_format=none", "hash type 'md5' requires compatible meta format"),
    (",meta_format=json", "unsupported meta format 'json'"),
    (",transactions=later", "unsupported transaction mode 'later'"),
    (",meta_format=none,hash_type=none,transactions=norename", "incompatible transaction options"),
    (",start_from=-1", "start_from must be non-negative"),
    (",chunk_size=0", "chunk_size must be positive"),
])
def test_options_rclone_refuses(tmp_path: Path, opts: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        _chunker(tmp_path, opts)
