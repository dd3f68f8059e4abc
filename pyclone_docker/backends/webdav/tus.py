"""ownCloud Infinite Scale's uploads: the tus protocol (tus.io, 1.0.0), as rclone 1.75.2 sends
it for vendor infinitescale (backend/webdav/tus*.go).

Every upload of a known size:

1. POST to the file's directory (its collection URL) with `Tus-Resumable: 1.0.0`,
   `Upload-Length`, `Upload-Metadata` (filename, mtime in seconds, filetype, each base64) and
   the vendor's X-OC-Mtime / OC-Checksum, no body; the server answers 201 with the upload's
   `Location`;
2. one PATCH of each 10 MiB piece to that URL, with `Upload-Offset` and
   `Content-Type: application/offset+octet-stream`; each answer's `Upload-Offset` is where the
   next one starts; the last one completes the file.

Where rclone gives up on a PATCH that fails, this asks the upload's offset again (HEAD) and
sends the rest of the piece from there, up to --low-level-retries times: that is what tus is
for. An aborted upload is terminated (DELETE of its URL; rclone leaves it to expire). A piece is
held in memory (10 MiB) until the server has taken it.
"""

from __future__ import annotations

import base64
import errno
import logging
import mimetypes
import posixpath
import time
from typing import Any
from urllib.parse import unquote, urljoin

from ...lib.httpclient import HttpError
from .pieces import PieceWriter
from .transfer import DavBackend

log = logging.getLogger("pyclone")
TUS_CHUNK = 10 << 20  # rclone: f.opt.ChunkSize = 10 MiB for infinitescale, whatever nextcloud_chunk_size says
_V = {"Tus-Resumable": "1.0.0"}


def _b64(s: str) -> str:
    return base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()


def file_type(name: str) -> str:
    """The MIME type by extension, application/octet-stream when unknown (as rclone's fs.MimeType)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


class TusWriter(PieceWriter):
    def __init__(self, backend: DavBackend, dir_url: str, url_path: str, size: int, mtime_ns: int | None,
                 shown: str) -> None:
        super().__init__(backend, url_path, size, mtime_ns, shown, min(TUS_CHUNK, max(size, 0)))
        self._dir_url = dir_url  # the collection the file goes into (absolute, ending in /)
        self._name = posixpath.basename(unquote(url_path))
        self._type = file_type(self._name)
        self._location = ""

    # --- the protocol -------------------------------------------------------------------

    def _create(self) -> None:
        seconds = (self.mtime_ns if self.mtime_ns is not None else time.time_ns()) // 10**9
        headers = self._b.put_headers(self.mtime_ns, self.source_hashes)
        headers.pop("Content-Type", None)
        headers.update(_V)
        headers["Upload-Length"] = str(self._size)
        headers["Upload-Metadata"] = (f"filename {_b64(self._name)},mtime {_b64(str(seconds))},"
                                      f"filetype {_b64(self._type)}")
        headers["Content-Length"] = "0"
        resp = self._b.call("POST", "", headers=headers, base=self._dir_url, direction="upload")
        resp.release_conn()
        if resp.status != 201 or not resp.headers.get("Location"):
            err = self._b.put_error(resp, self._url_path, self._shown)  # below a file: ENOTDIR
            if not isinstance(err, (NotADirectoryError, IsADirectoryError)):
                err = self._b.error(resp, "POST", unquote(self._dir_url))
            what = {412: "tus protocol version mismatch", 413: "tus upload body is too large"}.get(resp.status, "")
            raise OSError(err.errno, f"making upload directory failed: {what or err.strerror}", self._shown)
        self._location = urljoin(resp.url or self._dir_url, resp.headers["Location"])

    def _server_offset(self) -> int:
        resp = self._b.call("HEAD", "", headers={**_V}, base=self._location, direction="upload")
        resp.release_conn()
        off = resp.headers.get("Upload-Offset", "")
        if resp.status not in (200, 204) or not off.isdigit():
            err = self._b.error(resp, "HEAD", self._shown)  # (the upload URL may hold a token: not shown)
            raise OSError(err.errno, f"tus upload offset unknown: {err.strerror}", self._shown)
        return int(off)

    def _patch(self, view: memoryview, offset: int) -> Any:
        headers = {**_V, "Upload-Offset": str(offset), "filetype": self._type,
                   "Content-Type": "application/offset+octet-stream", "Content-Length": str(len(view))}
        return self._b.call("PATCH", "", headers=headers, body=view, base=self._location, retry=False,
                            direction="upload")

    def _send(self) -> None:
        """The piece in the buffer, from wherever the server says it has got to (a 0-byte file:
        the POST alone)."""
        if not self._location:
            self._create()
        start, end = self._offset, self._offset + self._fill
        pos, tries, attempt = start, max(1, int(self._b.ctx.low_level_retries)), 0
        with memoryview(self._buf) as whole:
            while pos < end:
                problem = ""
                try:
                    resp = self._patch(whole[pos - start:end - start], pos)
                    resp.release_conn()
                    off = resp.headers.get("Upload-Offset", "")
                    if resp.status == 204 and off.isdigit() and pos < int(off) <= end:
                        pos = int(off)
                        continue
                    if resp.status in (412, 413):
                        what = "tus protocol version mismatch" if resp.status == 412 else "tus upload body is too large"
                        raise OSError(errno.EIO, f"{self._b.label}: PATCH {self._shown}: {what}", self._shown)
                    if resp.status != 409 and resp.status < 500 and resp.status != 429 and resp.status != 204:
                        err = self._b.error(resp, "PATCH", self._shown)
                        raise OSError(err.errno, f"uploadChunk failed: {err.strerror}", self._shown)
                    problem = f"HTTP {resp.status}"
                except HttpError as e:  # its message names the upload URL, which may hold a token
                    problem = str(e).partition(f"{e.url}: ")[2] or "the connection failed"
                    if not e.retryable:
                        raise OSError(e.errno, f"{self._b.label}: PATCH {self._shown}: {problem}",
                                      self._shown) from None
                attempt += 1
                if attempt >= tries:
                    raise OSError(errno.EIO, f"{self._b.label}: PATCH {self._shown}: {problem}, {attempt} tries",
                                  self._shown)
                time.sleep(min(0.1 * 2 ** (attempt - 1), 2.0))
                got = self._server_offset()  # where the server got to: the rest is sent from there
                if not start <= got <= end:
                    raise OSError(errno.EIO, f"{self._b.label}: PATCH {self._shown}: the server is at byte {got}, "
                                  f"outside the piece {start}-{end}", self._shown)
                log.info("%s: %s: %s; resuming the upload at byte %d", self._b.label, self._shown, problem, got)
                pos = got
        self._offset, self._fill = end, 0

    def _drop(self) -> None:
        if not self._location:
            return
        try:  # tus' termination extension: the server drops what it holds
            self._b.call("DELETE", "", headers={**_V}, base=self._location, retry=False).release_conn()
        except OSError as e:
            log.info("%s: couldn't end the failed upload of %s: %s", self._b.label, self._shown, e)
