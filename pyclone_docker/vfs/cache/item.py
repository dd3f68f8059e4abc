"""One cached object (CacheItem): its sparse data file, the range set of the bytes present,
its metadata, and its state machine: clean, dirty (changes not uploaded yet), open, deleted.

Writes go in with pwrite: a full disk is ENOSPC, a clean error, never the SIGBUS a store
into a mapping would be. Missing ranges are fetched on demand.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable

from ...backends.base import Entry, read_full
from .files import encode_meta, pwrite_all, read_meta, write_meta
from .fingerprint import fingerprint
from .kernel import KERNEL_WRITE_SENTINEL_NS, KernelServed
from .owner import ItemOwner
from .ranges import RangeSet

log = logging.getLogger("pyclone.vfs.cache")

FETCH_BLOCK = 1 << 20  # download granularity for on-demand reads


class CacheItem(KernelServed):
    """One cached object. All state changes happen under `lock`; callers outside the cache
    package change it only through its methods."""

    def __init__(self, cache: ItemOwner, path: str) -> None:
        self.cache = cache
        self.path = path
        self.lock = threading.RLock()
        self.size = 0
        self.modtime_ns = time.time_ns()
        self.atime_ns = self.modtime_ns
        self.ranges = RangeSet()
        self.fp = ""
        self.dirty = False
        self.opens = 0
        self.fd = -1
        self.deleted = False  # unlinked while open: the fd lives on, nothing is saved or uploaded
        self.fetched_to = -1  # where the last fetch ended: a read starting there is sequential
        self.dirty_saved = False  # the metadata on disk already says Dirty
        self.dirty_synced = False  # ... and has been fsynced since (by an fsync(2) of the file)
        self.meta_written = False  # a metadata file exists (from this run or an earlier one)
        self._init_kernel()
        self.meta_modtime = -1  # the modtime the metadata on disk holds
        # owner and permissions asked for before the first upload (applied after it)
        self.mode: int | None = None
        self.uid: int | None = None
        self.gid: int | None = None

    # --- files on disk ----------------------------------------------------------------

    @property
    def data_path(self) -> str:
        return os.path.join(self.cache.data_root, self.path)

    @property
    def meta_path(self) -> str:
        return os.path.join(self.cache.meta_root, self.path)

    def load(self) -> bool:
        try:
            meta = read_meta(self.meta_path)
            self.modtime_ns, self.atime_ns, self.size = meta["ModTime"], meta["ATime"], meta["Size"]
            self.ranges, self.fp = meta["Rs"], meta["Fingerprint"]
            self.dirty = self.dirty_saved = meta["Dirty"]
            self.meta_written = True
            if self.dirty:
                # a dirty item is whole on disk (see _mark_dirty); writes after the metadata
                # was saved may have grown it, so the data file's size is the truth
                st = os.stat(self.data_path)
                self.size = st.st_size
                if st.st_mtime_ns != KERNEL_WRITE_SENTINEL_NS:  # else opened by the kernel, not written
                    self.modtime_ns = st.st_mtime_ns
                self.ranges = RangeSet([(0, self.size)])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return os.path.exists(self.data_path)

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
        """Before the first change: fetch the whole object and record Dirty on disk, so a
        SIGKILL at any later moment leaves a complete file the next start uploads. `touch`:
        the change happens now (a write; not a passthrough open, which may write nothing)."""
        if touch:
            self.modtime_ns = time.time_ns()
        if self.dirty_saved and self.dirty:
            return
        for start, stop in self.ranges.missing(0, self.size):
            if self._fetch(start, stop) is None:
                raise OSError(errno.ENOSPC, "cache disk full", self.path)
        self.dirty = True
        self.dirty_synced = False
        self.persist(sync=False)

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
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

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

        The lookup runs under the item's lock: a stat taken before an upload finished would
        describe a half-written object and get the fresh copy dropped as stale."""
        with self.lock:
            if self.maybe_mapped and self.opens == 0:
                # checked while closed (nothing else writes the data file then), so it ends
                # here: from now on the data file changes through opens we see
                self.check_mapped_writes()
                self.maybe_mapped = False
                self.cache.watch(self, on=False)
            remote = remote_lookup()
            if self.opens == 0 and not self.dirty:
                fp = fingerprint(remote, self.cache.backend, self.cache.fast_fingerprint, self.path) if remote else ""
                if remote is None or fp != self.fp:
                    if self.fp or self.ranges:
                        log.debug("%s: cached copy is stale (remote is different): dropped", self.path)
                    self._close_fd()
                    self.ranges = RangeSet()
                    self.size = remote.size if remote else 0
                    self.modtime_ns = remote.mtime_ns if remote else time.time_ns()
                    self.fp = fp
            self._open_fd()
            self.opens += 1
            self.atime_ns = time.time_ns()
            if truncate:
                self.truncate(0)
            elif remote is None and not self.dirty:
                self._mark_dirty()  # a new file: upload it even if nothing is written

    def close(self) -> None:
        with self.lock:
            self.opens -= 1
            self.atime_ns = time.time_ns()
            try:
                if not (self.dirty and self.dirty_saved):
                    self.persist()  # a dirty item's size and ranges come from its data file at reload
            finally:
                if self.opens == 0:
                    self._close_fd()
                    if self.dirty and not self.deleted:
                        self.cache.writeback.schedule(self.path)


    # --- the state machine, for the VFS ---------------------------------------------------

    def is_busy(self) -> bool:
        """Open, or changed here and not uploaded yet: what the VFS shows comes from here."""
        return self.opens > 0 or self.dirty

    def pending(self) -> bool:
        """An upload is still to come: the remote may not have this file (or not these bytes)."""
        return self.dirty

    def is_unwritten(self) -> bool:
        """Dirty only because a writer the kernel serves is open and wrote nothing (as `touch`
        opens a file): the item was clean before, and goes back to clean at that close."""
        return self.passthrough_writers > 0 and not self.kernel_wrote and self.clean_before is not None

    def local_attrs(self) -> tuple[int, int] | None:
        """(size, modtime) of a file open or changed here, newest first (what the kernel wrote
        in passthrough included); None when the remote's are the truth."""
        if not (self.opens or self.dirty):
            return None
        if self.passthrough_writers:
            self.sync_from_disk()  # the kernel writes it without telling us
        return self.size, self.modtime_ns

    def set_modtime(self, mtime_ns: int) -> bool:
        """A utime of a file open or changed here. True: the pending upload carries the new
        time (nothing to do on the remote); False: set it on the remote as for a clean file
        (then times_changed)."""
        with self.lock:
            if not (self.opens or self.dirty):
                return False
            unwritten = False
            if self.passthrough_writers:
                self.sync_from_disk()  # a write by the kernel before it must not win over it
                # dirty only because a writer is open (as `touch` opens the file): the remote
                # takes the time now, as for a clean file, not a whole upload
                unwritten = self.is_unwritten()
                if unwritten:
                    self.clean_before = mtime_ns
                else:
                    self.touched()
            self.modtime_ns = mtime_ns
            if not self.opens:
                self.persist()
            return self.dirty and not unwritten

    def set_pending_meta(self, **attrs: int | None) -> bool:
        """chmod/chown (mode=, uid=, gid=) of a file whose upload is still to come: the upload
        applies them. False (nothing kept) when no upload is pending."""
        with self.lock:
            if not self.dirty:
                return False
            for key, value in attrs.items():
                if key not in ("mode", "uid", "gid"):
                    raise TypeError(f"set_pending_meta: unknown attribute {key}")
                setattr(self, key, value)
            return True

    def hold_upload(self) -> bool:
        """Before a rename over this file: an upload of it running now ends first, and none
        starts later (it is no longer dirty), or it would land on the remote after the move
        and put the replaced bytes back over the renamed file. True if an upload was pending:
        resume_upload() puts it back if the rename fails."""
        with self.lock:  # an upload runs under it
            if not self.dirty or self.opens:
                return False  # nothing queued (an open one is uploaded only after its close)
            self.dirty = False
            return True

    def resume_upload(self) -> None:
        with self.lock:
            self.dirty = True
        self.cache.writeback.schedule(self.path)

    def append(self, view: memoryview) -> int:
        """A write at the end of the file (O_APPEND), wherever that is by then."""
        with self.lock:
            return self.write_from(view, self.size)

    # --- data -------------------------------------------------------------------------

    def read_into(self, view: memoryview, offset: int) -> int:
        with self.lock:
            end = min(offset + len(view), self.size)
            if offset >= end:
                return 0
            for start, stop in self.ranges.missing(offset, end):
                data = self._fetch(start, stop)
                if data is not None:
                    continue
                # the cache disk is full: serve this read straight from the remote
                return self._read_uncached(view, offset, end)
            return os.preadv(self.fd, [view[:end - offset]], offset)

    def _fetch(self, start: int, stop: int) -> bytes | None:
        """Download [start, stop) widened to a block and the read-ahead into the cache file."""
        cache = self.cache
        window = cache.sequential_window if start == self.fetched_to else FETCH_BLOCK + cache.read_ahead
        stop = min(max(stop, start + window), self.size)
        self.fetched_to = stop
        for gap_start, gap_stop in self.ranges.missing(start, stop):
            reader = self.cache.backend.open_read(self.path, gap_start, gap_stop - gap_start)
            try:
                pos = gap_start
                buf = bytearray(min(FETCH_BLOCK, gap_stop - gap_start))
                view = memoryview(buf)
                while pos < gap_stop:
                    want = min(len(buf), gap_stop - pos)
                    got = read_full(reader, view[:want])
                    if got == 0:
                        break  # the remote is shorter than we thought: the rest reads as zeros
                    try:
                        try:
                            pwrite_all(self.fd, view[:got], pos)
                        except OSError as e:
                            if e.errno != errno.ENOSPC or not self.cache.free_space():
                                raise
                            pwrite_all(self.fd, view[:got], pos)
                    except OSError as e:
                        if e.errno == errno.ENOSPC:
                            if not self.cache.full_warned:
                                self.cache.full_warned = True  # once, not once per read
                                log.error("cache disk full while caching %s: reading uncached", self.path)
                            self.cache.kick_cleaner()
                            return None
                        raise
                    self.ranges.add(pos, pos + got)
                    pos += got
            finally:
                reader.close()
        return b""

    def _read_uncached(self, view: memoryview, offset: int, end: int) -> int:
        reader = self.cache.backend.open_read(self.path, offset, end - offset)
        try:
            return read_full(reader, view[:end - offset])
        finally:
            reader.close()

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

    def truncate(self, size: int) -> None:
        with self.lock:
            self.sync_from_disk()  # the kernel may have grown it since we last looked
            self._mark_dirty()
            if size == self.size:
                pass  # the data file is already this size (_open_fd): skip the syscall
            elif self.fd >= 0:
                os.ftruncate(self.fd, size)
            else:
                os.truncate(self.data_path, size)
            if size < self.size:
                self.ranges.remove_from(size)
            else:
                self.ranges.add(self.size, size)
            self.size = size

    def fill_missing(self) -> None:
        """Fetch every byte not cached yet (before an upload of a partly written file)."""
        with self.lock:
            opened = self.fd < 0
            self._open_fd()
            try:
                for start, stop in self.ranges.missing(0, self.size):
                    if self._fetch(start, stop) is None:
                        raise OSError(errno.ENOSPC, "cache disk full", self.path)
            finally:
                if opened:
                    self._close_fd()

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

