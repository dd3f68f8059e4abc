"""HTTP/1.1 messages (RFC 9112): requests parsed incrementally and strictly, responses rendered.

A request's head is parsed once, then its body is counted (or its chunks decoded) from where
the last call stopped, so a request that arrives one byte at a time costs linear time.
Framing is strict: Content-Length is DIGIT+ and repeated only with the same value, chunked
is the one transfer coding and comes last, no bare CR, no NUL, no space before a colon, no
folded lines; a bare LF is accepted as a line end (RFC 9112 §2.2 allows it, as Go does), and
empty lines before a request line are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_HEADER = 16 * 1024
MAX_BODY = 1024 * 1024
MAX_REQUEST = MAX_HEADER + 2 * MAX_BODY  # raw bytes of one request, chunk framing included
MAX_CHUNK_LINE = 4096

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
           505: "HTTP Version Not Supported"}

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN = re.compile(_TCHARS + r"\Z")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])\Z")
# method SP origin-form SP HTTP-version (the target: no space or control character)
_REQUEST_LINE = re.compile(rf"({_TCHARS}) (/[^\x00-\x20\x7f]*) HTTP/([0-9])\.([0-9])")
_HEX = re.compile(rb"[0-9A-Fa-f]+\Z")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")
_BLANK_LINES = re.compile(rb"(?:\r?\n)*")
_FIELD_KEYS: dict[str, str] = {}  # field names seen valid -> their lower case


@dataclass
class Request:
    method: str
    path: str  # the request target's path, without the query
    headers: dict[str, str]  # names in lower case; a repeated field keeps its first value
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


class ParseError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bad(message: str) -> ParseError:
    return ParseError(400, message)


class RequestParser:
    """Parses the request at the front of a connection's buffer, resuming where the last call
    stopped. Call parse() each time the buffer has grown; reset() after taking a request."""

    __slots__ = ("_lead", "_scan", "_head", "_pos", "_chunk", "_body", "chunked")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lead = -1  # where the request line starts (blank lines before it are skipped)
        self._scan = 0  # where the search for the end of the head (or trailers) goes on
        self._head: tuple[str, str, str, dict[str, str], bool, int] | None = None
        self._pos = 0  # the body: its start, or the next chunk-size line of a chunked body
        self._chunk = -1  # size of the chunk whose data is awaited, -1 while at a size line
        self._body: bytearray | None = None  # a chunked body decoded so far
        self.chunked = False  # a chunked body is being decoded

    def parse(self, buf: bytearray) -> tuple[Request, int] | None:
        """One complete request from the front of `buf` and its length in bytes, or None if it
        is incomplete. Raises ParseError for a request that must be refused."""
        if self._head is None:
            end = self._parse_head(buf)
            if end < 0:
                return None
            self._pos = self._scan = end
        method, path, query, headers, keep, length = self._head  # type: ignore[misc]
        if length >= 0:
            if len(buf) - self._pos < length:
                return None
            used = self._pos + length
            if length < 65536:
                body = bytes(buf[self._pos:used])
            else:  # one copy, not two
                with memoryview(buf) as view:
                    body = bytes(view[self._pos:used])
        else:
            done = self._dechunk(buf)
            if done < 0:
                if len(buf) - self._lead > MAX_REQUEST:
                    raise ParseError(413, f"request larger than {MAX_REQUEST} bytes")
                return None
            body, used = bytes(self._body or b""), done
        self.reset()
        return Request(method, path, headers, body, keep, query), used

    def _parse_head(self, buf: bytearray) -> int:
        """Parse the head once it is complete; the offset just past it, or -1."""
        if self._lead < 0:
            lead = _BLANK_LINES.match(buf).end()  # type: ignore[union-attr]
            if lead == len(buf) or (buf.endswith(b"\r") and lead == len(buf) - 1):
                return -1  # nothing but blank lines yet (RFC 9112 §2.2: ignored before a request)
            self._lead = self._scan = lead
        last, end = _find_blank_line(buf, self._scan)
        if end < 0:
            self._scan = last
            if len(buf) - self._lead > MAX_HEADER:
                raise ParseError(431, "request headers too large")
            return -1
        if end - self._lead > MAX_HEADER:
            raise ParseError(431, "request headers too large")
        self._head = _parse_head_text(buf[self._lead:last].decode("latin-1"))
        if self._head[5] == -2:  # chunked
            self._body = bytearray()
            self.chunked = True
        return end

    def _dechunk(self, buf: bytearray) -> int:
        """Decode the chunks that have arrived; the offset just past the body, or -1."""
        body = self._body
        assert body is not None
        n, pos, size = len(buf), self._pos, self._chunk
        while size != 0:
            if size < 0:  # at a chunk-size line
                m = _CHUNK_LINE.match(buf, pos)
                if m is not None and m.end() - pos <= MAX_CHUNK_LINE:
                    size, pos = int(m.group(1), 16), m.end()
                else:  # incomplete, malformed, or an unusual form the fast pattern leaves out
                    eol = buf.find(b"\n", pos, pos + MAX_CHUNK_LINE + 1)
                    if eol < 0:
                        if n - pos > MAX_CHUNK_LINE:
                            raise _bad("chunk-size line too long")
                        break
                    size, pos = _chunk_size(bytes(buf[pos:eol])), eol + 1
                if len(body) + size > MAX_BODY:
                    raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
                if size == 0:  # the last chunk: trailer fields, then a blank line
                    self._scan = pos - 1
                continue
            end = pos + size
            if n <= end:
                break
            if buf[end] == 10:
                after = end + 1
            elif buf[end] == 13 and (n <= end + 1 or buf[end + 1] == 10):
                if n <= end + 1:
                    break
                after = end + 2
            else:
                raise _bad("chunk data not followed by CRLF")
            body += buf[pos:end]
            pos, size = after, -1
        self._pos, self._chunk = pos, size
        if size != 0:
            return -1
        last, end = _find_blank_line(buf, self._scan)
        if end < 0:
            self._scan = last
            if n - pos > MAX_HEADER:
                raise ParseError(431, "request trailers too large")
            return -1
        return end


def _find_blank_line(buf: bytearray, scan: int) -> tuple[int, int]:
    """Find a line end followed by an empty line, searching from `scan`. Returns (offset just
    past that line end, offset just past the empty line), or (where to resume, -1). An LF,
    with or without a CR before it, ends a line."""
    lf = buf.find(b"\n\n", scan)
    crlf = buf.find(b"\n\r\n", scan, lf + 1 if lf >= 0 else len(buf))
    if crlf >= 0:
        return crlf + 1, crlf + 3
    if lf >= 0:
        return lf + 1, lf + 2
    return max(scan, len(buf) - 2), -1


def _chunk_size(line: bytes) -> int:
    """chunk-size [ chunk-ext ]: strictly hex digits (no sign, prefix, `_` or spaces)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    text = line.split(b";", 1)[0].rstrip(b" \t")
    if not _HEX.match(text) or b"\r" in line:
        raise _bad("malformed chunk size")
    if len(text.lstrip(b"0")) > 8:
        raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
    return int(text, 16)


def _parse_head_text(text: str) -> tuple[str, str, str, dict[str, str], bool, int]:
    """Request line and header fields -> (method, path, query, headers, keep-alive, length);
    length is -2 for a chunked body. `text` ends with its last line's LF."""
    if "\0" in text:
        raise _bad("NUL in request head")
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise _bad("bare CR in request head")
    lines = text.split("\n")  # the last is the empty string after the final LF
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        parts = lines[0].split(" ")
        vm = _VERSION.match(parts[-1])
        if len(parts) == 3 and _TOKEN.match(parts[0]) and vm is not None and vm.group(1) != "1":
            raise ParseError(505, f"{parts[2]} not supported, use HTTP/1.1")
        raise _bad("malformed request line")
    method, target, major, minor = m.groups()
    if major != "1":
        raise ParseError(505, f"HTTP/{major}.{minor} not supported, use HTTP/1.1")
    headers: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for line in lines[1:-1]:
        name, sep, value = line.partition(":")
        key = _FIELD_KEYS.get(name) if sep else None
        if key is None:
            # a field name is a token: no space before the colon, no folded line (leading space)
            if not sep or not _TOKEN.match(name):
                raise _bad("malformed header line")
            key = name.lower()
            if len(_FIELD_KEYS) < 512:  # the few names clients send, checked once
                _FIELD_KEYS[name] = key
        if key in headers:  # the first value stands; the others matter for three fields below
            repeated.setdefault(key, []).append(value.strip(" \t"))
        else:
            headers[key] = value.strip(" \t")
    http10 = minor == "0"
    if "connection" in headers:
        tokens = {t.strip(" \t").lower() for v in (headers["connection"], *repeated.get("connection", ()))
                  for t in v.split(",")}
        keep = "keep-alive" in tokens if http10 else "close" not in tokens
    else:
        keep = not http10
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise _bad("both Transfer-Encoding and Content-Length")
        if http10:
            raise _bad("Transfer-Encoding in an HTTP/1.0 request")
        codings = [c.strip(" \t").lower() for v in (headers["transfer-encoding"],
                                                     *repeated.get("transfer-encoding", ()))
                   for c in v.split(",") if c.strip(" \t")]
        if not codings or not all(_TOKEN.match(c) for c in codings) or codings[-1] != "chunked" \
                or "chunked" in codings[:-1]:
            raise _bad("malformed Transfer-Encoding: chunked must be the last coding, once")
        if len(codings) > 1:
            raise ParseError(501, f"transfer coding {codings[0]!r} not supported")
        length = -2
    elif "content-length" in headers:
        length = _content_length(headers["content-length"])
        for other in repeated.get("content-length", ()):
            if _content_length(other) != length:
                raise _bad("conflicting Content-Length values")
    else:
        length = 0
    path, _, query = target.partition("?")
    return method, path, query, headers, keep, length


def _content_length(value: str) -> int:
    """1*DIGIT, nothing else: int() would also take "1_1", "+5", " 5" (any Unicode space)."""
    if not (value.isascii() and value.isdigit()):
        raise _bad("malformed Content-Length")
    if len(value) > 9 and len(value.lstrip("0")) > 9:
        raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
    length = int(value)
    if length > MAX_BODY:
        raise ParseError(413, f"request body larger than {MAX_BODY} bytes")
    return length


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """One complete request from the front of `buf` and its length, or None if incomplete."""
    return RequestParser().parse(buf)


def render(resp: Response, keep_alive: bool, extra: Mapping[str, str] | None = None) -> bytes:
    """The response's bytes: status line, Content-Type, Content-Length, `extra` (the server's
    own fields), the response's headers, Connection, then the body."""
    head = (f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}\r\n"
            f"Content-Type: {resp.content_type}\r\n"
            f"Content-Length: {len(resp.body)}\r\n")
    if extra or resp.headers:
        for fields in (extra or {}, resp.headers):
            for name, value in fields.items():
                if not _TOKEN.match(name) or "\r" in value or "\n" in value:
                    raise ValueError(f"bad response header {name!r}")
                head += f"{name}: {value}\r\n"
    head += "Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n"
    return head.encode("latin-1") + resp.body
