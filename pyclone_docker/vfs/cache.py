"""The VFS disk cache (`--vfs-cache-mode minimal|writes|full`), after rclone's vfs/vfscache.

Each cached object is a sparse file of the object's full size plus a range set of the
bytes present, persisted beside it in rclone's vfsMeta JSON, so a restart keeps what was
fetched and what is still to upload. Layout, per volume so two volumes never collide:

    <cache-dir>/vfs/<volume>/<path>       data (sparse, 0600)
    <cache-dir>/vfsMeta/<volume>/<path>   metadata (JSON)

Writes go in with pwrite: a full disk is ENOSPC, a clean error, never the SIGBUS a store
into a mapping would be. Missing ranges are fetched on demand; dirty files are uploaded
by the write-back queue after --vfs-write-back, and before an unmount completes.
"""

from __future__ import annotations

import errno
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from ..backends.base import (
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_MODTIME,
    FEATURE_SLOW_HASH,
    FEATURE_SLOW_MODTIME,
    Backend,
    Entry,
    read_full,
)
from ..lib.atomic import TEMP_NAME as _ATOMIC_TMP
from ..lib.atomic import atomic_write
from ..lib.timefmt import format_created, parse_created
from .ranges import RangeSet

log = logging.getLogger("pyclone.vfs.cache")

FETCH_BLOCK = 1 << 20  # download granularity for on-demand reads
UPLOAD_BLOCK = 1 << 20
PASSTHROUGH_WRITE_ROOM = 1 << 30  # free cache disk below which writers stay on the plugin's path
KERNEL_WRITE_SENTINEL_NS = 1  # a data file's mtime while the kernel may write it (see _start_kernel_writes)


def fingerprint(entry: Entry, backend: Backend, fast: bool, path: str, with_hash: bool = True) -> str:
    """rclone's fs.Fingerprint: size, then modtime and hash where the backend has them;
    --vfs-fast-fingerprint leaves out whichever of the two is slow on this backend."""
    parts = [str(entry.size)]
    if FEATURE_MODTIME in backend.features and not (fast and FEATURE_SLOW_MODTIME in backend.features):
        secs, ns = divmod(entry.mtime_ns, 10**9)
        stamp = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        frac = f".{ns:09d}".rstrip("0").rstrip(".")
        parts.append(f"{stamp}{frac} +0000 UTC")
    kind = fingerprint_hash(backend, fast) if with_hash else ""
    if kind:
        try:
            parts.append(backend.hash(path, kind))
        except OSError as e:  # as rclone: a hash that can't be had is left out
            log.debug("%s: no %s hash for the fingerprint: %s", path, kind, e)
    return ",".join(parts)


def refingerprint(old: str, entry: Entry, backend: Backend, fast: bool, path: str) -> str:
    """The fingerprint of an object whose times alone we just changed: size and modtime from
    the remote's entry now, the hash carried over (the bytes are the same, and hashing them
    again would read the whole object)."""
    new = fingerprint(entry, backend, fast, path, with_hash=False)
    if fingerprint_hash(backend, fast):
        parts = old.split(",")
        if len(parts) == new.count(",") + 2:  # the old one has a hash (it may have been left out)
            new += "," + parts[-1]
    return new


def fingerprint_hash(backend: Backend, fast: bool) -> str:
    """The hash a fingerprint includes on this backend ("" for none): rclone's Hashes().GetOne()."""
    if not backend.hashes or (fast and FEATURE_SLOW_HASH in backend.features):
        return ""
    return backend.hashes[0]


class CacheItem:
    """One cached object. All state changes happen under `lock`."""

    def __init__(self, cache: Cache, path: str) -> None:
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
        # FUSE passthrough (fuse_passthrough.py): the kernel's backing id while opens of this
        # file are served by the kernel from its cache file, how many, and how many may write
        self.passthrough_id = 0
        self.passthrough_opens = 0
        self.passthrough_writers = 0
        self.disk_stamp: tuple[int, int] = (-1, -1)  # the data file's (size, mtime) last seen
        self.kernel_wrote = False  # the data file changed (or a utime came) since writers opened
        self.clean_before: int | None = None  # the modtime of an item clean before they did
        # a writer that could map the file joined a kernel-served file: a shared mapping may
        # write the data file after the last close, so the cache keeps checking it (Cache.watch)
        self.maybe_mapped = False
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
            with open(self.meta_path, "rb") as f:
                meta = json.load(f)
            self.modtime_ns = parse_created(meta["ModTime"])
            self.atime_ns = parse_created(meta["ATime"])
            self.size = int(meta["Size"])
            self.ranges = RangeSet.from_rclone(meta.get("Rs"))
            self.fp = meta.get("Fingerprint") or ""
            self.dirty = self.dirty_saved = bool(meta.get("Dirty"))
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
        meta = {
            "ModTime": format_created(self.modtime_ns),
            "ATime": format_created(self.atime_ns),
            "Size": self.size,
            "Rs": self.ranges.to_rclone(),
            "Fingerprint": self.fp,
            "Dirty": self.dirty,
        }
        data = (json.dumps(meta, indent="\t") + "\n").encode()
        try:
            _makedirs(os.path.dirname(self.meta_path))
            if not self.meta_written:
                self._write_new_meta(data)
            elif not self.dirty and not sync:
                self._overwrite_meta(data)
            else:
                atomic_write(self.meta_path, data, mode=0o600, sync=sync)
        except OSError as e:
            # the state in memory is still right; the next save or the upload catches up
            log.error("%s: cannot save cache metadata: %s", self.path, e)
            self.cache.kick_cleaner()
            return
        self.dirty_saved = self.dirty
        self.meta_written = True
        self.meta_modtime = self.modtime_ns

    def _write_new_meta(self, data: bytes) -> None:
        """A first save needs no temp file and rename: there is nothing to replace, and one
        small write is whole after a killed process. Saves one file creation per cached file."""
        try:
            fd = os.open(self.meta_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            atomic_write(self.meta_path, data, mode=0o600, sync=False)
            return
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _overwrite_meta(self, data: bytes) -> None:
        """A clean item's metadata is rewritten in place: torn by a killed process, it fails to
        load and the item is dropped and fetched again, which loses nothing (its data is on the
        remote). Saves a file creation and a rename per upload. No O_TRUNC: ext4 would start
        writeback at close for a file truncated to zero (auto_da_alloc)."""
        fd = os.open(self.meta_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            _pwrite_all(fd, memoryview(data), 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

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
            _makedirs(os.path.dirname(self.data_path))
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

    # --- FUSE passthrough ---------------------------------------------------------------

    def open_passthrough(self, passthrough, writable: bool, readable: bool) -> int:
        """After open(): the backing id to hand this open to the kernel with, or 0 to serve it
        here. Starting it takes an open of a wholly cached file that nothing else has open,
        read-only or write-only: a writer that can read could map the file shared and write it
        after close(2) (the mapping then holds the cache file, not the FUSE file, so the last
        close reaches us too early), and a writer needs room on the cache disk (a nearly full
        one keeps the plugin's evict-and-retry write path). Once a file is open in passthrough
        the kernel requires it of every open of that file (any other is EIO), so those join
        whatever they are."""
        with self.lock:
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
        self._mark_dirty(touch=False)
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
        return True

    def touched(self) -> None:
        """A change made here (a utime) while the kernel writes: the item stays dirty."""
        self.kernel_wrote = True

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
                            _pwrite_all(self.fd, view[:got], pos)
                        except OSError as e:
                            if e.errno != errno.ENOSPC or not self.cache.free_space():
                                raise
                            _pwrite_all(self.fd, view[:got], pos)
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
                n = _pwrite_all(self.fd, view, offset)
            except OSError as e:
                if e.errno != errno.ENOSPC or not self.cache.free_space():
                    raise
                n = _pwrite_all(self.fd, view, offset)  # once more, after evicting clean files
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


class Cache:
    def __init__(self, backend: Backend, cache_dir: str, volume: str, *, read_ahead: int = 0, buffer_size: int = 0,
                 write_back: float = 5.0, transfers: int = 4, max_age: float = 3600.0, max_size: int = -1,
                 poll_interval: float = 60.0, fast_fingerprint: bool = False, set_modtime: bool = True,
                 on_uploaded: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.data_root = os.path.join(cache_dir, "vfs", volume)
        self.meta_root = os.path.join(cache_dir, "vfsMeta", volume)
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
        _makedirs(self.data_root)
        _makedirs(self.meta_root)
        check_sparse(self.data_root)
        self._cleaner = threading.Thread(target=self._clean_loop, name=f"cache-clean:{volume}", daemon=True)

    def start(self) -> None:
        """Reload what an earlier run left: dirty items are queued for upload at once."""
        for rel in _walk(self.meta_root):
            item = CacheItem(self, rel)
            if not item.load():
                log.warning("cache: dropping unreadable or orphaned item %s", rel)
                item.remove_files()
                continue
            self.items[rel] = item
            if item.dirty:
                log.info("cache: %s was not uploaded before the last stop: uploading it now", rel)
                self.writeback.schedule(rel, delay=0)
        for rel in _walk(self.data_root):
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
                    _move_files([(item.data_path, os.path.join(self.data_root, dst)),
                                 (item.meta_path, os.path.join(self.meta_root, dst))])
                    item.path = dst
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
                _prune_tree(os.path.join(root, directory))

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
            # clean, or dirty only because a writer the kernel serves is open and wrote nothing
            clean = not item.dirty or (item.passthrough_writers > 0 and not item.kernel_wrote
                                       and item.clean_before is not None)
            if not clean or not item.fp or remote.size != item.size:
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


class WriteBack:
    """Uploads dirty items --vfs-write-back after their last close, --transfers at a time,
    retrying failures with exponential backoff up to a minute."""

    def __init__(self, cache: Cache, delay: float, transfers: int,
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
            hasher = _new_hash(kind) if kind else None
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
                dirty = [i for i in list(self.cache.items.values()) if i.dirty and not i.deleted]
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


def _new_hash(kind: str):
    import hashlib  # lazily: OpenSSL costs ~4 MB of RSS, and mode off never needs it

    return hashlib.new(kind, usedforsecurity=False)


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


def check_sparse(directory: str) -> bool:
    """rclone logs an ERROR when the cache filesystem cannot hold sparse files."""
    probe = os.path.join(directory, f".sparse-check-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, 16 << 20)
            sparse = os.fstat(fd).st_blocks * 512 < (16 << 20)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        log.error("cache dir %s is not usable: %s", directory, e)
        return False
    if not sparse:
        log.error("cache dir %s does not support sparse files: the cache will perform very badly", directory)
    return sparse


def _pwrite_all(fd: int, view: memoryview, offset: int) -> int:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


_made_dirs: set[str] = set()


def _move_files(pairs: list[tuple[str, str]]) -> None:
    """os.replace each (src, dst) that exists; on a failure, put back what was moved."""
    done: list[tuple[str, str]] = []
    try:
        for a, b in pairs:
            if os.path.exists(a):
                _makedirs(os.path.dirname(b))
                os.replace(a, b)
                done.append((a, b))
    except OSError:
        for a, b in reversed(done):
            os.replace(b, a)
        raise


def _prune_tree(path: str) -> None:
    """Remove the empty directories of the tree at `path` (files keep theirs)."""
    if not os.path.isdir(path) or os.path.islink(path):
        return
    for dirpath, _dirs, _files in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            continue  # not empty: a cached file still lives there
    prefix = path + os.sep
    for made in [d for d in _made_dirs if d == path or d.startswith(prefix)]:
        _made_dirs.discard(made)


def _makedirs(path: str) -> None:
    # each cached file would otherwise cost a stat per directory level
    if path not in _made_dirs:
        os.makedirs(path, mode=0o700, exist_ok=True)
        _made_dirs.add(path)


def _walk(root: str) -> list[str]:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(".sparse-check-") or _ATOMIC_TMP.match(name):
                continue  # our own probes and half-written metadata
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)

