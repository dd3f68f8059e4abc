"""Chunked reading: rclone's doubling rule (its docs' 0-100M, 100M-300M, 300M-700M example)."""

from __future__ import annotations

import itertools
import threading

from pyclone_docker.backends.base import Entry
from pyclone_docker.vfs.chunked import ChunkedReader, chunk_ranges
from pyclone_docker.vfs.handles import ReadHandle

M = 1 << 20


def first(n: int, it) -> list:
    return list(itertools.islice(it, n))


def test_doubling_up_to_the_limit() -> None:
    got = first(5, chunk_ranges(0, 100 * M, 500 * M))
    assert [(o // M, (o + n) // M) for o, n in got] == [(0, 100), (100, 300), (300, 700), (700, 1200),
                                                        (1200, 1700)]


def test_limit_zero_means_fixed_chunks_and_off_means_unlimited() -> None:
    assert [(o // M, n // M) for o, n in first(4, chunk_ranges(0, 100 * M, 0))] == \
        [(0, 100), (100, 100), (200, 100), (300, 100)]
    assert [n // M for _, n in first(5, chunk_ranges(0, 100 * M, -1))] == [100, 200, 400, 800, 1600]


def test_chunking_off_is_one_stream() -> None:
    assert first(3, chunk_ranges(7, 0, -1)) == [(7, -1)]


class FakeBackend:
    """A streaming-only backend that records the ranges asked for."""

    features = frozenset()

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def open_read(self, path: str, offset: int = 0, length: int = -1):
        self.calls.append((offset, length))
        end = len(self.data) if length < 0 else min(len(self.data), offset + length)
        return _Stream(self.data[offset:end])

    def stat(self, path: str) -> Entry:
        return Entry(path, False, len(self.data))


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), len(self.data) - self.pos, 7)  # short reads, as networks give
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self) -> None:
        pass


def test_reader_reads_everything_in_doubling_chunks() -> None:
    data = bytes(range(256)) * 4
    fb = FakeBackend(data)
    r = ChunkedReader(fb, "f", 0, 10, 40)
    out = bytearray()
    buf = bytearray(33)
    while n := r.readinto(memoryview(buf)):
        out += buf[:n]
    assert bytes(out) == data
    assert fb.calls[:4] == [(0, 10), (10, 20), (30, 40), (70, 40)]


def test_read_handle_seeks_by_reopening_and_waits_for_sequence() -> None:
    data = bytes(range(256)) * 100
    fb = FakeBackend(data)
    h = ReadHandle(fb, "f", read_wait=0.01, no_seek=False, chunk=1000, limit=-1)
    buf = bytearray(100)
    assert h.read_into(memoryview(buf), 0) == 100 and bytes(buf) == data[:100]
    assert h.read_into(memoryview(buf), 5000) == 100 and bytes(buf) == data[5000:5100]
    assert fb.calls[-1] == (5000, 1000)  # a seek opens a new chunk at the new offset
    # an out-of-order read waits for the one before it
    results = {}

    def later() -> None:
        b = bytearray(100)
        results["later"] = (h.read_into(memoryview(b), 5200), bytes(b))

    h.read_wait = 2.0
    t = threading.Thread(target=later)
    t.start()
    calls = len(fb.calls)
    assert h.read_into(memoryview(buf), 5100) == 100
    t.join()
    assert results["later"] == (100, data[5200:5300])
    assert len(fb.calls) == calls  # no reopen was needed


def test_no_seek_refuses_seeks() -> None:
    import errno

    import pytest

    h = ReadHandle(FakeBackend(b"x" * 100), "f", read_wait=0.0, no_seek=True, chunk=10, limit=-1)
    buf = bytearray(10)
    h.read_into(memoryview(buf), 0)
    with pytest.raises(OSError) as ei:
        h.read_into(memoryview(buf), 50)
    assert ei.value.errno == errno.ESPIPE


def test_poll_interval_wires_backend_change_notify() -> None:
    from pyclone_docker.backends.base import FEATURE_CHANGE_NOTIFY
    from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
    from pyclone_docker.vfs.vfs import VFS

    class Notifying(FakeBackend):
        features = frozenset({FEATURE_CHANGE_NOTIFY})

        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.hooked: list = []

        def list(self, path: str) -> list[Entry]:
            return [Entry("a", False, 1)] if path == "" else []

        def change_notify(self, callback, interval: float) -> None:
            self.hooked.append((callback, interval))

    opts = OptionValues.defaults(VOLUME_OPTIONS)
    backend = Notifying(b"")
    vfs = VFS(backend, opts)
    assert backend.hooked and backend.hooked[0][1] == 60.0
    assert "a" in vfs.dircache.children("")
    assert len(vfs.dircache) == 1
    backend.hooked[0][0]("a")  # the backend says "a" changed: its directory is listed again
    assert len(vfs.dircache) == 0
    opts.values["poll_interval"] = 0.0
    backend.hooked.clear()
    VFS(backend, opts)
    assert not backend.hooked  # 0 disables polling
