"""Reading a composite file over its chunks, and writing one as rclone's chunker does.

The reader opens only the chunks a read covers, each for just the range wanted, one at a time.
The writer splits as bytes arrive: each chunk streams to the wrapped remote under a temporary
name (`<chunk name>_<transaction ID>`), so nothing is held but the caller's buffer and a
size unknown in advance works. At close, as rclone's put: a file that fits one chunk (and
does not look like metadata) is renamed to its own name; otherwise the old version's chunks
go, the new ones are renamed to their active names (transactions rename; norename leaves them
and records the ID) and the metadata object is written last. A failure removes the new chunks.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from typing import Any

from . import meta as metafmt

log = logging.getLogger("pyclone")


class ChunkedReader:
    """Bytes [offset, offset + length) (length -1: to the end) of chunks [(inner path, size)]."""

    def __init__(self, inner: Any, chunks: list[tuple[str, int]], offset: int, length: int, shown: str) -> None:
        self._inner = inner
        self._chunks = chunks
        self._shown = shown
        total = sum(size for _, size in chunks)
        self._pos = min(offset, total)
        self._end = total if length < 0 else min(total, offset + length)
        self._idx = 0
        self._start = 0  # offset of chunk _idx in the file
        while self._idx < len(chunks) and self._start + chunks[self._idx][1] <= self._pos:
            self._start += chunks[self._idx][1]
            self._idx += 1
        self._cur: Any = None
        self._cur_left = 0

    def readinto(self, view: memoryview) -> int:
        got = 0
        want = min(len(view), self._end - self._pos)
        while got < want:
            if self._cur is None:
                path, size = self._chunks[self._idx]
                off = self._pos - self._start
                self._cur_left = min(size, self._end - self._start) - off
                self._cur = self._inner.open_read(path, off, self._cur_left)
            n = self._cur.readinto(view[got:got + min(want - got, self._cur_left)])
            if n <= 0:
                self.close()
                raise OSError(errno.EIO, f"{self._shown}: chunk {self._chunks[self._idx][0]!r} is shorter than "
                              "its listed size")
            got += n
            self._pos += n
            self._cur_left -= n
            if self._cur_left == 0:
                self._cur.close()
                self._cur = None
                self._start += self._chunks[self._idx][1]
                self._idx += 1
        return got

    def close(self) -> None:
        cur, self._cur = self._cur, None
        self._pos = self._end
        if cur is not None:
            cur.close()


class ChunkWriter:
    """One upload through the chunker backend `b` (a ChunkerBackend)."""

    def __init__(self, b: Any, path: str, size: int, mtime_ns: int | None, mode: int | None) -> None:
        self._b = b
        self._path = path
        self._size = size
        self.mtime_ns = mtime_ns  # the VFS may set it before close (a utime on the open file)
        self._opened_mtime = mtime_ns
        self._mode = mode
        self._xact = b.new_xact_id(path)
        self._done: list[tuple[str, int]] = []  # (inner name now, size) of the chunks written
        self._cur: Any = None
        self._cur_name = ""
        self._cur_left = 0
        self._total = 0
        self._head = bytearray()  # the first bytes: does a one-chunk file look like metadata?
        self._hasher = hashlib.new(b.hash_kind, usedforsecurity=False) if b.hash_kind else None
        self.source_hashes: dict[str, str] = {}  # the VFS's, when it has them: used instead of hashing

    def _open_chunk(self) -> None:
        b = self._b
        self._cur_name = b.names.make(self._path, len(self._done), "", self._xact)
        size = min(b.chunk_size, self._size - self._total) if self._size >= 0 else -1
        self._cur = b.inner.open_write(self._cur_name, size, self.mtime_ns, self._mode)
        self._cur_left = b.chunk_size

    def _close_chunk(self) -> None:
        cur, self._cur = self._cur, None
        if self.mtime_ns != self._opened_mtime and hasattr(cur, "mtime_ns"):
            cur.mtime_ns = self.mtime_ns
        cur.close()
        self._done.append((self._cur_name, self._b.chunk_size - self._cur_left))

    def write(self, view: memoryview) -> int:
        n = len(view)
        if self._hasher is not None:
            self._hasher.update(view)
        if len(self._head) <= metafmt.MAX_METADATA_SIZE:
            self._head += view[:metafmt.MAX_METADATA_SIZE + 1 - len(self._head)]
        off = 0
        while off < n:
            if self._cur is None:
                self._open_chunk()
            k = min(self._cur_left, n - off)
            self._cur.write(view[off:off + k])
            self._cur_left -= k
            off += k
            if self._cur_left == 0:
                self._close_chunk()
        self._total += n
        return n

    def _digests(self) -> tuple[str, str]:
        b = self._b
        kind = b.hash_kind
        if not kind:
            return "", ""
        given = self.source_hashes.get(kind, "")
        other = "sha1" if kind == "md5" else "md5"
        if not given and b.hash_fallback and self.source_hashes.get(other):  # *quick: the source's other hash
            kind, given = other, self.source_hashes[other]
        digest = given or (self._hasher.hexdigest() if self._hasher is not None else "")
        return (digest, "") if kind == "md5" else ("", digest)

    def close(self) -> None:
        try:
            if self._cur is not None or not self._done:
                if self._cur is None:
                    self._open_chunk()  # an empty file is one empty chunk
                self._close_chunk()
            if self._size >= 0 and self._total != self._size:
                raise OSError(errno.EIO, f"incorrect upload size {self._total} != {self._size}", self._path)
            self._commit()
        except BaseException:
            self.abort()
            raise

    def _commit(self) -> None:
        b, path = self._b, self._path
        one = len(self._done) == 1
        need_meta = not one or (self._total <= metafmt.MAX_METADATA_SIZE and metafmt.made_by_chunker(bytes(self._head)))
        if b.use_meta and not need_meta and not b.hash_all:
            b.remove_old_chunks(path)
            b.move_over(self._done[0][0], path)
            self._done = []
            b._plain_written = path
            return
        b.remove_old_chunks(path)
        xact = self._xact
        if not b.no_rename:
            for i, (name, size) in enumerate(self._done):
                final = b.names.make(path, i)
                b.move_over(name, final)
                self._done[i] = (final, size)
            xact = ""
        written = list(self._done)
        self._done = []  # from here the new version stands: no rollback of its chunks
        if not b.use_meta:
            try:
                if not b.inner.stat(path).is_dir:
                    b.inner.delete(path)  # a stale metadata object or plain file
            except FileNotFoundError:
                pass
            if self.mtime_ns is not None and self.mtime_ns != self._opened_mtime:
                b.inner.set_modtime(written[0][0], self.mtime_ns)
            return
        md5, sha1 = self._digests()
        data = metafmt.marshal(self._total, len(written), md5, sha1, xact)
        w = b.inner.open_write(path, len(data), self.mtime_ns, self._mode)
        try:
            w.write(memoryview(data))
        except BaseException:
            w.abort()
            raise
        w.close()

    def abort(self) -> None:
        cur, self._cur = self._cur, None
        if cur is not None:
            cur.abort()
        for name, _ in self._done:
            try:
                self._b.inner.delete(name)
            except OSError as e:
                log.error("%s: Failed to remove temporary chunk: %s", name, e)
        self._done = []
