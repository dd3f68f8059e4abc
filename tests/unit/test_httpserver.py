"""The HTTP loop in-process over a real unix socket (no root): what rc needs from it (the
query, response headers), every malformed request answered, half-closed clients answered,
the connection cap evicting the right connection, and linear-time parsing of dripped bodies."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from pyclone_docker.lib import httpserver
from pyclone_docker.lib.httpserver import HttpServer, Request, RequestParser, Response


def err_body(message: str) -> bytes:
    return json.dumps({"Err": message}).encode() + b"\n"


def handler(req: Request) -> Response | Callable[[], Response]:
    if req.path == "/slow":
        def work() -> Response:
            time.sleep(0.2)
            return Response(200, b"slow\n")
        return work
    if req.path == "/hdr":
        return Response(200, b"{}", headers={"X-Test": "yes", "WWW-Authenticate": 'Basic realm="r"'})
    if req.path == "/badhdr":
        return Response(200, b"{}", headers={"X-Bad": "a\r\nInjected: 1"})
    echo = {"method": req.method, "path": req.path, "query": req.query, "body": req.body.decode("latin-1"),
            "keep": req.keep_alive, "headers": req.headers}
    return Response(200, json.dumps(echo).encode())


@dataclass
class Served:
    server: HttpServer
    path: str

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.path)
        return s

    def exchange(self, raw: bytes, half_close: bool = True) -> bytes:
        """Send raw bytes, optionally shut our side, and read until the server closes."""
        with self.connect() as s:
            try:
                s.sendall(raw)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
            except BrokenPipeError:
                pass  # answered and closed before all was sent: the answer is still there
            return read_all(s)


def read_all(s: socket.socket) -> bytes:
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw
    return int(raw.split(b" ", 2)[1])


@pytest.fixture
def served() -> Iterator[Served]:
    d = tempfile.mkdtemp(prefix="pyc-http-", dir="/tmp")  # unix socket paths are short
    path = os.path.join(d, "s.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(128)
    server = HttpServer(listener, handler, err_body, workers=2, headers={"Server": "test/1"})
    t = threading.Thread(target=server.serve, daemon=True)
    t.start()
    try:
        yield Served(server, path)
    finally:
        server.stop()
        t.join(5)
        server.close()
        listener.close()
        shutil.rmtree(d, ignore_errors=True)


# --- what the rc server needs ---------------------------------------------------------------


def test_query_is_split_from_the_path_and_kept_raw(served: Served) -> None:
    raw = served.exchange(b"POST /echo?fs=a%20b&x=1?2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
    echo = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert (echo["path"], echo["query"], echo["body"]) == ("/echo", "fs=a%20b&x=1?2", "hi")
    raw = served.exchange(b"POST /echo HTTP/1.1\r\n\r\n")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["query"] == ""


def test_response_headers_and_server_headers(served: Served) -> None:
    raw = served.exchange(b"POST /hdr HTTP/1.1\r\nConnection: close\r\n\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert head[1:] == [b"Content-Type: application/json", b"Content-Length: 2", b"Server: test/1",
                        b"X-Test: yes", b'WWW-Authenticate: Basic realm="r"', b"Connection: close"]
    raw = served.exchange(b"BAD\r\n\r\n")  # the loop's own answers carry the server's fields too
    assert status_of(raw) == 400 and b"\r\nServer: test/1\r\n" in raw


def test_a_header_with_a_line_break_is_never_sent(served: Served) -> None:
    raw = served.exchange(b"POST /badhdr HTTP/1.1\r\n\r\n")
    assert status_of(raw) == 500 and b"Injected" not in raw


# --- malformed requests: always an answer ---------------------------------------------------

GOOD = b"POST /echo HTTP/1.1\r\nHost: h\r\n"


@pytest.mark.parametrize("raw, status", [
    (GOOD + b"Content-Len", 400),  # incomplete head, then the client shuts its side
    (GOOD + b"Content-Length: 10\r\n\r\nabc", 400),  # body shorter than announced
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", 400),  # chunked body cut short
    (b"POST /echo HTTP/1.1\nHost: h\nContent-Length: 2\n\nhi", 200),  # bare LF line ends: accepted
    (b"\r\n" + GOOD + b"\r\n", 200),  # an empty line before the request line is ignored
    (GOOD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nhi", 400),
    (GOOD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 200),  # the same value twice
    (GOOD + b"Content-Length: 2, 2\r\n\r\nhi", 400),
    (GOOD + b"Content-Length: 1_1\r\n\r\nhello world", 400),
    (GOOD + b"Content-Length: +2\r\n\r\nhi", 400),
    (GOOD + b"Content-Length: -2\r\n\r\nhi", 400),
    (GOOD + b"Content-Length: 0x2\r\n\r\nhi", 400),
    (GOOD + b"Content-Length: \x0b2\r\n\r\nhi", 400),  # int() would skip that whitespace
    (GOOD + b"Content-Length: \xa02\r\n\r\nhi", 400),  # and that one (latin-1 NBSP)
    (GOOD + b"Content-Length: \xb2\r\n\r\nhi", 400),  # superscript two: str.isdigit() says yes
    (GOOD + b"Content-Length: 2 2\r\n\r\nhi", 400),
    (GOOD + b"Content-Length:  2 \r\n\r\nhi", 200),  # optional whitespace around a value is allowed
    (GOOD + b"Content-Length: 00002\r\n\r\nhi", 200),
    (GOOD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
    (GOOD + b"Transfer-Encoding: gzip\r\n\r\nhi", 400),  # chunked is not the last coding
    (GOOD + b"Transfer-Encoding: chunked, gzip\r\n\r\nhi", 400),
    (GOOD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (GOOD + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: xchunkedx\r\n\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: \r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\nhi\r\n0\r\nTrailer: x\r\n\r\n", 200),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n+2\r\nhi\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\nhi\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n 2\r\nhi\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 400),
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhiX0\r\n\r\n", 400),  # data not followed by CRLF
    (GOOD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 400000, 413),  # framing too large
    (b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /echo HTTP/1.1x\r\n\r\n", 400),
    (b"POST /echo HTTP/2.0\r\n\r\n", 505),
    (b"POST /ec\x01ho HTTP/1.1\r\n\r\n", 400),
    (b"POST  /echo HTTP/1.1\r\n\r\n", 400),
    (b"PO(ST /echo HTTP/1.1\r\n\r\n", 400),
    (GOOD + b"X: a\rb\r\n\r\n", 400),  # a bare CR
    (GOOD + b"X: a\0b\r\n\r\n", 400),
    (GOOD + b"X : a\r\n\r\n", 400),  # space before the colon
    (GOOD + b"X: a\r\n folded\r\n\r\n", 400),  # obsolete line folding
    (GOOD + b"X: " + b"a" * 20000, 431),
], ids=lambda v: repr(v)[-48:] if isinstance(v, bytes) else str(v))
def test_malformed_requests_are_answered(served: Served, raw: bytes, status: int) -> None:
    got = served.exchange(raw)
    assert status_of(got) == status, got[:300]
    if status != 200:
        assert b"\r\nConnection: close\r\n" in got and json.loads(got.split(b"\r\n\r\n", 1)[1])["Err"]


def test_a_dripped_malformed_request_is_answered(served: Served) -> None:
    with served.connect() as s:
        for b in GOOD + b"Content-Length: 1_1\r\n\r\n":
            s.send(bytes([b]))
        assert status_of(read_all(s)) == 400


def test_pipelined_requests_then_half_close_are_all_answered(served: Served) -> None:
    one = GOOD + b"Content-Length: 1\r\n\r\n"
    got = served.exchange(one + b"a" + one + b"b" + b"POST /slow HTTP/1.1\r\n\r\n" + one + b"c")
    assert got.count(b"HTTP/1.1 200 OK") == 4
    assert got.index(b'"body": "a"') < got.index(b'"body": "b"') < got.index(b"slow\n") < got.index(b'"body": "c"')


def test_a_slow_request_then_half_close_is_answered(served: Served) -> None:
    got = served.exchange(b"POST /slow HTTP/1.1\r\n\r\n")
    assert status_of(got) == 200 and got.endswith(b"slow\n")


def test_an_error_follows_the_answers_to_earlier_pipelined_requests(served: Served) -> None:
    got = served.exchange(GOOD + b"\r\n" + b"POST /slow HTTP/1.1\r\n\r\n" + b"GARBAGE\r\n\r\n" + GOOD + b"\r\n",
                          half_close=False)
    assert got.count(b"HTTP/1.1 ") == 3 and got.rindex(b"200 OK") < got.index(b"400 Bad Request")


def test_connection_header_tokens() -> None:
    def keep(raw: bytes) -> bool:
        parsed = RequestParser().parse(bytearray(raw))
        assert parsed is not None
        return parsed[0].keep_alive

    assert keep(b"POST / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n") is False
    assert keep(b"POST / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n") is True
    assert keep(b"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") is True
    assert keep(b"POST / HTTP/1.0\r\n\r\n") is False


# --- incremental parsing --------------------------------------------------------------------


def drip_cost(chunks: int, chunked: bool) -> float:
    """Seconds to parse one request fed to the parser one byte at a time (best of 3)."""
    if chunked:
        raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * chunks + b"0\r\n\r\n"
    else:
        raw = b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (6 * chunks) + b"x" * (6 * chunks)
    best = float("inf")
    for _ in range(3):
        p, buf = RequestParser(), bytearray()
        started = time.perf_counter()
        for i in range(len(raw)):
            buf += raw[i:i + 1]
            if p.parse(buf) is not None:
                break
        best = min(best, time.perf_counter() - started)
        assert i == len(raw) - 1
    return best


@pytest.mark.parametrize("chunked", [True, False])
def test_a_dripped_request_is_parsed_in_linear_time(chunked: bool) -> None:
    """Four times the bytes cost about four times as much, not sixteen (the old parser
    decoded a chunked body from its start again at every byte)."""
    small, large = drip_cost(2000, chunked), drip_cost(8000, chunked)
    assert large / small < 8, (small, large)


def test_parser_keeps_its_place_across_calls() -> None:
    raw = b"POST /a?b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT"
    p, buf = RequestParser(), bytearray()
    for i in range(len(raw) - 4):
        buf += raw[i:i + 1]
        parsed = p.parse(buf)
        assert (parsed is None) == (i < len(raw) - 5)
    assert parsed is not None
    req, used = parsed
    assert (req.path, req.query, req.body, used) == ("/a", "b", b"abcde", len(raw) - 4)


# --- the connection cap ---------------------------------------------------------------------


def activate_ok(served: Served) -> None:
    raw = served.exchange(GOOD + b"Connection: close\r\nContent-Length: 2\r\n\r\nok", half_close=False)
    assert status_of(raw) == 200


def closed_by_server(s: socket.socket) -> bool:
    """True when the server closed `s` (an answer such as a 503 may come first)."""
    s.settimeout(2)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        pass
    return True


def wait_conns(served: Served, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(served.server.conns) != n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(served.server.conns) == n


def test_past_the_cap_the_oldest_idle_connection_goes(served: Served, monkeypatch) -> None:
    monkeypatch.setattr(httpserver, "MAX_CONNECTIONS", 8)
    idle = []
    for _ in range(8):
        idle.append(served.connect())
        wait_conns(served, len(idle))  # accepted in this order
    busy = served.connect()  # a client with a request in flight is never evicted
    busy.sendall(b"POST /slow HTTP/1.1\r\n\r\n")
    assert closed_by_server(idle[0])
    newer = [served.connect() for _ in range(3)]  # each takes the place of the oldest idle one
    activate_ok(served)  # and so does a client with a request
    assert all(closed_by_server(s) for s in idle[1:5])
    assert status_of(read_all_until(busy, b"slow\n")) == 200
    for s in [*idle[5:], *newer]:
        s.settimeout(0.05)
        with pytest.raises(TimeoutError):
            s.recv(1)  # the newest idle ones are still open
    for s in [*idle, *newer, busy]:
        s.close()


def read_all_until(s: socket.socket, end: bytes) -> bytes:
    got = b""
    while not got.endswith(end):
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    return got


def test_slow_clients_cannot_hold_every_slot(served: Served, monkeypatch) -> None:
    """A slowloris crowd holding partial requests: the oldest partial one goes, with a 503."""
    monkeypatch.setattr(httpserver, "MAX_CONNECTIONS", 8)
    slow = []
    for _ in range(8):
        s = served.connect()
        s.sendall(b"POST /echo HTTP/1.1\r\nContent-Le")
        slow.append(s)
        wait_conns(served, len(slow))
    time.sleep(0.05)  # every partial request read by the loop
    activate_ok(served)
    assert status_of(read_all(slow[0])) == 503
    for s in slow:
        s.close()


def test_a_client_that_never_reads_is_not_read_from(served: Served) -> None:
    """Pipelined requests from a client that reads no answers: the loop stops reading it
    instead of buffering answers without bound."""
    req = GOOD + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000
    with served.connect() as s:
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                sent += s.send(req * 16)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += s.send(req * 16)
                except BlockingIOError:
                    break
        conn = next(iter(served.server.conns.values()))
        assert sent < 100 * len(req) * 16  # the loop pushed back; it did not swallow everything
        assert len(conn.out) < httpserver.OUT_HIGH + 64 * 1024
        assert len(conn.inbuf) <= 2 * httpserver.RECV_SIZE + len(req)
        activate_ok(served)  # and everybody else is still answered
