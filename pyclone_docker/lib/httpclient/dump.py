"""--dump for HttpClient: requests and responses written to the log as rclone lays them out.

    >>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>
    HTTP REQUEST (req 0x1)
    GET /bucket/key?list-type=2 HTTP/1.1
    Host: 127.0.0.1:9000
    User-Agent: pyclone-docker/v0.1.0
    Authorization: XXXX
    ...
    >>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>
    <<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<
    HTTP RESPONSE (req 0x1)
    HTTP/1.1 200 OK
    ...
    <<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<

each line a DEBUG record of the `pyclone.http` logger (rclone: one Debugf each), headers after
Host and User-Agent in name order, as Go prints them; lines end in \\n, not Go's \\r\\n.

What is dumped (rclone's DumpFlags): `headers` the headers; `bodies` the headers and both bodies;
`requests` / `responses` the headers and that side's body; `errors` only the transactions that
failed (a connection error or a status that is retried). `auth`, `curl`, `trace`, `filters`,
`goroutines`, `openfiles`, `mapper` are accepted and change nothing here.

Redaction, ALWAYS, also with `auth` (where rclone would show the Authorization and X-Auth-Token
values): the values of Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Auth-Token,
X-Amz-Security-Token and of every header whose name holds "token", "secret", "signature" or
"password" print as XXXX, and so do the query parameters X-Amz-Signature, Signature,
AWSAccessKeyId, X-Amz-Credential, X-Amz-Security-Token and those whose names hold those words.
A body is shown up to BODY_CAP bytes; a streamed body as it is read, never buffered whole.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus, urlsplit

log = logging.getLogger("pyclone.http")

SEPARATOR_REQ = ">" * 60
SEPARATOR_RESP = "<" * 60
BODY_CAP = 64 * 1024
MASK = "XXXX"

DUMP_FLAGS = frozenset({"headers", "bodies", "requests", "responses", "auth", "errors"})
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-auth-token",
                             "x-amz-security-token"})
_SECRET_PARAMS = frozenset({"x-amz-signature", "signature", "awsaccesskeyid", "x-amz-credential",
                            "x-amz-security-token"})
_SECRET_WORDS = ("token", "secret", "signature", "password")

_ids = itertools.count(1)


def _secret_name(name: str, exact: frozenset[str]) -> bool:
    low = name.strip().lower()
    return low in exact or any(word in low for word in _SECRET_WORDS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, MASK if _secret_name(k, _SECRET_HEADERS) else v) for k, v in headers]


def redact_query(query: str) -> str:
    """The query string with the values of signing and credential parameters masked."""
    if not query:
        return query
    out = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        out.append(f"{name}={MASK}" if eq and _secret_name(unquote_plus(name), _SECRET_PARAMS) else part)
    return "&".join(out)


def url_without_query(url: str) -> str:
    """scheme://host[:port]/path: what errors and retry logs show of a URL (no query, no user)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _body_text(data: bytes | memoryview, total: int | None) -> str:
    shown = bytes(data[:BODY_CAP])
    text = shown.decode("utf-8", "backslashreplace")
    if total is not None and total > len(shown):
        text += f"\n... ({total - len(shown)} more bytes not shown)"
    return text


def _header_lines(headers: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{k}: {v}" for k, v in sorted(redact_headers(headers), key=lambda kv: kv[0].lower())]


class Dumper:
    """--dump for one HttpClient; `enabled` is False when nothing is to be dumped."""

    def __init__(self, flags: Iterable[str]) -> None:
        flags = frozenset(flags)
        wanted = flags & {"headers", "bodies", "requests", "responses", "errors"}
        self.enabled = bool(wanted)
        self.errors_only = "errors" in flags and not (flags & {"headers", "bodies", "requests", "responses"})
        self.request_body = bool(flags & {"bodies", "requests"})
        self.response_body = bool(flags & {"bodies", "responses"})

    @staticmethod
    def new_id() -> str:
        return f"0x{next(_ids):x}"

    def request_lines(self, req_id: str, method: str, url: str, headers: Mapping[str, str],
                      body: bytes | memoryview | None) -> list[str]:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{redact_query(parts.query)}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        rest = [(k, v) for k, v in headers.items() if k.lower() not in ("host", "user-agent")]
        agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
        text = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
        if agent:
            text.append(f"User-Agent: {agent}")
        text += _header_lines(rest)
        message = "\n".join(text) + "\n"
        if self.request_body and body is not None and len(body):
            message += "\n" + _body_text(memoryview(body).cast("B"), memoryview(body).nbytes)
        return [SEPARATOR_REQ, f"HTTP REQUEST (req {req_id})", message, SEPARATOR_REQ]

    def response_lines(self, req_id: str, resp: object | None, error: BaseException | None = None,
                       body: bytes | None = None) -> list[str]:
        lines = [SEPARATOR_RESP, f"HTTP RESPONSE (req {req_id})"]
        if resp is None:
            lines.append(f"Error: {error}")
        else:
            version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2.0"}.get(getattr(resp, "version", 11), "HTTP/1.1")
            status = getattr(resp, "status", 0)
            reason = getattr(resp, "reason", "") or ""
            headers = list(resp.headers.items())  # type: ignore[attr-defined]
            message = "\n".join([f"{version} {status} {reason}".rstrip(), *_header_lines(headers)]) + "\n"
            if self.response_body and body:
                message += "\n" + _body_text(body, len(body))
            lines.append(message)
        lines.append(SEPARATOR_RESP)
        return lines

    @staticmethod
    def emit(lines: Iterable[str]) -> None:
        for line in lines:
            log.debug("%s", line)


class BodyDump:
    """The first BODY_CAP bytes of a streamed response body, logged once (when full or closed)."""

    def __init__(self, req_id: str) -> None:
        self.req_id = req_id
        self._buf = bytearray()
        self._more = 0
        self._done = False

    def feed(self, data: memoryview) -> None:
        if self._done:
            return
        room = BODY_CAP - len(self._buf)
        self._buf += data[:room]
        self._more += max(0, len(data) - room)
        if len(self._buf) >= BODY_CAP:
            self.flush(truncated=True)

    def flush(self, truncated: bool = False) -> None:
        if self._done:
            return
        self._done = True
        note = f" (the first {len(self._buf)} bytes)" if truncated or self._more else ""
        Dumper.emit([SEPARATOR_RESP, f"HTTP RESPONSE BODY (req {self.req_id}){note}",
                     bytes(self._buf).decode("utf-8", "backslashreplace"), SEPARATOR_RESP])
        self._buf = bytearray()
