"""One cached object (CacheItem): its sparse data file, the range set of the bytes present,
its metadata, and its state machine: clean, dirty (changes not uploaded yet), open, being
uploaded, being renamed, deleted.

No remote I/O happens under the item's lock. Missing ranges come through the item's
Downloaders (downloaders.py), which hold it only to copy a fetched block in; an open looks
the remote up before taking it; an upload (writeback.py) takes a snapshot under it and sends
the data file without it: `gen`, bumped by every change, tells at the end whether the item
changed meanwhile (then it stays dirty and is queued again).

Writes go in with pwrite: a full disk is ENOSPC, a clean error, never the SIGBUS a store
into a mapping would be. Before the first change of a clean item the whole object is
fetched and Dirty recorded on disk, so a SIGKILL at any later moment leaves a complete file
the next start uploads.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable

from ...backends.base import Entry, read_full
from .downloaders import FETCH_BLOCK, Downloaders, NoSpace
from .files import encode_meta, pwrite_all, read_meta, write_meta
from .fingerprint import fingerprint
from .kernel import KERNEL_WRITE_SENTINEL_NS, KernelServed
from .owner import ItemOwner
from .ranges import RangeSet
from .states import ItemStates

__all__ = ["FETCH_BLOCK", "CacheItem"]

log = logging.getLogger("pyclone.vfs.cache")


class CacheItem(ItemStates, KernelServed):
    """One cached object. All state changes happen under `lock`; callers outside the cache
    package change it only through its methods."""

    def __init__(self, cache: ItemOwner, path: str) -> None:
        self.cache = cache
        self.path = path
        self.lock = threading.RLock()
        self._cond: threading.Condition | None = None  # on `lock`, made when first waited on
        self.size = 0
        self.modtime_ns = time.time_ns()
        self.atime_ns = self.modtime_ns
        self.ranges = RangeSet()
        self.fp = ""
        self.dirty = False
        self.opens = 0
        self.fd = -1
        self.fd_holds = 0  # users of the data file's fd besides the opens (fill_missing)
        self.downloads: Downloaders | None = None  # made at the first fetch
        self.deleted = False  # unlinked while open: the fd lives on, nothing is saved or uploaded
        self.dirty_saved = False  # the metadata on disk already says Dirty
        self.dirty_synced = False  # ... and has been fsynced since (by an fsync(2) of the file)
        self.meta_written = False  # a metadata file exists (from this run or an earlier one)
        self._init_kernel()
        self._init_states()
        self.meta_modtime = -1  # the modtime the metadata on disk holds
        # owner and permissions asked for before the first upload (applied after it)
        self.mode: int | None = None
        self.uid: int | None = None
        self.gid: int | None = None

    @property
    def cond(self) -> threading.Condition:
        """Waits for fetches and uploads of this item. Under the lock only (so is its making:
        most items never need one)."""
        if self._cond is None:
            self._cond = threading.Condition(self.lock)
        return self._cond

    # --- files on disk ----------------------------------------------------------------

    @property
    def data_path(self) -> str:
        return os.path.join(self.cache.data_root, self.path)

    @property
    def meta_path(self) -> str:
        return os.path.join(self.cache.meta_root, self.path)

    def is_whole(self) -> bool:
        """Every byte is in the data file: a read-only open in mode minimal or writes reads the
        cached copy, as rclone's File.Open does for a file the cache has (no remote needed)."""
        with self.lock:
            return self.meta_written and not self.ranges.missing(0, self.size)

    def load(self) -> bool:
        try:
            meta = read_meta(self.meta_path)
            self.modtime_ns, self.atime_ns, self.size = meta["ModTime"], meta["ATime"], meta["Size"]
            self.ranges, self.fp = meta["Rs"], meta["Fingerprint"]
            self.dirty = self.dirty_saved = meta["Dirty"]
            self.meta_written = True
            st = os.stat(self.data_path)  # no data file: nothing to keep
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if self.dirty:
            # a dirty item is whole on disk (see _mark_dirty); writes after the metadata
            # was saved may have grown it, so the data file's size is the truth
            self.size = st.st_size
            if st.st_mtime_ns != KERNEL_WRITE_SENTINEL_NS:  # else opened by the kernel, not written
                self.modtime_ns = st.st_mtime_ns
            self.ranges = RangeSet([(0, self.size)])
        elif st.st_size != self.size:
            return False  # cut by a truncate killed before it recorded Dirty (see truncate)
        return True

    def persist(self, sync: bool = False) -> None:
        """Save the metadata. Not fsynced: the data file isn't either, and both survive a
        killed process through the page cache; an fsync per close would cost more than a
        small file's whole write."""
        if self.deleted:
            return
        data = encode_meta(self.modtime_ns, self.atime_ns, self.size, self.ranges, self.fp, self.dirty)
        try:
            self.cache.dirs.make(os.path.dirname(self.meta_path))
            write_meta(self.meta_path, data, exists=self.meta_written, in_place=not self.dirty, sync=sync)
        except OSError as e:
            # the state in memory is still right; the next save or the upload catches up
            log.error("%s: cannot save cache metadata: %s", self.path, e)
            self.cache.kick_cleaner()
            return
        self.dirty_saved = self.dirty
        self.meta_written = True
        self.meta_modtime = self.modtime_ns

    def _mark_dirty(self, touch: bool = True) -> None:
        """Before the first change: the whole object in the data file (fetched, the lock
        released meanwhile) and Dirty recorded on disk. `touch`: the change happens now (a
        write; not a passthrough open, which may write nothing)."""
        if touch:  # before the save: a record that already holds the new modtime is not saved twice
            self.modtime_ns = time.time_ns()
        while not (self.dirty_saved and self.dirty):
            if not self.ranges.contains(0, self.size):
                self._wait_present(0, self.size, whole=True)
                continue  # the item may have changed while the lock was released
            self.dirty = True
            self.dirty_synced = False
            self.persist(sync=False)
            break  # a failed save is logged; the next change tries again
        self.gen += 1

    def _wait_present(self, start: int, end: int, whole: bool = False) -> None:
        """[start, end) fetched into the data file (Downloaders.wait_present); a full cache
        disk is ENOSPC here, for callers that cannot read uncached."""
        if self.downloads is None:
            self.downloads = Downloaders(self)
        try:
            self.downloads.wait_present(start, end, whole)
        except NoSpace:
            raise OSError(errno.ENOSPC, "cache disk full", self.path) from None

    def cancel_downloads(self) -> None:
        if self.downloads is not None:
            self.downloads.cancel()

    def _open_fd(self) -> None:
        if self.fd < 0:
            parent = os.path.dirname(self.data_path)
            self.cache.dirs.make(parent)
            try:
                self.fd = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # its directory was removed behind the memo's back
                self.cache.dirs.forget(parent)
                self.cache.dirs.make(parent)
                self.fd = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if os.fstat(self.fd).st_size != self.size:
                os.ftruncate(self.fd, self.size)  # sparse: holes cost no disk

    def _close_fd(self) -> None:
        """Only with no open and no other user left: the Downloads stop first (none touches
        the descriptor after this: they check under the lock)."""
        self.cancel_downloads()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _release_fd(self) -> None:
        if self.opens == 0 and self.fd_holds == 0:
            self._close_fd()

    def remove_files(self, keep_fd: bool = False) -> None:
        if not keep_fd:
            self._close_fd()
        for p in (self.data_path, self.meta_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self.meta_written = self.dirty_saved = False

    # --- open / close -----------------------------------------------------------------

    def open(self, remote_lookup: Callable[[], Entry | None], truncate: bool) -> None:
        """Attach to the remote object (`remote_lookup` returns None when it doesn't exist).

        The lookup and the fingerprint run without the lock (they ask the remote); an upload
        that ended meanwhile (remote_epoch) makes them run again: a stat taken before an
        upload finished would describe a half-written object and get the fresh copy dropped
        as stale."""
        while True:
            with self.lock:
                epoch = self.remote_epoch
                compare = self.opens == 0 and not self.dirty
            remote = remote_lookup()
            fp = ""
            if compare and remote is not None:
                fp = fingerprint(remote, self.cache.backend, self.cache.fast_fingerprint, self.path)
            with self.lock:
                if self.maybe_mapped and self.opens == 0:
                    # checked while closed (nothing else writes the data file then), so it ends
                    # here: from now on the data file changes through opens we see
                    self.check_mapped_writes()
                    self.maybe_mapped = False
                    self.cache.watch(self, on=False)
                if self.remote_epoch != epoch or (self.opens == 0 and not self.dirty and not compare):
                    continue  # an upload ended, or the item went clean: look again
                if self.opens == 0 and not self.dirty and (remote is None or fp != self.fp):
                    self._drop_stale(remote, fp)
                self._open_fd()
                self.opens += 1
                self.atime_ns = time.time_ns()
                if truncate:
                    self.truncate(0)
                elif remote is None and not self.dirty:
                    self._mark_dirty()  # a new file: upload it even if nothing is written
                return

    def _drop_stale(self, remote: Entry | None, fp: str) -> None:
        if self.fp or self.ranges:
            log.debug("%s: cached copy is stale (remote is different): dropped", self.path)
        self.cancel_downloads()
        if self.ranges and self.fd < 0:
            try:
                os.truncate(self.data_path, 0)  # no old byte may pass for a fetched one
            except FileNotFoundError:
                pass
        self.ranges = RangeSet()
        self.size = remote.size if remote else 0
        self.modtime_ns = remote.mtime_ns if remote else time.time_ns()
        self.fp = fp

    def close(self) -> None:
        with self.lock:
            self.opens -= 1
            self.atime_ns = time.time_ns()
            try:
                if not (self.dirty and self.dirty_saved):
                    self.persist()  # a dirty item's size and ranges come from its data file at reload
            finally:
                if self.opens == 0:
                    self._release_fd()
                    if self.dirty and not self.deleted:
                        self.cache.writeback.schedule(self.path)

    # --- data -------------------------------------------------------------------------

    def read_into(self, view: memoryview, offset: int) -> int:
        """The hot path: one lock acquisition and a preadv for a present range. A missing one
        waits for its Download only (the lock released meanwhile), or, the cache disk full,
        is read straight from the remote."""
        with self.lock:
            end = min(offset + len(view), self.size)
            if offset >= end:
                return 0
            fd = self.fd
            if not self.ranges.contains(offset, end):
                if self.downloads is None:
                    self.downloads = Downloaders(self)
                try:
                    self.downloads.wait_present(offset, end)
                except NoSpace:
                    fd = -1
                end = min(end, self.size)
                if offset >= end:
                    return 0
            path = self.path
        if fd < 0:  # the cache disk is full: serve this read straight from the remote
            reader = self.cache.backend.open_read(path, offset, end - offset)
            try:
                return read_full(reader, view[:end - offset])
            finally:
                reader.close()
        # outside the lock: the descriptor stays open while this open lasts, and bytes once
        # present are only ever replaced by newer ones
        return os.preadv(fd, [view[:end - offset]], offset)

    def write_from(self, view: memoryview, offset: int) -> int:
        with self.lock:
            self._mark_dirty()
            if offset > self.size:
                self.ranges.add(self.size, offset)  # the gap reads as zeros: it is "present"
            try:
                n = pwrite_all(self.fd, view, offset)
            except OSError as e:
                if e.errno != errno.ENOSPC or not self.cache.free_space():
                    raise
                n = pwrite_all(self.fd, view, offset)  # once more, after evicting clean files
            self.ranges.add(offset, offset + n)
            self.size = max(self.size, offset + n)
            return n

    def append(self, view: memoryview) -> int:
        """A write at the end of the file (O_APPEND), wherever that is by then."""
        with self.lock:
            self._mark_dirty()  # first: it may wait for a fetch, and the end may move meanwhile
            return self.write_from(view, self.size)

    def truncate(self, size: int) -> None:
        with self.lock:
            self.sync_from_disk()  # the kernel may have grown it since we last looked
            if size < self.size and not (self.dirty and self.dirty_saved):
                # shorten a clean item first: only what stays is fetched (an O_TRUNC open of a
                # large remote file fetches nothing). A kill before Dirty is recorded leaves a
                # data file shorter than its metadata says: dropped at load, nothing lost.
                self._wait_present(0, size, whole=True)
                if size < self.size:
                    self._resize(size)
            self._mark_dirty()
            self._resize(size)

    def _resize(self, size: int) -> None:
        if size == self.size:
            return  # the data file is already this size (_open_fd): skip the syscall
        if self.fd >= 0:
            os.ftruncate(self.fd, size)
        else:
            os.truncate(self.data_path, size)
        if size < self.size:
            self.ranges.remove_from(size)
        else:
            self.ranges.add(self.size, size)
        self.size = size
        self.gen += 1

    def fill_missing(self) -> None:
        """Fetch every byte not cached yet (before an upload of a partly written file)."""
        with self.lock:
            if self.ranges.contains(0, self.size):
                return  # the usual case: a dirty item is whole
            self.fd_holds += 1
            try:
                self._open_fd()
                self._wait_present(0, self.size, whole=True)
            finally:
                self.fd_holds -= 1
                self._release_fd()

    def fsync(self, datasync: bool = False) -> None:
        """fsync(2) on an open file: its bytes reach the cache disk, and so does the Dirty
        record that makes the next start upload them (once per dirty spell, not per call)."""
        with self.lock:
            if self.fd < 0:
                return
            (os.fdatasync if datasync else os.fsync)(self.fd)
            if self.dirty and not self.dirty_synced:
                self.persist(sync=True)
                self.dirty_synced = True
