"""AWS Signature Version 4 in the Authorization header, as S3 requests carry it.

`SigV4Signer.sign` adds ``x-amz-date``, ``x-amz-content-sha256`` (S3 only),
``x-amz-security-token`` (with a session token) and ``Authorization`` to a request's headers.

The canonical request follows AWS's rules for S3:

- canonical URI: the path as it goes on the wire, in AWS's URI encoding with ``/`` kept. A
  path already in that encoding (what S3 clients send: every byte but the unreserved ones and
  ``/`` as upper-case ``%XX``) is used as it is, never encoded a second time; any other
  (``+``, ``!``, ``$`` or ``:`` left raw, lower-case hex) is decoded and encoded again, which
  is what S3 and MinIO-style servers compute from it (AWS's PUT example sends
  ``test$file.text`` and signs ``/test%24file.text``). An empty path is ``/``. No ``.``/``..``
  normalisation (S3 does none; other services would want it, and nothing here needs them).
- canonical query: the query string split on ``&`` (empty pieces dropped), each key and
  value decoded (``+`` read as a space, as Go's and form decoding read it) and encoded again
  in AWS's URI encoding (unreserved ``A-Z a-z 0-9 - _ . ~`` kept, every other byte ``%XX``
  upper case), sorted by key then value; a key without ``=`` gets an empty value.
- signed headers: ``host``, every ``x-amz-*``, ``content-md5``, ``content-type``, ``range``
  and ``date`` when present (plus any names given as ``extra_signed_headers``), lower-cased
  and sorted; values trimmed, inner runs of white space collapsed to one space, repeated
  names (differing only in case) joined with ``,``. ``Host`` is the request's own header if
  it has one, else the URL's host, lower-cased, with the port unless it is the scheme's
  default.

The signing key (four HMACs) is derived once a day and kept; a request costs one SHA-256
and one HMAC-SHA256 besides building the strings.

Nothing here puts a secret, a token or a header value into an exception's message.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes, urlsplit

__all__ = ["ALGORITHM", "EMPTY_SHA256", "UNSIGNED_PAYLOAD", "Credentials", "SigV4Signer", "canonical_query",
           "canonical_uri"]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_SIGNED_NAMES = frozenset({"host", "content-md5", "content-type", "range", "date"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# An RFC 9110 token: what a header name may be. Checked only for the names we sign.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
# A query key or value already in AWS's encoding: unreserved characters and upper-case %XX of
# every other byte (not of an unreserved one).
_CANONICAL_PART = re.compile(
    r"(?:[A-Za-z0-9\-_.~]|%(?:[018-9A-F][0-9A-F]|2[0-9A-CF]|3[A-F]|[46]0|5[B-E]|7[B-DF]))*").fullmatch
# A path already in AWS's encoding: unreserved characters, '/', and upper-case %XX of every other
# byte (not of an unreserved one, nor of '/', which decoding turns back into themselves).
_CANONICAL_PATH = re.compile(
    r"(?:[A-Za-z0-9\-_.~/]|%(?:[018-9A-F][0-9A-F]|2[0-9A-C]|3[A-F]|[46]0|5[B-E]|7[B-DF]))*").fullmatch
# A hex SHA-256, or one of S3's literal payload markers (UNSIGNED-PAYLOAD, STREAMING-...).
_PAYLOAD_HASH = re.compile(r"[0-9a-f]{64}|[A-Z0-9][A-Z0-9-]*").fullmatch
_SHA256 = hashlib.sha256


@dataclass(frozen=True)
class Credentials:
    """An access key pair, with an optional session token. Its repr and str show the key id only."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        token = "set" if self.session_token else "none"
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=<hidden>, session_token=<{token}>)"

    __str__ = __repr__


def _aws_encode(text: str) -> str:
    """One query key or value, as it arrived on the wire, in AWS's URI encoding."""
    if _CANONICAL_PART(text):
        return text
    return quote(unquote_to_bytes(text.replace("+", " ")), safe="")


def canonical_uri(path: str) -> str:
    """The canonical URI of a wire path (S3 rules: no normalisation, one encoding)."""
    if not path:
        return "/"
    if _CANONICAL_PATH(path):
        return path
    return quote(unquote_to_bytes(path), safe="/")


def canonical_query(query: str) -> str:
    """The canonical query string of a raw (wire-encoded) query string."""
    if not query:
        return ""
    pairs = []
    for piece in query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((_aws_encode(key), _aws_encode(value)))
    pairs.sort()
    return "&".join([f"{key}={value}" for key, value in pairs])


def _host_of(url_parts) -> str:
    hostname = url_parts.hostname  # lower-cased, brackets of an IPv6 literal removed
    if not hostname:
        raise ValueError("SigV4: the URL has no host")
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = url_parts.port  # ValueError (without the URL in it) for a bad port
    if port is not None and port != _DEFAULT_PORTS.get(url_parts.scheme.lower()):
        return f"{hostname}:{port}"
    return hostname


def _utc_stamp(now: _dt.datetime | None) -> str:
    if now is None:
        now = _dt.datetime.now(_dt.timezone.utc)
    elif now.tzinfo is not None:
        now = now.astimezone(_dt.timezone.utc)
    # A naive datetime is taken as UTC already (what datetime.utcnow() gives).
    return f"{now.year:04d}{now.month:02d}{now.day:02d}T{now.hour:02d}{now.minute:02d}{now.second:02d}Z"


class SigV4Signer:
    """Signs requests for one set of credentials, one region and one service.

    ``add_content_sha256`` (default: only for service ``"s3"``) sends and signs the
    ``x-amz-content-sha256`` header, which S3 requires and other services do not use.
    ``extra_signed_headers`` names further headers to sign when present (e.g.
    ``"accept-encoding"``, ``"content-encoding"``).

    One signer may be shared between threads: its only mutable state, the day's signing
    key, is replaced as a whole.
    """

    __slots__ = ("_add_sha", "_cred_prefix", "_key", "_names", "_region", "_scope_tail", "_secret",
                 "_service", "_token")

    def __init__(self, creds: Credentials, region: str, service: str = "s3", *,
                 add_content_sha256: bool | None = None, extra_signed_headers: Iterable[str] = ()) -> None:
        if not isinstance(creds, Credentials):
            raise TypeError("SigV4Signer needs a Credentials")
        if not creds.access_key_id or not creds.secret_access_key:
            raise ValueError("SigV4: the access key id and the secret access key must both be set")
        if not region or not service or "/" in region or "/" in service:
            raise ValueError("SigV4: region and service must be non-empty and contain no '/'")
        self._secret = ("AWS4" + creds.secret_access_key).encode("utf-8")
        self._token = creds.session_token
        self._region = region
        self._service = service
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._cred_prefix = f"{ALGORITHM} Credential={creds.access_key_id}/"
        self._add_sha = service == "s3" if add_content_sha256 is None else add_content_sha256
        extra = frozenset(name.lower() for name in extra_signed_headers)
        self._names = _SIGNED_NAMES | extra
        self._key: tuple[str, bytes] | None = None

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self._region!r}, service={self._service!r})"

    def signing_key(self, date: str) -> bytes:
        """The signing key of a day (``YYYYMMDD``): derived once and kept until the day changes."""
        cached = self._key
        if cached is not None and cached[0] == date:
            return cached[1]
        key = hmac.digest(self._secret, date.encode("ascii"), _SHA256)
        key = hmac.digest(key, self._region.encode("utf-8"), _SHA256)
        key = hmac.digest(key, self._service.encode("utf-8"), _SHA256)
        key = hmac.digest(key, b"aws4_request", _SHA256)
        self._key = (date, key)
        return key

    def sign(self, method: str, url: str, headers: MutableMapping[str, str], payload_hash: str,
             now: _dt.datetime | None = None) -> None:
        """Sign a request: `headers` gains x-amz-date, x-amz-content-sha256 (S3),
        x-amz-security-token (with a token) and Authorization, replacing any earlier ones."""
        if not isinstance(payload_hash, str) or not _PAYLOAD_HASH(payload_hash):
            raise ValueError("SigV4: payload_hash must be a lower-case hex SHA-256 or a literal like UNSIGNED-PAYLOAD")
        parts = urlsplit(url)
        amz_date = _utc_stamp(now)
        date = amz_date[:8]

        replaced = {"authorization", "x-amz-date"}
        if self._add_sha:
            replaced.add("x-amz-content-sha256")
        if self._token:
            replaced.add("x-amz-security-token")
        for name in [name for name in headers if name.lower() in replaced]:
            del headers[name]
        headers["x-amz-date"] = amz_date
        if self._add_sha:
            headers["x-amz-content-sha256"] = payload_hash
        if self._token:
            headers["x-amz-security-token"] = self._token

        names = self._names
        canon: dict[str, str] = {}
        for name, value in headers.items():
            lname = name.lower()
            if lname in names or lname.startswith("x-amz-"):
                if not _TOKEN(lname):
                    raise ValueError("SigV4: a header name is not a valid HTTP token")
                if not isinstance(value, str):
                    raise TypeError(f"SigV4: the value of header {lname!r} must be a str")
                value = " ".join(value.split())
                previous = canon.get(lname)
                canon[lname] = value if previous is None else f"{previous},{value}"
        if "host" not in canon:
            canon["host"] = _host_of(parts)

        signed_names = sorted(canon)
        signed = ";".join(signed_names)
        canonical_request = "\n".join((
            method,
            canonical_uri(parts.path),
            canonical_query(parts.query),
            "".join([f"{name}:{canon[name]}\n" for name in signed_names]),
            signed,
            payload_hash,
        ))
        scope = date + self._scope_tail
        string_to_sign = (f"{ALGORITHM}\n{amz_date}\n{scope}\n"
                          f"{_SHA256(canonical_request.encode('utf-8')).hexdigest()}")
        signature = hmac.new(self.signing_key(date), string_to_sign.encode("utf-8"), _SHA256).hexdigest()
        headers["Authorization"] = f"{self._cred_prefix}{scope}, SignedHeaders={signed}, Signature={signature}"
