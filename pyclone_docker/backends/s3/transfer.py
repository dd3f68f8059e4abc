"""Object reads and uploads.

Reads are ranged GETs streamed straight into the caller's buffer. A body that breaks is
resumed from where it broke, with `If-Match` on the ETag first seen, so a read never mixes
two versions of an object: one that changed meanwhile is EIO, never wrong bytes.

Uploads follow rclone: below `upload_cutoff` one PutObject, above it (or of an unknown size)
a multipart upload with `upload_concurrency` parts of `chunk_size` in flight, each resent
whole on a retry, the parts aborted on failure unless `leave_parts_on_error`. A small object
is held in memory and sent with its Content-MD5; a larger single PUT streams through a
bounded queue (it cannot be resent: a failure fails the upload, which the VFS retries).
Memory is bounded by upload_concurrency x chunk_size per upload, the part being filled included.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import quote

from ...lib.httpclient.ranged import range_starts
from ..base import BackendContext
from .api import S3Api, S3Error, mtime_header, quote_key
from .config import S3Config
from .sigv4 import UNSIGNED_PAYLOAD
from .xmlparse import clean_etag, complete_body, find_text, parse_error


class S3Backend(Protocol):
    """What transfers need of the backend (backend.S3Backend)."""

    cfg: S3Config
    api: S3Api
    ctx: BackendContext

    def get_object(self, bucket: str, key: str, headers: dict[str, str]) -> Any: ...

    def mime_type(self, key: str) -> str: ...

    def ensure_bucket(self, bucket: str) -> None: ...

    def uploaded(self, bucket: str, key: str, size: int, mtime_ns: int, etag: str, md5: str) -> None: ...

    def log_error(self, fmt: str, *args: Any) -> None: ...

    def set_modtime_of(self, bucket: str, key: str, mtime_ns: int) -> None: ...

STREAM_BLOCK = 1 << 20  # what a streamed PUT's queue holds per item
STREAM_QUEUE = 4
_ABORT = object()  # a queue item that stops a streamed PUT


class S3Reader:
    """A streaming GET of bytes [offset, offset+length) (length -1: to the end)."""

    def __init__(self, backend: S3Backend, bucket: str, key: str, offset: int, length: int) -> None:
        self._b = backend
        self._bucket, self._key = bucket, key
        self._pos = offset
        self._end = offset + length if length >= 0 else -1
        self._etag = ""
        self._body: Any = None
        self._opens = 0
        self._done = length == 0
        if not self._done:
            self._open()

    def _open(self) -> None:
        b = self._b
        headers = dict(b.cfg.sse_headers)
        if self._end >= 0:
            headers["Range"] = f"bytes={self._pos}-{self._end - 1}"
        elif self._pos > 0:
            headers["Range"] = f"bytes={self._pos}-"
        if self._etag:
            headers["If-Match"] = f'"{self._etag}"'
        self._opens += 1
        resp = b.get_object(self._bucket, self._key, headers)
        if resp.status == 416:  # a range at or past the end: nothing to read
            resp.release_conn()
            self._done = True
            return
        if resp.status == 200 and "Range" in headers and not range_starts(resp, self._pos):
            resp.release_conn()  # the whole object where a part was asked for (rclone serve s3
            # answers 200 with the part and its Content-Range: that is taken)
            raise OSError(errno.EIO, f"{b.api.label}: GET {self._bucket}/{self._key}: the server ignored the Range")
        if not self._etag:
            self._etag = clean_etag(resp.headers.get("ETag", ""))
        from ...lib.httpclient import BodyReader

        self._body = BodyReader(b.api.http, resp)

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
                n = self._body.readinto(view)
            except S3Error as e:
                if e.status == 412:  # If-Match failed: the object changed under the read
                    raise OSError(errno.EIO, f"{self._b.api.label}: {self._bucket}/{self._key} changed "
                                  "while it was read") from None
                raise
            except OSError as e:
                self._drop()
                # rclone's reopen: every open of the stream, the first one too, counts against
                # --low-level-retries over the reader's whole life
                if self._opens >= max(1, self._b.ctx.low_level_retries):
                    raise OSError(errno.EIO, f"{e.strerror or e} (too many retries: {self._opens} opens)") from None
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


def _put_headers(b: S3Backend, key: str, mtime_ns: int) -> dict[str, str]:
    headers = dict(b.cfg.put_headers)
    headers.update(b.cfg.sse_headers)
    headers["x-amz-meta-mtime"] = mtime_header(mtime_ns)
    headers["Content-Type"] = b.mime_type(key)
    return headers


class S3Writer:
    """The upload of one object; write() in order, close() commits, abort() discards."""

    def __init__(self, backend: S3Backend, bucket: str, key: str, size: int, mtime_ns: int) -> None:
        self._b = backend
        self._bucket, self._key = bucket, key
        self._size = size
        self.mtime_ns = mtime_ns  # the VFS may set it before close() (a utime on the open file)
        self.source_hashes: dict[str, str] = {}  # the VFS sets {"md5": hex} before writing (upload_hashes)
        self._md5 = hashlib.md5()
        self._hash_whole: bool | None = None  # decided at the first write (source_hashes known by then)
        self._written = 0
        self._closed = False
        cfg = backend.cfg
        self._impl: _Buffered | _Streamed | _Multipart
        if size < 0 or size >= cfg.upload_cutoff:
            self._impl = _Multipart(self, size)
        elif size <= cfg.chunk_size:
            self._impl = _Buffered(self, size)
        else:
            self._impl = _Streamed(self, size)

    def write(self, view: memoryview) -> int:
        if self._closed:
            raise OSError(errno.EBADF, "write after close", self._key)
        if self._size >= 0 and self._written + len(view) > self._size:
            raise OSError(errno.EFBIG, f"more than the {self._size} bytes announced", self._key)
        if self._hash_whole is None:
            # a multipart upload whose MD5 the VFS gave needs no second pass over the bytes
            self._hash_whole = not (isinstance(self._impl, _Multipart) and "md5" in self.source_hashes)
        if self._hash_whole:
            self._md5.update(view)
        self._impl.write(view)
        self._written += len(view)
        return len(view)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._size >= 0 and self._written != self._size:
            self._impl.abort()
            raise OSError(errno.EIO, f"{self._b.api.label}: {self._bucket}/{self._key}: {self._written} of "
                          f"{self._size} bytes written")
        try:
            etag = self._impl.finish()
        except FileNotFoundError as e:  # NoSuchBucket (no_check_bucket): the close fails with EIO, as rclone's
            self._impl.abort()
            raise OSError(errno.EIO, e.strerror or str(e)) from None
        except BaseException:
            self._impl.abort()
            raise
        self._b.uploaded(self._bucket, self._key, self._written, self.mtime_ns, etag, self.md5_digest().hex())

    def md5_digest(self) -> bytes:
        """The whole object's MD5: hashed on the way, or the one the VFS announced."""
        if self._hash_whole is False:
            return bytes.fromhex(self.source_hashes["md5"])
        return self._md5.digest()

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._impl.abort()

    def check_etag(self, etag: str) -> None:
        """A single PUT's ETag is the MD5 of the object where the provider says so."""
        b = self._b
        if b.cfg.disable_checksum or b.cfg.etag_is_not_md5 or not etag or len(etag) != 32:
            return
        want = self.md5_digest().hex()
        if etag != want:
            raise OSError(errno.EIO, f"{b.api.label}: {self._bucket}/{self._key}: upload corrupted: "
                          f"MD5 differ: expecting {want} but got {etag}")


class _Buffered:
    """Held in memory, sent in one PUT with its Content-MD5 (resent whole on a retry)."""

    def __init__(self, w: S3Writer, size: int) -> None:
        self._w = w
        self._buf = bytearray()

    def write(self, view: memoryview) -> None:
        self._buf += view

    def finish(self) -> str:
        return put_buffer(self._w, self._buf)

    def abort(self) -> None:
        self._buf = bytearray()


def put_buffer(w: S3Writer, buf: bytearray | memoryview) -> str:
    """One PutObject of the whole object, held in `buf`, with its Content-MD5; its ETag."""
    b = w._b
    headers = _put_headers(b, w._key, w.mtime_ns)
    if not b.cfg.disable_checksum:
        digest = base64.b64encode(w.md5_digest()).decode()
        headers["Content-MD5"] = digest
        if b.cfg.etag_is_not_md5:  # SSE-KMS, SSE-C: the MD5 is kept as metadata, as rclone
            headers["x-amz-meta-md5chksum"] = digest
    b.ensure_bucket(w._bucket)
    resp = b.api.call("PUT", w._bucket, w._key, headers=headers, body=memoryview(buf),
                      direction="upload", what="PutObject")
    resp.release_conn()
    etag = clean_etag(resp.headers.get("ETag", ""))
    w.check_etag(etag)
    return etag


class _Streamed:
    """One PUT whose body flows from write() through a bounded queue (Content-Length known)."""

    def __init__(self, w: S3Writer, size: int) -> None:
        self._w = w
        self._q: queue.Queue[Any] = queue.Queue(STREAM_QUEUE)
        self._result: list[Any] = []
        self._failed = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> Iterator[bytes]:
        while True:
            chunk = self._q.get()
            if chunk is None:
                return
            if chunk is _ABORT:  # raised inside the send: the connection is dropped, not left waiting
                raise OSError(errno.ECANCELED, "upload aborted")
            yield chunk

    def _send(self) -> None:
        w, b = self._w, self._w._b
        try:
            headers = _put_headers(b, w._key, w.mtime_ns)
            headers["Content-Length"] = str(w._size)
            resp = b.api.call("PUT", w._bucket, w._key, headers=headers, body=self._body(),  # type: ignore[arg-type]
                              direction="upload", payload_hash=UNSIGNED_PAYLOAD, retry=False, what="PutObject")
            resp.release_conn()
            self._result.append(clean_etag(resp.headers.get("ETag", "")))
        except BaseException as e:  # handed to close()
            self._result.append(e)
            self._failed.set()
            while True:  # unblock the writer
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break

    def write(self, view: memoryview) -> None:
        if self._thread is None:
            self._w._b.ensure_bucket(self._w._bucket)
            self._thread = threading.Thread(target=self._send, name="s3-put", daemon=True)
            self._thread.start()
        data = bytes(view)  # the caller reuses its buffer
        while not self._failed.is_set():
            try:
                self._q.put(data, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise()

    def _raise(self) -> None:
        err = self._result[0] if self._result else None
        if isinstance(err, BaseException):
            raise err
        raise OSError(errno.EIO, f"{self._w._b.api.label}: {self._w._key}: the upload stopped")

    def finish(self) -> str:
        if self._thread is None:
            self.write(memoryview(b""))
        assert self._thread is not None
        while not self._failed.is_set():
            try:
                self._q.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self._thread.join()
        result = self._result[0] if self._result else None
        if not isinstance(result, str):
            self._raise()
        assert isinstance(result, str)
        self._w.check_etag(result)
        return result

    def abort(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            while self._thread.is_alive():
                try:
                    self._q.put(_ABORT, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self._thread.join(timeout=5)


def part_size(size: int, chunk_size: int, max_parts: int) -> int:
    """rclone's chunk size for an upload of `size` bytes (-1: unknown): chunk_size, or larger
    where the object would need more than max_parts parts (rounded up to whole MiB)."""
    if size <= 0 or size <= chunk_size * max_parts:
        return chunk_size
    mib = 1 << 20
    need = -(-size // max_parts)
    return -(-need // mib) * mib


class _Multipart:
    """CreateMultipartUpload, then up to upload_concurrency parts in flight, then Complete."""

    def __init__(self, w: S3Writer, size: int) -> None:
        b = w._b
        self._w = w
        self._part = part_size(size, b.cfg.chunk_size, b.cfg.max_upload_parts)
        self._buf: bytearray | None = None  # the part being filled (allocated whole: no regrowth)
        self._fill = 0
        self._upload_id = ""
        self._parts: list[Future[tuple[str, bytes]]] = []
        self._slots = threading.Semaphore(b.cfg.upload_concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._mtime_sent = w.mtime_ns

    def _start(self) -> None:
        w, b = self._w, self._w._b
        b.ensure_bucket(w._bucket)
        self._mtime_sent = w.mtime_ns
        headers = _put_headers(b, w._key, w.mtime_ns)
        md5 = w.source_hashes.get("md5", "")
        if md5 and not b.cfg.disable_checksum:  # rclone's md5chksum: the whole object's MD5
            headers["x-amz-meta-md5chksum"] = base64.b64encode(bytes.fromhex(md5)).decode()
        resp = b.api.call("POST", w._bucket, w._key, "uploads=", headers=headers, what="CreateMultipartUpload")
        self._upload_id = find_text(resp.data, "UploadId")
        if not self._upload_id:
            raise OSError(errno.EIO, f"{b.api.label}: {w._bucket}/{w._key}: CreateMultipartUpload gave no UploadId")
        self._pool = ThreadPoolExecutor(b.cfg.upload_concurrency, thread_name_prefix="s3-part")

    def write(self, view: memoryview) -> None:
        while len(view):
            if self._buf is None:
                # the part being filled takes a slot too: at most upload_concurrency parts of
                # chunk_size in memory, filling or in flight (rclone's bound)
                self._slots.acquire()
                self._buf, self._fill = bytearray(self._part), 0
            n = min(len(view), self._part - self._fill)
            self._buf[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == self._part:
                self._submit()

    def _submit(self) -> None:
        if not self._upload_id:
            self._start()
        if len(self._parts) >= self._w._b.cfg.max_upload_parts:
            raise OSError(errno.EFBIG, f"{self._w._b.api.label}: {self._w._key}: more than "
                          f"{self._w._b.cfg.max_upload_parts} parts of {self._part} bytes")
        for f in self._parts:  # a failed part fails the upload now, not at the end
            if f.done() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        assert self._buf is not None and self._pool is not None
        data = memoryview(self._buf)[:self._fill]  # its slot is released when it has been sent
        self._buf = None
        number = len(self._parts) + 1
        self._parts.append(self._pool.submit(self._send_part, number, data))

    def _send_part(self, number: int, data: memoryview) -> tuple[str, bytes]:
        w, b = self._w, self._w._b
        try:
            digest = hashlib.md5(data).digest()
            headers = dict(b.cfg.sse_headers)
            if not b.cfg.disable_checksum:
                headers["Content-MD5"] = base64.b64encode(digest).decode()
            query = f"partNumber={number}&uploadId={quote(self._upload_id, safe='')}"
            resp = b.api.call("PUT", w._bucket, w._key, query, headers=headers, body=data,
                              direction="upload", what=f"UploadPart {number}")
            resp.release_conn()
            return clean_etag(resp.headers.get("ETag", "")), digest
        finally:
            self._slots.release()

    def finish(self) -> str:
        w, b = self._w, self._w._b
        if not self._parts:  # an unknown size that fit in one part: one PutObject, as a small file
            try:
                return put_buffer(w, memoryview(self._buf or b"")[:self._fill])
            finally:
                self._buf = None
                self._slots.release()
        if self._buf is not None and self._fill:
            self._submit()  # the last part
        elif self._buf is not None:  # a part started and left empty: its slot back
            self._buf = None
            self._slots.release()
        done = [f.result() for f in self._parts]
        body = complete_body([(i + 1, etag) for i, (etag, _) in enumerate(done)])
        resp = b.api.call("POST", w._bucket, w._key, f"uploadId={quote(self._upload_id, safe='')}",
                          body=body, what="CompleteMultipartUpload")
        data = resp.data
        code, message = parse_error(data)
        if code:  # S3 may answer 200 and put the error in the body
            raise S3Error(errno.EIO, f"{b.api.label}: CompleteMultipartUpload {w._bucket}/{w._key}: "
                          f"{code}: {message}", code, 200)
        self._shutdown()
        etag = clean_etag(find_text(data, "ETag")) or clean_etag(resp.headers.get("ETag", ""))
        want = hashlib.md5(b"".join(d for _, d in done)).hexdigest() + f"-{len(done)}"
        if (b.cfg.use_multipart_etag and not b.cfg.etag_is_not_md5 and not b.cfg.disable_checksum
                and etag and etag != want):
            raise OSError(errno.EIO, f"{b.api.label}: {w._bucket}/{w._key}: multipart upload corrupted: "
                          f"Etag differ: expecting {want} but got {etag}")
        announced = w.source_hashes.get("md5", "")
        if announced and w._hash_whole and announced != w._md5.hexdigest():  # changed while it was sent
            raise OSError(errno.EIO, f"{b.api.label}: {w._bucket}/{w._key}: the data sent does not match the "
                          "MD5 announced for it (changed during the upload)")
        if w.mtime_ns != self._mtime_sent:  # set on the open file after the upload began
            b.set_modtime_of(w._bucket, w._key, w.mtime_ns)
        return etag

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def abort(self) -> None:
        w, b = self._w, self._w._b
        for f in self._parts:
            f.cancel()
        self._shutdown()
        self._buf = None
        if self._upload_id and not b.cfg.leave_parts_on_error:
            try:
                b.api.call("DELETE", w._bucket, w._key, f"uploadId={quote(self._upload_id, safe='')}",
                           what="AbortMultipartUpload").release_conn()
            except OSError as e:
                b.log_error("%s: cannot abort the multipart upload of %s/%s: %s", b.api.label, w._bucket, w._key, e)


def copy_source(bucket: str, key: str) -> str:
    """x-amz-copy-source: /bucket/key, URL-encoded."""
    return quote(bucket, safe="") + "/" + quote_key(key)
