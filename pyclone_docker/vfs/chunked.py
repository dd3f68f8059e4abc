"""Chunked reading (--vfs-read-chunk-size, --vfs-read-chunk-size-limit), as rclone does it.

A stream is opened for one chunk of the object at a time; each next chunk is twice the
previous one, up to the limit ('off' = no limit; a limit not above the chunk size means
every chunk has the same size). 100M with limit 500M reads 0-100M, 100M-300M, 300M-700M,
700M-1200M, 1200M-1700M...; a chunk size of 0 or 'off' reads the object as one stream.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..backends.base import Backend, Reader


def chunk_ranges(start: int, chunk: int, limit: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of successive chunks from `start`; length -1 means "to the end"."""
    if chunk <= 0:
        yield start, -1
        return
    size = chunk
    pos = start
    while True:
        yield pos, size
        pos += size
        if limit < 0:
            size *= 2
        elif limit > chunk:
            size = min(size * 2, limit)


class ChunkedReader:
    """A Reader over successive ranged streams of one object."""

    def __init__(self, backend: Backend, path: str, offset: int, chunk: int, limit: int) -> None:
        self.backend = backend
        self.path = path
        self._chunks = chunk_ranges(offset, chunk, limit)
        self._stream: Reader | None = None
        self._left = 0  # bytes still expected from the current stream (-1: unbounded)
        self._eof = False
        self._next()

    def _next(self) -> None:
        if self._stream is not None:
            self._stream.close()
        pos, length = next(self._chunks)
        self._stream = self.backend.open_read(self.path, pos, length)
        self._left = length

    def readinto(self, view: memoryview) -> int:
        while not self._eof:
            assert self._stream is not None
            want = len(view) if self._left < 0 else min(len(view), self._left)
            n = self._stream.readinto(view[:want])
            if n:
                if self._left > 0:
                    self._left -= n
                    if self._left == 0:
                        self._next()
                return n
            if self._left != 0:
                self._eof = True  # the stream ended before its chunk did: end of object
            else:
                self._next()
        return 0

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
