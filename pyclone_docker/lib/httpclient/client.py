"""HttpClient: the HTTP/1.1 client of the web backends (urllib3 underneath), and BodyReader.

One urllib3 pool manager per HttpClient (a ProxyManager for the URLs a proxy applies to), with
keep-alive, `max_connections` connections kept per host (block=False: more may open under load),
rclone's --contimeout / --timeout (0 means none) and no retries or redirects inside urllib3: the
client retries itself (retry.py), re-running `prepare` (the request signer) for every attempt.

Redirects are followed as redirects.py says (webdav, http; s3 follows none).

Bodies: a `stream=False` response is read whole before `request` returns; one shorter than its
Content-Length is a retried error (urllib3's enforce_content_length). A `stream=True` response
is read with BodyReader, straight into the caller's buffer: urllib3's own readinto reads into a
new bytes and copies, so BodyReader calls the underlying http.client.HTTPResponse.readinto.
Content-Encoding is never decoded (nothing here asks for compression: a Content-Encoding a
server sends is the object's own, as rclone's s3 sees it).

urllib3 is imported when the first HttpClient is made, so that importing a backend (for its
options) stays cheap.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from . import dump as dumpmod
from . import limits, proxy, redirects, tls
from . import retry as retrymod

if TYPE_CHECKING:
    import http.client

    import urllib3

log = logging.getLogger("pyclone.http")

_u3: Any = None


def _urllib3() -> Any:
    global _u3
    if _u3 is None:
        import urllib3
        import urllib3.exceptions

        # its per-request debug lines ("Starting new HTTP connection") are not rclone's: --dump
        # is how a user sees requests
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        _u3 = urllib3
    return _u3


def preload() -> None:
    """Import urllib3 and http.client now (the first request would): a backend's warm-up."""
    import http.client  # noqa: F401

    _urllib3()


class HttpError(OSError):
    """A request that could not be made (errno EIO, ETIMEDOUT for timeouts), or a body that
    broke off. The message names the client, the method and the URL without its query."""

    def __init__(self, err: int, message: str, *, method: str = "", url: str = "", retryable: bool = False) -> None:
        super().__init__(err, message)
        self.method = method
        self.url = url
        self.retryable = retryable


def merge_headers(*groups: Iterable[tuple[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """Header groups merged in order, names compared without case: a later group wins."""
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    for group in groups:
        if not group:
            continue
        items = group.items() if isinstance(group, Mapping) else group
        for key, value in items:
            low = key.lower()
            old = names.get(low)
            if old is not None:
                del merged[old]
            names[low] = key
            merged[key] = value
    return merged


def _describe(exc: BaseException) -> tuple[str, int, bool]:
    """(cause for a message, errno, retryable) of an exception from urllib3 or the socket."""
    import http.client
    import ssl

    u3 = _urllib3()
    exc_mod = u3.exceptions
    if isinstance(exc, exc_mod.NewConnectionError):  # (a ConnectTimeoutError subclass in urllib3 2)
        why = str(exc).split(": ", 1)[-1]
        return why or "cannot connect", errno.EIO, True
    if isinstance(exc, (exc_mod.ConnectTimeoutError, exc_mod.ReadTimeoutError, TimeoutError, socket.timeout)):
        kind = "connect" if isinstance(exc, exc_mod.ConnectTimeoutError) else "read"
        return f"{kind} timed out", errno.ETIMEDOUT, True
    if isinstance(exc, (exc_mod.SSLError, ssl.SSLError)):
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
        if isinstance(inner, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return f"TLS certificate verification failed: {getattr(inner, 'verify_message', '') or inner}", \
                errno.EIO, False
        eof = isinstance(inner, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or "EOF" in str(exc)
        return f"TLS error: {inner}", errno.EIO, eof
    if isinstance(exc, exc_mod.ProxyError):
        inner = exc.args[1] if len(exc.args) > 1 else exc
        why, _err, _retry = _describe(inner) if isinstance(inner, BaseException) and inner is not exc else \
            (str(exc), errno.EIO, True)
        return f"proxy: {why}", errno.EIO, True
    if isinstance(exc, exc_mod.ProtocolError):
        inner = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], BaseException) else None
        if isinstance(inner, http.client.IncompleteRead):
            return "the body ended before its Content-Length", errno.EIO, True
        if isinstance(inner, OSError) and inner.strerror:
            return f"connection broken: {inner.strerror}", errno.EIO, True
        return f"connection broken: {inner or exc.args[0] if exc.args else exc}", errno.EIO, True
    if isinstance(exc, http.client.IncompleteRead):
        return "the body ended before its Content-Length", errno.EIO, True
    if isinstance(exc, (http.client.HTTPException, ConnectionError)):
        return f"connection broken: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc!r}", \
            errno.EIO, True
    if isinstance(exc, OSError):
        return exc.strerror or str(exc), exc.errno or errno.EIO, True
    return str(exc) or type(exc).__name__, errno.EIO, False


class HttpClient:
    """Requests for one web backend. `ctx`: a BackendContext (or anything with its fields);
    `name` (never a secret) starts every error and log line; `env` the environment the proxy
    settings come from (os.environ by default); `retry_statuses` the statuses tried again."""

    def __init__(self, ctx: Any, name: str, *, max_connections: int = 10,
                 retry_statuses: Container[int] = retrymod.RETRY_STATUSES,
                 env: Mapping[str, str] | None = None, unix_socket: str = "", follow_redirects: bool = False,
                 min_sleep: float = 0.0) -> None:
        u3 = _urllib3()
        self.ctx = ctx
        self.name = name
        self.max_connections = max(1, int(max_connections))
        self.retry_statuses = retry_statuses
        self._env = dict(os.environ if env is None else env)
        # bad --ca-cert / --client-cert: ValueError now; with none of the TLS flags, the context
        # (~25 ms of loading the system's roots) is made by the first https request
        tls_flags = any(getattr(ctx, f, None) for f in ("ca_cert", "client_cert", "client_key", "no_check_certificate"))
        self._ssl: Any = tls.ssl_context(ctx) if tls_flags else None
        contimeout = float(getattr(ctx, "contimeout", 60.0) or 0) or None
        timeout = float(getattr(ctx, "timeout", 300.0) or 0) or None
        self._timeout = u3.Timeout(connect=contimeout, read=timeout)
        self.attempts = max(1, int(getattr(ctx, "low_level_retries", 10) or 1))
        self.user_agent = getattr(ctx, "user_agent", "") or ""
        self._header = tuple(getattr(ctx, "header", ()) or ())
        self._direction = {"download": tuple(getattr(ctx, "header_download", ()) or ()),
                           "upload": tuple(getattr(ctx, "header_upload", ()) or ())}
        self._tps = limits.tps_bucket(float(getattr(ctx, "tpslimit", 0) or 0), int(getattr(ctx, "tpslimit_burst", 1)))
        self.bandwidth = limits.bandwidth(getattr(ctx, "bwlimit", None))
        self.dumper = dumpmod.Dumper(getattr(ctx, "dump", ()) or ())
        if getattr(ctx, "no_check_certificate", False):
            import warnings

            warnings.simplefilter("ignore", u3.exceptions.InsecureRequestWarning)
        self._managers: dict[proxy.Proxy | None, Any] = {}
        self._managers_lock = threading.Lock()
        self._unix_socket = unix_socket  # every connection dials this socket file (no proxy)
        # rclone's pacer: request starts at least min_sleep apart, for this client alone (a
        # backend's pacer_min_sleep; it is not grown on errors here, retry.py backs off instead)
        self._pacer = limits.TokenBucket(1.0 / min_sleep, 1) if min_sleep > 0 else None
        self._redirect = "follow" if follow_redirects else "none"  # a call's default (see the docstring)
        self._pool_kw = {"num_pools": 16, "maxsize": self.max_connections, "block": False,
                         "timeout": self._timeout, "retries": False, "ssl_context": self._ssl}
        if getattr(ctx, "no_check_certificate", False):
            self._pool_kw["assert_hostname"] = False

    def __repr__(self) -> str:
        return f"HttpClient({self.name!r})"

    def _manager(self, url: str) -> Any:
        try:
            via = None if self._unix_socket else proxy.proxy_for(url, self._env)
        except ValueError as e:
            raise HttpError(errno.EINVAL, f"{self.name}: {e}") from None
        with self._managers_lock:
            if self._ssl is None and (url.startswith("https:") or via is not None):
                self._ssl = tls.ssl_context(self.ctx)
                self._pool_kw["ssl_context"] = self._ssl
                for manager in self._managers.values():  # their https pools are made with it
                    manager.connection_pool_kw["ssl_context"] = self._ssl
            return self._managers.get(via) or self._new_manager(via)

    def _new_manager(self, via: proxy.Proxy | None) -> Any:
        u3 = _urllib3()
        if via is None:
            manager = u3.PoolManager(**self._pool_kw)
            if self._unix_socket:
                from .unixsock import pool_classes

                manager.pool_classes_by_scheme = pool_classes(self._unix_socket)
        else:
            manager = u3.ProxyManager(via.url, proxy_headers=dict(via.headers), proxy_ssl_context=self._ssl,
                                      **self._pool_kw)
            log.debug("%s: using proxy %s", self.name, via.url)
        self._managers[via] = manager
        return manager

    def close(self) -> None:
        """Close every idle connection (the client stays usable)."""
        with self._managers_lock:
            managers = list(self._managers.values())
        for manager in managers:
            manager.clear()

    def headers_for(self, headers: Mapping[str, str] | None, direction: str = "") -> dict[str, str]:
        """--header, then --header-download/--header-upload for `direction`, then the caller's;
        User-Agent from --user-agent unless given."""
        merged = merge_headers(self._header, self._direction.get(direction, ()), headers)
        if self.user_agent and not any(k.lower() == "user-agent" for k in merged):
            merged["User-Agent"] = self.user_agent
        return merged

    def _upload_body(self, body: bytes | memoryview | None, headers: dict[str, str]) -> Any:
        """The body as sent: as it is, or (--bwlimit up) an iterator of throttled slices."""
        if body is None or self.bandwidth is None:
            return body
        bucket = self.bandwidth.tx_bucket()
        if bucket is None:
            return body
        if not isinstance(body, (bytes, bytearray, memoryview)):  # an iterator of chunks (a streamed PUT)
            return _throttled_chunks(body, bucket)
        view = memoryview(body).cast("B")
        if not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
            headers["Content-Length"] = str(view.nbytes)
        return _throttled(view, bucket)

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                body: bytes | memoryview | None = None,
                prepare: Callable[[str, str, dict[str, str]], None] | None = None,
                stream: bool = False, direction: str = "", retry: bool = True,
                ok: Container[int] = (), redirect: str = "") -> urllib3.BaseHTTPResponse:
        """Send a request, trying again on connection errors and retried statuses, and following
        redirects by `redirect` ("none", "follow", "auth"; "" is the client's default), as the
        module's docstring says."""
        redirect = redirect or self._redirect
        resp = self._send(method, url, headers=headers, body=body, prepare=prepare, stream=stream,
                          direction=direction, retry=retry, ok=ok)
        hops = 0
        while redirect != "none" and resp.status in redirects.STATUSES and resp.status not in ok:
            location = resp.headers.get("Location")
            if not location or not (body is None or isinstance(body, (bytes, bytearray, memoryview))):
                return resp  # nowhere to go, or a streamed body that can't be sent again (as Go's)
            target = urljoin(url, location)
            shown = dumpmod.url_without_query(url)
            if hops >= redirects.MAX_HOPS:
                _discard(resp, stream)
                raise HttpError(errno.EIO, f"{self.name}: {method} {shown}: stopped after {hops} redirects")
            if redirect != "auth" and url.startswith("https:") and target.startswith("http:"):
                _discard(resp, stream)
                raise HttpError(errno.EACCES, f"{self.name}: {method} {shown}: refusing to follow HTTPS to HTTP "
                                "redirect: would send credentials in cleartext")
            _discard(resp, stream)
            headers = redirects.headers_for(headers, url, target, redirect == "auth")
            if resp.status in (301, 302, 303) and method not in ("GET", "HEAD", "PROPFIND"):
                method, body = "GET", None  # Go's rule (rclone keeps PROPFIND's method)
                headers = redirects.without_body(headers)
            log.debug("%s: %s %s: HTTP %d: redirected to %s", self.name, method, shown, resp.status,
                      dumpmod.url_without_query(target))
            url, hops = target, hops + 1
            resp = self._send(method, url, headers=headers, body=body, prepare=prepare, stream=stream,
                              direction=direction, retry=retry, ok=ok)
            resp.url = url
        return resp

    def _send(self, method: str, url: str, *, headers: dict[str, str] | None,
              body: bytes | memoryview | None, prepare: Callable[[str, str, dict[str, str]], None] | None,
              stream: bool, direction: str, retry: bool, ok: Container[int]) -> urllib3.BaseHTTPResponse:
        attempts = self.attempts if retry else 1
        manager = self._manager(url)
        shown_url = dumpmod.url_without_query(url)
        dumper = self.dumper
        for attempt in range(1, attempts + 1):
            hdrs = self.headers_for(headers, direction)
            if prepare is not None:
                prepare(method, url, hdrs)
            if self._pacer is not None:
                self._pacer.take(1)
            if self._tps is not None:
                self._tps.take(1)
            send = self._upload_body(body, hdrs)
            req_id = dumper.new_id() if dumper.enabled else ""
            req_lines = dumper.request_lines(req_id, method, url, hdrs, body) if dumper.enabled else []
            if req_lines and not dumper.errors_only:
                dumper.emit(req_lines)
            try:
                resp = manager.urlopen(method, url, body=send, headers=hdrs, redirect=False, retries=False,
                                       preload_content=not stream, decode_content=False, timeout=self._timeout)
            except Exception as exc:  # urllib3's, the socket's and ssl's errors
                if isinstance(exc, HttpError):
                    raise
                cause, err, retryable = _describe(exc)
                if dumper.enabled:
                    dumper.emit((req_lines if dumper.errors_only else []) + dumper.response_lines(req_id, None, exc))
                if retryable and attempt < attempts:
                    delay = retrymod.backoff(attempt)
                    log.debug("%s: %s %s: %s: low level retry %d/%d in %.3gs", self.name, method, shown_url,
                              cause, attempt, attempts - 1, delay)
                    time.sleep(delay)
                    continue
                raise HttpError(err, f"{self.name}: {method} {shown_url}: {cause}", method=method, url=shown_url,
                                retryable=retryable) from None
            resp.pyclone_url = shown_url  # for BodyReader's errors
            status = resp.status
            again = status in self.retry_statuses and status not in ok
            if dumper.enabled and (not dumper.errors_only or again):
                body_seen = resp.data if not stream and dumper.response_body else None
                dumper.emit((req_lines if dumper.errors_only else []) + dumper.response_lines(req_id, resp,
                                                                                             body=body_seen))
            if again and attempt < attempts:
                delay = retrymod.delay_for(attempt, status, resp.headers.get("Retry-After"))
                _discard(resp, stream)
                log.debug("%s: %s %s: HTTP %d: low level retry %d/%d in %.3gs", self.name, method, shown_url,
                          status, attempt, attempts - 1, delay)
                time.sleep(delay)
                continue
            if not stream and self.bandwidth is not None:
                self.bandwidth.rx(len(resp.data))
            return resp
        raise AssertionError("unreachable")  # pragma: no cover


def _throttled_chunks(chunks: Iterable[Any], bucket: limits.TokenBucket) -> Iterator[memoryview]:
    for chunk in chunks:
        yield from _throttled(memoryview(chunk).cast("B"), bucket)


def _throttled(view: memoryview, bucket: limits.TokenBucket) -> Iterator[memoryview]:
    step = max(4096, min(64 * 1024, int(bucket.rate) // 8))
    for start in range(0, view.nbytes, step):
        piece = view[start:start + step]
        bucket.take(len(piece))
        yield piece


def _discard(resp: Any, stream: bool) -> None:
    """Let go of a response that is retried: its connection back to the pool when its (small)
    body could be read out, closed otherwise."""
    if not stream:
        resp.release_conn()
        return
    try:
        left = 64 * 1024
        while left > 0:
            chunk = resp.read(min(left, 16 * 1024), decode_content=False)
            if not chunk:
                resp.release_conn()
                return
            left -= len(chunk)
    except Exception:  # a broken connection: closed below
        pass
    resp.close()
    resp.release_conn()


READ_PIECE = 64 * 1024  # a body is read into the caller's buffer this much at a time


class BodyReader:
    """The body of a `stream=True` response, read into the caller's buffers.

    `readinto(view)` gives the bytes read (0 at the end); a body that ends before its
    Content-Length (or its last chunk), a reset or a read timeout raises HttpError(EIO), never a
    short read seen as the end. --bwlimit (down) and --dump bodies/responses apply. `close()`
    (idempotent) returns the connection to the pool only when the body was read to its end;
    otherwise it closes the connection. `read_bytes` counts the bytes read so far.
    """

    def __init__(self, client: HttpClient, resp: Any) -> None:
        import http.client

        self.client = client
        self.resp = resp
        self.read_bytes = 0
        self._closed = False
        self._complete = False
        fp = getattr(resp, "_fp", None)
        self._fp: http.client.HTTPResponse | None = fp if isinstance(fp, http.client.HTTPResponse) else None
        preloaded = getattr(resp, "_body", None)
        self._preloaded = memoryview(preloaded) if preloaded is not None else None
        self._rx = client.bandwidth
        self._dump = dumpmod.BodyDump(client.dumper.new_id()) if client.dumper.enabled and \
            client.dumper.response_body and not client.dumper.errors_only else None
        url = getattr(resp, "pyclone_url", "")
        self._where = f"{client.name}: body of {url}" if url else f"{client.name}: response body"

    def __enter__(self) -> BodyReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, cause: str) -> HttpError:
        return HttpError(errno.EIO, f"{self._where}: {cause} after {self.read_bytes} bytes")

    def readinto(self, view: memoryview) -> int:
        if self._closed:
            raise ValueError("read from a closed BodyReader")
        if self._complete or not len(view):
            return 0
        if self._rx is not None and self._rx.rx_bucket() is not None:
            view = view[:limits.MAX_BURST]
        if self._preloaded is not None:
            n = min(len(view), len(self._preloaded) - self.read_bytes)
            view[:n] = self._preloaded[self.read_bytes:self.read_bytes + n]
        else:
            n = self._read(view)
        if n == 0:
            self._complete = True
            if self._dump is not None:
                self._dump.flush()
            return 0
        self.read_bytes += n
        if self._rx is not None:
            self._rx.rx(n)
        if self._dump is not None:
            self._dump.feed(view[:n])
        return n

    def _read(self, view: memoryview) -> int:
        import http.client

        fp = self._fp
        got = 0
        try:
            if fp is not None:
                # in pieces: http.client fills the whole view or raises, and what a piece read
                # before a break must count, so a resume starts where the bytes stopped
                total = len(view)
                while got < total:
                    n = fp.readinto(view[got:got + READ_PIECE])
                    if n == 0:
                        if fp.length:  # http.client ends a short body quietly: not here
                            raise self._fail(f"the body ended {fp.length} bytes before its Content-Length")
                        break
                    got += n
                return got
            data = self.resp.read(len(view), decode_content=False)
            view[:len(data)] = data
            return len(data)
        except HttpError:
            if got:
                return got  # the bytes that came are kept; the next read meets the break
            raise
        except Exception as exc:
            if got:
                return got
            if isinstance(exc, (TimeoutError, socket.timeout)):
                cause = "read timed out"
            elif isinstance(exc, http.client.IncompleteRead):
                cause = "the body ended before its end"
            else:
                cause = _describe(exc)[0]
            raise self._fail(cause) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        resp = self.resp
        if self._dump is not None:
            self._dump.flush()
        fp = self._fp
        complete = self._complete or self._preloaded is not None or (fp is not None and fp.isclosed() and not fp.length)
        try:
            if not complete:
                resp.close()  # never a half-read connection back in the pool
        finally:
            resp.release_conn()
