"""RangedReader: bytes [offset, offset + length) of one URL, read with ranged GETs and resumed
from where a body broke, for the web backends that address files by URL (webdav, http).

A body that keeps breaking is EIO after --low-level-retries opens, never a short read. A server
that ignores Range (python's http.server answers 200 with the whole file) has the bytes before
the offset read and dropped, never handed out as the part's.
"""

from __future__ import annotations

import errno
import time
from typing import Any, Protocol

from . import redirects
from .client import BodyReader


class RangedSource(Protocol):
    """What the reader needs of its backend."""

    label: str
    ctx: Any  # a BackendContext: low_level_retries
    http: Any  # its HttpClient

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, stream: bool = False,
             direction: str = "") -> Any: ...

    def error(self, resp: Any, method: str, path: str) -> OSError: ...


class RangedReader:
    """Bytes [offset, offset + length) of a file (length -1: to the end), streamed."""

    def __init__(self, backend: RangedSource, path: str, offset: int, length: int) -> None:
        self._b = backend
        self._path = path
        self._pos = offset
        self._end = offset + length if length >= 0 else -1
        self._body: BodyReader | None = None
        self._opens = 0
        self._done = length == 0
        if not self._done:
            self._open()

    def _open(self) -> None:
        headers = {}
        if self._end >= 0:
            headers["Range"] = f"bytes={self._pos}-{self._end - 1}"
        elif self._pos > 0:
            headers["Range"] = f"bytes={self._pos}-"
        self._opens += 1
        resp = self._b.call("GET", self._path, headers=headers, stream=True, direction="download")
        if redirects.sent_to_directory(resp, self._path):
            resp.release_conn()
            raise IsADirectoryError(errno.EISDIR, f"{self._b.label}: GET {self._path}: is a directory")
        if resp.status == 416:  # a range at or past the end
            resp.release_conn()
            self._done = True
            return
        if resp.status not in (200, 206):
            err = self._b.error(resp, "GET", self._path)
            resp.release_conn()
            raise err
        body = BodyReader(self._b.http, resp)
        if "Range" in headers and not range_starts(resp, self._pos):
            if resp.status != 200 or resp.headers.get("Content-Range"):
                body.close()
                raise OSError(errno.EIO, f"{self._b.label}: GET {self._path}: the server answered another range")
            # the whole file where a part was asked for (python's http.server): the bytes before
            # the offset are read and dropped, never handed out as the part's
            skip, scratch = self._pos, memoryview(bytearray(min(self._pos, 1 << 20)))
            try:
                while skip:
                    n = body.readinto(scratch[:min(skip, len(scratch))])
                    if not n:
                        self._done = True
                        break
                    skip -= n
            except BaseException:
                body.close()
                raise
        self._body = body

    def readinto(self, view: memoryview) -> int:
        if self._done:
            return 0
        if self._end >= 0 and len(view) > self._end - self._pos:
            view = view[:self._end - self._pos]
        if not len(view):
            return 0
        while True:
            try:
                if self._body is None:
                    self._open()
                    if self._done:
                        return 0
                assert self._body is not None
                n = self._body.readinto(view)
            except FileNotFoundError:
                raise
            except OSError as e:
                self._drop()
                if e.errno != errno.EIO or self._opens >= max(1, self._b.ctx.low_level_retries):
                    if e.errno == errno.EIO and self._opens > 1:
                        raise OSError(errno.EIO, f"{e.strerror or e} (too many retries: {self._opens} opens)") from None
                    raise
                time.sleep(min(2.0, 0.01 * (2 ** self._opens)))
                continue
            if n == 0:
                self._done = True
            self._pos += n
            return n

    def _drop(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    def close(self) -> None:
        self._done = True
        self._drop()


def range_starts(resp: Any, pos: int) -> bool:
    """A response's Content-Range begins at `pos` (with none: a whole-file 200, right only for pos 0)."""
    value = resp.headers.get("Content-Range", "")
    if not value:
        return pos == 0 and resp.status == 200
    unit, _, rest = value.partition(" ")
    start = rest.partition("-")[0]
    return unit == "bytes" and start.isdigit() and int(start) == pos
