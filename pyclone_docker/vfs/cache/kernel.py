"""The cache item's side of FUSE passthrough (fuse/passthrough.py): opens of a wholly cached
file the kernel serves straight from its data file, and what the kernel (or a shared
mapping) wrote there without telling us.

A mixin of CacheItem: the methods use its state and its lock.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .owner import ItemOwner
from .ranges import RangeSet

log = logging.getLogger("pyclone.vfs.cache")

KERNEL_WRITE_SENTINEL_NS = 1  # a data file's mtime while the kernel may write it (see _start_kernel_writes)


class KernelServed:
    """Passthrough bookkeeping of a CacheItem (whose __init__ sets these attributes)."""

    cache: ItemOwner
    path: str
    lock: Any
    size: int
    modtime_ns: int
    ranges: RangeSet
    dirty: bool
    dirty_synced: bool
    dirty_saved: bool
    opens: int
    fd: int
    deleted: bool
    meta_modtime: int
    # the kernel's backing id while opens of this file are served by the kernel from its cache
    # file, how many, and how many may write
    passthrough_id: int
    passthrough_opens: int
    passthrough_writers: int
    disk_stamp: tuple[int, int]  # the data file's (size, mtime) last seen
    kernel_wrote: bool  # the data file changed (or a utime came) since writers opened
    clean_before: int | None  # the modtime of an item clean before they did
    # a writer that could map the file joined a kernel-served file: a shared mapping may
    # write the data file after the last close, so the cache keeps checking it (Cache.watch)
    maybe_mapped: bool
    gen: int  # ItemStates'

    def _init_kernel(self) -> None:
        self.passthrough_id = 0
        self.passthrough_opens = 0
        self.passthrough_writers = 0
        self.disk_stamp = (-1, -1)
        self.kernel_wrote = False
        self.clean_before = None
        self.maybe_mapped = False

    def open_passthrough(self, passthrough, writable: bool, readable: bool,
                         refuse: Callable[[str], bool] | None = None,
                         guard: AbstractContextManager[Any] | None = None) -> int:
        """After open(): the backing id to hand this open to the kernel with, or 0 to serve it
        here. Starting it takes an open of a wholly cached file that nothing else has open,
        read-only or write-only: a writer that can read could map the file shared and write it
        after close(2) (the mapping then holds the cache file, not the FUSE file, so the last
        close reaches us too early), and a writer needs room on the cache disk (a nearly full
        one keeps the plugin's evict-and-retry write path). Once a file is open in passthrough
        the kernel requires it of every open of that file (any other is EIO), so those join
        whatever they are. `refuse(path)`, asked under the item's lock and then `guard`
        (held until the answer is given), keeps it off (the mount's streamed opens)."""
        with self.lock, guard if guard is not None else nullcontext():
            if refuse is not None and refuse(self.path):
                return 0
            starting = not self.passthrough_id
            if starting:
                if (self.opens != 1 or self.deleted or not self.ranges.contains(0, self.size)
                        or (writable and (readable or not self.cache.has_room()))):
                    return 0
                backing_id = passthrough.open_backing(self.fd)
                if not backing_id:
                    return 0
                self.passthrough_id = backing_id
            if writable:
                if not self.passthrough_writers and not self._start_kernel_writes():
                    # Dirty did not reach the disk: a SIGKILL would lose what the kernel writes
                    self._undo_kernel_writes()
                    if not starting:  # the kernel would have to write it: refuse the open
                        raise OSError(errno.ENOSPC, "cannot record the change on the cache disk", self.path)
                    passthrough.close_backing(self.passthrough_id)
                    self.passthrough_id = 0
                    return 0
                if readable:
                    self.maybe_mapped = True
                self.passthrough_writers += 1
            self.passthrough_opens += 1
            return self.passthrough_id

    def _start_kernel_writes(self) -> bool:
        """The kernel is about to write the data file without telling us. The item is dirty on
        disk from now on (a SIGKILL then loses nothing), and the data file's mtime is set to a
        time no write can give it: any write moves it, which is how the last close tells a
        writer that wrote from one that did not (the item then goes back to clean, no upload).
        The modtime shown stays the file's own until a write shows. False if Dirty could not
        be saved."""
        self.clean_before = None if self.dirty else self.modtime_ns
        self._mark_dirty(touch=False)  # and a change for an upload running now (gen)
        if self.dirty and self.meta_modtime != self.modtime_ns:
            self.persist()  # a restart takes the modtime from here while the data file has none
        os.utime(self.fd, ns=(KERNEL_WRITE_SENTINEL_NS, KERNEL_WRITE_SENTINEL_NS))
        self.disk_stamp = (self.size, KERNEL_WRITE_SENTINEL_NS)
        self.kernel_wrote = False
        return self.dirty_saved

    def _undo_kernel_writes(self) -> None:
        os.utime(self.fd, ns=(self.modtime_ns, self.modtime_ns))
        if self.clean_before is not None:
            self.dirty = False
            self.persist()

    def close_passthrough(self, passthrough, writable: bool) -> None:
        with self.lock:
            if writable:
                self.sync_from_disk()
                self.passthrough_writers -= 1
                if not self.passthrough_writers:
                    if not self.kernel_wrote and self.clean_before is not None:
                        self.dirty, self.modtime_ns = False, self.clean_before  # opened for writing, not written
                        self.persist()
                    if self.maybe_mapped:
                        self.cache.watch(self)
            self.passthrough_opens -= 1
            if self.passthrough_opens == 0:
                passthrough.close_backing(self.passthrough_id)
                self.passthrough_id = 0

    def check_mapped_writes(self) -> None:
        """A watched item (maybe_mapped): a shared mapping wrote the data file after the last
        close if its size or mtime moved since. Then it is dirty and uploaded like any other."""
        with self.lock:
            if self.opens or self.deleted:
                return
            try:
                st = os.stat(self.data_path)
            except OSError:
                return
            if not self._adopt_data_file(st):
                return
            self.dirty = True
            self.dirty_synced = False
            self.persist()
            log.info("%s: written through a mapping after its last close: uploading it", self.path)
            self.cache.writeback.schedule(self.path)

    def sync_from_disk(self) -> None:
        """Size and mtime of a file the kernel writes in passthrough, from its data file."""
        with self.lock:
            if not self.passthrough_writers or self.fd < 0:
                return
            if self._adopt_data_file(os.fstat(self.fd)):  # a utime since the last write stays
                self.kernel_wrote = True

    def _adopt_data_file(self, st: os.stat_result) -> bool:
        """Take size and mtime from the data file if it changed since last seen (written
        without us: by the kernel, or through a mapping); the file is whole either way."""
        stamp = (st.st_size, st.st_mtime_ns)
        if stamp == self.disk_stamp:
            return False
        self.disk_stamp = stamp
        self.size, self.modtime_ns = st.st_size, st.st_mtime_ns
        self.ranges = RangeSet([(0, self.size)])
        self.gen += 1
        return True

    def touched(self) -> None:
        """A change made here (a utime) while the kernel writes: the item stays dirty."""
        self.kernel_wrote = True
