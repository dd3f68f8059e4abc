"""HTTP/1.1 message framing for the test proxies (tests/support/faultproxy.py): read a head,
stream a body as its raw wire bytes (Content-Length, chunked with its framing, or to the
close), send, abort with RST. Blocking sockets through socket.makefile("rb") readers."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from collections.abc import Iterator

MAX_LINE = 65536
CHUNK = 64 * 1024


class Closed(Exception):
    """A side closed or broke the connection."""


def abort(sock: socket.socket) -> None:
    """Close with RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def readline(f: io.BufferedReader) -> bytes:
    try:
        line = f.readline(MAX_LINE)
    except OSError as e:
        raise Closed(str(e))
    if not line.endswith(b"\n"):
        raise Closed("connection closed mid-line" if line else "connection closed")
    return line


def read_head(f: io.BufferedReader, first: bytes | None = None) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """(start line, headers, the raw head bytes)."""
    start = first if first is not None else readline(f)
    raw = [start]
    headers: list[tuple[str, str]] = []
    while True:
        line = readline(f)
        raw.append(line)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return start, headers, b"".join(raw)


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def body_chunks(f: io.BufferedReader, headers: list[tuple[str, str]], *, none: bool = False,
                 until_close: bool = False) -> Iterator[bytes]:
    """The raw body bytes as they come (chunk framing included)."""
    if none:
        return
    te = (header(headers, "Transfer-Encoding") or "").lower()
    if "chunked" in te:
        while True:
            size_line = readline(f)
            yield size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = readline(f)
                    yield line
                    if line in (b"\r\n", b"\n"):
                        return
            left = size + 2  # the data and its CRLF
            while left:
                data = _read1(f, min(left, CHUNK))
                if not data:
                    raise Closed("connection closed mid-chunk")
                left -= len(data)
                yield data
    length = header(headers, "Content-Length")
    if length is not None:
        left = int(length)
        while left:
            data = _read1(f, min(left, CHUNK))
            if not data:
                raise Closed("connection closed mid-body")
            left -= len(data)
            yield data
    elif until_close:
        while True:
            data = _read1(f, CHUNK)
            if not data:
                return
            yield data


def _read1(f: io.BufferedReader, n: int) -> bytes:
    try:
        return f.read1(n)
    except OSError as e:
        raise Closed(str(e))


def send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as e:
        raise Closed(str(e))
