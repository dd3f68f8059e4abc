"""Redirects, as rclone's Go client follows them (webdav, http; s3 follows none).

Up to 10; Authorization and cookies dropped on the way to another host that is not a subdomain
of the first, unless the call asks for "auth" (rclone's auth_redirect, which also lets an HTTPS
to HTTP redirect through); otherwise such a downgrade is refused. 301/302/303 turn a request
other than GET, HEAD or PROPFIND into a GET without a body; a streamed body is never sent twice
(the redirect is then the answer). The URL finally answered is the response's `url`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

STATUSES = (301, 302, 303, 307, 308)
MAX_HOPS = 10
_SENSITIVE = ("authorization", "www-authenticate", "cookie", "cookie2")


def headers_for(headers: dict[str, str] | None, src: str, dst: str, keep_auth: bool) -> dict[str, str] | None:
    """The headers for the redirected request: Go's client drops the sensitive ones on the way to
    another host that is not a subdomain of the first; rclone's auth_redirect keeps Authorization."""
    if not headers:
        return headers
    a, b = (urlsplit(src).hostname or "").lower(), (urlsplit(dst).hostname or "").lower()
    if b == a or b.endswith("." + a):
        return headers
    return {k: v for k, v in headers.items()
            if k.lower() not in _SENSITIVE or (keep_auth and k.lower() == "authorization")}


def without_body(headers: dict[str, str] | None) -> dict[str, str]:
    """A request turned into a GET (301/302/303) loses its body's headers too."""
    return {k: v for k, v in (headers or {}).items() if not k.lower().startswith("content-")}


def sent_to_directory(resp: Any, path: str) -> bool:
    """The request for `path` (no trailing /) was redirected to a URL that ends in one: a
    directory's index (http://host/dir to .../dir/), never a file."""
    return (resp.url or "").endswith("/") and not path.endswith("/")
