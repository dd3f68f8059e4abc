"""The write-back queue: dirty items are uploaded --vfs-write-back after their last close,
--transfers at a time, and all of them before an unmount completes.

An upload holds no lock while it sends: the item gives a snapshot (states.py), the data
file is read without the item's lock, and the item decides at the end whether it became
clean or must go again (changed, or renamed, meanwhile). Open, read, stat and rename of the
file never wait for it; a rename over it does (CacheItem.hold_upload), and an unlink.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable

from ...backends.base import FEATURE_CHMOD, FEATURE_CHOWN, FEATURE_MODTIME, Backend, Entry
from .fingerprint import fingerprint, fingerprint_hash, new_hash
from .owner import QueueOwner
from .states import CHANGED, CLEAN, MOVED, Upload

log = logging.getLogger("pyclone.vfs.cache")

UPLOAD_BLOCK = 1 << 20


class WriteBack:
    """Uploads dirty items --vfs-write-back after their last close, --transfers at a time,
    retrying failures with exponential backoff up to a minute."""

    def __init__(self, cache: QueueOwner, delay: float, transfers: int,
                 on_uploaded: Callable[[str, Entry], None] | None) -> None:
        self.cache = cache
        self.delay = delay
        self.transfers = transfers
        self.on_uploaded = on_uploaded
        self.due: dict[str, float] = {}  # the truth; the heap may hold stale entries
        self.heap: list[tuple[float, str]] = []
        self.backoff: dict[str, float] = {}
        self.busy: set[str] = set()
        self.cond = threading.Condition()
        self.threads: list[threading.Thread] = []
        self.stopping = False
        self.flushing = False  # unmounting: a close that arrives now is uploaded at once

    def schedule(self, path: str, delay: float | None = None) -> None:
        with self.cond:
            if self.flushing:
                delay = 0.0
            self._set_due(path, time.monotonic() + (self.delay if delay is None else delay))
            self.backoff.pop(path, None)
            if len(self.threads) < self.transfers:
                t = threading.Thread(target=self._worker, name="writeback", daemon=True)
                t.start()
                self.threads.append(t)
            self.cond.notify()  # one worker re-checks the earliest due time

    def _set_due(self, path: str, when: float) -> None:
        self.due[path] = when
        heapq.heappush(self.heap, (when, path))

    def cancel(self, path: str) -> None:
        with self.cond:
            self.due.pop(path, None)
            self.backoff.pop(path, None)
            while path in self.busy:  # an upload of a deleted file must finish first
                self.cond.wait(1.0)

    def rename(self, old: str, new: str) -> None:
        with self.cond:
            if old in self.due:
                self._set_due(new, self.due.pop(old))
            if old in self.backoff:
                self.backoff[new] = self.backoff.pop(old)

    def pending(self) -> int:
        with self.cond:
            return len(self.due) + len(self.busy)

    def _next(self) -> str | None:
        """The earliest due item whose file is closed, or None after waiting a little.

        A heap keeps this O(log n) per upload: thousands of small files are common."""
        now = time.monotonic()
        while self.heap:
            when, path = self.heap[0]
            if self.due.get(path) != when or path in self.busy:
                heapq.heappop(self.heap)  # stale, or being uploaded (_worker pushes it again)
                continue
            if when > now:
                self.cond.wait(min(when - now, 1.0))
                return None
            heapq.heappop(self.heap)
            item = self.cache.peek(path)
            if item is None or not item.dirty:
                self.due.pop(path, None)
                continue
            if item.opens or item.moving or item.uploading:
                self._set_due(path, now + 0.5)  # rclone waits for the last close
                continue
            del self.due[path]
            self.busy.add(path)
            return path
        self.cond.wait(1.0)
        return None

    def _worker(self) -> None:
        while True:
            with self.cond:
                if self.stopping:
                    return
                path = self._next()
            if path is None:
                continue
            ok, again, delay = False, "", None
            try:
                ok, again, delay = self._upload(path)
            except Exception as e:
                log.error('volume "%s": upload of %s failed: %s', self.cache.volume, path, e)
            with self.cond:
                self.busy.discard(path)
                if not ok and self.cache.peek(path) is not None and path not in self.due:
                    wait = min(60.0, self.backoff.get(path, 0.5) * 2)
                    self.backoff[path] = wait
                    self._set_due(path, time.monotonic() + wait)
                    log.info("will retry upload of %s in %.0fs", path, wait)
                elif ok:
                    self.backoff.pop(path, None)
                    if again:  # changed or renamed while it was sent: once more, as it is now
                        if delay is None:
                            delay = 0.0 if self.flushing else self.delay
                        self._set_due(again, time.monotonic() + delay)
                if path in self.due:  # scheduled while it was being uploaded
                    heapq.heappush(self.heap, (self.due[path], path))
                self.cond.notify_all()

    def _upload(self, path: str) -> tuple[bool, str, float | None]:
        """Upload one item. Returns (ok, the path to upload again or "", after how long:
        None for --vfs-write-back)."""
        item = self.cache.peek(path)
        if item is None:
            return True, "", None
        job = item.begin_upload()
        if job is None:
            return True, "", None
        if not isinstance(job, Upload):
            return True, item.path, 0.5  # open, renamed or uploading right now: soon
        backend = self.cache.backend
        try:
            fp, remote = self._send(item, job)
        except BaseException:
            item.abort_upload()
            raise
        finally:
            os.close(job.fd)
        outcome, stray = item.end_upload(job, fp)
        if outcome == CLEAN:
            log.info("uploaded %s (%d bytes)", job.path, job.size)
            if self.on_uploaded is not None and remote is not None:
                self.on_uploaded(job.path, remote)
            return True, "", None
        if outcome == MOVED and stray and self.cache.peek(job.path) in (None, item):
            # renamed meanwhile: what was sent belongs to a name the file no longer has
            try:
                backend.delete(job.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.error("%s: cannot remove the copy uploaded before a rename: %s", job.path, e)
        log.info("%s changed or moved while it was uploaded: uploading it again", item.path)
        return True, item.path, None if outcome == CHANGED else 0.0

    def _send(self, item, job: Upload) -> tuple[str | None, Entry | None]:
        """Send the snapshot without the item's lock; the remote's fingerprint and entry after
        it, or None if a rename stopped it (the rest would be sent under a stale name)."""
        backend = self.cache.backend
        # the fingerprint's hash is taken on the way up, as rclone's local backend does:
        # reading the file back afterwards would double the cost of every upload
        kind = fingerprint_hash(backend, self.cache.fast_fingerprint)
        first = _hash_first(backend, job, item)
        if first is None:
            return None, None  # a rename stopped it
        hasher = new_hash(kind) if kind and kind not in first else None
        writer = backend.open_write(job.path, job.size, job.modtime_ns if self.cache.set_modtime else None)
        if first:
            writer.source_hashes = first  # type: ignore[attr-defined]
        try:
            buf = bytearray(min(UPLOAD_BLOCK, max(job.size, 1)))
            view = memoryview(buf)
            pos = 0
            while pos < job.size:
                if item.moves != job.moves:
                    writer.abort()
                    return None, None
                n = os.preadv(job.fd, [view[:min(len(buf), job.size - pos)]], pos)
                if n == 0:
                    break  # truncated meanwhile: the item changed, it goes again
                writer.write(view[:n])
                if hasher is not None:
                    hasher.update(view[:n])
                pos += n
        except BaseException:
            writer.abort()
            raise
        writer.close()
        try:
            remote = backend.stat(job.path)
            if _apply_metadata(backend, job, remote, self.cache.set_modtime):
                remote = backend.stat(job.path)
            if hasher is not None:
                backend.hash_written(job.path, kind, hasher.hexdigest())
            elif kind in first:
                backend.hash_written(job.path, kind, first[kind])
            return fingerprint(remote, backend, self.cache.fast_fingerprint, job.path), remote
        except FileNotFoundError:
            if item.moves != job.moves:
                return None, None  # moved away by a rename since it landed: MOVED, not a failure
            raise

    def flush(self, timeout: float) -> bool:
        """Upload every dirty item now and wait until none is left (or the timeout).

        Waits on the items, not the queue: the kernel's last RELEASE of a file may still be
        on its way when an unmount starts, and that file must be uploaded too.
        """
        deadline = time.monotonic() + timeout
        grace = time.monotonic() + 2.0  # how long a file may stay open and still be waited for
        with self.cond:
            self.flushing = True
            next_scan = 0.0
            while True:
                # every finished upload wakes this loop; a scan of all items per wake-up would
                # cost O(n) each, O(n^2) for n small files: one scan per 50 ms at the most
                now = time.monotonic()
                if now < next_scan:
                    self.cond.wait(next_scan - now)
                    continue
                next_scan = now + 0.05
                dirty = [i for i in list(self.cache.all_items()) if i.dirty and not i.deleted]
                for item in dirty:
                    # failed uploads keep their backoff: retrying one every 50 ms only fills the log
                    if (not item.opens and item.path not in self.busy and item.path not in self.backoff
                            and self.due.get(item.path) != 0.0):
                        self._set_due(item.path, 0.0)
                waiting = [i for i in dirty if not i.opens or time.monotonic() < grace]
                if not waiting and not self.busy:
                    return not dirty
                if time.monotonic() >= deadline:
                    log.error("write-back: %d file(s) still to upload; they stay in the cache and are "
                              "uploaded at the next start", len(dirty))
                    return False
                if dirty and not self.threads:
                    self.schedule(dirty[0].path, delay=0)
                self.cond.notify_all()
                self.cond.wait(0.05)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


def _hash_first(backend: Backend, job: Upload, item) -> dict[str, str] | None:
    """The hashes the backend needs before the upload starts (Backend.upload_hashes), read
    from the snapshot; None if a rename stopped it meanwhile."""
    kinds = backend.upload_hashes(job.size)
    if not kinds:
        return {}
    hashers = {k: new_hash(k) for k in kinds}
    buf = bytearray(min(UPLOAD_BLOCK, max(job.size, 1)))
    view = memoryview(buf)
    pos = 0
    while pos < job.size:
        if item.moves != job.moves:
            return None
        n = os.preadv(job.fd, [view[:min(len(buf), job.size - pos)]], pos)
        if n == 0:
            break  # truncated meanwhile: what is sent will not match, and the upload goes again
        for h in hashers.values():
            h.update(view[:n])
        pos += n
    return {k: h.hexdigest() for k, h in hashers.items()}


def _apply_metadata(backend: Backend, item: Upload, remote: Entry, set_modtime: bool) -> bool:
    """After an upload: the modtime, and chmod/chown made before the file existed remotely.

    Only what the uploaded object does not already have: with thousands of small files the
    usual case (the writer set the time, the mode and owner are the defaults) costs nothing.
    Returns whether anything was changed."""
    steps = []
    if set_modtime and FEATURE_MODTIME in backend.features and remote.mtime_ns != item.modtime_ns:
        steps.append(lambda: backend.set_modtime(item.path, item.modtime_ns))
    if item.mode is not None and FEATURE_CHMOD in backend.features and (
            remote.mode is None or remote.mode & 0o7777 != item.mode):
        steps.append(lambda: backend.chmod(item.path, item.mode))
    if item.uid is not None and item.gid is not None and FEATURE_CHOWN in backend.features and (
            remote.uid, remote.gid) != (item.uid, item.gid):
        steps.append(lambda: backend.chown(item.path, item.uid, item.gid))
    for step in steps:
        try:
            step()
        except OSError as e:
            log.debug("%s: metadata not applied: %s", item.path, e)
    return bool(steps)

