"""The http Backend: rclone 1.75.2's read-only `http` remote over the shared HTTP client.

A directory is its index page (GET of the URL ending in /), its names found as index.py says.
Each file's size and modtime come from a HEAD (several at once, as rclone's --checkers), unless
`no_head`: then sizes are unknown until read (-1, shown as 0) and modtimes unset. With
`no_slash` a name without a trailing / whose HEAD says text/html is a directory. Reads are
ranged GETs, resumed where a body broke (lib/httpclient/ranged.py). Every write is EROFS.
Redirects are followed, as rclone's (a HEAD sent on to a URL ending in / is a directory).
"""

from __future__ import annotations

import errno
import logging
import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from ...lib.httpclient import BodyReader, HttpClient, redirects
from ...lib.httpclient.ranged import RangedReader
from ..base import Backend, BackendContext, Entry, Reader, Writer
from . import index

log = logging.getLogger("pyclone.http")

HEAD_WORKERS = 8  # rclone's --checkers default
_ERRNO = {401: errno.EACCES, 403: errno.EACCES, 404: errno.ENOENT}


def _rofs(path: str) -> OSError:
    return OSError(errno.EROFS, "http remotes are read only", path)


def _mtime_ns(value: str) -> int:
    if not value:
        return 0
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 10**9
    except (TypeError, ValueError, IndexError):
        return 0


class HttpBackend(Backend):
    type_name = "http"
    description = "HTTP"
    features = frozenset()

    def __init__(self, name: str, root: str, config: dict[str, Any], ctx: BackendContext | None = None) -> None:
        from . import INFO

        super().__init__(name, root.strip("/"), config, ctx)
        opt = INFO.parse_options(config)
        url = opt["url"]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"http: url {url!r} is not an http:// or https:// URL")
        self.base_url = url if url.endswith("/") else url + "/"
        self.no_slash, self.no_head, self.no_escape = bool(opt["no_slash"]), bool(opt["no_head"]), \
            bool(opt["no_escape"])
        extra = list(opt["headers"] or [])
        if len(extra) % 2:
            raise ValueError("http: odd number of headers supplied")
        self._headers = dict(zip(extra[::2], extra[1::2], strict=True))
        self.label = f"http {name}" if not name.startswith(":") else "http"
        if self.no_head:
            log.warning("%s: no_head: file sizes are unknown and shown as 0, so through a mount a file may read as "
                        "empty (the kernel stops at the size it was given); list and copy without it where you can",
                        self.label)
        self.http = HttpClient(self.ctx, self.label, follow_redirects=True)  # as Go's client, up to 10
        self._heads: ThreadPoolExecutor | None = None
        self._heads_lock = threading.Lock()

    # --- plumbing (what DavReader needs too) ------------------------------------------------

    def url_path(self, path: str, is_dir: bool = False) -> str:
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        full = posixpath.join(self.root, path) if path else self.root
        out = full if self.no_escape else quote(full, safe="/")
        return out + "/" if is_dir and out else out

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None,
             stream: bool = False, retry: bool = True, direction: str = "", ok: tuple[int, ...] = ()) -> Any:
        return self.http.request(method, self.base_url + path, headers={**self._headers, **(headers or {})},
                                 body=body, stream=stream, retry=retry, direction=direction, ok=ok)

    def error(self, resp: Any, method: str, path: str) -> OSError:
        reason = getattr(resp, "reason", "") or ""
        return OSError(_ERRNO.get(resp.status, errno.EIO), f"{self.label}: {method} /{path}: HTTP {resp.status} "
                       f"{reason}".rstrip())

    def _head(self, path: str) -> Entry | None:
        """The file at `path` (None when the server has none; a directory with no_slash)."""
        name = posixpath.basename(path)
        if self.no_head:
            return Entry(name, False, 0, 0)
        url_path = self.url_path(path)
        resp = self.call("HEAD", url_path)
        resp.release_conn()
        if resp.status == 404 or resp.status in (301, 302, 303, 307, 308):
            return None
        if redirects.sent_to_directory(resp, url_path):
            return None  # no file here
        if not 200 <= resp.status < 300:
            raise self.error(resp, "HEAD", url_path)
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self.no_slash and ctype == "text/html":
            return Entry(name, True, 0, 0)
        size = resp.headers.get("Content-Length", "")
        return Entry(name, False, int(size) if size.isdigit() else 0, _mtime_ns(resp.headers.get("Last-Modified", "")))

    def _names(self, path: str) -> list[str]:
        url_path = self.url_path(path, is_dir=True)
        resp = self.call("GET", url_path if url_path else "", stream=True, direction="download")
        if resp.status == 404:
            resp.release_conn()
            raise FileNotFoundError(errno.ENOENT, "directory not found", path)
        if not 200 <= resp.status < 300:
            err = self.error(resp, "GET", url_path)
            resp.release_conn()
            raise err
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "text/html":
            resp.close()
            resp.release_conn()
            raise NotADirectoryError(errno.ENOTDIR, f"{self.label}: can't parse content type {ctype!r}", path)
        with BodyReader(self.http, resp) as body:
            return list(index.names(self.base_url + url_path, body.readinto))

    # --- the Backend ----------------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        names = self._names(path)
        out: list[Entry] = []
        files = []
        for n in names:
            if n.endswith("/"):
                out.append(Entry(n[:-1], True, 0, 0))
            else:
                files.append(n)
        with self._heads_lock:  # two listings at once make one pool
            if self._heads is None:
                self._heads = ThreadPoolExecutor(HEAD_WORKERS, thread_name_prefix="http-head")

        def head(n: str) -> Entry | None:
            try:
                return self._head(posixpath.join(path, n) if path else n)
            except OSError as e:  # rclone: skipped, with a debug line
                log.debug("%s: %s: skipping because of error: %s", self.label, n, e)
                return None
        for e in self._heads.map(head, files):
            if e is not None:
                out.append(e)
        return out

    def stat(self, path: str) -> Entry:
        if path == "":
            return Entry("", True)
        e = self._head(path)
        if e is not None and not self.no_head:
            return e
        resp = self.call("HEAD", self.url_path(path, is_dir=True))  # a directory: its index page
        resp.release_conn()
        if 200 <= resp.status < 300:
            return Entry(posixpath.basename(path), True, 0, 0)
        if e is not None:
            return e
        raise FileNotFoundError(errno.ENOENT, "not found", path)

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Reader:
        try:
            return RangedReader(self, self.url_path(path), offset, length)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "not found", path) from None

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None, mode: int | None = None) -> Writer:
        raise _rofs(path)

    def mkdir(self, path: str) -> None:
        raise _rofs(path)

    def rmdir(self, path: str) -> None:
        raise _rofs(path)

    def delete(self, path: str) -> None:
        raise _rofs(path)

    def move(self, src: str, dst: str) -> None:
        raise _rofs(src)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        raise _rofs(path)

    def shutdown(self) -> None:
        if self._heads is not None:
            self._heads.shutdown(wait=False)
        self.http.close()
