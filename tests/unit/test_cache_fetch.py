"""The full-mode fetch window: --buffer-size plus --vfs-read-ahead for sequential readers, one
block for random ones; and a clean item's metadata rewritten in place."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.vfs.cache import FETCH_BLOCK, Cache

M = 1 << 20


class _Counting:
    """A reader that records how many bytes it gave: how far its fetch read."""

    def __init__(self, inner, record: list[int]) -> None:
        self.inner, self.record = inner, record

    def readinto(self, view: memoryview) -> int:
        n = self.inner.readinto(view)
        self.record[1] += n
        return n

    def close(self) -> None:
        self.inner.close()


class RecordingLocal(LocalBackend):
    def __init__(self, root: str) -> None:
        super().__init__("local", root, {})
        self.streams: list[list[int]] = []  # [offset, bytes read from it]

    @property
    def reads(self) -> list[tuple[int, int]]:
        return [(o, n) for o, n in self.streams]

    def open_read(self, path: str, offset: int = 0, length: int = -1):
        record = [offset, 0]
        self.streams.append(record)
        return _Counting(super().open_read(path, offset, length), record)


def make(tmp_path: Path, size: int, **kw) -> tuple[RecordingLocal, Cache, bytes]:
    remote = tmp_path / "remote"
    remote.mkdir()
    data = os.urandom(size)
    (remote / "f").write_bytes(data)
    backend = RecordingLocal(str(remote))
    cache = Cache(backend, str(tmp_path / "cache"), "vol", **kw)
    return backend, cache, data


def settled(item) -> None:
    """Wait until no fetch of the item runs: how far each read is known only then."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with item.lock:
            if item.downloads is None or item.downloads.idle():
                return
        time.sleep(0.005)
    raise AssertionError("a fetch is still running")


def read(item, offset: int, n: int) -> bytes:
    buf = bytearray(n)
    got = item.read_into(memoryview(buf), offset)
    return bytes(buf[:got])


def test_sequential_reads_fetch_buffer_size_plus_read_ahead(tmp_path: Path) -> None:
    backend, cache, data = make(tmp_path, 64 * M, buffer_size=8 * M, read_ahead=2 * M)
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    try:
        assert read(item, 0, 128 * 1024) == data[:128 * 1024]
        settled(item)
        # the first read of a file is not known to be sequential: one block and the read-ahead
        assert backend.reads == [(0, FETCH_BLOCK + 2 * M)]
        pos = 128 * 1024
        fetched = []
        while pos < 20 * M:
            assert read(item, pos, 128 * 1024) == data[pos:pos + 128 * 1024]
            pos += 128 * 1024
            settled(item)
            if backend.reads[0][1] not in fetched:
                fetched.append(backend.reads[0][1])
        # then 10 MiB windows (--buffer-size + --vfs-read-ahead), all on the first stream
        assert fetched[:3] == [3 * M, 13 * M, 23 * M] and len(backend.reads) == 1
        # a jump elsewhere is random: one block again, on a stream of its own
        assert read(item, 50 * M, 4096) == data[50 * M:50 * M + 4096]
        settled(item)
        assert backend.reads[-1] == (50 * M, FETCH_BLOCK + 2 * M)
    finally:
        item.close()
        cache.shutdown(1)


def test_clean_metadata_is_rewritten_in_place_dirty_atomically(tmp_path: Path) -> None:
    backend, cache, _data = make(tmp_path, 3 * M)
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    read(item, 0, 4096)
    item.close()
    meta = Path(item.meta_path)
    ino = meta.stat().st_ino
    item.open(lambda: backend.stat("f"), truncate=False)
    read(item, 2 * M, 4096)
    item.close()
    assert meta.stat().st_ino == ino  # same file: rewritten in place, no temp file and rename
    saved = json.loads(meta.read_text())
    assert saved["Dirty"] is False and saved["Rs"][-1]["Pos"] == 2 * M
    assert not [p for p in meta.parent.iterdir() if p.name.startswith(".")]
    item.open(lambda: backend.stat("f"), truncate=False)
    item.write_from(memoryview(b"changed"), 0)
    item.close()
    assert json.loads(meta.read_text())["Dirty"] is True
    cache.shutdown(10)
    assert (tmp_path / "remote" / "f").read_bytes()[:7] == b"changed"
    assert json.loads(meta.read_text())["Dirty"] is False


def _same_size_same_mtime_edit(path: Path, data: bytes) -> bytes:
    st = path.stat()
    new = bytes(b ^ 0xFF for b in data[:10]) + data[10:]
    path.write_bytes(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return new


def test_fingerprint_hash_catches_a_change_that_keeps_size_and_modtime(tmp_path: Path) -> None:
    import hashlib

    backend, cache, data = make(tmp_path, 2 * M)
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    assert read(item, 0, 10) == data[:10]
    item.close()
    assert item.fp.endswith("," + hashlib.md5(data).hexdigest())  # rclone: size,modtime,md5 on local
    new = _same_size_same_mtime_edit(tmp_path / "remote" / "f", data)
    item.open(lambda: backend.stat("f"), truncate=False)
    assert read(item, 0, 10) == new[:10]  # the stale copy was dropped and fetched again
    item.close()
    cache.shutdown(1)


def test_fast_fingerprint_leaves_out_locals_slow_hash(tmp_path: Path) -> None:
    backend, cache, data = make(tmp_path, 2 * M, fast_fingerprint=True)
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    assert read(item, 0, 10) == data[:10]
    item.close()
    assert item.fp.count(",") == 1  # size and modtime only
    _same_size_same_mtime_edit(tmp_path / "remote" / "f", data)
    item.open(lambda: backend.stat("f"), truncate=False)
    assert read(item, 0, 10) == data[:10]  # what rclone documents: less accurate, much faster
    item.close()
    cache.shutdown(1)


def test_upload_hashes_on_the_way_so_the_next_open_reads_nothing_back(tmp_path: Path) -> None:
    import hashlib

    backend, cache, _data = make(tmp_path, 0)
    item = cache.get("new")
    item.open(lambda: None, truncate=True)
    payload = os.urandom(3 * M)
    item.write_from(memoryview(payload), 0)
    item.close()
    assert cache.shutdown(10)
    digest = hashlib.md5(payload).hexdigest()
    assert item.fp.endswith("," + digest)
    known = backend._hashes[("new", "md5")]
    assert known[1] == digest
    # unchanged on disk: the memo answers; a rewrite (new ctime) does not
    assert backend.hash("new", "md5") == digest
    (tmp_path / "remote" / "new").write_bytes(b"other")
    assert backend.hash("new", "md5") == hashlib.md5(b"other").hexdigest()


def test_local_upload_makes_missing_parent_directories(tmp_path: Path) -> None:
    """As rclone's local backend: a pending file whose directory vanished is still uploaded."""
    backend = LocalBackend("local", str(tmp_path), {})
    w = backend.open_write("a/b/c.txt", 2, None)
    w.write(memoryview(b"hi"))
    w.close()
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"hi"


def test_cache_rename_is_whole_or_nothing(tmp_path: Path) -> None:
    _backend, cache, _data = make(tmp_path, 0)
    item = cache.get("pending")
    item.open(lambda: None, truncate=True)
    item.write_from(memoryview(b"data"), 0)
    item.close()
    import errno

    import pytest

    with pytest.raises(OSError) as ei:
        cache.rename("pending", "x" * 300)
    assert ei.value.errno == errno.ENAMETOOLONG
    assert cache.peek("pending") is item and item.path == "pending"
    assert Path(item.data_path).read_bytes() == b"data" and Path(item.meta_path).exists()
    cache.shutdown(10)
    assert (tmp_path / "remote" / "pending").read_bytes() == b"data"


def test_flush_callback_only_where_writes_stream(tmp_path: Path) -> None:
    """writes/full leave FLUSH unregistered (libfuse answers ENOSYS once, the kernel stops
    sending it); off and minimal stream writes and report upload errors at close."""
    from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
    from pyclone_docker.fuse.ops import FuseOps
    from pyclone_docker.vfs.vfs import VFS

    backend = LocalBackend("local", str(tmp_path), {})
    for mode, registered in (("off", True), ("minimal", True), ("writes", False), ("full", False)):
        opts = OptionValues.defaults(VOLUME_OPTIONS)
        opts.set("vfs_cache_mode", mode)
        cache = None if mode == "off" else Cache(backend, str(tmp_path / "cache"), mode)
        vfs = FuseOps(VFS(backend, opts, cache=cache))
        assert (getattr(vfs, "flush", None) is not None) == registered, mode
        if cache is not None:
            cache.shutdown(1)


def test_fsync_reaches_the_cache_disk(tmp_path: Path, monkeypatch) -> None:
    """fsync(2) on a cached file syncs its cache file (fdatasync for datasync) and, once per
    dirty spell, the metadata that makes the next start upload it. rclone's mount answers
    fsync with nothing done; an application that asks for durability gets it here."""
    from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
    from pyclone_docker.fuse.ops import FuseOps
    from pyclone_docker.lib import atomic as state
    from pyclone_docker.vfs.vfs import VFS

    calls: list[tuple[str, int]] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", fd)), real_fsync(fd))[1])
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(("fdatasync", fd)), real_fdatasync(fd))[1])
    synced_meta: list[str] = []
    real_atomic = state.atomic_write

    def atomic_write(path, data, mode=0o600, sync=True):
        if sync:
            synced_meta.append(path)
        return real_atomic(path, data, mode=mode, sync=sync)

    monkeypatch.setattr("pyclone_docker.vfs.cache.files.atomic_write", atomic_write)
    # no FUSE request is being served here: libfuse has no caller to report
    monkeypatch.setattr("pyclone_docker._vendor.mfusepy.fuse_get_context", lambda: (0, 0, 0))
    (tmp_path / "remote").mkdir()
    backend = LocalBackend("local", str(tmp_path / "remote"), {})
    for mode in ("minimal", "writes", "full"):
        opts = OptionValues.defaults(VOLUME_OPTIONS)
        opts.set("vfs_cache_mode", mode)
        cache = Cache(backend, str(tmp_path / "cache"), mode, write_back=60)
        vfs = FuseOps(VFS(backend, opts, cache=cache))
        try:
            fh = vfs.create(f"/db-{mode}", 0o644, os.O_RDWR)  # minimal caches read-write opens only
            item = cache.get(f"db-{mode}")
            vfs.write_from(fh, memoryview(b"page" * 1024), 0)
            calls.clear()
            synced_meta.clear()
            vfs.fsync(f"/db-{mode}", 0, fh)
            assert [c for c in calls if c[1] == item.fd] == [("fsync", item.fd)], mode
            assert synced_meta == [item.meta_path], mode
            assert json.loads(Path(item.meta_path).read_text())["Dirty"] is True
            calls.clear()
            vfs.write_from(fh, memoryview(b"more"), 4096)
            vfs.fsync(f"/db-{mode}", 1, fh)
            assert calls == [("fdatasync", item.fd)], mode  # and nothing else
            assert synced_meta == [item.meta_path], mode  # the Dirty record was already durable
            vfs.release(f"/db-{mode}", fh)
        finally:
            cache.shutdown(10)
        assert (tmp_path / "remote" / f"db-{mode}").read_bytes() == b"page" * 1024 + b"more"


def test_setting_times_keeps_a_cached_copy_valid(tmp_path: Path, monkeypatch) -> None:
    """touch of a cached file: the remote's modtime changes, the bytes do not; the next open
    must not take the copy for stale and fetch it all again (the hash is carried over)."""
    monkeypatch.setattr("pyclone_docker._vendor.mfusepy.fuse_get_context", lambda: (0, 0, 0))
    from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
    from pyclone_docker.fuse.ops import FuseOps
    from pyclone_docker.vfs.vfs import VFS

    backend, cache, data = make(tmp_path, 3 * M)
    opts = OptionValues.defaults(VOLUME_OPTIONS)
    opts.vfs_cache_mode = "full"
    vfs = FuseOps(VFS(backend, opts, cache=cache))
    fh = vfs.open("/f", os.O_RDONLY)
    buf = bytearray(3 * M)
    assert vfs.read_into(fh, memoryview(buf), 0) == 3 * M and bytes(buf) == data
    vfs.release("/f", fh)
    fetched = len(backend.reads)
    vfs.utimens("/f", (None, 1_600_000_000_123_456_789))
    assert os.stat(tmp_path / "remote" / "f").st_mtime_ns == 1_600_000_000_123_456_789
    fh = vfs.open("/f", os.O_RDONLY)
    assert vfs.read_into(fh, memoryview(buf), 0) == 3 * M and bytes(buf) == data
    vfs.release("/f", fh)
    assert len(backend.reads) == fetched  # served from the cache, not fetched again
    assert vfs.getattr("/f")["st_mtime"] == 1_600_000_000_123_456_789
    # a change of the bytes on the remote is still caught (the size alone may not move)
    (tmp_path / "remote" / "f").write_bytes(b"x" * (3 * M))
    os.utime(tmp_path / "remote" / "f", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    vfs.vfs.forget_all()
    fh = vfs.open("/f", os.O_RDONLY)
    assert vfs.read_into(fh, memoryview(buf), 0) == 3 * M and bytes(buf) == b"x" * (3 * M)
    vfs.release("/f", fh)
