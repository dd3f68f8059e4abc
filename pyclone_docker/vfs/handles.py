"""Open-file handles for `--vfs-cache-mode off`: data streams straight to and from the backend.

The rules are rclone's (its VFS docs, "--vfs-cache-mode off"): a write handle only appends
in order, an existing file must be opened with O_TRUNC, and a read handle reopens the
stream to seek. Out-of-order requests from libfuse's worker threads are given
--vfs-write-wait / --vfs-read-wait to fall into sequence first.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Any

from ..backends.base import FEATURE_RANDOM_READ, Backend, read_full
from .chunked import ChunkedReader
from .readahead import ReadAhead, buffers_for

READ_AHEAD_AFTER = 1 << 20  # bytes read in order after a seek before the read-ahead resumes


def _wait_for(cond: threading.Condition, ready, timeout: float) -> bool:
    """Wait on `cond` (held) until ready() or the timeout passes."""
    if ready():
        return True
    deadline = time.monotonic() + timeout
    while not ready():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        cond.wait(left)
    return True


class ReadHandle:
    """A download. Backends with cheap random reads are read in place with no lock at all."""

    __slots__ = ("backend", "path", "reader", "pos", "cond", "direct", "read_wait", "no_seek", "chunk", "limit",
                 "buffers", "stream", "plain", "run")

    def __init__(self, backend: Backend, path: str, read_wait: float, no_seek: bool,
                 chunk: int = 128 << 20, limit: int = -1, size: int = -1, buffer_size: int = 0) -> None:
        self.backend = backend
        self.path = path
        self.chunk, self.limit = chunk, limit
        self.buffers = buffers_for(buffer_size, size)
        self.pos = 0
        self.read_wait = read_wait
        self.no_seek = no_seek
        # pread is positional and thread safe: no ordering to enforce, no chunks to fetch
        self.direct = FEATURE_RANDOM_READ in backend.features and not no_seek
        self.plain = False  # reading without read-ahead since a seek (see read_into)
        self.run = 0  # bytes read in order since then
        self.reader = backend.open_read(path) if self.direct else self._open(0)
        self.cond = threading.Condition()
        self.stream: Any = None  # the VFS's record of it, where passthrough needs one

    def _open(self, offset: int, read_ahead: bool = True) -> ChunkedReader | ReadAhead:
        stream = ChunkedReader(self.backend, self.path, offset, self.chunk, self.limit)
        return ReadAhead(stream, self.buffers, self.path) if self.buffers and read_ahead else stream

    def read_into(self, view: memoryview, offset: int) -> int:
        if self.direct:
            return self.reader.pread_into(view, offset)
        with self.cond:
            # rclone's rule: only a request a little ahead of the stream waits (--vfs-read-wait)
            # for the ones before it; a jump elsewhere seeks at once
            gap = offset - self.pos
            if 0 < gap < 8 * min(len(view), 1 << 20):
                _wait_for(self.cond, lambda: self.pos == offset, self.read_wait)
            if self.pos != offset:
                if self.no_seek:
                    raise OSError(errno.ESPIPE, "can't seek in file with --no-seek", self.path)
                self.reader.close()
                # after a seek, no read-ahead until the reads run in order again: a random
                # reader would pay for --buffer-size of fetching (and decrypting) per jump
                self.reader = self._open(offset, read_ahead=False)
                self.plain, self.run = bool(self.buffers), 0
                self.pos = offset
            n = read_full(self.reader, view)  # FUSE wants the whole request unless at EOF
            self.pos += n
            if self.plain:
                self.run += n
                if self.run >= READ_AHEAD_AFTER:  # sequential again: read ahead from here
                    self.reader = ReadAhead(self.reader, self.buffers, self.path)
                    self.plain = False
            self.cond.notify_all()
            return n

    def flush(self) -> None:
        pass

    def release(self) -> None:
        self.reader.close()


class WriteHandle:
    """An upload that must arrive in order. Size is what has been written so far."""

    __slots__ = ("backend", "path", "writer", "pos", "cond", "truncated", "write_wait", "written",
                 "on_close", "error", "mtime_ns", "mode")

    def __init__(self, backend: Backend, path: str, truncated: bool, write_wait: float, on_close,
                 mode: int | None = None) -> None:
        self.backend = backend
        self.path = path
        self.mode = mode  # permission bits of a file this handle creates
        self.writer = None
        self.pos = 0
        self.truncated = truncated
        self.write_wait = write_wait
        self.written = False
        self.on_close = on_close
        self.error: OSError | None = None
        self.mtime_ns: int | None = None
        self.cond = threading.Condition()
        if truncated:
            self._open()

    def _open(self) -> None:
        if not self.truncated:
            # rclone: "Can't open for write without O_TRUNC on existing file without --vfs-cache-mode >= writes"
            raise OSError(errno.EPERM, "can't write to an existing file without O_TRUNC "
                          "unless --vfs-cache-mode >= writes", self.path)
        self.writer = self.backend.open_write(self.path, mode=self.mode)

    @property
    def size(self) -> int:
        return self.pos

    def read_into(self, view: memoryview, offset: int) -> int:
        # a read+write open in cache mode off is write only (rclone's WriteFileHandle.Read)
        raise OSError(errno.EPERM, "can't read and write a file without --vfs-cache-mode >= minimal", self.path)

    def write_from(self, view: memoryview, offset: int) -> int:
        with self.cond:
            if not _wait_for(self.cond, lambda: self.pos == offset, self.write_wait):
                raise OSError(errno.ESPIPE, "can't seek in file without --vfs-cache-mode >= writes", self.path)
            if self.writer is None:
                if self.written:
                    raise OSError(errno.EBADF, "file already closed", self.path)
                self._open()
            n = self.writer.write(view)
            self.pos += n
            self.written = True
            self.cond.notify_all()
            return n

    def truncate(self, size: int) -> None:
        with self.cond:
            if size == self.pos:
                return
            if size == 0 and not self.written:
                self.truncated = True
                if self.writer is None:
                    self._open()
                return
            raise OSError(errno.EPERM, "can't truncate an open file without --vfs-cache-mode >= writes", self.path)

    def fsync(self, datasync: bool = False) -> None:
        fd = getattr(self.writer, "fd", -1)
        if isinstance(fd, int) and fd >= 0:
            (os.fdatasync if datasync else os.fsync)(fd)

    def flush(self) -> None:
        # Commit on the first flush after writing, so that upload errors reach close(2).
        with self.cond:
            if self.writer is not None and self.written:
                self._commit()

    def _commit(self) -> None:
        writer, self.writer = self.writer, None
        try:
            if self.mtime_ns is not None:
                writer.mtime_ns = self.mtime_ns
            writer.close()
        except OSError as e:
            self.error = e
            raise
        finally:
            self.on_close(self)

    def release(self) -> None:
        with self.cond:
            if self.writer is not None:
                self._commit()


class CachedHandle:
    """An open file backed by the disk cache: random reads and writes, seeks, truncation."""

    __slots__ = ("item", "readable", "append", "passthrough", "writable")

    def __init__(self, item, readable: bool, append: bool) -> None:
        self.item = item
        self.readable = readable
        self.append = append
        self.passthrough: Any = None  # the mount's Passthrough when the kernel serves this open
        self.writable = False

    @property
    def path(self) -> str:
        return self.item.path

    @path.setter
    def path(self, value: str) -> None:
        pass  # the cache moves the item itself on rename

    @property
    def size(self) -> int:
        return self.item.size

    def read_into(self, view: memoryview, offset: int) -> int:
        if not self.readable:
            raise OSError(errno.EBADF, "file not open for reading", self.item.path)
        return self.item.read_into(view, offset)

    def write_from(self, view: memoryview, offset: int) -> int:
        if self.append:
            return self.item.append(view)
        return self.item.write_from(view, offset)

    def truncate(self, size: int) -> None:
        self.item.truncate(size)

    def flush(self) -> None:
        pass  # uploads happen on the write-back schedule, after the last close

    def fsync(self, datasync: bool = False) -> None:
        self.item.fsync(datasync)

    def release(self) -> None:
        try:
            if self.passthrough is not None:
                self.item.close_passthrough(self.passthrough, self.writable)
        finally:
            self.item.close()


Handle = ReadHandle | WriteHandle | CachedHandle  # what an open of a file returns
