"""Nextcloud's chunked uploads, as rclone 1.75.2 makes them (backend/webdav/chunking.go).

A file larger than `nextcloud_chunk_size`, of a known size, goes up in pieces:

1. DELETE, then MKCOL, of `<uploads>/rclone-chunked-upload-<md5 of the file's path>/`, where
   `<uploads>` is the url's `.../dav/files/USER` turned into `.../dav/uploads/USER`;
2. one PUT of each piece, named `<first byte>-<last byte>` (15 digits each), with its length:
   a piece is held in memory (one of `nextcloud_chunk_size` bytes) and sent again whole when
   the request is retried;
3. a MOVE of `.file` in that directory to the file's URL (`Destination`), with X-OC-Mtime and
   OC-Checksum: Nextcloud assembles the pieces. A 423 (the assembly still running) is waited
   for, 5 s and doubling; a 404 after a 423 means it finished.

A failed upload deletes its directory of pieces.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from typing import Any
from urllib.parse import unquote

from .pieces import PieceWriter
from .transfer import DavBackend

log = logging.getLogger("pyclone")
_OK = (200, 201, 204)


class ChunkedWriter(PieceWriter):
    def __init__(self, backend: DavBackend, uploads_url: str, chunk_size: int, url_path: str, size: int,
                 mtime_ns: int | None, shown: str) -> None:
        super().__init__(backend, url_path, size, mtime_ns, shown, chunk_size)
        self._uploads = uploads_url  # ends with "/"
        digest = hashlib.md5(unquote(url_path).encode("utf-8", "surrogateescape"), usedforsecurity=False)
        self._dir = f"rclone-chunked-upload-{digest.hexdigest()}"
        self._purge()
        self._request("MKCOL", f"{self._dir}/", "making upload directory failed")

    def _request(self, method: str, path: str, what: str, *, headers: dict[str, str] | None = None,
                 body: Any = None, ok: tuple[int, ...] = _OK) -> Any:
        resp = self._b.call(method, path, headers=headers, body=body, base=self._uploads, direction="upload")
        resp.release_conn()
        if resp.status not in ok:
            err = self._b.error(resp, method, path)
            raise OSError(err.errno, f"{what}: {err.strerror}", self._shown)
        return resp

    def _purge(self) -> None:
        """The upload directory of an earlier try, if there is one."""
        self._request("DELETE", f"{self._dir}/", "chunked upload couldn't purge upload directory",
                      ok=(*_OK, 404))

    def _send(self) -> None:
        n = self._fill
        if not n:
            return
        name = f"{self._offset:015d}-{self._offset + n - 1:015d}"
        view = memoryview(self._buf)[:n]
        try:
            self._request("PUT", f"{self._dir}/{name}", "uploading chunk failed", body=view,
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(n)})
        finally:
            view.release()
        self._offset += n
        self._fill = 0

    def _finish(self) -> None:
        headers = self._b.put_headers(self.mtime_ns, self.source_hashes)
        headers.pop("Content-Type", None)
        headers["Destination"] = self._b.url_of(self._url_path)
        sleep, locked = 5.0, False
        tries = max(1, int(self._b.ctx.low_level_retries))
        for attempt in range(tries):
            resp = self._b.call("MOVE", f"{self._dir}/.file", headers=headers, base=self._uploads, retry=False,
                                direction="upload")
            resp.release_conn()
            if resp.status in _OK:
                return
            if resp.status == 404 and locked:
                return  # after a 423: the assembly finished meanwhile (rclone's reading)
            if resp.status == 423:
                locked = True
                log.info("%s: waiting %.0f s for Nextcloud to assemble the chunks of %s (423 Locked)",
                         self._b.label, sleep, self._shown)
                time.sleep(sleep)
                sleep *= 2
                continue
            if (resp.status in (404, 429) or resp.status >= 500) and attempt < tries - 1:
                time.sleep(min(0.1 * 2 ** attempt, 2.0))  # 404 too: Nextcloud may say it while merging
                continue
            err = self._b.error(resp, "MOVE", f"{self._dir}/.file")
            raise OSError(err.errno, f"finalize chunked upload failed: {err.strerror}", self._shown)
        raise OSError(errno.EIO, f"{self._b.label}: finalize chunked upload of {self._shown}: the server kept "
                      "answering 423 Locked", self._shown)

    def _drop(self) -> None:
        try:
            self._purge()
        except OSError as e:
            log.info("%s: couldn't delete the chunks of a failed upload of %s: %s", self._b.label, self._shown, e)
