"""One S3 request: its URL (path or virtual-host style), its signature (V4, V2 or none) on
every attempt, the HTTP layer's retries, and an S3 error turned into an OSError with an errno.

Errors name the remote (provider, endpoint, bucket) and the key, never a credential.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Container, Mapping
from typing import Any
from urllib.parse import quote

from ..base import BackendContext
from .config import S3Config
from .sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD
from .xmlparse import parse_error

# S3 error codes by errno; a status decides where the code is not listed
_CODES = {
    "NoSuchKey": errno.ENOENT, "NoSuchBucket": errno.ENOENT, "NoSuchUpload": errno.ENOENT,
    "NotFound": errno.ENOENT, "AccessDenied": errno.EACCES, "InvalidAccessKeyId": errno.EACCES,
    "SignatureDoesNotMatch": errno.EACCES, "AllAccessDisabled": errno.EACCES,
    "BucketNotEmpty": errno.ENOTEMPTY, "BucketAlreadyExists": errno.EEXIST,
    "BucketAlreadyOwnedByYou": errno.EEXIST, "InvalidBucketName": errno.EINVAL,
    "KeyTooLongError": errno.ENAMETOOLONG, "EntityTooLarge": errno.EFBIG, "InvalidRange": errno.EINVAL,
    "PreconditionFailed": errno.ESTALE, "QuotaExceeded": errno.EDQUOT, "SlowDown": errno.EAGAIN,
}
_STATUSES = {400: errno.EINVAL, 401: errno.EACCES, 403: errno.EACCES, 404: errno.ENOENT, 405: errno.ENOTSUP,
             409: errno.EEXIST, 412: errno.ESTALE, 416: errno.EINVAL, 501: errno.ENOTSUP}


def quote_key(key: str) -> str:
    """A key as it goes in a URL path: every byte but the unreserved ones and '/' escaped."""
    return quote(key, safe="/~")


class S3Error(OSError):
    """An S3 answer that is an error; `code` is S3's error code ("" if the body had none)."""

    def __init__(self, err: int, message: str, code: str = "", status: int = 0) -> None:
        super().__init__(err, message)
        self.code = code
        self.status = status


class S3Api:
    """Requests against one remote; thread-safe (the HTTP layer pools the connections)."""

    def __init__(self, cfg: S3Config, ctx: BackendContext, label: str, max_connections: int) -> None:
        from ...lib.httpclient import HttpClient

        self.cfg = cfg
        self.label = label  # e.g. "s3 (Minio) at http://127.0.0.1:9000": in every error
        self.http = HttpClient(ctx, label, max_connections=max_connections)
        self._signer: Any = None
        if cfg.credentials is not None and not cfg.v2_auth:
            from .sigv4 import SigV4Signer

            self._signer = SigV4Signer(cfg.credentials, cfg.region)

    def url(self, bucket: str, key: str = "", query: str = "") -> str:
        base, prefix = self.cfg.base_url(bucket)
        # path style: /bucket for the bucket, /bucket/key for an object; virtual host: /key
        path = prefix + "/" + quote_key(key) if key or not prefix else prefix
        return base + path + ("?" + query if query else "")

    def _prepare(self, bucket: str, payload_hash: str):
        creds, v2 = self.cfg.credentials, self.cfg.v2_auth
        signer = self._signer
        if creds is None:
            return None
        if v2:
            from .sigv2 import sign_v2

            virtual = "" if self.cfg.path_style else bucket

            def prepare_v2(method: str, url: str, headers: dict[str, str]) -> None:
                sign_v2(creds, method, url, headers, bucket=virtual)
            return prepare_v2

        def prepare_v4(method: str, url: str, headers: dict[str, str]) -> None:
            signer.sign(method, url, headers, payload_hash)
        return prepare_v4

    def payload_hash(self, body: bytes | memoryview | None) -> str:
        """What a request signs for its body: nothing, UNSIGNED-PAYLOAD, or its SHA-256."""
        if body is None or len(body) == 0:
            return EMPTY_SHA256
        if self.cfg.unsigned_payload:
            return UNSIGNED_PAYLOAD
        import hashlib

        return hashlib.sha256(body).hexdigest()

    def call(self, method: str, bucket: str, key: str = "", query: str = "", *,
             headers: Mapping[str, str] | None = None, body: bytes | memoryview | None = None,
             stream: bool = False, direction: str = "", ok: Container[int] = (200, 204, 206),
             payload_hash: str | None = None, retry: bool = True, what: str = "") -> Any:
        """Send one request; a status outside `ok` raises S3Error (404: FileNotFoundError)."""
        hdrs = dict(headers) if headers else {}
        if self.cfg.requester_pays:
            hdrs.setdefault("x-amz-request-payer", "requester")
        if payload_hash is None:
            payload_hash = self.payload_hash(body)
        url = self.url(bucket, key, query)
        resp = self.http.request(method, url, headers=hdrs, body=body, prepare=self._prepare(bucket, payload_hash),
                                 stream=stream, direction=direction, retry=retry)
        if resp.status in ok:
            return resp
        raise self.error(resp, method, bucket, key, what)

    def error(self, resp: Any, method: str, bucket: str, key: str, what: str = "") -> S3Error:
        """The OSError for a failed response (its body read and released)."""
        try:
            body = resp.data if resp.status != 304 else b""
        except Exception:  # a broken error body still gives the status
            body = b""
        finally:
            resp.release_conn()
        code, message = parse_error(body or b"")
        err = _CODES.get(code) or _STATUSES.get(resp.status) or errno.EIO
        if resp.status >= 500 and not code:
            err = errno.EIO
        name = f"{bucket}/{key}" if key else bucket
        text = f"{self.label}: {what or method} {name!r}: HTTP {resp.status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        if err == errno.ENOENT:
            exc: S3Error = _NotFound(err, text, code, resp.status)
        else:
            exc = S3Error(err, text, code, resp.status)
        return exc

    def close(self) -> None:
        self.http.close()


class _NotFound(S3Error, FileNotFoundError):
    pass


def mtime_header(mtime_ns: int) -> str:
    """X-Amz-Meta-Mtime as rclone writes it (swift.TimeToFloatString): seconds, then the
    fraction with its trailing zeros cut (1577836800, 1577836800.5, 1614834367.123456789)."""
    sign = "-" if mtime_ns < 0 else ""
    secs, ns = divmod(abs(mtime_ns), 10**9)  # before 1970: "-0.5", as Go prints the float
    if not ns:
        return f"{sign}{secs}"
    return f"{sign}{secs}.{ns:09d}".rstrip("0")


def parse_mtime(value: str) -> int | None:
    """X-Amz-Meta-Mtime (rclone's float seconds) in ns; None if it is not one."""
    value = value.strip()
    negative = value.startswith("-")
    secs, _, frac = value.lstrip("+-").partition(".")
    if not secs.isdigit() or (frac and not frac.isdigit()):
        return None
    ns = int(secs) * 10**9 + (int((frac + "000000000")[:9]) if frac else 0)
    return -ns if negative else ns


def http_date_ns(value: str) -> int:
    """Last-Modified (an HTTP date) in ns; 0 if it does not parse."""
    from email.utils import parsedate_to_datetime

    try:
        return int(parsedate_to_datetime(value).timestamp()) * 10**9
    except (TypeError, ValueError, IndexError):
        return 0


def now_ns() -> int:
    return time.time_ns()
