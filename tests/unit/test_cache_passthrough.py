"""A cache item's passthrough bookkeeping (CacheItem.open_passthrough and friends), with the
kernel's part played by writes to the data file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.cache import KERNEL_WRITE_SENTINEL_NS, Cache
from pyclone_docker.vfs.vfs import VFS


class FakePassthrough:
    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []

    def open_backing(self, fd: int) -> int:
        self.opened.append(fd)
        return 7

    def close_backing(self, backing_id: int) -> None:
        self.closed.append(backing_id)


def setup(tmp_path: Path, content: bytes = b"remote data") -> tuple[LocalBackend, Cache]:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "f").write_bytes(content)
    os.utime(remote / "f", ns=(10**18, 10**18))
    backend = LocalBackend("local", str(remote), {})
    return backend, Cache(backend, str(tmp_path / "cache"), "vol")


def cached_whole(backend: LocalBackend, cache: Cache):
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    buf = bytearray(64)
    item.read_into(memoryview(buf), 0)  # fetches it all
    return item


def meta(cache: Cache) -> dict:
    return json.loads(Path(cache.meta_root, "f").read_text())


def test_only_a_wholly_cached_file_nobody_else_has_open_starts_it(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cache.get("f")
    item.open(lambda: backend.stat("f"), truncate=False)
    assert item.open_passthrough(pt, writable=False, readable=True) == 0  # nothing cached yet
    buf = bytearray(64)
    item.read_into(memoryview(buf), 0)
    item.open(lambda: backend.stat("f"), truncate=False)  # a second open, served here
    assert item.open_passthrough(pt, writable=False, readable=True) == 0
    item.close()
    assert item.open_passthrough(pt, writable=False, readable=True) == 7
    item.open(lambda: backend.stat("f"), truncate=False)
    assert item.open_passthrough(pt, writable=False, readable=True) == 7  # then every open joins it
    item.close_passthrough(pt, writable=False)
    item.close()
    assert pt.closed == []
    item.close_passthrough(pt, writable=False)
    item.close()
    assert pt.closed == [7] and item.passthrough_id == 0


def test_a_writer_that_wrote_nothing_leaves_the_item_clean(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cached_whole(backend, cache)
    assert item.open_passthrough(pt, writable=True, readable=False) == 7
    assert item.dirty and meta(cache)["Dirty"]  # on disk before the kernel may write
    assert os.stat(item.data_path).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
    item.sync_from_disk()  # a stat meanwhile
    assert item.modtime_ns == 10**18
    item.close_passthrough(pt, writable=True)
    item.close()
    assert not item.dirty and not meta(cache)["Dirty"] and item.modtime_ns == 10**18
    assert cache.writeback.pending() == 0


def test_a_writer_that_wrote_is_uploaded_with_the_data_file_size_and_mtime(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cached_whole(backend, cache)
    item.open_passthrough(pt, writable=True, readable=False)
    fd = os.open(item.data_path, os.O_WRONLY)  # the kernel's write, as passthrough makes it
    os.pwrite(fd, b"!", 20)
    os.close(fd)
    mtime = os.stat(item.data_path).st_mtime_ns
    item.sync_from_disk()
    assert (item.size, item.modtime_ns) == (21, mtime)
    item.close_passthrough(pt, writable=True)
    item.close()
    assert item.dirty and item.ranges.contains(0, 21)
    assert cache.writeback.flush(10)
    assert (tmp_path / "remote" / "f").read_bytes() == b"remote data" + bytes(9) + b"!"


def test_a_restart_after_a_kill_mid_open_keeps_the_metadata_modtime(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    item = cached_whole(backend, cache)
    item.open_passthrough(FakePassthrough(), writable=True, readable=False)
    # SIGKILL here: the next start finds a dirty item whose data file has the sentinel mtime
    again = Cache(backend, str(tmp_path / "cache"), "vol").get("f")
    assert again.load() and again.dirty
    assert again.modtime_ns == 10**18  # the file's own, not the open's, nor 1 ns after 1970


def test_a_writer_that_can_read_joins_but_never_starts_it_and_is_watched(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cached_whole(backend, cache)
    assert item.open_passthrough(pt, writable=True, readable=True) == 0  # O_RDWR could mmap it
    item.close()
    item.open(lambda: backend.stat("f"), truncate=False)
    assert item.open_passthrough(pt, writable=False, readable=True) == 7  # a reader starts it
    item.open(lambda: backend.stat("f"), truncate=False)
    assert item.open_passthrough(pt, writable=True, readable=True) == 7  # O_RDWR must join
    item.close_passthrough(pt, writable=True)
    item.close()
    item.close_passthrough(pt, writable=False)
    item.close()
    assert item in cache.watched and not item.dirty
    assert cache._evict(item) == 0  # a mapping may still write it: never evicted
    # a shared mapping writes the data file after the last close (where the kernel reports
    # the close before the munmap); the cleaner's next round sees it
    fd = os.open(item.data_path, os.O_WRONLY)
    os.pwrite(fd, b"M", 0)
    os.close(fd)
    cache.clean()
    assert item.dirty and cache.writeback.pending() == 1
    assert cache.writeback.flush(10)
    assert (tmp_path / "remote" / "f").read_bytes() == b"Memote data"
    # the next open checks once more and ends the watch: changes come through opens again
    item.open(lambda: backend.stat("f"), truncate=False)
    assert not item.maybe_mapped and item not in cache.watched
    item.close()


def test_the_unmount_uploads_what_a_mapping_wrote_after_close(tmp_path: Path) -> None:
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cached_whole(backend, cache)
    item.open_passthrough(pt, writable=False, readable=True)
    item.open(lambda: backend.stat("f"), truncate=False)
    item.open_passthrough(pt, writable=True, readable=True)
    for writable in (True, False):
        item.close_passthrough(pt, writable)
        item.close()
    fd = os.open(item.data_path, os.O_WRONLY)
    os.pwrite(fd, b"U", 0)
    os.close(fd)
    assert cache.shutdown(10)
    assert (tmp_path / "remote" / "f").read_bytes() == b"Uemote data"


def test_an_unmount_keeps_the_kernels_files_in_passthrough(tmp_path: Path, monkeypatch) -> None:
    """close_all (before the unmount) forgets the handles, but the kernel keeps such files open
    until the unmount ends: an open meanwhile must join the same backing id, and what the
    kernel wrote so far is uploaded."""
    # outside a FUSE request there is no caller to take the owner from (NULL on a clean machine)
    monkeypatch.setattr("pyclone_docker._vendor.mfusepy.fuse_get_context", lambda: (0, 0, 0))
    backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    pt.grant = lambda backing_id: None
    opts = OptionValues.defaults(VOLUME_OPTIONS)
    opts.vfs_cache_mode = "full"
    vfs = FuseOps(VFS(backend, opts, cache=cache))
    vfs.passthrough = pt
    fh = vfs.create("/new", 0o644, os.O_WRONLY)
    item = cache.peek("new")
    assert item.passthrough_id == 7
    fd = os.open(item.data_path, os.O_WRONLY)
    os.pwrite(fd, b"kernel bytes", 0)  # the kernel's write
    os.close(fd)
    vfs.close_all()
    assert item.passthrough_id == 7 and pt.closed == []
    assert (tmp_path / "remote" / "new").read_bytes() == b"kernel bytes"
    assert vfs.open_files() == 0 and fh


def test_a_truncate_sees_what_the_kernel_wrote(tmp_path: Path) -> None:
    _backend, cache = setup(tmp_path)
    pt = FakePassthrough()
    item = cache.get("new")
    item.open(lambda: None, truncate=True)
    assert item.open_passthrough(pt, writable=True, readable=False) == 7
    fd = os.open(item.data_path, os.O_WRONLY)
    os.pwrite(fd, b"x" * 4096, 0)  # the kernel's write; item.size still says 0
    os.close(fd)
    item.truncate(0)  # as ftruncate(fd, 0) or another open with O_TRUNC
    assert os.stat(item.data_path).st_size == 0 and item.size == 0
    item.close_passthrough(pt, writable=True)
    item.close()
