"""The HTTP loop in-process over a real unix socket (no root): what rc needs from it (the
query, response headers), and linear-time parsing of dripped bodies."""

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


# --- parsing --------------------------------------------------------------------------------


def test_connection_header_tokens() -> None:
    def keep(raw: bytes) -> bool:
        parsed = RequestParser().parse(bytearray(raw))
        assert parsed is not None
        return parsed[0].keep_alive

    assert keep(b"POST / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n") is False
    assert keep(b"POST / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n") is True
    assert keep(b"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") is True
    assert keep(b"POST / HTTP/1.0\r\n\r\n") is False


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
