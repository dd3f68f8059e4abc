"""The registry of one volume's cached items (Cache): lookup, rename and removal, crash
recovery at start, eviction by the cleaner, and the cache disk's room.

Each cached object is a sparse file of the object's full size plus a range set of the
bytes present, persisted beside it in rclone's vfsMeta JSON (files.py), so a restart keeps
what was fetched and what is still to upload.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable

from ...backends.base import Backend, Entry
from .files import REMOVED_DIR, Dirs, check_sparse, read_meta, volume_roots, walk
from .fingerprint import refingerprint
from .item import FETCH_BLOCK, CacheItem
from .writeback import WriteBack

log = logging.getLogger("pyclone.vfs.cache")

PASSTHROUGH_WRITE_ROOM = 1 << 30  # free cache disk below which writers stay on the plugin's path


class RenameHold:
    """What Cache.begin_rename held, for end_rename."""

    __slots__ = ("replaced", "moving")

    def __init__(self, replaced: CacheItem | None, moving: list[CacheItem]) -> None:
        self.replaced = replaced
        self.moving = moving


class Cache:
    def __init__(self, backend: Backend, cache_dir: str, volume: str, *, read_ahead: int = 0, buffer_size: int = 0,
                 write_back: float = 5.0, transfers: int = 4, max_age: float = 3600.0, max_size: int = -1,
                 poll_interval: float = 60.0, fast_fingerprint: bool = False, set_modtime: bool = True,
                 on_uploaded: Callable[[str, Entry], None] | None = None) -> None:
        self.backend = backend
        self.volume = volume
        self.data_root, self.meta_root = volume_roots(cache_dir, volume)
        self.dirs = Dirs()  # this cache's own: a removed volume takes its memo with it
        self.read_ahead = max(0, read_ahead)
        # a sequential reader gets --buffer-size plus --vfs-read-ahead fetched ahead (rclone's rule);
        # a random one only the block it needs (plus read-ahead), so a database page costs 1 MiB, not 16
        self.sequential_window = max(FETCH_BLOCK, buffer_size) + self.read_ahead
        self.max_age = max_age
        self.max_size = max_size
        self.poll_interval = poll_interval
        self.fast_fingerprint = fast_fingerprint
        self.set_modtime = set_modtime  # --no-modtime: uploads keep the time of the upload
        self.items: dict[str, CacheItem] = {}
        self.watched: set[CacheItem] = set()  # items a shared mapping may still write (CacheItem.maybe_mapped)
        self._watch_lock = threading.Lock()
        self.lock = threading.Lock()
        self.full_warned = False
        self.writeback = WriteBack(self, write_back, max(1, transfers), on_uploaded)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self.dirs.make(self.data_root)
        self.dirs.make(self.meta_root)
        check_sparse(self.data_root)
        self._cleaner = threading.Thread(target=self._clean_loop, name=f"cache-clean:{volume}", daemon=True)

    def start(self) -> None:
        """Reload what an earlier run left: dirty items are queued for upload at once."""
        for rel in walk(self.meta_root):
            item = CacheItem(self, rel)
            if not item.load():
                log.warning("cache: dropping unreadable or orphaned item %s", rel)
                item.remove_files()
                continue
            self.items[rel] = item
            if item.dirty:
                log.info("cache: %s was not uploaded before the last stop: uploading it now", rel)
                self.writeback.schedule(rel, delay=0)
        for rel in walk(self.data_root):
            if rel not in self.items:
                CacheItem(self, rel).remove_files()
        self._cleaner.start()

    def get(self, path: str) -> CacheItem:
        with self.lock:
            item = self.items.get(path)
            if item is None:
                item = self.items[path] = CacheItem(self, path)
            return item

    def peek(self, path: str) -> CacheItem | None:
        return self.items.get(path)

    def all_items(self) -> list[CacheItem]:
        return list(self.items.values())

    def dirty_children(self, directory: str) -> list[CacheItem]:
        prefix = directory + "/" if directory else ""
        return [i for p, i in list(self.items.items())
                if i.dirty and p.startswith(prefix) and "/" not in p[len(prefix):]]

    def remove(self, path: str) -> None:
        self.writeback.cancel(path)
        with self.lock:
            item = self.items.pop(path, None)
        if item is not None:
            with item.lock:
                # an open file keeps its descriptor, as an unlinked local file does
                item.deleted = item.opens > 0
                item.dirty = False
                item.remove_files(keep_fd=item.deleted)

    def begin_rename(self, old: str, new: str) -> RenameHold:
        """Before the remote's move of `old` to `new`. A file renamed over (`new`) must not be
        uploaded after the move: an upload of it running now ends first, a queued one is held
        (CacheItem.hold_upload). The files moved (`old` and below) never wait: an upload of
        one running now will not count, and none starts until end_rename (CacheItem.begin_move).
        """
        replaced = None
        if new != old:
            item = self.peek(new)
            if item is not None and item.hold_upload():
                replaced = item
        with self.lock:
            moving = [i for p, i in self.items.items() if p == old or p.startswith(old + "/")]
        for item in moving:
            item.begin_move()
        return RenameHold(replaced, moving)

    def end_rename(self, hold: RenameHold, done: bool) -> None:
        """After the move (`done`: it happened, and rename() was called) or its failure."""
        if not done and hold.replaced is not None:
            hold.replaced.resume_upload()
        for item in hold.moving:
            item.end_move()

    def rename(self, old: str, new: str) -> None:
        """Move a cached item (and everything below a directory) with its pending upload.

        Each item moves whole or not at all: a refused name (ENAMETOOLONG, ...) leaves it
        where it was, under its old name, instead of losing track of it."""
        if new != old and new in self.items:
            self.remove(new)  # the file renamed over is gone, as if unlinked (an open one lives on)
        with self.lock:
            moves = [(p, new + p[len(old):]) for p in list(self.items) if p == old or p.startswith(old + "/")]
            for src, dst in moves:
                item = self.items[src]
                with item.lock:  # an open descriptor follows the file: nothing to reopen
                    self.dirs.move_files([(item.data_path, os.path.join(self.data_root, dst)),
                                          (item.meta_path, os.path.join(self.meta_root, dst))])
                    item.path = dst
                    item.cancel_downloads()  # their readers fetch again, from the new name
                del self.items[src]
                self.items[dst] = item
                self.writeback.rename(src, dst)
        self.forget_dir(old)

    def has_pending_under(self, directory: str) -> bool:
        """Whether a file below `directory` is open or not uploaded yet (the remote may show
        the directory empty while it is not)."""
        prefix = directory + "/" if directory else ""
        return any((i.dirty or i.opens) and p.startswith(prefix) for p, i in list(self.items.items()))

    def forget_dir(self, directory: str) -> None:
        """`directory` is gone or moved: remove what is left of it in the cache (empty
        directories) so that a file can take its name."""
        if directory:
            for root in (self.data_root, self.meta_root):
                self.dirs.prune(os.path.join(root, directory))

    def used(self) -> int:
        return sum(i.ranges.size() for i in list(self.items.values()))

    def kick_cleaner(self) -> None:
        self._kick.set()

    def _clean_loop(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(self.poll_interval)
            self._kick.clear()
            if self._stop.is_set():
                return
            try:
                self.clean()
            except Exception:
                log.exception("cache cleaner failed")

    def clean(self) -> int:
        """Evict items not open and not dirty: older than --vfs-cache-max-age, then least
        recently accessed first until under --vfs-cache-max-size. Returns items removed."""
        self.check_watched()
        now = time.time_ns()
        removed = 0
        candidates = sorted((i for i in list(self.items.values()) if i.opens == 0 and not i.dirty),
                            key=lambda i: i.atime_ns)
        for item in candidates:
            if now - item.atime_ns > self.max_age * 1e9:
                self._evict(item)
                removed += 1
        if self.max_size >= 0:
            total = self.used()
            for item in candidates:
                if total <= self.max_size:
                    break
                if item.path in self.items:
                    total -= item.ranges.size()
                    self._evict(item)
                    removed += 1
        return removed

    def _evict(self, item: CacheItem) -> int:
        """Remove a closed, clean item; returns the bytes it held (0 if it was busy)."""
        if not item.lock.acquire(blocking=False):
            return 0  # in use right now: never wait for another item's lock here
        try:
            if item.opens or item.dirty or item.maybe_mapped:
                return 0
            # nor for the cache's: rename holds it while it waits for this item's lock
            if not self.lock.acquire(blocking=False):
                return 0
            try:
                if self.items.get(item.path) is item:
                    del self.items[item.path]
            finally:
                self.lock.release()
            held = item.ranges.size()
            item.remove_files()
            log.debug("cache: evicted %s", item.path)
            return held
        finally:
            item.lock.release()

    def times_changed(self, path: str, remote: Entry) -> None:
        """We set the remote object's modtime: a clean cached copy stays valid (its bytes did
        not change), so it must not look stale at the next open and be fetched again."""
        item = self.peek(path)
        if item is None:
            return
        with item.lock:
            if (item.dirty and not item.is_unwritten()) or not item.fp or remote.size != item.size:
                return
            item.fp = refingerprint(item.fp, remote, self.backend, self.fast_fingerprint, path)
            if not item.dirty:
                item.modtime_ns = remote.mtime_ns
                if not item.opens:
                    item.persist()

    def watch(self, item: CacheItem, on: bool = True) -> None:
        """Keep checking (or stop) an item a shared mapping may still write (maybe_mapped).
        Its own lock: callers hold the item's, which Cache.lock must never wait behind."""
        with self._watch_lock:
            if on:
                self.watched.add(item)
            else:
                self.watched.discard(item)

    def check_watched(self) -> None:
        with self._watch_lock:
            items = list(self.watched)
        for item in items:
            if item.deleted or self.items.get(item.path) is not item:
                self.watch(item, on=False)
                continue
            item.check_mapped_writes()

    def has_room(self) -> bool:
        """Room on the cache disk for a file the kernel writes (at least 1 GiB and 5% free)."""
        try:
            st = os.statvfs(self.data_root)
        except OSError:
            return False
        free = st.f_bavail * st.f_frsize
        return free >= PASSTHROUGH_WRITE_ROOM and st.f_bavail * 20 >= st.f_blocks

    def free_space(self) -> int:
        """The cache disk is full: evict every closed, clean item, oldest first."""
        freed = 0
        for item in sorted(list(self.items.values()), key=lambda i: i.atime_ns):
            freed += self._evict(item)
        if freed:
            log.info("cache disk full: evicted %d bytes of clean cached data", freed)
        return freed

    def shutdown(self, flush_timeout: float = 50.0) -> bool:
        """Upload everything dirty (bounded), stop the threads. True if nothing is left."""
        self.check_watched()
        done = self.writeback.flush(flush_timeout)
        self._stop.set()
        self._kick.set()
        self.writeback.stop()
        return done



    @classmethod
    def drop_volume(cls, cache_dir: str, volume: str) -> str | None:
        """A removed volume's cache goes, so that a new volume of that name starts empty.
        Changes never uploaded are kept aside under <cache-dir>/removed/, never deleted:
        returns that directory (None when nothing was left to upload). Call it only when no
        Cache of the volume runs."""
        data, meta = volume_roots(cache_dir, volume)
        if not os.path.isdir(meta) and not os.path.isdir(data):
            return None
        dirty = False
        for rel in walk(meta):
            try:
                dirty = read_meta(os.path.join(meta, rel))["Dirty"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable metadata is dropped at a start too
            if dirty:
                break
        if not dirty:
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(meta, ignore_errors=True)
            return None
        aside = os.path.join(cache_dir, REMOVED_DIR, f"{volume}.{time.strftime('%Y%m%dT%H%M%S')}")
        os.makedirs(aside, mode=0o700, exist_ok=True)
        for src, sub in ((data, "vfs"), (meta, "vfsMeta")):
            if os.path.isdir(src):
                os.replace(src, os.path.join(aside, sub))
        log.error('volume "%s" was removed with changes never uploaded; they are kept in %s', volume, aside)
        return aside
