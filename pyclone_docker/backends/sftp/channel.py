"""One SFTP session over a pipe pair (an `ssh -s sftp` process's stdin and stdout).

Requests are pipelined: `submit` sends a request and returns at once with a `Call` to wait on,
so a reader or writer keeps many requests in flight on one session. One thread per session reads
replies and hands each to the call with its id. Nothing here holds a lock while waiting for the
server: the send lock covers only the write of one packet into the pipe.
"""

from __future__ import annotations

import errno
import io
import itertools
import os
import threading
from collections.abc import Callable

from . import proto
from .proto import Decoder

_READ_BUFFER = 256 * 1024


class ChannelClosed(ConnectionError):
    """The session is gone (ssh died, the server went away, or it timed out): retry on a new one."""

    def __init__(self, why: str) -> None:
        super().__init__(errno.ECONNRESET, why)


class Call:
    """One request in flight: `wait()` gives the reply's type and a decoder over its body."""

    __slots__ = ("_lock", "kind", "body", "channel")

    def __init__(self, channel: Channel) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.kind = 0
        self.body: bytes = b""
        self.channel = channel

    def _done(self, kind: int, body: bytes) -> None:
        self.kind = kind
        self.body = body
        self._lock.release()

    def wait(self) -> tuple[int, Decoder]:
        ch = self.channel
        if not self._lock.acquire(timeout=ch.timeout if ch.timeout > 0 else -1):
            ch.fail(f"no reply from the server in {ch.timeout:g}s (--timeout)")
            self._lock.acquire()
        if self.kind < 0:
            raise ChannelClosed(ch.closed_reason)
        return self.kind, Decoder(self.body)


def _writev_all(fd: int, bufs: list) -> None:
    total = sum(len(b) for b in bufs)
    done = os.writev(fd, bufs)
    while done < total:  # a signal or a full pipe cut the write short: send the rest
        rest: list = []
        skip = done
        for b in bufs:
            if skip >= len(b):
                skip -= len(b)
                continue
            rest.append(memoryview(b)[skip:] if skip else b)
            skip = 0
        bufs, total = rest, total - done
        done = os.writev(fd, bufs)


class Channel:
    """An SFTP v3 client session on (read fd, write fd). `label` names the server in errors."""

    def __init__(self, rfd: int, wfd: int, label: str, timeout: float = 300.0,
                 on_close: Callable[[Channel], None] | None = None) -> None:
        self.label = label
        self.timeout = timeout
        self._rfd = rfd
        self._wfd = wfd
        self._rf = io.BufferedReader(io.FileIO(rfd, "rb", closefd=False), _READ_BUFFER)
        self._send_lock = threading.Lock()
        self._pending: dict[int, Call] = {}
        self._ids = itertools.count(1)
        self._on_close = on_close
        self.extensions: dict[str, bytes] = {}
        self.closed_reason = ""
        self.closed = False
        self._thread: threading.Thread | None = None

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Exchange INIT/VERSION (blocking), then start the reply reader."""
        _writev_all(self._wfd, [proto.u32(5), bytes([proto.INIT]), proto.u32(proto.VERSION)])
        head = self._read_exact(5)
        length, kind = int.from_bytes(head[:4], "big"), head[4]
        if kind != proto.VERSION_REPLY or not 5 <= length <= 1 << 20:
            raise ChannelClosed(f"{self.label}: the server did not answer as an SFTP server "
                                f"(got packet type {kind})")
        d = Decoder(self._read_exact(length - 1))
        version = d.u32()
        if version < 3:
            raise ChannelClosed(f"{self.label}: SFTP version {version} is not supported (need 3)")
        while d.pos < len(d.buf):
            name = d.text()
            self.extensions[name] = d.raw()
        self._thread = threading.Thread(target=self._read_loop, name=f"sftp-{self.label}", daemon=True)
        self._thread.start()

    def _read_exact(self, n: int) -> bytes:
        b = self._rf.read(n)
        if b is None or len(b) < n:
            raise ChannelClosed(f"{self.label}: the connection closed during the SFTP handshake")
        return b

    def _read_loop(self) -> None:
        rf = self._rf
        pending = self._pending
        why = "the server closed the connection"
        try:
            while True:
                hdr = rf.read(9)
                if not hdr or len(hdr) < 9:
                    break
                length = int.from_bytes(hdr[:4], "big")
                body = rf.read(length - 5) if length > 5 else b""
                if length > 5 and (body is None or len(body) < length - 5):
                    break
                call = pending.pop(int.from_bytes(hdr[5:9], "big"), None)
                if call is not None:
                    call._done(hdr[4], body)
        except (OSError, ValueError) as e:
            why = f"reading from the server failed: {e}"
        self.fail(why)

    def fail(self, why: str) -> None:
        """Mark the session dead and wake every waiter with ChannelClosed."""
        if not self.closed:
            self.closed = True
            self.closed_reason = f"{self.label}: {why}"
            if self._on_close is not None:
                self._on_close(self)
        while self._pending:
            try:
                _rid, call = self._pending.popitem()
            except KeyError:
                break
            call._done(-1, b"")

    # -- requests -------------------------------------------------------------------------

    def submit(self, kind: int, *parts: bytes | memoryview) -> Call:
        """Send one request; the reply comes to the returned Call."""
        if self.closed:
            raise ChannelClosed(self.closed_reason)
        rid = next(self._ids) & 0xFFFFFFFF
        call = Call(self)
        self._pending[rid] = call
        length = 5
        for p in parts:
            length += len(p)
        try:
            with self._send_lock:
                _writev_all(self._wfd, [proto.header(length, kind, rid), *parts])
        except OSError as e:
            self.fail(f"writing to the server failed: {e}")
        if self.closed:  # it died before or while we sent: the reader may not have seen our call
            self._pending.pop(rid, None)
            raise ChannelClosed(self.closed_reason)
        return call

    def call(self, kind: int, *parts: bytes | memoryview) -> tuple[int, Decoder]:
        return self.submit(kind, *parts).wait()

    @property
    def in_flight(self) -> int:
        return len(self._pending)
