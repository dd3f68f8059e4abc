"""Reading and writing crypt contents over the inner backend's streams.

A read at plaintext offset X opens the inner object at the block that covers X (after its
32-byte header, for the nonce), decrypts whole 64 KiB blocks and drops what lies before X, so
ranged, chunked and cache reads stay cheap. A block that fails authentication (tampered,
truncated, swapped) is EIO, never wrong bytes; with pass_bad_blocks, zeros and a log line,
as rclone. Writes stream: each full block is sealed and handed to the inner writer at once,
so at most one block is held.

A large read (the VFS's read-ahead and the cache's downloads ask for 1 MiB) reads up to 8 blocks of
ciphertext at once and opens them on two threads: the caller's and one shared worker, so a
sequential read is not bound by one core's XSalsa20-Poly1305. A small (random) read opens just
its block, on the caller's thread.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...crypt import contents as fmt
from ..base import read_full

log = logging.getLogger("pyclone")

BATCH = 8  # blocks a large read takes in at once (512 KiB of plaintext)
_TWO_THREADS = (os.cpu_count() or 1) > 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _decrypt_pool() -> ThreadPoolExecutor:
    """One worker thread for the whole process, started by the first large read."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crypt-decrypt")
        return _pool


class CryptReader:
    """Plaintext bytes [offset, offset + length) (length -1: to the end) of one object."""

    def __init__(self, backend: Any, enc_path: str, shown: str, offset: int, length: int) -> None:
        self._b = backend
        self._enc, self._shown = enc_path, shown
        self._left = length  # plaintext bytes still wanted (-1: all)
        self._inner: Any = None
        self._pending = memoryview(b"")  # decrypted bytes not handed out yet
        self._done = length == 0
        self._error: str | None = None
        self._deferred: OSError | None = None  # a bad block after good ones: raised once those are read
        self._buf = bytearray(fmt.BLOCK_SIZE)
        self._cbuf: bytearray | None = None  # a large read's ciphertext and plaintext (made when first needed)
        self._pbuf: bytearray | None = None
        if self._done:
            return
        block, discard = divmod(offset, fmt.BLOCK_DATA)
        inner = backend.inner
        try:
            if block == 0:
                # one stream from the start: the header, then the blocks
                self._inner = inner.open_read(enc_path, 0, self._enc_length(0, offset, length, header=True))
                header = self._read_exact(fmt.HEADER_SIZE)
            else:
                head = inner.open_read(enc_path, 0, fmt.HEADER_SIZE)
                try:
                    header = self._read_exact(fmt.HEADER_SIZE, head)
                finally:
                    head.close()
                start = fmt.HEADER_SIZE + block * fmt.BLOCK_SIZE
                self._inner = inner.open_read(enc_path, start, self._enc_length(block, offset, length, header=False))
            if len(header) < fmt.HEADER_SIZE:
                raise fmt.Truncated(fmt.ERR_TOO_SHORT)
            self._dec = fmt.Decrypter(backend.keys.data_key, header, pass_bad_blocks=backend.pass_bad_blocks)
        except (fmt.ContentError, ValueError) as e:  # a bad header: not a crypt object
            self.close()
            raise OSError(errno.EIO, f"{shown}: {e}") from None
        except BaseException:
            self.close()
            raise
        self._block = block
        self._discard = discard

    @staticmethod
    def _enc_length(block: int, offset: int, length: int, header: bool) -> int:
        if length < 0:
            return -1
        last = (offset + length - 1) // fmt.BLOCK_DATA
        n = (last - block + 1) * fmt.BLOCK_SIZE
        return n + fmt.HEADER_SIZE if header else n

    def _read_exact(self, n: int, reader: Any = None) -> bytes:
        buf = bytearray(n)
        got = read_full(reader or self._inner, memoryview(buf))
        if got and got < n:
            raise fmt.Truncated(fmt.ERR_TOO_SHORT)
        return bytes(buf[:got])

    def _next_block(self) -> bool:
        """Decrypt the next block into _pending; False at the end."""
        view = memoryview(self._buf)
        n = read_full(self._inner, view)
        if n == 0:
            return False
        try:
            plain = self._dec.decrypt_block(self._block, view[:n])
        except fmt.ContentError as e:  # tampered, swapped, or cut inside a block: never its bytes
            raise OSError(errno.EIO, f"{self._shown}: block {self._block}: {e}") from None
        if self._dec.last_block_bad:  # pass_bad_blocks: zeros were given for it
            log.error("%s: block %d: %s: passed on as zeros (pass_bad_blocks)", self._shown, self._block,
                      fmt.ERR_BAD_BLOCK)
        self._block += 1
        mv = memoryview(plain)
        if self._discard:
            mv = mv[self._discard:]
            self._discard = 0
        self._pending = mv
        return True

    def _open_blocks(self, cview: memoryview, n: int, pview: memoryview, lo: int, hi: int) -> list[Any]:
        """Open blocks lo..hi-1 of a batch: (size, authentic) each, or the error of a cut one."""
        out: list[Any] = []
        bs, bd = fmt.BLOCK_SIZE, fmt.BLOCK_DATA
        for i in range(lo, hi):
            try:
                out.append(self._dec.open_block_into(self._block + i, cview[i * bs:min((i + 1) * bs, n)],
                                                     pview[i * bd:(i + 1) * bd]))
            except fmt.ContentError as e:
                out.append(e)
        return out

    def _next_batch(self, blocks: int) -> bool:
        """Read up to `blocks` blocks and open them (two threads from 4 blocks up) into _pending;
        False at the end. A bad block ends the batch: the good ones before it are handed out
        first, then its EIO (never its bytes)."""
        if self._cbuf is None or self._pbuf is None:
            self._cbuf, self._pbuf = bytearray(BATCH * fmt.BLOCK_SIZE), bytearray(BATCH * fmt.BLOCK_DATA)
        cview, pview = memoryview(self._cbuf)[:blocks * fmt.BLOCK_SIZE], memoryview(self._pbuf)
        n = read_full(self._inner, cview)
        if n == 0:
            return False
        count = -(-n // fmt.BLOCK_SIZE)
        if _TWO_THREADS and count >= 4:
            half = count // 2
            first = _decrypt_pool().submit(self._open_blocks, cview, n, pview, 0, half)
            mine = self._open_blocks(cview, n, pview, half, count)
            # the worker may be busy with another reader's blocks: then this thread opens them
            results = (self._open_blocks(cview, n, pview, 0, half) if first.cancel() else first.result()) + mine
        else:
            results = self._open_blocks(cview, n, pview, 0, count)
        total = 0
        for i, r in enumerate(results):
            index = self._block + i
            if isinstance(r, fmt.ContentError) or (not r[1] and not self._dec.pass_bad_blocks):
                why = r if isinstance(r, fmt.ContentError) else fmt.BadBlock(index)
                self._deferred = OSError(errno.EIO, f"{self._shown}: block {index}: {why}")
                break
            size, ok = r
            if not ok:  # pass_bad_blocks: zeros for it, as rclone
                pview[i * fmt.BLOCK_DATA:i * fmt.BLOCK_DATA + size] = bytes(size)
                self._dec.bad_blocks += 1
                log.error("%s: block %d: %s: passed on as zeros (pass_bad_blocks)", self._shown, index,
                          fmt.ERR_BAD_BLOCK)
            total = i * fmt.BLOCK_DATA + size
        else:
            i = len(results)
        self._block += i
        self._pending = pview[min(self._discard, total):total]
        self._discard = 0
        return True

    def _fill(self, wanted: int) -> bool:
        """Decrypt what the next `wanted` bytes need into _pending; False at the end."""
        blocks = -(-(wanted + self._discard) // fmt.BLOCK_DATA)
        if blocks >= 2 and self._deferred is None:
            return self._next_batch(min(blocks, BATCH))
        return self._next_block()

    def readinto(self, view: memoryview) -> int:
        if self._error is not None:  # a bad block fails every read after it too: never a short file
            raise OSError(errno.EIO, self._error)
        if self._done:
            return 0
        if self._left >= 0 and len(view) > self._left:
            view = view[:self._left]
        got = 0
        want = len(view)
        while got < want:
            if not len(self._pending):
                if self._deferred is not None:
                    if got:
                        break  # the good bytes first; the error at the next read
                    err, self._deferred = self._deferred, None
                    self._error = err.strerror or str(err)
                    raise err
                try:
                    more = self._fill(want - got)
                except OSError as e:
                    self._error = e.strerror or str(e)
                    raise
                if not more:
                    self._done = True
                    break
                continue
            n = min(want - got, len(self._pending))
            view[got:got + n] = self._pending[:n]
            self._pending = self._pending[n:]
            got += n
        if self._left >= 0:
            self._left -= got
            if self._left == 0:
                self._done = True
        return got

    def close(self) -> None:
        self._done = True
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


class CryptWriter:
    """Plaintext in, rclone's format out to the inner writer: the header, then sealed blocks
    (at most one partial block is held)."""

    def __init__(self, data_key: bytes, inner: Any) -> None:
        self._inner = inner
        self._enc = fmt.Encrypter(data_key)
        self._out = lambda block: inner.write(memoryview(block))
        inner.write(memoryview(self._enc.header()))
        self.source_hashes: dict[str, str] = {}  # the plaintext's: never given to the inner writer

    @property
    def mtime_ns(self) -> Any:
        return getattr(self._inner, "mtime_ns", None)

    @mtime_ns.setter
    def mtime_ns(self, value: Any) -> None:  # the VFS's utime on the open file reaches the object
        self._inner.mtime_ns = value

    def write(self, view: memoryview) -> int:
        self._enc.write(view, self._out)
        return len(view)

    def close(self) -> None:
        self._enc.finish(self._out)
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()
