"""The webdav Backend: rclone 1.75.2's webdav over the shared HTTP client (lib/httpclient).

Paths are the VFS's (rclone's Standard encoding), mapped to the server's with `encoding`
(none by default: rclone skips its encoder then) and URL-escaped segment by segment, as
rclone's URLPathEscapeAll. Listings are PROPFIND Depth 1, parsed as they stream in
(props.py); a stat is PROPFIND Depth 0. 423 Locked, 425, 429 and 5xx are retried with
--low-level-retries, as rclone's shouldRetry. The vendor sets the rest (vendors.py).
"""

from __future__ import annotations

import base64
import errno
import logging
import posixpath
import re
import shlex
import subprocess
import threading
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from ...encoder import STANDARD, Encoder, parse_encoding
from ...lib.httpclient import HttpClient
from ...lib.httpclient.ranged import RangedReader
from ..base import (
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    Backend,
    BackendContext,
    Entry,
    Reader,
    Writer,
)
from . import props as propsmod
from .chunked import ChunkedWriter
from .transfer import DavWriter
from .tus import TusWriter
from .vendors import quirks

log = logging.getLogger("pyclone.webdav")

RETRY_STATUSES = frozenset({423, 425, 429, 500, 502, 503, 504, 509})
_MAX_NAME = 255
_ERRNO = {400: errno.EINVAL, 401: errno.EACCES, 403: errno.EACCES, 404: errno.ENOENT, 405: errno.EPERM,
          409: errno.ENOENT, 412: errno.EEXIST, 413: errno.EFBIG, 414: errno.ENAMETOOLONG, 423: errno.EBUSY,
          507: errno.ENOSPC}


_NEXTCLOUD_URL = re.compile(r"^(.*)/dav/files/([^/]+)")


def _uploads_url(url: str) -> str:
    """Nextcloud's directory of chunked uploads for a `.../dav/files/USER` url (rclone's words otherwise)."""
    m = _NEXTCLOUD_URL.match(url)
    if m is None:
        raise ValueError("the remote url looks incorrect. Note that nextcloud chunked uploads require you to use the "
                         "/dav/files/USER endpoint instead of /webdav. Please check 'rclone config show remotename' "
                         "to verify that the url field ends in /dav/files/USERNAME")
    return f"{m.group(1)}/dav/uploads/{m.group(2)}/"


class WebdavBackend(Backend):
    type_name = "webdav"
    description = "WebDAV"

    def __init__(self, name: str, root: str, config: dict[str, Any], ctx: BackendContext | None = None) -> None:
        from . import INFO

        super().__init__(name, root.strip("/"), config, ctx)
        opt = INFO.parse_options(config)
        self.vendor = opt["vendor"] or "other"
        self.quirks = quirks(self.vendor)
        url = opt["url"]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webdav: url {url!r} is not an http:// or https:// URL")
        self.base_url = url if url.endswith("/") else url + "/"
        parts = urlsplit(self.base_url)
        self.label = f"webdav {name}" if not name.startswith(":") else f"webdav {parts.hostname}"
        # rclone's default is no encoding at all (mask 0): it then skips the encoder entirely
        self.enc = parse_encoding(opt["encoding"]) if opt["encoding"] else Encoder(0)
        self._raw_names = self.enc.mask == 0
        self.http = HttpClient(self.ctx, self.label, retry_statuses=RETRY_STATUSES, unix_socket=opt["unix_socket"],
                               follow_redirects=True, min_sleep=float(opt["pacer_min_sleep"]))
        self._auth_redirect = bool(opt["auth_redirect"])
        self._headers: dict[str, str] = {}
        extra = list(opt["headers"] or [])
        if len(extra) % 2:
            raise ValueError("webdav: odd number of headers supplied")
        for k, v in zip(extra[::2], extra[1::2], strict=True):
            self._headers[k] = v
        if not any(k.lower() == "referer" for k in self._headers):
            self._headers["Referer"] = self.base_url
        self._token_command = opt["bearer_token_command"]
        self._auth_lock = threading.Lock()
        if opt["user"] or opt["pass"]:  # fs.resolve has revealed the password
            token = base64.b64encode(f"{opt['user']}:{opt['pass']}".encode()).decode()
            self._headers["Authorization"] = "Basic " + token
        elif opt["bearer_token"]:
            self._headers["Authorization"] = "Bearer " + opt["bearer_token"]
        elif self._token_command:
            self._fetch_token()
        self.chunk_size = int(opt["nextcloud_chunk_size"]) if self.quirks.chunked_uploads else 0
        self.uploads_url = ""
        if self.quirks.chunked_uploads:
            if self.chunk_size <= 0:
                log.info("%s: Chunked uploads are disabled because nextcloud_chunk_size is set to 0", self.label)
            else:
                self.uploads_url = _uploads_url(url)
        self._exclude_shares = bool(opt["owncloud_exclude_shares"])
        self._exclude_mounts = bool(opt["owncloud_exclude_mounts"])
        q = self.quirks
        self.features = frozenset({FEATURE_EMPTY_DIRS, FEATURE_MOVE, FEATURE_DIR_MOVE}
                                  | ({FEATURE_MODTIME} if q.propset_mtime else set()))
        self.hashes = tuple(h for h, on in (("md5", q.oc_md5), ("sha1", q.oc_sha1 or q.me_sha1)) if on)
        if q.oc_md5 or q.oc_sha1:
            self._propfind = propsmod.OWNCLOUD_PROPS
        elif q.standard_props:
            self._propfind = propsmod.STANDARD_PROPS
        else:
            self._propfind = b""  # allprop (RFC 4918)

    # --- plumbing -----------------------------------------------------------------------

    def _fetch_token(self) -> None:
        """bearer_token_command: its output is the token (never logged)."""
        argv = shlex.split(self._token_command)
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            raise OSError(errno.EACCES, f"{self.label}: bearer_token_command failed: {type(e).__name__}") from None
        with self._auth_lock:
            self._headers["Authorization"] = "Bearer " + out.stdout.strip()

    def remote(self, path: str, is_dir: bool = False) -> str:
        """The URL path (escaped, below the url's) of a volume path."""
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        full = posixpath.join(self.root, path) if path else self.root
        for seg in full.split("/"):
            if len(seg.encode("utf-8", "surrogateescape")) > _MAX_NAME:
                raise OSError(errno.ENAMETOOLONG, "file name too long", path)
        if not self._raw_names:
            full = self.enc.encode_path(STANDARD.decode_path(full))
        out = quote(full, safe="/")
        return out + "/" if is_dir and out else out

    def _name(self, raw: str) -> str:
        return raw if self._raw_names else STANDARD.encode(self.enc.decode(raw))

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None,
             stream: bool = False, retry: bool = True, direction: str = "", ok: tuple[int, ...] = (),
             base: str = "") -> Any:
        """One request to base url (or `base`) + `path` (already escaped); 401 with a
        bearer_token_command fetches a new token and tries once more, as rclone. Redirects are
        followed (PROPPATCH: none); auth_redirect keeps Authorization on those of reads."""
        url = (base or self.base_url) + path
        redirect = "none" if method == "PROPPATCH" else (
            "auth" if self._auth_redirect and method in ("GET", "PROPFIND") else "")
        with self._auth_lock:
            hdrs = {**self._headers, **(headers or {})}
        resp = self.http.request(method, url, headers=hdrs, body=body, stream=stream, retry=retry,
                                 direction=direction, ok=ok, redirect=redirect)
        if resp.status == 401 and self._token_command and retry:
            resp.release_conn()
            self._fetch_token()
            with self._auth_lock:
                hdrs = {**self._headers, **(headers or {})}
            resp = self.http.request(method, url, headers=hdrs, body=body, stream=stream, retry=retry,
                                     direction=direction, ok=ok, redirect=redirect)
        return resp

    def url_of(self, url_path: str) -> str:
        return self.base_url + url_path

    def error(self, resp: Any, method: str, path: str) -> OSError:
        code = _ERRNO.get(resp.status, errno.EIO)
        shown = unquote(path) or "/"
        reason = getattr(resp, "reason", "") or ""
        return OSError(code, f"{self.label}: {method} {shown}: HTTP {resp.status} {reason}".rstrip())

    def put_error(self, resp: Any, url_path: str, path: str) -> OSError:
        """A failed PUT's error: onto a directory (405, 409 or even 404 by server) is EISDIR and
        below a file (404/409) ENOTDIR, as POSIX says."""
        if resp.status in (404, 405, 409) and self._is_dir(path):
            return IsADirectoryError(errno.EISDIR, "is a directory", path)
        if resp.status in (404, 409) and (parent := posixpath.dirname(path)):
            try:
                pp = self._stat_prop(parent)
            except OSError:
                pp = None
            if pp is not None and not pp.is_dir:
                return NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        return self.error(resp, "PUT", url_path)

    def _propfind_call(self, url_path: str, depth: str, stream: bool) -> Any:
        headers = {"Depth": depth}
        if self._propfind:
            headers["Content-Type"] = "application/xml; charset=utf-8"
        return self.call("PROPFIND", url_path, headers=headers, body=self._propfind or None, stream=stream)

    def _entry(self, name: str, p: propsmod.Prop) -> Entry:
        if p.is_dir:
            return Entry(name, True, 0, p.mtime_ns)
        return Entry(name, False, p.size, p.mtime_ns)

    # --- reads --------------------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        url_path = self.remote(path, is_dir=True)
        resp = self._propfind_call(url_path, "1", stream=True)
        if resp.status != 207:
            err = self.error(resp, "PROPFIND", url_path)
            resp.release_conn()
            if path and (p := self._stat_prop(path)) is not None and not p.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)  # Apache: 400 for "file/"
            if resp.status in (404, 409):
                if path and (parent := posixpath.dirname(path)) and (pp := self._stat_prop(parent)) is not None \
                        and not pp.is_dir:
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
                raise FileNotFoundError(errno.ENOENT, "directory not found", path)
            raise err
        from ...lib.httpclient import BodyReader

        base = urlsplit(self.base_url + url_path)
        base_path = unquote(base.path)
        if not base_path.endswith("/"):
            base_path += "/"
        out: list[Entry] = []
        first = True
        with BodyReader(self.http, resp) as body:
            for p in propsmod.parse_stream(body.readinto):
                h = p.href
                if h.startswith("/") and "?" not in h and "#" not in h and "/./" not in h and "/../" not in h:
                    item_path = unquote(h)  # the usual absolute path: no URL parsing per entry
                else:
                    item_path = unquote(urlsplit(urljoin(self.base_url + url_path, h)).path)
                if first and item_path.rstrip("/") == base_path.rstrip("/"):
                    first = False
                    if not p.is_dir:  # the listed path is a file
                        raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
                    continue
                first = False
                if not item_path.startswith(base_path):
                    log.debug("%s: item with unknown path received: %r", self.label, item_path)
                    continue
                sub = item_path[len(base_path):].strip("/")
                if not sub or "/" in sub or not p.ok:
                    continue
                if self._exclude_shares and "S" in p.permissions:
                    continue
                if self._exclude_mounts and "M" in p.permissions:
                    continue
                out.append(self._entry(self._name(sub), p))
        return out

    def _stat_prop(self, path: str) -> propsmod.Prop | None:
        url_path = self.remote(path)
        resp = self._propfind_call(url_path, "0", stream=False)
        if resp.status in (301, 302, 303, 307, 308) and not url_path.endswith("/"):
            resp = self._propfind_call(url_path + "/", "0", stream=False)  # a collection asked without its /
        if resp.status in (404, 409, 301, 302, 303, 400):  # 400: Apache, for a path below a file
            return None
        if resp.status != 207:
            raise self.error(resp, "PROPFIND", url_path)
        items = propsmod.parse_bytes(resp.data)
        if not items or not (items[0].ok or items[0].code == 425):
            return None
        return items[0]

    def stat(self, path: str) -> Entry:
        if path == "" and not self.root:
            return Entry("", True)
        p = self._stat_prop(path)
        if p is None:
            parent = posixpath.dirname(path)
            if parent and (pp := self._stat_prop(parent)) is not None and not pp.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            raise FileNotFoundError(errno.ENOENT, "not found", path)
        return self._entry(posixpath.basename(path), p)

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Reader:
        url_path = self.remote(path)
        try:
            return RangedReader(self, url_path, offset, length)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "not found", path) from None
        except OSError:  # a GET of a collection: 403, 405 or a listing page, by server
            if self._is_dir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path) from None
            raise

    def _is_dir(self, path: str) -> bool:
        try:
            p = self._stat_prop(path)
        except OSError:
            return False
        return p is not None and p.is_dir

    def hash(self, path: str, kind: str) -> str:
        if kind not in self.hashes:
            return super().hash(path, kind)
        p = self._stat_prop(path)
        if p is None:
            raise FileNotFoundError(errno.ENOENT, "not found", path)
        if p.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return p.hashes().get(kind, "")

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        """OC-Checksum on the PUT, as rclone sends it (SHA1 first, else MD5)."""
        q = self.quirks
        return ("sha1",) if q.oc_sha1 else ("md5",) if q.oc_md5 else ()

    # --- writes -------------------------------------------------------------------------

    def put_headers(self, mtime_ns: int | None, hashes: dict[str, str]) -> dict[str, str]:
        headers = {"Content-Type": "application/octet-stream"}
        q = self.quirks
        if q.use_oc_mtime and mtime_ns is not None:
            headers["X-OC-Mtime"] = str(mtime_ns // 10**9)
        if q.oc_sha1 and hashes.get("sha1"):
            headers["OC-Checksum"] = "SHA1:" + hashes["sha1"]
        elif q.oc_md5 and hashes.get("md5"):
            headers["OC-Checksum"] = "MD5:" + hashes["md5"]
        return headers

    def uploaded(self, path: str, mtime_ns: int | None) -> None:
        """After a PUT: nothing, as rclone's Update (it re-reads the object; the VFS stats it).
        rclone's PROPPATCH fallback for an X-OC-Mtime the server did not accept is in its
        server-side copy and move (here: move)."""

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> Writer:
        url_path = self.remote(path)
        if path == "":
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        parent = posixpath.dirname(path)
        if parent:
            self._make_dirs(parent)
        if self.quirks.tus_uploads and size >= 0:  # rclone's canTus (an unknown size: a plain PUT)
            if self._is_dir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            dir_url = self.base_url + (self.remote(parent, is_dir=True) if parent or self.root else "")
            return TusWriter(self, dir_url, url_path, size, mtime_ns, path)
        if self.uploads_url and size > self.chunk_size:
            # a MOVE with Overwrite onto a directory would delete it: asked first, a PROPFIND
            # (a plain PUT onto one fails, RFC 4918's 405 or another code: put_error says EISDIR)
            if self._is_dir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            return ChunkedWriter(self, self.uploads_url, self.chunk_size, url_path, size, mtime_ns, path)
        return DavWriter(self, url_path, size, mtime_ns, path)

    def _mkcol(self, path: str) -> int:
        url_path = self.remote(path, is_dir=True)
        resp = self.call("MKCOL", url_path)
        resp.release_conn()
        return resp.status

    def _make_dirs(self, path: str) -> None:
        """The directory and its parents, as rclone's mkdir (a 409 makes the parent first)."""
        status = self._mkcol(path)
        if status in (200, 201, 204, 405, 406, 423):  # rclone: 405, 406 and 423 mean it exists (or is
            return  # being made); a file there fails the PUT below it
        if status == 409:
            parent = posixpath.dirname(path)
            if parent:
                self._make_dirs(parent)
                status = self._mkcol(path)
                if status in (200, 201, 204, 405):
                    return
        p = self._stat_prop(path)
        if p is not None and p.is_dir:
            return
        if p is not None:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        raise OSError(_ERRNO.get(status, errno.EIO), f"{self.label}: MKCOL {path}: HTTP {status}")

    def mkdir(self, path: str) -> None:
        if path == "" and self.root and self._stat_prop("") is None:
            return self._make_root()
        if path == "" or self._stat_prop(path) is not None:  # some servers (rclone's) take a MKCOL of an
            raise FileExistsError(errno.EEXIST, "exists", path)  # existing name as done
        status = self._mkcol(path)
        if status in (200, 201, 204):
            return
        if self._stat_prop(path) is not None:
            raise FileExistsError(errno.EEXIST, "exists", path)
        parent = posixpath.dirname(path)
        if parent:
            pp = self._stat_prop(parent)
            if pp is None:
                raise FileNotFoundError(errno.ENOENT, "parent directory not found", path)
            if not pp.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        if status == 409:
            raise FileNotFoundError(errno.ENOENT, "parent directory not found", path)
        raise OSError(_ERRNO.get(status, errno.EIO), f"{self.label}: MKCOL {path}: HTTP {status}")

    def _make_root(self) -> None:
        """The volume's root and the directories above it, as rclone's Mkdir("")."""
        parts = self.root.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if not self._raw_names:
                prefix = self.enc.encode_path(STANDARD.decode_path(prefix))
            resp = self.call("MKCOL", quote(prefix, safe="/") + "/")
            resp.release_conn()
            if resp.status not in (200, 201, 204, 405, 406, 423) and i == len(parts):
                raise OSError(_ERRNO.get(resp.status, errno.EIO), f"{self.label}: MKCOL {self.root}: "
                              f"HTTP {resp.status}")

    def rmdir(self, path: str) -> None:
        entries = self.list(path)  # ENOENT, ENOTDIR
        if entries:
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)
        if path == "" and not self.root:
            raise OSError(errno.EBUSY, "cannot remove the root", path)
        url_path = self.remote(path, is_dir=True)
        resp = self.call("DELETE", url_path)
        resp.release_conn()
        if resp.status not in (200, 204):
            raise self.error(resp, "DELETE", url_path)

    def delete(self, path: str) -> None:
        p = self._stat_prop(path)  # never a DELETE of a collection (it would go with all below it)
        if p is None:
            raise FileNotFoundError(errno.ENOENT, "not found", path)
        if p.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        url_path = self.remote(path)
        resp = self.call("DELETE", url_path)
        resp.release_conn()
        if resp.status == 404:
            raise FileNotFoundError(errno.ENOENT, "not found", path)
        if resp.status not in (200, 204):
            raise self.error(resp, "DELETE", url_path)

    def move(self, src: str, dst: str) -> None:
        sp = self._stat_prop(src)
        if sp is None:
            raise FileNotFoundError(errno.ENOENT, "not found", src)
        if sp.is_dir and (dst + "/").startswith(src + "/"):
            raise OSError(errno.EINVAL, "cannot move a directory into itself", dst)
        dp = self._stat_prop(dst)
        if dp is not None:
            if dp.is_dir and not sp.is_dir:
                raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
            if dp.is_dir and self.list(dst):
                raise OSError(errno.ENOTEMPTY, "directory not empty", dst)
            if sp.is_dir and not dp.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", dst)
        parent = posixpath.dirname(dst)
        if parent:
            self._make_dirs(parent)
        src_path, dst_path = self.remote(src, is_dir=sp.is_dir), self.remote(dst, is_dir=sp.is_dir)
        headers = {"Destination": self.base_url + dst_path, "Overwrite": "T"}
        if self.quirks.use_oc_mtime and not sp.is_dir and sp.mtime_ns:
            headers["X-OC-Mtime"] = str(sp.mtime_ns // 10**9)
        resp = self.call("MOVE", src_path, headers=headers)
        resp.release_conn()
        if resp.status not in (200, 201, 204):
            raise self.error(resp, "MOVE", src_path)
        if "X-OC-Mtime" in headers and self.quirks.propset_mtime and resp.headers.get("X-OC-Mtime") != "accepted":
            self._keep_modtime(dst, sp.mtime_ns)

    def _keep_modtime(self, dst: str, mtime_ns: int) -> None:
        """rclone's fallback after a MOVE whose X-OC-Mtime the server did not accept: the moved
        file's modtime set with PROPPATCH where it differs. The move itself has happened, so a
        failure here is logged, not raised (rclone returns it as the move's error)."""
        try:
            dp = self._stat_prop(dst)
            if dp is not None and dp.mtime_ns // 10**9 != mtime_ns // 10**9:
                self.set_modtime(dst, mtime_ns)
        except OSError as e:
            log.warning("%s: %s was moved, but its modification time could not be kept: %s", self.label, dst, e)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        if not self.quirks.propset_mtime:
            return super().set_modtime(path, mtime_ns)
        body = ('<?xml version="1.0" encoding="utf-8" ?>\n<D:propertyupdate xmlns:D="DAV:">\n <D:set>\n  <D:prop>\n'
                f'   <lastmodified xmlns="DAV:">{mtime_ns // 10**9}</lastmodified>\n  </D:prop>\n </D:set>\n'
                '</D:propertyupdate>\n').encode()
        url_path = self.remote(path)
        resp = self.call("PROPPATCH", url_path, headers={"Content-Type": "application/xml; charset=utf-8"}, body=body)
        if resp.status == 404:
            raise FileNotFoundError(errno.ENOENT, "not found", path)
        if resp.status != 207:
            raise self.error(resp, "PROPPATCH", url_path)
        items = propsmod.parse_bytes(resp.data)
        if len(items) == 1 and items[0].ok:
            return
        raise OSError(errno.ENOTSUP, f"{self.label}: the server did not set the modification time", path)

    def shutdown(self) -> None:
        self.http.close()
