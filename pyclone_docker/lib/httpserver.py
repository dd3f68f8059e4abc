"""A small HTTP/1.1 server on the stdlib `selectors` module.

The loop only does I/O. Requests the application marks as slow run on worker threads and
their answers come back through a socketpair, so a slow mount, an idle client, a trickling
client or a huge body never delays anybody else's request. Keep-alive and pipelining are
supported; responses on one connection go out in request order. Messages are parsed and
rendered by http1.py, incrementally: each connection keeps its parser's place.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from .http1 import (
    MAX_BODY,
    MAX_HEADER,
    MAX_REQUEST,
    REASONS,
    ParseError,
    Request,
    RequestParser,
    Response,
    parse_request,
    render,
)

__all__ = ["MAX_BODY", "MAX_HEADER", "MAX_REQUEST", "REASONS", "Handler", "HttpServer", "ParseError",
           "Request", "RequestParser", "Response", "parse_request", "render"]

log = logging.getLogger("pyclone.http")

IDLE_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this
REQUEST_TIMEOUT = 30.0  # a request must arrive completely within this
MAX_CONNECTIONS = 256

# A handler returns a Response now, or a callable to run on a worker thread that returns one.
Handler = Callable[[Request], "Response | Callable[[], Response]"]


class _Conn:
    __slots__ = ("sock", "inbuf", "parser", "out", "busy", "last", "started", "close_after", "closed", "queue")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.parser = RequestParser()  # where the request at the front of inbuf is parsed up to
        self.out = bytearray()
        self.busy = False  # a request of this connection is being handled
        self.last = time.monotonic()
        self.started = 0.0  # when the current partial request began arriving
        self.close_after = False
        self.closed = False
        self.queue: collections.deque[Request | Response] = collections.deque()


class HttpServer:
    def __init__(self, listener: socket.socket, handler: Handler,
                 error_body: Callable[[str], bytes], workers: int = 8,
                 headers: Mapping[str, str] | None = None) -> None:
        """`headers`: fields sent with every response (e.g. Server), the loop's own included."""
        self.listener = listener
        self.handler = handler
        self.error_body = error_body
        self.headers = dict(headers or {})
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="api")
        self._done: collections.deque[tuple[_Conn, Response]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.stopping = False
        self._tick: Callable[[], None] | None = None
        listener.setblocking(False)
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    @property
    def wakeup_fd(self) -> int:
        return self._wake_w.fileno()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already pending, or closing

    def serve(self, tick: Callable[[], None] | None = None) -> None:
        """Run until stop(); `tick` runs on the loop thread after every wake-up (signals)."""
        self._tick = tick
        next_sweep = time.monotonic() + 1.0
        while not self.stopping:
            for key, mask in self.sel.select(timeout=1.0):
                tag = key.data
                if tag == "accept":
                    self._accept()
                elif tag == "wake":
                    self._drain_wake()
                else:
                    conn = tag
                    if mask & selectors.EVENT_READ:
                        self._on_read(conn)
                    if mask & selectors.EVENT_WRITE and not conn.closed:
                        self._flush(conn)
            if self._tick is not None:
                self._tick()
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 1.0

    def stop(self) -> None:
        self.stopping = True
        self.wake()

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self._close(conn)
        self.sel.unregister(self.listener)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- loop internals ---------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept: %s", e)
                    return
                raise
            if len(self.conns) >= MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._done:
            conn, resp = self._done.popleft()
            conn.busy = False
            if not conn.closed:
                self._respond(conn, resp)
                self._next(conn)

    def _on_read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        now = time.monotonic()
        conn.last = now
        if not conn.inbuf and not conn.queue:
            conn.started = now
        conn.inbuf += data
        self._parse(conn)
        self._next(conn)

    def _parse(self, conn: _Conn) -> None:
        while conn.inbuf and not conn.close_after:
            try:
                parsed = conn.parser.parse(conn.inbuf)
            except ParseError as e:
                conn.inbuf.clear()
                conn.parser.reset()
                # queued, not sent: earlier pipelined requests must be answered first
                conn.queue.append(Response(e.status, self.error_body(str(e)), close=True))
                conn.close_after = True
                return
            if parsed is None:
                return
            req, used = parsed
            del conn.inbuf[:used]
            conn.started = time.monotonic()
            conn.queue.append(req)

    def _next(self, conn: _Conn) -> None:
        """Start the next queued request of this connection if none is running."""
        while conn.queue and not conn.busy and not conn.closed:
            req = conn.queue.popleft()
            if isinstance(req, Response):
                self._respond(conn, req)
                return
            if not req.keep_alive:
                conn.close_after = True
            try:
                result = self.handler(req)
            except Exception:
                log.exception("handler failed for %s", req.path)
                result = Response(500, self.error_body("internal error"))
            if isinstance(result, Response):
                self._respond(conn, result)
            else:
                conn.busy = True
                self.pool.submit(self._run_slow, conn, result)

    def _run_slow(self, conn: _Conn, work: Callable[[], Response]) -> None:
        try:
            resp = work()
        except Exception:
            log.exception("request failed")
            resp = Response(500, self.error_body("internal error"))
        self._done.append((conn, resp))
        self.wake()

    def _respond(self, conn: _Conn, resp: Response) -> None:
        if resp.close:
            conn.close_after = True
        keep = not conn.close_after
        try:
            data = render(resp, keep, self.headers)
        except ValueError as e:
            log.error("bad response: %s", e)
            data = render(Response(500, self.error_body("internal error")), keep, self.headers)
        conn.out += data
        conn.last = time.monotonic()
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            del conn.out[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        if not conn.out and conn.close_after and not conn.busy and not conn.queue:
            self._close(conn)
            return
        try:
            self.sel.modify(conn.sock, events, conn)
        except (KeyError, ValueError):
            pass

    def _sweep(self, now: float) -> None:
        for conn in list(self.conns.values()):
            if conn.busy or conn.out:
                continue
            if conn.inbuf and now - conn.started > REQUEST_TIMEOUT:
                conn.inbuf.clear()
                conn.parser.reset()
                self._respond(conn, Response(408, self.error_body("request timed out"), close=True))
            elif not conn.inbuf and now - conn.last > IDLE_TIMEOUT:
                self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.sock.fileno(), None)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()


def run_in_thread(fn: Callable[[], None], name: str) -> threading.Thread:
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return t
