"""AWS Signature Version 2 for S3 (rclone's ``v2_auth``): ``Authorization: AWS <key id>:<signature>``.

The string to sign, as AWS's "Signing and Authenticating REST Requests" describes it::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n CanonicalizedAmzHeaders CanonicalizedResource

- Date: the request's ``Date`` header; one is added (RFC 1123, GMT) when the request has
  none. When the request carries ``x-amz-date``, S3 ignores ``Date`` and the line is empty
  (the ``x-amz-date`` header is signed among the amz headers instead).
- CanonicalizedAmzHeaders: every ``x-amz-*`` header, name lower-cased, value trimmed, names
  that differ only in case joined with ``,``, sorted by name, each ``name:value\\n``.
- CanonicalizedResource: ``/bucket`` when the bucket is in the host name (virtual-host style:
  pass ``bucket=``), then the path exactly as sent (``/`` when empty), then the S3
  sub-resources among the query parameters, decoded, sorted, ``?k`` or ``?k=v`` joined with
  ``&`` (a parameter with an empty value is written as the bare name, as rclone writes it).

rclone 1.75.2 (backend/s3/v2sign.go) signs the same string; it signs fewer sub-resources
(not lifecycle, website, cors, restore or tagging, which it never sends), always replaces
the Date header, does not trim header values and leaves the session token to the SDK.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
from collections.abc import MutableMapping
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

from .sigv4 import Credentials

__all__ = ["SUBRESOURCES", "canonical_resource", "sign_v2", "string_to_sign"]

SUBRESOURCES = frozenset({
    "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
    "requestPayment", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
    "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires",
})


def _decode(text: str) -> str:
    return unquote(text.replace("+", " ")) if ("%" in text or "+" in text) else text


def canonical_resource(path: str, query: str, bucket: str = "") -> str:
    """The CanonicalizedResource of a wire path and raw query (``bucket`` for virtual-host style)."""
    resource = (f"/{bucket}" if bucket else "") + (path or "/")
    if not query:
        return resource
    subs = []
    for piece in query.split("&"):
        key, has_value, value = piece.partition("=")
        key = _decode(key)
        if key in SUBRESOURCES:
            subs.append((key, _decode(value) if has_value else ""))
    if not subs:
        return resource
    subs.sort()
    return resource + "?" + "&".join([f"{key}={value}" if value else key for key, value in subs])


def string_to_sign(method: str, url: str, headers: MutableMapping[str, str], bucket: str = "") -> str:
    """The V2 string to sign of a request whose headers are final (Date set)."""
    md5 = content_type = date = ""
    amz: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname == "content-md5":
            md5 = value.strip()
        elif lname == "content-type":
            content_type = value.strip()
        elif lname == "date":
            date = value.strip()
        elif lname.startswith("x-amz-"):
            if not isinstance(value, str):
                raise TypeError(f"SigV2: the value of header {lname!r} must be a str")
            previous = amz.get(lname)
            amz[lname] = value.strip() if previous is None else f"{previous},{value.strip()}"
    if "x-amz-date" in amz:
        date = ""
    parts = urlsplit(url)
    amz_lines = "".join([f"{name}:{amz[name]}\n" for name in sorted(amz)])
    resource = canonical_resource(parts.path, parts.query, bucket)
    return f"{method}\n{md5}\n{content_type}\n{date}\n{amz_lines}{resource}"


def sign_v2(creds: Credentials, method: str, url: str, headers: MutableMapping[str, str],
            now: _dt.datetime | None = None, *, bucket: str = "") -> None:
    """Sign a request with S3 Signature V2: `headers` gains Date (when missing),
    x-amz-security-token (with a token) and Authorization (replacing an earlier one)."""
    if not isinstance(creds, Credentials):
        raise TypeError("sign_v2 needs a Credentials")
    if not creds.access_key_id or not creds.secret_access_key:
        raise ValueError("SigV2: the access key id and the secret access key must both be set")
    replaced = {"authorization", "x-amz-security-token"} if creds.session_token else {"authorization"}
    has_date = False
    for name in list(headers):
        lname = name.lower()
        if lname in replaced:
            del headers[name]
        elif lname == "date":
            has_date = True
    if not has_date:
        if now is None:
            now = _dt.datetime.now(_dt.timezone.utc)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=_dt.timezone.utc)
        headers["Date"] = format_datetime(now.astimezone(_dt.timezone.utc), usegmt=True)
    if creds.session_token:
        headers["x-amz-security-token"] = creds.session_token
    text = string_to_sign(method, url, headers, bucket)
    digest = hmac.digest(creds.secret_access_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    headers["Authorization"] = f"AWS {creds.access_key_id}:{base64.b64encode(digest).decode('ascii')}"
