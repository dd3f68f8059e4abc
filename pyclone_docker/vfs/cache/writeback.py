"""The write-back queue: dirty items are uploaded --vfs-write-back after their last close,
--transfers at a time, and all of them before an unmount completes."""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable

from ...backends.base import FEATURE_CHMOD, FEATURE_CHOWN, FEATURE_MODTIME, Backend, Entry
from .fingerprint import fingerprint, fingerprint_hash, new_hash
from .item import CacheItem
from .owner import QueueOwner

log = logging.getLogger("pyclone.vfs.cache")

UPLOAD_BLOCK = 1 << 20


class WriteBack:
    """Uploads dirty items --vfs-write-back after their last close, --transfers at a time,
    retrying failures with exponential backoff up to a minute."""

    def __init__(self, cache: QueueOwner, delay: float, transfers: int,
                 on_uploaded: Callable[[str], None] | None) -> None:
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
                heapq.heappop(self.heap)  # stale: rescheduled, cancelled or being uploaded
                continue
            if when > now:
                self.cond.wait(min(when - now, 1.0))
                return None
            heapq.heappop(self.heap)
            item = self.cache.peek(path)
            if item is None or not item.dirty:
                self.due.pop(path, None)
                continue
            if item.opens:
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
            ok = False
            try:
                ok = self._upload(path)
            except Exception as e:
                log.error("upload of %s failed: %s", path, e)
            with self.cond:
                self.busy.discard(path)
                if not ok and self.cache.peek(path) is not None and path not in self.due:
                    wait = min(60.0, self.backoff.get(path, 0.5) * 2)
                    self.backoff[path] = wait
                    self._set_due(path, time.monotonic() + wait)
                    log.info("will retry upload of %s in %.0fs", path, wait)
                elif ok:
                    self.backoff.pop(path, None)
                self.cond.notify_all()

    def _upload(self, path: str) -> bool:
        item = self.cache.peek(path)
        if item is None:
            return True
        backend = self.cache.backend
        with item.lock:
            if not item.dirty or item.opens:
                return True
            item.fill_missing()
            # the fingerprint's hash is taken on the way up, as rclone's local backend does:
            # reading the file back afterwards would double the cost of every upload
            kind = fingerprint_hash(backend, self.cache.fast_fingerprint)
            hasher = new_hash(kind) if kind else None
            fd = os.open(item.data_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                writer = backend.open_write(item.path, item.size,
                                            item.modtime_ns if self.cache.set_modtime else None)
                try:
                    buf = bytearray(min(UPLOAD_BLOCK, max(item.size, 1)))
                    view = memoryview(buf)
                    pos = 0
                    while pos < item.size:
                        n = os.preadv(fd, [view[:min(len(buf), item.size - pos)]], pos)
                        if n == 0:
                            break
                        writer.write(view[:n])
                        if hasher is not None:
                            hasher.update(view[:n])
                        pos += n
                except BaseException:
                    writer.abort()
                    raise
                writer.close()
            finally:
                os.close(fd)
            remote = backend.stat(item.path)
            if _apply_metadata(backend, item, remote, self.cache.set_modtime):
                remote = backend.stat(item.path)
            if hasher is not None:
                backend.hash_written(item.path, kind, hasher.hexdigest())
            item.dirty = False
            item.fp = fingerprint(remote, backend, self.cache.fast_fingerprint, item.path)
            item.persist()
        log.info("uploaded %s (%d bytes)", path, item.size)
        if self.on_uploaded is not None:
            self.on_uploaded(path)
        return True

    def flush(self, timeout: float) -> bool:
        """Upload every dirty item now and wait until none is left (or the timeout).

        Waits on the items, not the queue: the kernel's last RELEASE of a file may still be
        on its way when an unmount starts, and that file must be uploaded too.
        """
        deadline = time.monotonic() + timeout
        grace = time.monotonic() + 2.0  # how long a file may stay open and still be waited for
        with self.cond:
            self.flushing = True
            while True:
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


def _apply_metadata(backend: Backend, item: CacheItem, remote: Entry, set_modtime: bool) -> bool:
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

