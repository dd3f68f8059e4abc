"""A small HTTP/1.1 server on the stdlib `selectors` module.

The loop only does I/O. Requests the application marks as slow run on worker threads and
their answers come back through a socketpair, so a slow mount, an idle client, a trickling
client or a huge body never delays anybody else's request. Keep-alive and pipelining are
supported; responses on one connection go out in request order. Messages are parsed and
rendered by http1.py; every malformed request is answered before the connection closes, and
a client that shuts its side still gets the answers to what it sent.

At most MAX_CONNECTIONS connections are open. A newcomer past the cap evicts the connection
that has held its place longest without a request being handled (idle, or with a request
still arriving); a newcomer is the youngest, so it gets its turn. Per connection the loop
keeps only what was sent and not answered yet, reads at most RECV_SIZE bytes per round, and
stops reading a client that does not read its answers.
"""

from __future__ import annotations

import collections
import errno
import logging
import selectors
import socket
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
REQUEST_TIMEOUT = 30.0  # a request must arrive completely within this (and an answer be read)
MAX_CONNECTIONS = 256
RECV_SIZE = 16384  # bytes per read: also what one connection can make the loop parse per round
CHUNKED_RECV_SIZE = 2048  # the same inside a chunked body: a tiny chunk costs 1-2 us to decode
QUEUE_MAX = 8  # parsed requests waiting on one connection; more stay unparsed in its buffer
OUT_HIGH = 256 * 1024  # a connection with this much unread output is not read from
BUFFER_BUDGET = 16 << 20  # input buffered over all connections before the largest is shed
LINGER = 2.0  # after a last answer, input is read and dropped this long, so no reset loses it

# A handler returns a Response now, or a callable to run on a worker thread that returns one.
Handler = Callable[[Request], "Response | Callable[[], Response]"]


class _Conn:
    __slots__ = ("sock", "inbuf", "out", "parser", "busy", "last", "started", "close_after",
                 "closed", "queue", "eof", "events", "linger")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()  # received, not parsed into a request yet
        self.out = bytearray()  # answers not sent yet
        self.parser = RequestParser()
        self.busy = False  # a request of this connection is being handled
        self.last = time.monotonic()  # last activity (bytes in or out)
        self.started = 0.0  # when the current partial request began arriving
        self.close_after = False
        self.closed = False
        self.eof = False  # the client shut its side: answer what it sent, then close
        self.events = 0  # what the selector watches for
        self.linger = 0.0  # answered for the last time: drop input until then, then close
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
        self._accept_paused = 0.0  # out of file descriptors: accept again after this
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
                elif not tag.closed:  # (closed earlier in this round: evicted, say)
                    conn = tag
                    if mask & selectors.EVENT_READ:
                        self._on_read(conn)
                    if mask & selectors.EVENT_WRITE and not conn.closed:
                        self._on_write(conn)
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
        if not self._accept_paused:
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
                    if not self._evict():  # an fd back for the next try, or a pause
                        log.error("accept: %s; pausing for a second", e)
                        self.sel.unregister(self.listener)
                        self._accept_paused = time.monotonic() + 1.0
                    return
                raise
            if len(self.conns) >= MAX_CONNECTIONS and not self._evict():
                sock.close()  # every connection has a request in flight
                continue
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self._watch(conn, selectors.EVENT_READ)

    def _evict(self) -> bool:
        """Make room: close the connection that has held its place longest without a request
        being handled: idle since its last answer (or since it connected), or with a request
        still arriving since it began, or with an answer unread since it last read. Never one
        whose request is being handled. A newcomer is the youngest, so it gets its turn."""
        victim, oldest = None, float("inf")
        for c in self.conns.values():
            if c.busy:
                continue
            since = c.started if (c.inbuf or c.queue) and not c.out else c.last
            if since < oldest:
                victim, oldest = c, since
        if victim is None:
            return False
        if victim.inbuf and not victim.linger:  # best effort: tell a slow but honest client why
            try:
                victim.sock.send(render(Response(503, self.error_body("too many connections"), close=True),
                                        False, self.headers))
            except OSError:
                pass
        log.debug("connection limit: closing a connection held for %.1f s", time.monotonic() - oldest)
        self._close(victim)
        return True

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
                if not conn.closed:
                    self._flush(conn)

    def _on_read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(CHUNKED_RECV_SIZE if conn.parser.chunked else RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if conn.linger:
            if not data:
                self._close(conn)
            return
        now = time.monotonic()
        conn.last = now
        if data:
            if not conn.inbuf:
                conn.started = now
            conn.inbuf += data
            if len(conn.inbuf) > RECV_SIZE and self._buffered() > BUFFER_BUDGET:
                self._shed()
                if conn.closed:
                    return
        else:
            conn.eof = True
        self._next(conn)
        if not conn.closed:
            self._flush(conn)

    def _on_write(self, conn: _Conn) -> None:
        self._flush(conn)
        if not conn.closed and not conn.busy and (conn.queue or conn.inbuf) and len(conn.out) < OUT_HIGH:
            self._next(conn)  # requests held back while the client was not reading its answers
            if not conn.closed:
                self._flush(conn)

    def _buffered(self) -> int:
        return sum(len(c.inbuf) for c in self.conns.values())

    def _shed(self) -> None:
        """Too much input buffered over all connections: drop the largest partial ones."""
        while self._buffered() > BUFFER_BUDGET:
            victim = max((c for c in self.conns.values() if not c.busy), key=lambda c: len(c.inbuf),
                         default=None)
            if victim is None or not victim.inbuf:
                return
            log.warning("input buffers over %d bytes: closing a connection with %d bytes unparsed",
                        BUFFER_BUDGET, len(victim.inbuf))
            self._close(victim)

    def _parse(self, conn: _Conn) -> None:
        while conn.inbuf and not conn.close_after and len(conn.queue) < QUEUE_MAX:
            try:
                parsed = conn.parser.parse(conn.inbuf)
            except ParseError as e:
                self._refuse(conn, e.status, str(e))
                return
            if parsed is None:
                if conn.eof:
                    if conn.inbuf.strip(b"\r\n"):
                        self._refuse(conn, 400, "incomplete request: the client closed its side")
                    else:
                        conn.inbuf.clear()
                return
            req, used = parsed
            del conn.inbuf[:used]
            conn.started = time.monotonic()
            conn.queue.append(req)

    def _refuse(self, conn: _Conn, status: int, message: str) -> None:
        conn.inbuf.clear()
        conn.parser.reset()
        # queued, not sent: earlier pipelined requests must be answered first
        conn.queue.append(Response(status, self.error_body(message), close=True))
        conn.close_after = True

    def _next(self, conn: _Conn) -> None:
        """Start the queued requests of this connection, one at a time, parsing more as the
        queue empties; answers collect in conn.out for one send."""
        while not conn.busy and not conn.closed:
            if not conn.queue:
                if not conn.inbuf or conn.close_after or len(conn.out) >= OUT_HIGH:
                    return
                self._parse(conn)
                if not conn.queue:
                    return
            req = conn.queue.popleft()
            if isinstance(req, Response):
                self._respond(conn, req)
                continue
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
        """Queue an answer on conn.out; the caller flushes."""
        if resp.close:
            conn.close_after = True
        try:
            data = render(resp, not conn.close_after, self.headers)
        except ValueError as e:
            log.error("bad response: %s", e)
            data = render(Response(500, self.error_body("internal error")), not conn.close_after, self.headers)
        conn.out += data

    def _flush(self, conn: _Conn) -> None:
        """Send what is queued, then close the connection if it is done, or set what the
        selector watches for: reading only while its client reads its answers."""
        if conn.out:
            try:
                while conn.out:
                    sent = conn.sock.send(conn.out)
                    del conn.out[:sent]
                    conn.last = time.monotonic()
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(conn)
                return
        if not conn.out and not conn.busy and not conn.queue and (
                conn.close_after or (conn.eof and not conn.inbuf)):
            if conn.eof or conn.linger:
                self._close(conn)
            else:
                self._linger(conn)
            return
        want_read = (not conn.eof and not conn.close_after and len(conn.out) < OUT_HIGH
                     and len(conn.queue) < QUEUE_MAX and not (conn.busy and len(conn.inbuf) >= RECV_SIZE))
        self._watch(conn, (selectors.EVENT_READ if want_read else 0)
                    | (selectors.EVENT_WRITE if conn.out else 0))

    def _linger(self, conn: _Conn) -> None:
        """Closing with the client's input unread can make the kernel reset the connection
        and drop the answer before the client reads it (TCP): shut our side, drop what still
        comes, close at the client's EOF or after LINGER seconds."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.linger = time.monotonic() + LINGER
        conn.inbuf.clear()
        self._watch(conn, selectors.EVENT_READ)

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if conn.events == 0:
            self.sel.register(conn.sock, events, conn)
        elif events == 0:
            self.sel.unregister(conn.sock)
        else:
            self.sel.modify(conn.sock, events, conn)
        conn.events = events

    def _sweep(self, now: float) -> None:
        if self._accept_paused and now >= self._accept_paused:
            self._accept_paused = 0.0
            self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        for conn in list(self.conns.values()):
            if conn.linger:
                if now >= conn.linger:
                    self._close(conn)
                continue
            if conn.busy or conn.closed:
                continue
            if conn.out:
                if now - conn.last > REQUEST_TIMEOUT:
                    self._close(conn)  # the client does not read its answers
            elif conn.inbuf and not conn.queue:
                if now - conn.started > REQUEST_TIMEOUT:
                    self._refuse(conn, 408, "request timed out")
                    self._next(conn)
                    self._flush(conn)
            elif now - conn.last > IDLE_TIMEOUT:
                self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.sock.fileno(), None)
        if conn.events:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.events = 0
        conn.inbuf, conn.out = bytearray(), bytearray()  # a worker may still hold conn
        conn.queue.clear()
        conn.sock.close()
