"""PieceWriter: the Writer of the uploads that go up in pieces held in memory (Nextcloud's
chunked uploads, chunked.py; Infinite Scale's tus, tus.py). A subclass sends a full piece
(`_send`), finishes the upload (`_finish`) and drops a failed one (`_drop`)."""

from __future__ import annotations

import errno

from .transfer import DavBackend


class PieceWriter:
    def __init__(self, backend: DavBackend, url_path: str, size: int, mtime_ns: int | None, shown: str,
                 piece_size: int) -> None:
        self._b = backend
        self._url_path = url_path
        self._size = size
        self._shown = shown
        self.mtime_ns = mtime_ns
        self.source_hashes: dict[str, str] = {}  # set by the VFS before the first byte (upload_hashes)
        self._buf = bytearray(piece_size)
        self._fill = 0
        self._offset = 0  # of the piece being filled
        self._done = False

    def _send(self) -> None:
        """Send the `_fill` bytes of the buffer at `_offset` (none: nothing), then move on past them."""
        raise NotImplementedError

    def _finish(self) -> None:
        """After the last piece: the server makes the file."""

    def _drop(self) -> None:
        """A failed upload: what the server holds of it goes."""

    def write(self, view: memoryview) -> int:
        n = len(view)
        if self._done:
            raise ValueError("write to a closed upload")
        if self._offset + self._fill + n > self._size:
            raise OSError(errno.EIO, f"{self._b.label}: more bytes than the {self._size} announced", self._shown)
        pos, room = 0, len(self._buf)
        while pos < n:
            take = min(n - pos, room - self._fill)
            self._buf[self._fill:self._fill + take] = view[pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == room:
                self._send_or_abort()
        return n

    def _send_or_abort(self) -> None:
        try:
            self._send()
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        if self._done:
            return
        written = self._offset + self._fill
        if written != self._size:
            self.abort()
            raise OSError(errno.EIO, f"{self._b.label}: PUT {self._shown}: {written} bytes written of the "
                          f"{self._size} announced", self._shown)
        self._send_or_abort()
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._buf = bytearray()
        self._b.uploaded(self._url_path, self.mtime_ns)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf = bytearray()
        self._drop()
