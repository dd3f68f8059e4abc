"""Uploads (PUT) of the webdav backend; reads are lib/httpclient/ranged.py's RangedReader."""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Iterator
from typing import Any, Protocol

STREAM_QUEUE = 8  # pieces a streamed PUT holds between write() and the socket
SMALL_UNKNOWN = 1 << 20  # an upload of an unknown size up to this is held and sent with its length
_ABORT = object()


class DavBackend(Protocol):
    """What transfers need of the backend (backend.WebdavBackend)."""

    label: str
    ctx: Any
    http: Any  # its HttpClient

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None,
             stream: bool = False, retry: bool = True, direction: str = "", ok: tuple[int, ...] = (),
             base: str = "") -> Any: ...

    def url_of(self, url_path: str) -> str: ...

    def error(self, resp: Any, method: str, path: str) -> OSError: ...

    def put_error(self, resp: Any, url_path: str, path: str) -> OSError: ...

    def put_headers(self, mtime_ns: int | None, hashes: dict[str, str]) -> dict[str, str]: ...

    def uploaded(self, path: str, mtime_ns: int | None) -> None: ...


class DavWriter:
    """One PUT. A known size streams with its Content-Length; an unknown one is held up to 1 MiB
    (then sent with its length) and beyond that streams chunked. A PUT that streamed cannot be
    resent: its failure fails close(), and the VFS uploads again."""

    def __init__(self, backend: DavBackend, path: str, size: int, mtime_ns: int | None, shown: str = "") -> None:
        self._b = backend
        self._path = path
        self._shown = shown  # the volume path
        self._size = size
        self.mtime_ns = mtime_ns
        self.source_hashes: dict[str, str] = {}  # set by the VFS before the first byte (upload_hashes)
        self._held: bytearray | None = bytearray() if size < 0 or size <= SMALL_UNKNOWN else None
        self._q: queue.Queue[Any] = queue.Queue(STREAM_QUEUE)
        self._thread: threading.Thread | None = None
        self._result: list[Any] = []
        self._failed = threading.Event()
        self._written = 0

    # --- the streamed PUT ----------------------------------------------------------------

    def _body(self) -> Iterator[bytes]:
        while True:
            chunk = self._q.get()
            if chunk is None:
                return
            if chunk is _ABORT:
                raise OSError(errno.ECANCELED, "upload aborted")
            yield chunk

    def _send(self, length: int) -> None:
        try:
            headers = self._b.put_headers(self.mtime_ns, self.source_hashes)
            if length >= 0:
                headers["Content-Length"] = str(length)
            resp = self._b.call("PUT", self._path, headers=headers, body=self._body(), retry=False,
                                direction="upload")
            self._result.append(self._check(resp))
        except BaseException as e:  # handed to close()
            self._result.append(e)
            self._failed.set()
            while True:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break

    def _check(self, resp: Any) -> bool:
        if resp.status not in (200, 201, 204):
            resp.release_conn()
            raise self._b.put_error(resp, self._path, self._shown)
        resp.release_conn()
        return True

    def _start(self, length: int) -> None:
        self._thread = threading.Thread(target=self._send, args=(length,), name="webdav-put", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        while not self._failed.is_set():
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise()

    def _raise(self) -> None:
        err = self._result[0] if self._result else None
        if isinstance(err, BaseException):
            raise err
        raise OSError(errno.EIO, f"{self._b.label}: PUT {self._path}: the upload stopped")

    # --- the Writer ---------------------------------------------------------------------

    def write(self, view: memoryview) -> int:
        n = len(view)
        self._written += n
        if self._held is not None:
            self._held += view
            if self._size >= 0 or len(self._held) <= SMALL_UNKNOWN:
                return n
            held, self._held = self._held, None  # an unknown size past 1 MiB: stream it chunked
            self._start(-1)
            self._put(bytes(held))
            return n
        if self._thread is None:
            self._start(self._size)
        self._put(bytes(view))  # the caller reuses its buffer
        return n

    def close(self) -> None:
        if self._size >= 0 and self._written != self._size:
            self.abort()
            raise OSError(errno.EIO, f"{self._b.label}: PUT {self._path}: {self._written} bytes written of "
                          f"the {self._size} announced")
        if self._held is not None:  # sent whole: this one may be retried
            headers = self._b.put_headers(self.mtime_ns, self.source_hashes)
            headers["Content-Length"] = str(len(self._held))
            resp = self._b.call("PUT", self._path, headers=headers, body=bytes(self._held), direction="upload")
            self._check(resp)
        else:
            if self._thread is None:
                self._start(self._size)
            self._put(None)
            assert self._thread is not None
            self._thread.join()
            if not self._result or self._result[0] is not True:
                self._raise()
        self._b.uploaded(self._path, self.mtime_ns)

    def abort(self) -> None:
        self._held = None
        if self._thread is not None and self._thread.is_alive():
            while self._thread.is_alive():
                try:
                    self._q.put(_ABORT, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self._thread.join(timeout=5)
