"""Pipelined file transfers over one SFTP channel: up to `concurrency` READ or WRITE requests
of `chunk_size` bytes in flight per file, as rclone's sftp backend does.

A reader starts with a small window and doubles it while the caller keeps reading, so a
`head -c 100` costs a few requests, and a long stream soon has the whole window in flight. A
reader whose connection dies reopens the file at the byte it has reached, on a new connection;
a writer cannot (it does not keep the bytes), so its upload fails and the caller (the VFS
write-back) sends it again.
"""

from __future__ import annotations

import errno
import time
import zlib
from collections import deque
from typing import Protocol

from ..base import BackendContext
from . import proto
from .channel import Call, Channel, ChannelClosed
from .pool import ConnectError, Connection, Pool
from .proto import Attrs, SftpStatus, string, u32, u64

_FIRST_WINDOW = 4


def expect_status(kind: int, d: proto.Decoder, path: str) -> None:
    if kind != proto.STATUS:
        raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", path)
    st = d.status(path)
    if st.code != proto.FX_OK:
        raise st


def expect_handle(kind: int, d: proto.Decoder, path: str) -> bytes:
    if kind == proto.HANDLE:
        return d.raw()
    if kind == proto.STATUS:
        raise d.status(path)
    raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", path)


def partial_name(path: str, remote: str, size: int, mtime_ns: int | None, suffix: str = ".partial") -> str:
    """rclone's partial upload name: `name.<8 hex>.partial` (--partial-suffix), the hex a CRC-32
    of the name and of what the upload is; a long leaf is cut so the name stays within 255."""
    tag = zlib.crc32(f"{path}{size},{mtime_ns}".encode("utf-8", "surrogateescape"))
    suffix = f".{tag:08x}{suffix}"
    head, _, leaf = remote.rpartition("/")
    raw = leaf.encode("utf-8", "surrogateescape")
    if len(raw) > 100:
        leaf = raw[:255 - len(suffix.encode())].decode("utf-8", "ignore")
    return f"{head}/{leaf}{suffix}" if head else f"{leaf}{suffix}"


class TransferHost(Protocol):
    """What a transfer needs of its backend (backend.py's SftpBackend)."""

    pool: Pool
    ctx: BackendContext
    label: str
    chunk_size: int
    read_concurrency: int
    write_concurrency: int
    modtime_ok: bool

    def refine_read_error(self, st: SftpStatus, path: str) -> OSError: ...

    def log_modtime_failure(self, path: str, e: OSError) -> None: ...

    def open_for_write(self, conn: Connection, path: str, tmp: str, mode: int | None) -> bytes: ...

    def rename_over(self, ch: Channel, src: str, dst: str, path: str) -> None: ...

    def write_error(self, ch: Channel, path: str, e: SftpStatus) -> OSError: ...

    def remove_quietly(self, conn: Connection | None, hs: bytes, remote: str) -> None: ...


class SftpReader:
    """A streaming download of `length` bytes (-1: to the end) from `offset`."""

    def __init__(self, backend: TransferHost, path: str, remote: str, offset: int, length: int) -> None:
        self.b = backend
        self.path = path  # the VFS's name, for errors
        self.remote = remote  # the server's
        self.pos = offset
        self.end = offset + length if length >= 0 else -1
        self.conn: Connection | None = None
        self.handle = b""
        self.queue: deque[tuple[int, int, Call]] = deque()
        self.next_off = offset
        self.window = _FIRST_WINDOW
        self.eof = False
        self.left = b""  # the unread rest of the last reply
        self.left_pos = 0
        self._open()

    def _open(self) -> None:
        pool = self.b.pool
        conn = pool.acquire(streaming=True)
        try:
            kind, d = conn.channel.call(proto.OPEN, string(self.remote), u32(proto.FXF_READ), Attrs().pack())
            self.handle = expect_handle(kind, d, self.path)
        except BaseException:
            pool.release(conn)
            raise
        self.conn = conn
        self._hs = string(self.handle)
        self.queue.clear()
        self.next_off = self.pos
        self.left = b""

    def _fill(self) -> None:
        ch = self.conn.channel  # type: ignore[union-attr]
        chunk, end, queue = self.b.chunk_size, self.end, self.queue
        while len(queue) < self.window and (end < 0 or self.next_off < end):
            n = chunk if end < 0 else min(chunk, end - self.next_off)
            queue.append((self.next_off, n, ch.submit(proto.READ, self._hs, u64(self.next_off), u32(n))))
            self.next_off += n

    def readinto(self, view: memoryview) -> int:
        want = len(view)
        if not want or self.eof:
            return 0
        got = 0
        if self.left:
            n = min(want, len(self.left) - self.left_pos)
            view[:n] = memoryview(self.left)[self.left_pos:self.left_pos + n]
            self.left_pos += n
            if self.left_pos >= len(self.left):
                self.left = b""
            got = n
            self.pos += n
        retries = 0
        while got < want and not self.eof:
            try:
                if self.conn is None:
                    self._open()  # again, at self.pos, after a lost connection
                n = self._next(view[got:])
            except (ChannelClosed, ConnectError) as e:
                # the connection died, or reconnecting failed: retried (--low-level-retries,
                # with backoff); what cannot be read is EIO, never wrong or missing bytes
                self._drop()
                retries += 1
                if retries > max(1, self.b.ctx.low_level_retries) or not getattr(e, "retryable", True):
                    raise OSError(errno.EIO, f"sftp {self.b.label}: read failed: {e}", self.path) from None
                time.sleep(min(0.1 * 2 ** (retries - 1), 2.0))
                continue
            got += n
        return got

    def _next(self, view: memoryview) -> int:
        """Bytes of the next reply into `view`; keeps what does not fit for the next call."""
        if not self.queue:
            if self.end >= 0 and self.next_off >= self.end:
                self.eof = True
                return 0
            self._fill()
        off, n, call = self.queue.popleft()
        if off != self.pos:  # a short reply left a gap before this one: ask for it first
            self.queue.appendleft((off, n, call))
            n = off - self.pos
            ch = self.conn.channel  # type: ignore[union-attr]
            off, call = self.pos, ch.submit(proto.READ, self._hs, u64(self.pos), u32(n))
        kind, d = call.wait()
        if kind == proto.STATUS:
            st = d.status(self.path)
            if st.code == proto.FX_EOF:
                self.eof = True
                return 0
            raise self.b.refine_read_error(st, self.path)
        if kind != proto.DATA:
            raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", self.path)
        size = int.from_bytes(call.body[0:4], "big")
        data = memoryview(call.body)[4:4 + size]
        if self.window < self.b.read_concurrency:
            self.window = min(self.window * 2, self.b.read_concurrency)
        self._fill()
        take = min(size, len(view))
        view[:take] = data[:take]
        if take < size:  # the rest waits in the reply's own buffer (a DATA body is exactly 4 + size)
            self.left, self.left_pos = call.body, 4 + take
        self.pos += take
        if size == 0:
            self.eof = True
        return take

    def _drop(self) -> None:
        """Give up this connection (it is dead): the next read reopens the file on another."""
        pool = self.b.pool
        conn, self.conn = self.conn, None
        if conn is not None:
            pool.release(conn)
            if not conn.alive:
                pool.discard(conn)
        self.window = _FIRST_WINDOW
        self.queue.clear()
        self.left = b""

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if conn.alive:
                conn.channel.submit(proto.CLOSE, self._hs)  # the reply is not waited for
        except ChannelClosed:
            pass
        finally:
            self.b.pool.release(conn)


class SftpWriter:
    """An upload to `tmp` (the partial name; the target itself with --inplace), renamed onto
    `remote` when it is complete."""

    def __init__(self, backend: TransferHost, path: str, remote: str, tmp: str, mtime_ns: int | None,
                 mode: int | None) -> None:
        self.b = backend
        self.path, self.remote, self.tmp = path, remote, tmp
        self.mtime_ns = mtime_ns
        self.off = 0
        self.acks: deque[Call] = deque()
        self.conn: Connection | None = backend.pool.acquire(streaming=True)
        try:
            self.handle = backend.open_for_write(self.conn, path, tmp, mode)
        except BaseException:
            backend.pool.release(self.conn)
            self.conn = None
            raise
        self._hs = string(self.handle)
        self.failed: BaseException | None = None

    def _check(self, call: Call) -> None:
        kind, d = call.wait()
        expect_status(kind, d, self.path)

    def write(self, view: memoryview) -> int:
        total = len(view)
        ch = self.conn.channel  # type: ignore[union-attr]
        chunk, depth, acks = self.b.chunk_size, self.b.write_concurrency, self.acks
        try:
            for i in range(0, total, chunk):
                piece = view[i:i + chunk]
                acks.append(ch.submit(proto.WRITE, self._hs, u64(self.off), u32(len(piece)), piece))
                self.off += len(piece)
                while len(acks) >= depth:
                    self._check(acks.popleft())
        except ChannelClosed as e:
            self.failed = e
            raise OSError(errno.EIO, f"sftp {self.b.label}: upload failed: {e}", self.path) from None
        except OSError as e:
            self.failed = e
            raise
        return total

    def close(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            ch = conn.channel
            while self.acks:
                self._check(self.acks.popleft())
            calls = []
            if self.mtime_ns is not None and self.b.modtime_ok:
                calls.append(ch.submit(proto.FSETSTAT, self._hs, Attrs(mtime=self.mtime_ns // 10**9).pack()))
            close_call = ch.submit(proto.CLOSE, self._hs)
            self.handle = b""
            for c in calls:
                kind, d = c.wait()
                try:
                    expect_status(kind, d, self.path)
                except SftpStatus as e:  # a server that can't set times: the upload stands, as rclone's
                    self.b.log_modtime_failure(self.path, e)
            self._check(close_call)
            if self.tmp != self.remote:
                try:
                    self.b.rename_over(ch, self.tmp, self.remote, self.path)
                except SftpStatus as e:
                    raise self.b.write_error(ch, self.path, e) from None
        except ChannelClosed as e:
            self._cleanup()
            raise OSError(errno.EIO, f"sftp {self.b.label}: upload failed: {e}", self.path) from None
        except BaseException:
            self._cleanup()
            raise
        finally:
            self._release()

    def abort(self) -> None:
        if self.conn is None:
            return
        try:
            self._cleanup()
        finally:
            self._release()

    def _release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.b.pool.release(conn)
            if not conn.alive:
                self.b.pool.discard(conn)

    def _cleanup(self) -> None:
        """A failed upload leaves nothing: the partial file (or, with --inplace, the target, as
        rclone) is removed, on a new connection if this one is dead."""
        self.acks.clear()
        try:
            self.b.remove_quietly(self.conn, self._hs if self.handle else b"", self.tmp)
        except OSError:
            pass
