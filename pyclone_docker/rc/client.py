"""The `pyclone-docker rc` client: what `rclone rc` does."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from ..parsers import go_quote
from .params import Params

DEFAULT_ADDR = "localhost:5572"
DEFAULT_URL = "http://localhost:5572/"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (what `rclone rc --unix-socket` does)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def normalise_url(url: str) -> str:
    """rclone rc's fix-ups: `:port` -> localhost:port, add http://, end with /."""
    if url.startswith(":"):
        url = "localhost" + url
    if not url.startswith(("http:", "https:")):
        url = "http://" + url
    if not url.endswith("/"):
        url += "/"
    return url


def client_call(method: str, params: Params, url: str = DEFAULT_URL, unix_socket: str = "",
                user: str | None = None, password: str | None = None,
                timeout: float = 300.0) -> tuple[Params, str | None]:
    """POST params as JSON to <url><method>, as `rclone rc` does: (reply, error or None).

    On failure the reply is the server's JSON error, or one made up like rclone's client makes.
    """
    method = method.strip("/")
    if url.startswith("unix://") or url.startswith("/"):
        unix_socket, url = url.removeprefix("unix://"), DEFAULT_URL
    url = normalise_url(url)
    parts = urlsplit(url)
    if user is None and parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    target = (parts.path or "/") + method

    def failed(status: int, message: str) -> tuple[Params, str]:
        return {"error": message, "path": method, "status": status}, message

    conn: Any
    if unix_socket:
        conn = UnixHTTPConnection(unix_socket, timeout)
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "localhost", parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if user or password:
        token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        headers["Authorization"] = "Basic " + token
    try:
        conn.request("POST", target, body=json.dumps(params).encode(), headers=headers)
        resp = conn.getresponse()
        status, body = resp.status, resp.read()
    except (OSError, http.client.HTTPException) as e:
        where = unix_socket or f"{parts.scheme}://{parts.netloc}{target}"
        return failed(503, f"connection failed: Post {go_quote(where)}: {e}")
    finally:
        conn.close()
    text = body.decode("utf-8", "replace").strip()
    try:
        out = json.loads(text)
        if not isinstance(out, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        return failed(status, f"failed to decode response: {e}: {text[:200]}")
    if status != 200:
        return out, f"operation {go_quote(method)} failed: {out.get('error')}"
    return out, None
