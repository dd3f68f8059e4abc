"""No remote I/O under a lock in the VFS cache: fetches (downloaders.py) and uploads
(writeback.py) hold no lock while they talk to the remote, so a slow or stuck remote call
delays only what needs its bytes. The remote is tests/support/faulty.py over a local
directory: a call can be held until the test lets it go, delayed or made to fail.

Timings are bounds, never sleeps that hope something happened: a held call stays held until
the test sets its event, and "is waiting" is read from the item's condition."""

from __future__ import annotations

import errno
import itertools
import json
import os
import threading
import time
from pathlib import Path

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.vfs.cache import Cache
from pyclone_docker.vfs.vfs import VFS
from tests.support.faulty import FaultyBackend

M = 1 << 20


def setup(tmp_path: Path, size: int = 8 * M, **cache_kw) -> tuple[FaultyBackend, Cache, bytes]:
    remote = tmp_path / "remote"
    remote.mkdir()
    data = os.urandom(size)
    (remote / "f").write_bytes(data)
    backend = FaultyBackend(LocalBackend("local", str(remote), {}), hold_timeout=20)
    cache_kw.setdefault("write_back", 3600)
    cache = Cache(backend, str(tmp_path / "cache"), "vol", **cache_kw)
    cache.start()
    return backend, cache, data


def opened(backend: FaultyBackend, cache: Cache, path: str = "f"):
    item = cache.get(path)
    item.open(lambda: backend.inner.stat(path), truncate=False)
    return item


def read(item, offset: int, n: int) -> bytes:
    buf = bytearray(n)
    got = item.read_into(memoryview(buf), offset)
    return bytes(buf[:got])


def waiters(item) -> int:
    """Threads blocked on the item's condition (waiting for a fetch or an upload)."""
    cond = item._cond
    return 0 if cond is None else len(cond._waiters)  # CPython's Condition keeps them here


def wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Runner(threading.Thread):
    """A call in a thread; its result or exception, and how long it took."""

    def __init__(self, fn, *args) -> None:
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result = self.error = None
        self.took = -1.0
        self.start()

    def run(self) -> None:
        t = time.monotonic()
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:
            self.error = e
        self.took = time.monotonic() - t

    def outcome(self, timeout: float = 20.0):
        self.join(timeout)
        assert not self.is_alive(), f"{self.fn} still running after {timeout} s"
        return self.result, self.error


def make_vfs(backend, cache: Cache, mode: str = "full") -> VFS:
    opts = OptionValues.defaults(VOLUME_OPTIONS)
    opts.vfs_cache_mode = mode
    return VFS(backend, opts, cache=cache)


# --- fetches ---------------------------------------------------------------------------------

def test_a_cached_range_is_read_while_a_fetch_of_another_is_held(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path)
    item = opened(backend, cache)
    assert read(item, 0, 4096) == data[:4096]  # [0, 1 MiB) is cached now
    n = 2000
    t = time.monotonic()
    for _ in range(n):
        read(item, 4096, 4096)
    alone = time.monotonic() - t
    backend.hold["open_read"] = go = threading.Event()
    cold = Runner(read, item, 6 * M, 4096)
    assert backend.wait_calls("open_read", 2)  # the fetch of 6 MiB is held in the remote now
    t = time.monotonic()
    for _ in range(n):
        assert read(item, 4096, 4096) == data[4096:8192]
    beside = time.monotonic() - t
    assert cold.is_alive()  # still held: the cached reads did not wait for it
    go.set()
    assert cold.outcome() == (data[6 * M:6 * M + 4096], None)
    item.close()
    cache.shutdown(1)
    # the same reads as with no fetch running (generous for a shared 2-core machine; the
    # old code held the item's lock for the fetch: these reads waited until it was let go)
    assert beside <= max(3 * alone, 0.5), (alone, beside)


def test_two_readers_of_one_missing_range_cause_one_fetch(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path)
    item = opened(backend, cache)
    backend.hold["open_read"] = go = threading.Event()
    a = Runner(read, item, 3 * M, 64 * 1024)
    assert backend.wait_calls("open_read", 1)
    b = Runner(read, item, 3 * M + 1000, 64 * 1024)
    assert wait_until(lambda: waiters(item) == 2)  # both wait, for the one fetch
    go.set()
    assert a.outcome() == (data[3 * M:3 * M + 65536], None)
    assert b.outcome() == (data[3 * M + 1000:3 * M + 1000 + 65536], None)
    assert backend.calls["open_read"] == 1
    item.close()
    cache.shutdown(1)


def test_a_failed_fetch_gives_eio_to_every_waiter_and_the_next_read_fetches_again(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path)
    item = opened(backend, cache)
    backend.hold["open_read"] = go = threading.Event()
    backend.fail_nth["open_read"] = {1}
    a = Runner(read, item, 2 * M, 4096)
    assert backend.wait_calls("open_read", 1)
    b = Runner(read, item, 2 * M + 8192, 4096)
    assert wait_until(lambda: waiters(item) == 2)
    go.set()
    for r in (a, b):
        result, error = r.outcome()
        assert isinstance(error, OSError) and error.errno == errno.EIO, (result, error)
    assert read(item, 2 * M, 4096) == data[2 * M:2 * M + 4096]  # not poisoned: fetched again
    assert backend.calls["open_read"] == 2
    item.close()
    cache.shutdown(1)


def test_a_stream_that_fails_midway_wakes_the_readers_of_the_rest(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path, buffer_size=4 * M)
    item = opened(backend, cache)
    assert read(item, 0, 4096) == data[:4096]  # [0, 1 MiB) cached; a read at 1 MiB is sequential
    assert wait_until(lambda: item.downloads.idle())  # its stream parked at 1 MiB
    # the parked stream goes on for [1 MiB, 5 MiB) and breaks in that window's second block
    backend.fail_reads_after = 2 * M + 4096
    backend.hold["reader.readinto"] = go = threading.Event()
    calls = backend.calls["reader.readinto"]
    a = Runner(read, item, M, 4096)
    assert backend.wait_calls("reader.readinto", calls + 1)  # the same stream, held
    b = Runner(read, item, 3 * M, 4096)
    assert wait_until(lambda: waiters(item) == 2)  # b waits for that stream too
    go.set()
    assert a.outcome() == (data[M:M + 4096], None)  # its block landed before the failure
    result, error = b.outcome()
    assert isinstance(error, OSError) and error.errno == errno.EIO, (result, error)
    assert backend.calls["open_read"] == 1  # one stream for both windows
    item.close()
    cache.shutdown(1)


def test_sequential_readers_of_one_file_share_one_stream(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path, size=24 * M, buffer_size=4 * M)
    backend.read_delay = 0.002  # a remote a little slower than the readers
    item = opened(backend, cache)
    item.open(lambda: backend.inner.stat("f"), truncate=False)

    def cat(step: int) -> bytes:
        out = bytearray()
        for pos in range(0, len(data), step):
            out += read(item, pos, step)
        return bytes(out)

    readers = [Runner(cat, 128 * 1024), Runner(cat, 64 * 1024)]
    for r in readers:
        assert r.outcome() == (data, None)
    streams = backend.streams
    assert sum(s.delivered for s in streams) == len(data)  # every byte fetched once
    spans = sorted((s.opened, s.closed) for s in streams)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), \
        "two streams at once: the readers did not share one"
    item.close()
    item.close()
    cache.shutdown(1)


def test_a_read_just_ahead_of_a_running_fetch_waits_for_it_not_for_a_second_stream(tmp_path: Path) -> None:
    backend, cache, data = setup(tmp_path)
    item = opened(backend, cache)
    backend.hold["reader.readinto"] = go = threading.Event()
    a = Runner(read, item, 0, 4096)  # a Download of [0, 1 MiB), held in its first block
    assert backend.wait_calls("reader.readinto", 1)
    b = Runner(read, item, M, 4096)  # just past its end: it is extended instead
    assert wait_until(lambda: waiters(item) == 2)
    assert backend.calls["open_read"] == 1  # no second stream while the first runs
    go.set()
    assert a.outcome() == (data[:4096], None)
    assert b.outcome() == (data[M:M + 4096], None)
    spans = sorted((s.opened, s.closed) for s in backend.streams)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
    item.close()
    cache.shutdown(1)


def test_a_write_waits_for_the_fetch_of_a_partly_cached_file_and_wins(tmp_path: Path) -> None:
    """Before its first change a clean item is fetched whole (a kill must leave a complete
    dirty file): the write waits for that fetch, lock released, and its bytes win."""
    backend, cache, data = setup(tmp_path, size=3 * M)
    item = opened(backend, cache)
    backend.hold["open_read"] = go = threading.Event()
    reader = Runner(read, item, 0, 4096)
    assert backend.wait_calls("open_read", 1)
    writer = Runner(item.write_from, memoryview(b"NEW BYTES"), 100)
    assert wait_until(lambda: waiters(item) == 2)
    go.set()
    assert writer.outcome() == (9, None)
    assert reader.outcome()[1] is None
    assert read(item, 0, 200) == data[:100] + b"NEW BYTES" + data[109:200]
    item.close()
    assert cache.shutdown(10)
    assert (tmp_path / "remote" / "f").read_bytes() == data[:100] + b"NEW BYTES" + data[109:]


def test_fetched_bytes_never_overwrite_newer_written_ones(tmp_path: Path) -> None:
    """A fetch held mid-stream while the file is cut, rewritten and grown again (none of
    which waits for it): the fetch, let go, lands none of its stale bytes."""
    backend, cache, _data = setup(tmp_path, size=3 * M)
    item = opened(backend, cache)
    backend.hold["reader.readinto"] = go = threading.Event()
    reader = Runner(read, item, 0, 4096)
    assert backend.wait_calls("reader.readinto", 1)
    t = time.monotonic()
    item.truncate(0)
    item.write_from(memoryview(b"written"), 0)
    item.truncate(3 * M)
    took = time.monotonic() - t
    assert reader.is_alive() and took < 5  # none of it waited for the held fetch
    go.set()
    assert reader.outcome() == (b"written" + bytes(4089), None)
    assert read(item, 0, 3 * M) == b"written" + bytes(3 * M - 7)
    item.close()
    assert cache.shutdown(10)
    assert (tmp_path / "remote" / "f").read_bytes() == b"written" + bytes(3 * M - 7)


def test_an_o_trunc_open_of_a_large_remote_file_fetches_nothing(tmp_path: Path) -> None:
    backend, cache, _data = setup(tmp_path, size=8 * M)
    item = cache.get("f")
    item.open(lambda: backend.inner.stat("f"), truncate=True)
    item.write_from(memoryview(b"new"), 0)
    item.close()
    assert backend.calls["open_read"] == 0
    assert cache.shutdown(10)
    assert (tmp_path / "remote" / "f").read_bytes() == b"new"


def test_a_kill_after_a_clean_item_was_cut_loses_nothing(tmp_path: Path) -> None:
    """truncate cuts a clean item's data file before Dirty is recorded (so only what stays is
    fetched); a kill right there leaves metadata that disagrees with the file: dropped at the
    next start, and the remote's copy is read again."""
    backend, cache, data = setup(tmp_path, size=2 * M)
    item = opened(backend, cache)
    assert read(item, 0, 2 * M) == data
    item.close()
    os.truncate(item.data_path, 1000)  # as truncate() leaves it, killed before _mark_dirty
    again = Cache(backend, str(tmp_path / "cache"), "vol")
    again.start()
    assert again.peek("f") is None
    item = opened(backend, again)
    assert read(item, 0, 2 * M) == data
    item.close()
    again.shutdown(1)
    cache.shutdown(1)


# --- uploads ---------------------------------------------------------------------------------

def dirty_file(backend: FaultyBackend, cache: Cache, path: str, content: bytes):
    item = cache.get(path)
    item.open(lambda: None, truncate=True)
    item.write_from(memoryview(content), 0)
    item.close()
    return item


def test_an_upload_held_midway_blocks_no_open_read_or_stat(tmp_path: Path) -> None:
    backend, cache, _data = setup(tmp_path)
    vfs = make_vfs(backend, cache)
    item = dirty_file(backend, cache, "up", b"x" * (3 * M))
    backend.hold["writer.write"] = go = threading.Event()
    upload = Runner(cache.writeback._upload, "up")
    assert backend.wait_calls("writer.write", 1)  # the upload is in the remote's hands now
    t = time.monotonic()
    entry = vfs.stat("/up")
    handle = vfs.open("/up", os.O_RDONLY)
    buf = bytearray(4096)
    assert handle.read_into(memoryview(buf), M) == 4096 and bytes(buf) == b"x" * 4096
    vfs.release(handle)
    took = time.monotonic() - t
    assert upload.is_alive() and entry.size == 3 * M
    assert took < 5, took  # the old upload held the item's lock: open waited for all of it
    go.set()
    assert upload.outcome()[1] is None
    assert not item.dirty and (tmp_path / "remote" / "up").read_bytes() == b"x" * (3 * M)
    cache.shutdown(1)


def test_a_rename_during_an_upload_does_not_wait_and_the_file_lands_under_its_new_name(tmp_path: Path) -> None:
    backend, cache, _data = setup(tmp_path)
    vfs = make_vfs(backend, cache)
    dirty_file(backend, cache, "old", b"renamed while uploading")
    backend.hold["writer.close"] = go = threading.Event()
    upload = Runner(cache.writeback._upload, "old")
    assert backend.wait_calls("writer.close", 1)  # all sent; the commit is held
    t = time.monotonic()
    vfs.rename("/old", "/new")
    took = time.monotonic() - t
    assert upload.is_alive() and took < 5, took  # the rename did not wait for the transfer
    go.set()
    upload.outcome()
    assert cache.writeback.flush(10)
    remote = tmp_path / "remote"
    assert (remote / "new").read_bytes() == b"renamed while uploading"
    assert not (remote / "old").exists()  # the copy sent under the old name was removed
    assert not cache.peek("new").dirty
    cache.shutdown(1)


def test_a_write_during_an_upload_queues_it_again_and_the_newest_bytes_land(tmp_path: Path) -> None:
    backend, cache, _data = setup(tmp_path)
    item = dirty_file(backend, cache, "f2", b"first version")
    backend.hold["writer.close"] = go = threading.Event()
    upload = Runner(cache.writeback._upload, "f2")
    assert backend.wait_calls("writer.close", 1)
    item.open(lambda: None, truncate=False)  # an open and a write while it is sent
    item.write_from(memoryview(b"SECOND"), 0)
    item.close()
    go.set()
    assert upload.outcome() == ((True, "f2", None), None)  # changed meanwhile: to go again
    assert item.dirty and json.loads(Path(item.meta_path).read_text())["Dirty"] is True  # a kill now loses nothing
    del backend.hold["writer.close"]
    assert cache.writeback.flush(10)
    assert (tmp_path / "remote" / "f2").read_bytes() == b"SECONDversion"
    assert not item.dirty and json.loads(Path(item.meta_path).read_text())["Dirty"] is False
    cache.shutdown(1)


def test_a_rename_over_a_file_being_uploaded_still_waits(tmp_path: Path) -> None:
    """The one wait for a transfer (besides unlink and unmount): the upload of the file
    replaced must not land after the move."""
    backend, cache, _data = setup(tmp_path)
    vfs = make_vfs(backend, cache, "writes")
    dirty_file(backend, cache, "dst", b"replaced")
    (tmp_path / "remote" / "src").write_bytes(b"renamed over it")
    backend.hold["writer.close"] = go = threading.Event()
    upload = Runner(cache.writeback._upload, "dst")
    assert backend.wait_calls("writer.close", 1)
    renamer = Runner(vfs.rename, "/src", "/dst")
    assert wait_until(lambda: waiters(cache.peek("dst")) == 1)  # it waits for the upload
    go.set()
    upload.outcome()
    assert renamer.outcome()[1] is None
    assert cache.writeback.flush(10)
    assert (tmp_path / "remote" / "dst").read_bytes() == b"renamed over it"
    cache.shutdown(1)


def test_a_slow_remote_delays_only_its_own_file(tmp_path: Path) -> None:
    """With every remote call 50 ms slower, reads of a cached file run at local speed while
    another file is fetched and a third uploaded."""
    backend, cache, data = setup(tmp_path)
    (tmp_path / "remote" / "g").write_bytes(data)
    item = opened(backend, cache)
    read(item, 0, 8 * M)  # all of f cached
    dirty_file(backend, cache, "up", b"u" * M)
    backend.delay = 0.05
    backend.read_delay = 0.05
    t = time.monotonic()
    for pos in range(0, 8 * M, 64 * 1024):
        read(item, pos, 64 * 1024)
    alone = time.monotonic() - t
    other = opened(backend, cache, "g")
    fetch = Runner(read, other, 0, 8 * M)
    upload = Runner(cache.writeback._upload, "up")
    t = time.monotonic()
    for pos in range(0, 8 * M, 64 * 1024):
        read(item, pos, 64 * 1024)
    beside = time.monotonic() - t
    assert fetch.outcome()[0] == data and upload.outcome()[1] is None
    assert beside < 0.05, (alone, beside)  # not one remote call's delay
    item.close()
    other.close()
    cache.shutdown(1)
