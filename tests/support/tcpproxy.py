"""A latency and fault TCP proxy for tests (this kernel has no netem): `DelayProxy`.

    with DelayProxy("127.0.0.1", sshd_port, delay_up=0.02, delay_down=0.02) as proxy:
        connect to ("127.0.0.1", proxy.port) instead of the target

Every accepted connection gets its own connection to the target, and bytes go both ways:
"up" is client -> target, "down" is target -> client. Each chunk read from one side is
stamped with the time it arrived and sent to the other side once its direction's delay has
passed since then, so the proxy adds latency without cutting throughput (chunks in flight
overlap). Each direction of each connection holds at most `buffer_limit` bytes (4 MiB by
default): when it is full the proxy stops reading that side, and TCP's own flow control
pushes back to the sender. An end-of-stream (FIN) is passed on after the delay too, behind
the data before it; a reset or error on one side aborts both sides with RST. The TCP
handshake itself is not delayed (the client's connect() returns at once); a target that
refuses makes the proxy reset the client.

Knobs (plain attributes, read at each use; the setters below wake the loop):
- `delay_up`, `delay_down`: seconds, applied to chunks read from then on;
- `refuse = True`: new connections are accepted and reset at once (RST);
- `pause()` / `resume()`: no bytes are forwarded while paused (connections stay open, reads
  go on until the buffers fill), like a link dropping every packet; on resume what was held
  goes out (it is already due);
- `reset_all()`: abort every live connection with RST (SO_LINGER 0) on both sides.

Observations: `bytes_up`, `bytes_down` (sent to the far side), `connections_accepted`,
`active_connections`, `buffered_up` / `buffered_down` (bytes held now, all connections),
`peak_buffered_up` / `peak_buffered_down` (the most one direction of one connection ever held;
never above `buffer_limit`).

One thread runs a selector loop for all connections, so hundreds of them are cheap.
Generic TCP: usable in front of sshd, an S3 or WebDAV server, anything.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

_EOF = b""  # queued marker: pass the end-of-stream on
_RECV = 64 * 1024


def _abort(sock: socket.socket) -> None:
    """Close with RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Pipe:
    """One direction of one connection: chunks read from src, waiting to go to dst."""

    def __init__(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        self.src = src
        self.dst = dst
        self.up = up
        self.queue: collections.deque[tuple[float, memoryview | bytes]] = collections.deque()
        self.buffered = 0
        self.peak = 0
        self.eof_read = False  # src ended (FIN read; the marker is queued)
        self.eof_sent = False  # dst was shut down for writing


class _Conn:
    def __init__(self, client: socket.socket, target: socket.socket) -> None:
        self.client = client
        self.target = target
        self.connecting = True  # target connect() in progress
        self.up = _Pipe(client, target, up=True)
        self.down = _Pipe(target, client, up=False)
        self.closed = False


class DelayProxy:
    def __init__(self, target_host: str, target_port: int, delay_up: float = 0.01, delay_down: float = 0.01,
                 listen_host: str = "127.0.0.1", *, listen_port: int = 0,
                 buffer_limit: int = 4 * 1024 * 1024) -> None:
        if buffer_limit <= 0:
            raise ValueError("buffer_limit must be positive")
        self.target_host = target_host
        self.target_port = target_port
        self.delay_up = delay_up
        self.delay_down = delay_down
        self.listen_host = listen_host
        self.buffer_limit = buffer_limit
        self.refuse = False
        self.paused = False
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections_accepted = 0
        self.peak_buffered_up = 0
        self.peak_buffered_down = 0
        self._conns: list[_Conn] = []
        self._sel = selectors.DefaultSelector()
        self._registered: dict[socket.socket, int] = {}
        self._calls: collections.deque[tuple[Callable[[], object], list[object], threading.Event]] = (
            collections.deque())
        self._stop = False
        family = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_host, listen_port))
        self._listener.listen(256)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._loop, name=f"DelayProxy:{self.port}", daemon=True)
        self._thread.start()

    # -- public controls -------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self.listen_host, self.port

    @property
    def active_connections(self) -> int:
        return len(self._conns)

    @property
    def buffered_up(self) -> int:
        return sum(c.up.buffered for c in list(self._conns))

    @property
    def buffered_down(self) -> int:
        return sum(c.down.buffered for c in list(self._conns))

    def pause(self) -> None:
        self.paused = True
        self._wake()

    def resume(self) -> None:
        self.paused = False
        self._wake()

    def reset_all(self) -> int:
        """Abort every live connection (RST both ways); returns how many there were."""
        n = self._call(self._reset_all_now)
        return n if isinstance(n, int) else 0

    def close(self) -> None:
        """Stop the loop, close the listener and every connection (RST)."""
        if self._thread.is_alive():
            self._stop = True
            self._wake()
            self._thread.join(timeout=10)
        for sock in (self._listener, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        self._sel.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cross-thread plumbing -------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    def _call(self, fn: Callable[[], object]) -> object:
        if threading.current_thread() is self._thread:
            return fn()
        if not self._thread.is_alive():
            raise RuntimeError("DelayProxy is closed")
        box: list[object] = []
        done = threading.Event()
        self._calls.append((fn, box, done))
        self._wake()
        if not done.wait(timeout=10):
            raise RuntimeError("DelayProxy loop did not answer")
        return box[0]

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stop:
                timeout = self._update_interest(time.monotonic())
                for key, events in self._sel.select(timeout):
                    sock = key.fileobj
                    if sock is self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            while self._wake_r.recv(4096):
                                pass
                    elif sock is self._listener:
                        self._accept()
                    else:
                        conn = key.data
                        if conn.closed:
                            continue
                        if events & selectors.EVENT_WRITE:
                            self._on_writable(conn, sock)
                        if not conn.closed and events & selectors.EVENT_READ:
                            self._on_readable(conn, sock)
                while self._calls:
                    fn, box, done = self._calls.popleft()
                    box.append(fn())
                    done.set()
        finally:
            for conn in list(self._conns):
                self._close(conn, rst=True)
            while self._calls:
                _, box, done = self._calls.popleft()
                box.append(0)
                done.set()

    def _update_interest(self, now: float) -> float | None:
        """Register each socket for what it can do now; the select timeout until the next
        chunk falls due (None: nothing is waiting on time)."""
        timeout: float | None = None
        for conn in self._conns:
            for sock in (conn.client, conn.target):
                mask = 0
                out = conn.up if sock is conn.client else conn.down  # what sock produces
                inc = conn.down if sock is conn.client else conn.up  # what goes into sock
                if not out.eof_read and out.buffered < self.buffer_limit:
                    mask |= selectors.EVENT_READ
                if sock is conn.target and conn.connecting:
                    mask = selectors.EVENT_WRITE
                elif inc.queue and not self.paused and not inc.eof_sent:
                    wait = inc.queue[0][0] - now
                    if wait <= 0:
                        mask |= selectors.EVENT_WRITE
                    elif timeout is None or wait < timeout:
                        timeout = wait
                self._set_mask(sock, mask, conn)
        return timeout

    def _set_mask(self, sock: socket.socket, mask: int, conn: _Conn) -> None:
        old = self._registered.get(sock, 0)
        if mask == old:
            return
        if not mask:
            self._sel.unregister(sock)
            del self._registered[sock]
        elif not old:
            self._sel.register(sock, mask, conn)
            self._registered[sock] = mask
        else:
            self._sel.modify(sock, mask, conn)
            self._registered[sock] = mask

    def _accept(self) -> None:
        for _ in range(64):
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.connections_accepted += 1
            if self.refuse:
                _abort(client)
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                infos = socket.getaddrinfo(self.target_host, self.target_port, type=socket.SOCK_STREAM)
                family, _, _, _, addr = infos[0]
                target = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                _abort(client)
                continue
            target.setblocking(False)
            target.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = target.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                _abort(client)
                _abort(target)
                continue
            self._conns.append(_Conn(client, target))

    def _on_writable(self, conn: _Conn, sock: socket.socket) -> None:
        if sock is conn.target and conn.connecting:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._close(conn, rst=True)  # the target refused: reset the client
                return
            conn.connecting = False
            return
        pipe = conn.down if sock is conn.client else conn.up
        now = time.monotonic()
        while pipe.queue and not self.paused and pipe.queue[0][0] <= now:
            due, data = pipe.queue[0]
            if data is _EOF:
                pipe.queue.popleft()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                pipe.eof_sent = True
                if conn.up.eof_sent and conn.down.eof_sent:
                    self._close(conn, rst=False)
                return
            try:
                n = sock.send(data)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn, rst=True)
                return
            pipe.buffered -= n
            if pipe.up:
                self.bytes_up += n
            else:
                self.bytes_down += n
            if n < len(data):
                pipe.queue[0] = (due, memoryview(data)[n:])
                return
            pipe.queue.popleft()

    def _on_readable(self, conn: _Conn, sock: socket.socket) -> None:
        pipe = conn.up if sock is conn.client else conn.down
        room = self.buffer_limit - pipe.buffered
        if room <= 0 or pipe.eof_read:
            return
        try:
            data = sock.recv(min(_RECV, room))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, rst=True)  # a reset on one side resets the other
            return
        due = time.monotonic() + (self.delay_up if pipe.up else self.delay_down)
        if not data:
            pipe.eof_read = True
            pipe.queue.append((due, _EOF))
            return
        pipe.queue.append((due, data))
        pipe.buffered += len(data)
        if pipe.buffered > pipe.peak:
            pipe.peak = pipe.buffered
            if pipe.up:
                self.peak_buffered_up = max(self.peak_buffered_up, pipe.peak)
            else:
                self.peak_buffered_down = max(self.peak_buffered_down, pipe.peak)

    def _close(self, conn: _Conn, rst: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        for sock in (conn.client, conn.target):
            if sock in self._registered:
                self._sel.unregister(sock)
                del self._registered[sock]
            if rst:
                _abort(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()
        conn.up.buffered = conn.down.buffered = 0
        with contextlib.suppress(ValueError):
            self._conns.remove(conn)

    def _reset_all_now(self) -> int:
        conns = list(self._conns)
        for conn in conns:
            self._close(conn, rst=True)
        return len(conns)
