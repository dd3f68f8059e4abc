"""`--buffer-size`: the in-memory read-ahead of a streamed read (rclone's asyncreader)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pyclone_docker.vfs.handles import ReadHandle
from pyclone_docker.vfs.readahead import BLOCK, ReadAhead, buffers_for

M = 1 << 20


class CountingStream:
    """A stream over bytes that records how much was handed out; can block or fail on demand."""

    def __init__(self, data: bytes, chunk: int = 64 * 1024, fail_at: int = -1) -> None:
        self.data, self.pos, self.chunk, self.fail_at = data, 0, chunk, fail_at
        self.gate = threading.Event()
        self.gate.set()
        self.closed = threading.Event()

    def readinto(self, view: memoryview) -> int:
        self.gate.wait()
        if 0 <= self.fail_at <= self.pos:
            raise OSError(5, "remote went away")
        n = min(len(view), len(self.data) - self.pos, self.chunk)
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self) -> None:
        self.closed.set()


def read_all(stream, size: int = 128 * 1024) -> bytes:
    out = bytearray()
    buf = bytearray(size)
    while n := stream.readinto(memoryview(buf)):
        out += buf[:n]
    return bytes(out)


def wait_until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_buffers_follow_rclones_rule() -> None:
    assert buffers_for(16 * M, 1 << 40) == 16
    assert buffers_for(16 * M, -1) == 16  # unknown size: the whole buffer
    assert buffers_for(16 * M, 5 * M + 3) == 5  # a file smaller than the buffer
    assert buffers_for(16 * M, M - 1) == 0  # small files are never buffered
    assert buffers_for(0, 1 << 40) == 0  # --buffer-size 0 turns it off


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 12345])
@pytest.mark.parametrize("read_size", [4096, 128 * 1024, 3 * BLOCK])
def test_data_is_the_streams_data(size: int, read_size: int) -> None:
    data = os.urandom(size)
    ra = ReadAhead(CountingStream(data), buffers=3)
    try:
        assert read_all(ra, read_size) == data
        assert ra.readinto(memoryview(bytearray(10))) == 0  # and EOF stays EOF
    finally:
        ra.close()


def test_reads_ahead_but_never_more_than_the_buffer() -> None:
    data = os.urandom(20 * BLOCK)
    src = CountingStream(data)
    ra = ReadAhead(src, buffers=4)
    try:
        buf = bytearray(4096)
        assert ra.readinto(memoryview(buf)) == 4096 and bytes(buf) == data[:4096]
        # the thread fills the buffer while nobody reads...
        wait_until(lambda: src.pos >= 5 * BLOCK)
        time.sleep(0.1)
        # ...and stops there: 4 blocks ready plus the one being consumed
        assert src.pos == 5 * BLOCK
        assert ra.buffered() == 5 * BLOCK - 4096
    finally:
        ra.close()


def test_an_error_reaches_the_reader_after_the_good_data() -> None:
    data = os.urandom(3 * BLOCK)
    ra = ReadAhead(CountingStream(data, fail_at=2 * BLOCK), buffers=8)
    try:
        buf = bytearray(BLOCK)
        assert ra.readinto(memoryview(buf)) == BLOCK and bytes(buf) == data[:BLOCK]
        assert ra.readinto(memoryview(buf)) == BLOCK and bytes(buf) == data[BLOCK:2 * BLOCK]
        with pytest.raises(OSError, match="remote went away"):
            ra.readinto(memoryview(buf))
    finally:
        ra.close()


def test_close_during_a_blocked_read_does_not_hang_and_closes_the_source_once() -> None:
    src = CountingStream(os.urandom(4 * BLOCK))
    ra = ReadAhead(src, buffers=2)
    assert ra.readinto(memoryview(bytearray(10))) == 10
    src.gate.clear()  # the next read of the remote blocks
    wait_until(lambda: not src.gate.is_set())
    t0 = time.monotonic()
    ra.close()
    assert time.monotonic() - t0 < 0.5
    if not src.closed.is_set():  # the thread is inside readinto: it closes when that returns
        src.gate.set()
        assert src.closed.wait(5)


def test_close_after_eof_closes_the_source() -> None:
    src = CountingStream(b"abc")
    ra = ReadAhead(src, buffers=2)
    assert read_all(ra) == b"abc"
    ra.close()
    assert src.closed.is_set()


class StreamingBackend:
    """No random reads: ReadHandle streams through ChunkedReader (and ReadAhead)."""

    features = frozenset()

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.streams: list[CountingStream] = []

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> CountingStream:
        end = len(self.data) if length < 0 else min(len(self.data), offset + length)
        s = CountingStream(self.data[offset:end])
        self.streams.append(s)
        return s


def test_read_handle_uses_the_buffer_for_big_files_and_seeks_restart_it() -> None:
    data = os.urandom(6 * BLOCK)
    backend = StreamingBackend(data)
    h = ReadHandle(backend, "f", read_wait=0.0, no_seek=False, chunk=0, limit=-1,
                   size=len(data), buffer_size=2 * BLOCK)
    buf = bytearray(128 * 1024)
    assert h.read_into(memoryview(buf), 0) == len(buf) and bytes(buf) == data[:len(buf)]
    assert isinstance(h.reader, ReadAhead)
    first = backend.streams[-1]
    wait_until(lambda: first.pos >= 3 * BLOCK)  # 2 blocks ahead + the current one
    # a seek drops the buffer and starts again at the new offset
    assert h.read_into(memoryview(buf), 4 * BLOCK) == len(buf)
    assert bytes(buf) == data[4 * BLOCK:4 * BLOCK + len(buf)]
    assert first.closed.wait(5)
    h.release()
    assert backend.streams[-1].closed.wait(5)


def test_read_handle_does_not_buffer_small_files_or_with_buffer_size_zero() -> None:
    small = StreamingBackend(os.urandom(BLOCK - 1))
    h = ReadHandle(small, "f", read_wait=0.0, no_seek=False, chunk=0, limit=-1, size=BLOCK - 1,
                   buffer_size=16 * M)
    assert not isinstance(h.reader, ReadAhead)
    h.release()
    big = StreamingBackend(os.urandom(4 * BLOCK))
    h = ReadHandle(big, "f", read_wait=0.0, no_seek=False, chunk=0, limit=-1, size=4 * BLOCK, buffer_size=0)
    assert not isinstance(h.reader, ReadAhead)
    h.release()


def test_after_a_seek_the_read_ahead_waits_for_reads_in_order() -> None:
    """A random reader pays for no read-ahead: after a seek the handle reads plainly, and reads
    ahead again once 1 MiB has been read in order (READ_AHEAD_AFTER)."""
    from pyclone_docker.vfs.handles import READ_AHEAD_AFTER

    data = os.urandom(8 * (1 << 20))
    backend = StreamingBackend(data)
    h = ReadHandle(backend, "f", read_wait=0.0, no_seek=False, chunk=0, limit=-1, size=len(data),
                   buffer_size=2 << 20)
    buf = bytearray(128 * 1024)
    h.read_into(memoryview(buf), 0)
    assert isinstance(h.reader, ReadAhead)
    pos = 3 << 20
    assert h.read_into(memoryview(buf), pos) == len(buf) and bytes(buf) == data[pos:pos + len(buf)]
    assert not isinstance(h.reader, ReadAhead)  # plain after the jump
    read = len(buf)
    while read < READ_AHEAD_AFTER:
        assert h.read_into(memoryview(buf), pos + read) == len(buf)
        assert bytes(buf) == data[pos + read:pos + read + len(buf)]
        read += len(buf)
    assert isinstance(h.reader, ReadAhead)  # in order again: reading ahead
    assert h.read_into(memoryview(buf), pos + read) == len(buf) and bytes(buf) == data[pos + read:pos + read + len(buf)]
    h.release()


def test_a_jump_does_not_wait_for_the_read_wait() -> None:
    """rclone's rule: only a request a little ahead of the stream waits --vfs-read-wait for the
    ones before it; one far away (or behind) seeks at once."""
    data = os.urandom(4 * (1 << 20))
    h = ReadHandle(StreamingBackend(data), "f", read_wait=5.0, no_seek=False, chunk=0, limit=-1,
                   size=len(data), buffer_size=0)
    buf = bytearray(4096)
    t0 = time.monotonic()
    for off in (3 << 20, 1 << 20, 0, 2 << 20):
        assert h.read_into(memoryview(buf), off) == len(buf) and bytes(buf) == data[off:off + len(buf)]
    assert time.monotonic() - t0 < 4.0  # not one 5 s wait (a guard, not a timing figure)
    h.release()
