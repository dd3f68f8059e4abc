"""`--buffer-size`: memory read-ahead for one open stream, after rclone's asyncreader.

A thread reads the stream in 1 MiB blocks and keeps at most `buffer-size` of them ready
ahead of the reader, so a slow remote keeps sending while the application is busy. Memory
is only held for data downloaded and not yet read; the blocks go back to the allocator
when the handle closes (glibc maps blocks this big, so the process shrinks again).
Used for streamed reads (backends without random access, or --no-seek); a backend read
in place with pread has nothing to gain from it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from ..backends.base import read_full

BLOCK = 1 << 20  # rclone's asyncreader.BufferSize


class Stream(Protocol):
    def readinto(self, view: memoryview) -> int: ...

    def close(self) -> None: ...


def buffers_for(buffer_size: int, object_size: int) -> int:
    """How many blocks to keep ahead: rclone's Account.WithBuffer rule (none for small files)."""
    if object_size < 0 or object_size >= buffer_size:
        return max(0, buffer_size // BLOCK)
    return object_size // BLOCK


class ReadAhead:
    """A Stream that reads `source` ahead in a thread, at most `buffers` blocks ahead.

    One consumer at a time (the caller serialises reads, as ReadHandle does)."""

    def __init__(self, source: Stream, buffers: int, name: str = "") -> None:
        self._source = source
        self._max = max(1, buffers)
        self._ready: deque[tuple[bytearray, int]] = deque()
        self._spare: list[bytearray] = []
        self._current: memoryview | None = None  # the unread rest of the block being consumed
        self._current_buf: bytearray | None = None
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._eof = False
        self._closed = False
        self._filling = True  # the thread owns the source until it stops
        self._thread = threading.Thread(target=self._fill, name=f"readahead:{name}", daemon=True)
        self._thread.start()

    # --- the filling thread -----------------------------------------------------------

    def _fill(self) -> None:
        try:
            while True:
                with self._cond:
                    while len(self._ready) >= self._max and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    buf = self._spare.pop() if self._spare else bytearray(BLOCK)
                n = read_full(self._source, memoryview(buf))
                with self._cond:
                    if n:
                        self._ready.append((buf, n))
                    if n < BLOCK:
                        self._eof = True
                    self._cond.notify_all()
                    if self._eof:
                        return
        except BaseException as e:  # handed to the reader: it decides what the error means
            with self._cond:
                self._error = e
                self._cond.notify_all()
        finally:
            with self._cond:
                self._filling = False
                closed = self._closed
            if closed:
                self._source.close()  # close() came while a read was in flight

    # --- the consumer -----------------------------------------------------------------

    def readinto(self, view: memoryview) -> int:
        if self._current is None and not self._next_block():
            return 0
        cur = self._current
        assert cur is not None
        n = min(len(view), len(cur))
        view[:n] = cur[:n]  # the copy happens outside the lock: the thread keeps reading
        if n == len(cur):
            self._recycle()
        else:
            self._current = cur[n:]
        return n

    def _next_block(self) -> bool:
        with self._cond:
            while not self._ready and not self._eof and self._error is None:
                self._cond.wait()
            if not self._ready:
                if self._error is not None:
                    raise self._error
                return False
            buf, n = self._ready.popleft()
            self._cond.notify_all()  # room for one more block
        self._current_buf = buf
        self._current = memoryview(buf)[:n]
        return True

    def _recycle(self) -> None:
        buf = self._current_buf
        if self._current is not None:
            self._current.release()
        self._current = self._current_buf = None
        if buf is not None and len(buf) == BLOCK:
            with self._cond:
                if len(self._spare) < 2:  # a couple for reuse; the rest go back to the OS
                    self._spare.append(buf)

    def buffered(self) -> int:
        """Bytes read from the source and not yet consumed (for tests and stats)."""
        with self._cond:
            held = sum(n for _, n in self._ready)
        cur = self._current
        return held + (len(cur) if cur is not None else 0)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            filling = self._filling
            self._ready.clear()
            self._spare.clear()
            self._cond.notify_all()
        if self._current is not None:
            self._current.release()
        self._current = self._current_buf = None
        if not filling:
            self._source.close()
        # else the thread closes the source as soon as its read returns
