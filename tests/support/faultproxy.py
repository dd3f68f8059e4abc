"""A fault-injecting HTTP/1.1 reverse proxy for tests: `FaultProxy` (threads, stdlib only).

    with FaultProxy("127.0.0.1", moto.port) as proxy:    # point the client at proxy.endpoint
        proxy.status(503, body=s3_error_xml("SlowDown", "Reduce your request rate."),
                     headers={"Retry-After": "1"}, method="PUT", times=1)   # or proxy.slowdown()
        proxy.reset_after(1000, method="GET", path=r"^/bkt/big$")           # RST mid-body
        proxy.truncate_after(1000, method="GET")     # clean close mid-body: a short body
        proxy.delay(2.0, method="HEAD")              # the response comes 2 s late
        proxy.stall_body(2.0, after=10)              # head (and 10 body bytes) sent, then a pause
        proxy.drop_request(method="DELETE")          # closed without an answer
        ... run the client ...
        proxy.count("PUT", r"^/bkt/key$")            # requests seen (every attempt counts)
        proxy.faults_fired                           # [("status", "PUT", "/bkt/key"), ...]

Every client connection gets its own connection to the target (opened at its first forwarded
request, opened again whenever the target closed it). Both sides are kept alive on their own:
`Connection` is hop-by-hop, so the client's connection stays open even when the target closes
its side after every response (moto's werkzeug server does: it always sends `Connection:
close`), unless the client asks to close, the response is read-to-close, or `keep_alive=False`.
Everything else goes through unchanged (the Host header too, so signatures and virtual-host
names still hold), with Content-Length, chunked or read-to-close bodies streamed as they come;
only `Expect: 100-continue` is answered by the proxy itself and not passed on.

Rules are checked in the order they were added; the first one that matches a request (method,
`path` regex searched in the path, `query` regex searched in the query string; None matches
all) and still has `times` left fires (times=None: no limit), with `probability` when given
(drawn from random.Random(seed)). Every helper returns its `Rule` (`.fired`, `.matched`,
`.remaining`; `proxy.remove(rule)`, `proxy.clear()`).

The faults:
- `reset_after(nbytes)`: the response head and the first nbytes of its body, then RST
  (SO_LINGER 0): the client sees a connection reset (urllib3: ProtocolError).
- `truncate_after(nbytes)`: the same, then a clean close (FIN): a short body (IncompleteRead).
- `status(code, body, headers, forward=False)`: this answer instead of the server's; the
  request is not passed on (forward=True: it is, and the server's answer is thrown away: a
  failure after the fact). Keep-alive is kept, except when the client was waiting for
  100-continue (then `Connection: close`).
- `delay(seconds)`: the request goes on at once; its response is held that long.
- `stall_body(seconds, after=0)`: the response head and `after` body bytes, then nothing for
  that long, then the rest.
- `drop_request(forward=False, reset=False)`: the connection is closed (FIN, or RST with
  reset=True) without an answer; forward=True passes the request on first (it took effect,
  the answer is lost).
nbytes count body bytes as they go on the wire (for a chunked body: with its chunk framing).

Records: `requests` (a RequestRecord per request: method, path, query, fault kind or None, the
status the client got), `count()`, `faults_fired`, `connections_accepted`; `forget()` clears them.
Usable in front of any HTTP/1.1 server (moto, a WebDAV server); plain HTTP only.
"""

from __future__ import annotations

import contextlib
import http
import io
import random
import re
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from tests.support.httpwire import MAX_LINE, Closed, abort, body_chunks, header, read_head, send


def s3_error_xml(code: str, message: str, resource: str = "", request_id: str = "pyclonefault") -> bytes:
    """An S3 error body (`<Error><Code>code</Code>...`)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{escape(request_id)}</RequestId></Error>").encode()


@dataclass
class Fault:
    kind: str  # reset_after, truncate_after, status, delay, stall_body, drop_request
    nbytes: int = 0
    seconds: float = 0.0
    code: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    forward: bool = False
    reset: bool = False


@dataclass
class Rule:
    fault: Fault
    method: str | None = None
    path: re.Pattern[str] | None = None
    query: re.Pattern[str] | None = None
    remaining: int | None = 1  # None: no limit
    probability: float | None = None
    matched: int = 0  # requests that matched (whether or not it fired)
    fired: int = 0

    def matches(self, method: str, path: str, query: str) -> bool:
        return ((self.method is None or self.method == method)
                and (self.path is None or self.path.search(path) is not None)
                and (self.query is None or self.query.search(query) is not None))


@dataclass
class RequestRecord:
    index: int
    conn: int  # which client connection (1, 2, ...)
    method: str
    path: str
    query: str
    fault: str | None = None  # the kind that fired, if one did
    status: int | None = None  # what the client was sent (None: no answer, or not yet)
    headers: dict[str, str] = field(default_factory=dict)  # the request's, names in lower case


class FaultProxy:
    """See the module docstring."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0,
                 seed: int | None = None, io_timeout: float = 120.0, keep_alive: bool = True) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.io_timeout = io_timeout
        self.keep_alive = keep_alive  # False: every answer says Connection: close, then closes
        self.requests: list[RequestRecord] = []
        self.connections_accepted = 0
        self._rules: list[Rule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._stopped = threading.Event()  # set by close(): delays and stalls end at once
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._accept_thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rules -----------------------------------------------------------------------------
    def add(self, fault: Fault, *, method: str | None = None, path: str | None = None, query: str | None = None,
            times: int | None = 1, probability: float | None = None) -> Rule:
        rule = Rule(fault, method.upper() if method else None, re.compile(path) if path is not None else None,
                    re.compile(query) if query is not None else None, times, probability)
        with self._lock:
            self._rules.append(rule)
        return rule

    def reset_after(self, nbytes: int, **match: Any) -> Rule:
        return self.add(Fault("reset_after", nbytes=nbytes), **match)

    def truncate_after(self, nbytes: int, **match: Any) -> Rule:
        return self.add(Fault("truncate_after", nbytes=nbytes), **match)

    def status(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None, *,
               forward: bool = False, **match: Any) -> Rule:
        return self.add(Fault("status", code=code, body=body, headers=dict(headers or {}), forward=forward),
                        **match)

    def slowdown(self, retry_after: int = 1, **match: Any) -> Rule:
        """503 SlowDown, as S3 throttles, with Retry-After."""
        return self.status(503, s3_error_xml("SlowDown", "Please reduce your request rate."),
                           {"Content-Type": "application/xml", "Retry-After": str(retry_after)}, **match)

    def internal_error(self, **match: Any) -> Rule:
        """500 InternalError, as S3 fails now and then."""
        return self.status(500, s3_error_xml("InternalError", "We encountered an internal error. Please try again."),
                           {"Content-Type": "application/xml"}, **match)

    def delay(self, seconds: float, **match: Any) -> Rule:
        return self.add(Fault("delay", seconds=seconds), **match)

    def stall_body(self, seconds: float, after: int = 0, **match: Any) -> Rule:
        return self.add(Fault("stall_body", seconds=seconds, nbytes=after), **match)

    def drop_request(self, *, forward: bool = False, reset: bool = False, **match: Any) -> Rule:
        return self.add(Fault("drop_request", forward=forward, reset=reset), **match)

    def remove(self, rule: Rule) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def _pick(self, method: str, path: str, query: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, query) or rule.remaining == 0:
                    continue
                rule.matched += 1
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.fault
        return None

    # -- records ---------------------------------------------------------------------------
    def count(self, method: str | None = None, path: str | None = None, *, fault: str | None = None,
              status: int | None = None) -> int:
        """Requests seen that match (method; path regex searched; the fault that fired; the
        status the client got)."""
        rx = re.compile(path) if path is not None else None
        with self._lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method.upper())
                       and (rx is None or rx.search(r.path))
                       and (fault is None or r.fault == fault)
                       and (status is None or r.status == status))

    @property
    def faults_fired(self) -> list[tuple[str, str, str]]:
        """(kind, method, path) of every fault that fired, in order."""
        with self._lock:
            return [(r.fault, r.method, r.path) for r in self.requests if r.fault]

    def forget(self) -> None:
        """Clear the request records (the rules stay)."""
        with self._lock:
            self.requests.clear()

    # -- life ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting, abort every live connection, wait for the threads."""
        self._stop = True
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accept_thread.join(timeout=10)
        for t in list(self._threads):
            t.join(timeout=10)

    def _track(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(self.io_timeout)
        with self._lock:
            self._socks.add(sock)
        return sock

    def _untrack(self, sock: socket.socket | None, rst: bool = False) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.discard(sock)
        if rst:
            abort(sock)
        else:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections_accepted += 1
                n = self.connections_accepted
                self._threads = [t for t in self._threads if t.is_alive()]
            t = threading.Thread(target=self._serve, args=(self._track(client), n), name=f"faultproxy-{n}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    # -- one client connection -------------------------------------------------------------
    def _serve(self, client: socket.socket, conn_no: int) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfile = client.makefile("rb")
        up: list[socket.socket | None] = [None]  # the target connection, (re)opened as needed
        ufile: list[io.BufferedReader | None] = [None]
        rst = False
        try:
            while not self._stop:
                try:
                    first = cfile.readline(MAX_LINE)
                except OSError:
                    break
                if not first:
                    break
                if first in (b"\r\n", b"\n"):
                    continue
                keep, rst = self._one_request(client, cfile, first, conn_no, up, ufile)
                if not keep:
                    break
        except (Closed, OSError, ValueError):
            rst = True
        finally:
            self._untrack(up[0], rst=True)
            self._untrack(client, rst=rst)

    def _connect_target(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.target_host, self.target_port), timeout=self.io_timeout)
        except OSError as e:
            raise Closed(f"target unreachable: {e}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._track(sock)

    def _one_request(self, client: socket.socket, cfile: io.BufferedReader, first: bytes, conn_no: int,
                     up: list[socket.socket | None], ufile: list[io.BufferedReader | None]) -> tuple[bool, bool]:
        """Serve one request; (keep the client connection, close it with RST)."""
        start, headers, _ = read_head(cfile, first)
        parts = start.decode("latin-1").split()
        if len(parts) != 3:
            raise Closed(f"bad request line {start!r}")
        method, target, version = parts
        path, _, query = target.partition("?")
        client_close = (not self.keep_alive or (header(headers, "Connection") or "").lower() == "close"
                        or (version == "HTTP/1.0" and (header(headers, "Connection") or "").lower() != "keep-alive"))
        expect = (header(headers, "Expect") or "").lower() == "100-continue"
        fault = self._pick(method, path, query)
        with self._lock:
            rec = RequestRecord(len(self.requests), conn_no, method, path, query, fault.kind if fault else None,
                                headers={k.lower(): v for k, v in headers})
            self.requests.append(rec)

        if fault is not None and not fault.forward and fault.kind in ("status", "drop_request"):
            if expect:  # the client holds its body back: answer now, then the connection is done
                client_close = True
            else:
                for _ in body_chunks(cfile, headers):
                    pass
            if fault.kind == "drop_request":
                return False, fault.reset
            self._send_injected(client, fault, method, client_close, rec)
            return not client_close, False

        # pass the request on
        if expect:
            send(client, b"HTTP/1.1 100 Continue\r\n\r\n")
        fwd = [(k, v) for k, v in headers if k.lower() != "expect"]
        head = start + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in fwd) + b"\r\n"
        if up[0] is not None and select.select([up[0]], [], [], 0)[0]:
            # an idle keep-alive connection with something to read: the target closed it
            self._untrack(up[0], rst=True)
            up[0] = ufile[0] = None
        if up[0] is None:
            up[0] = self._connect_target()
            ufile[0] = up[0].makefile("rb")
        target_sock, tfile = up[0], ufile[0]
        assert target_sock is not None and tfile is not None
        send(target_sock, head)
        for data in body_chunks(cfile, headers):
            send(target_sock, data)

        # the response (1xx are passed on, then the final one)
        while True:
            rstart, rheaders, rhead = read_head(tfile)
            code = int(rstart.split()[1])
            if code >= 200 or code == 101:
                break
            send(client, rhead)
        no_body = method == "HEAD" or code in (204, 304) or code < 200
        te = (header(rheaders, "Transfer-Encoding") or "").lower()
        until_close = "chunked" not in te and header(rheaders, "Content-Length") is None and not no_body
        target_close = until_close or (header(rheaders, "Connection") or "").lower() == "close"
        body = body_chunks(tfile, rheaders, none=no_body, until_close=until_close)
        client_close = client_close or until_close
        # Connection is hop-by-hop: the client's side stays open even when the target closes
        # its side after every response (moto's werkzeug does)
        rhead = rstart + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in rheaders
                                  if k.lower() not in ("connection", "keep-alive"))
        rhead += b"Connection: close\r\n\r\n" if client_close else b"\r\n"

        def done_with_target() -> None:
            if target_close:
                self._untrack(up[0], rst=False)
                up[0] = ufile[0] = None

        if fault is not None and fault.kind in ("status", "drop_request"):  # forward=True
            for _ in body:
                pass
            done_with_target()
            if fault.kind == "drop_request":
                return False, fault.reset
            self._send_injected(client, fault, method, client_close, rec)
            return not client_close, False

        if fault is not None and fault.kind == "delay" and self._stopped.wait(fault.seconds):
            raise Closed("the proxy was closed")
        rec.status = code  # before the client can see the answer and look at the record
        send(client, rhead)
        if fault is not None and fault.kind in ("reset_after", "truncate_after", "stall_body"):
            left = fault.nbytes
            for data in body:
                if left < len(data):
                    if left:
                        send(client, data[:left])
                    rest = data[left:]
                    break
                send(client, data)
                left -= len(data)
            else:
                rest = b""
                if fault.kind != "stall_body":  # the body was shorter than nbytes: it all went
                    done_with_target()
                    return not client_close, False
            if fault.kind != "stall_body":
                # the rest of the response is never read: the target connection goes too
                self._untrack(up[0], rst=True)
                up[0] = ufile[0] = None
                return False, fault.kind == "reset_after"
            if self._stopped.wait(fault.seconds):
                raise Closed("the proxy was closed")
            if rest:
                send(client, rest)
        for data in body:
            send(client, data)
        done_with_target()
        return not client_close, False

    def _send_injected(self, client: socket.socket, fault: Fault, method: str, close: bool,
                       rec: RequestRecord) -> None:
        try:
            reason = http.HTTPStatus(fault.code).phrase
        except ValueError:
            reason = "Injected"
        hdrs = {"Content-Length": str(len(fault.body)), "x-amz-request-id": "pyclonefault"}
        if fault.body.lstrip().startswith(b"<"):
            hdrs["Content-Type"] = "application/xml"
        for k, v in fault.headers.items():
            for old in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[old]
            hdrs[k] = v
        if close:
            hdrs["Connection"] = "close"
        head = f"HTTP/1.1 {fault.code} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        rec.status = fault.code
        send(client, head.encode("latin-1") + (b"" if method == "HEAD" else fault.body))
