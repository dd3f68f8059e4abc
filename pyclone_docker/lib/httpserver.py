"""A small HTTP/1.1 server on the stdlib `selectors` module.

The loop only does I/O. Requests the application marks as slow run on worker threads and
their answers come back through a socketpair, so a slow mount, an idle client, a trickling
client or a huge body never delays anybody else's request. Keep-alive and pipelining are
supported; responses on one connection go out in request order.
"""

from __future__ import annotations

import collections
import errno
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("pyclone.http")

MAX_HEADER = 16 * 1024
MAX_BODY = 1024 * 1024
IDLE_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this
REQUEST_TIMEOUT = 30.0  # a request must arrive completely within this
MAX_CONNECTIONS = 256

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str  # the request target's path, without the query
    headers: dict[str, str]
    body: bytes
    keep_alive: bool = True
    query: str = ""  # the target's query after "?", exactly as sent (not decoded); "" if none


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # more header fields, sent as given


# A handler returns a Response now, or a callable to run on a worker thread that returns one.
Handler = Callable[[Request], "Response | Callable[[], Response]"]


class _Conn:
    __slots__ = ("sock", "inbuf", "out", "busy", "last", "started", "close_after", "closed", "queue")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.busy = False  # a request of this connection is being handled
        self.last = time.monotonic()
        self.started = 0.0  # when the current partial request began arriving
        self.close_after = False
        self.closed = False
        self.queue: collections.deque[Request | Response] = collections.deque()


class ParseError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """One complete request from the front of `buf` and its length, or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEADER:
            raise ParseError(431, "request headers too large")
        return None
    if end > MAX_HEADER:
        raise ParseError(431, "request headers too large")
    try:
        head = buf[:end].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        raise ParseError(400, "malformed request") from None
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
        raise ParseError(400, "malformed request line")
    method, target, version = parts
    if not target.startswith("/"):
        raise ParseError(400, "malformed request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise ParseError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        decoded = _dechunk(buf, start)
        if decoded is None:
            return None
        body, consumed = decoded
    else:
        try:
            length = int(headers.get("content-length", "0") or "0")
        except ValueError:
            raise ParseError(400, "malformed Content-Length") from None
        if length < 0:
            raise ParseError(400, "malformed Content-Length")
        if length > MAX_BODY:
            raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
        if len(buf) - start < length:
            return None
        body, consumed = bytes(buf[start:start + length]), start + length
    path, _, query = target.partition("?")
    conn_hdr = headers.get("connection", "").lower()
    keep = conn_hdr != "close" if version == "HTTP/1.1" else conn_hdr == "keep-alive"
    return Request(method, path, headers, body, keep, query), consumed


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise ParseError(400, "malformed chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY:
            raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
        start = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # trailers end with an empty line
            if end < 0:
                return None
            return bytes(body), end + 4
        if len(buf) < start + size + 2:
            return None
        body += buf[start:start + size]
        pos = start + size + 2


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def render(resp: Response, keep_alive: bool, extra: Mapping[str, str] | None = None) -> bytes:
    """The response's bytes: status line, Content-Type, Content-Length, `extra` (the server's
    own fields), the response's headers, Connection, then the body."""
    head = (f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}\r\n"
            f"Content-Type: {resp.content_type}\r\n"
            f"Content-Length: {len(resp.body)}\r\n")
    for fields in (extra, resp.headers):
        for name, value in (fields or {}).items():
            if not _TOKEN.match(name) or "\r" in value or "\n" in value:
                raise ValueError(f"bad response header {name!r}")
            head += f"{name}: {value}\r\n"
    head += f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    return head.encode("latin-1") + resp.body


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
                parsed = parse_request(conn.inbuf)
            except ParseError as e:
                conn.inbuf.clear()
                # queued, not sent: earlier pipelined requests must be answered first
                conn.queue.append(Response(e.status, self.error_body(str(e)), close=True))
                conn.close_after = True
                return
            if parsed is None:
                if len(conn.inbuf) > MAX_HEADER + MAX_BODY + 65536:
                    conn.inbuf.clear()
                    conn.close_after = True
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
