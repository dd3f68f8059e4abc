"""Fetching an item's missing ranges, after rclone's vfs/vfscache/downloaders: no lock is held
while the remote is read.

- A missing range is fetched once: each byte being fetched belongs to one Download (their
  spans, [pos, stop), never overlap), and a reader that needs it waits for that one.
- A reader waits only for the bytes it reads; readers of present ranges, and writers, never
  wait on a fetch (they take the item's lock, which a Download holds only to copy a block it
  has read into the data file).
- Sequential readers share one stream: a Download keeps reading from where it is, and a read
  just ahead of a running Download extends it rather than opening a second stream. A Download
  that has read its span parks its stream for PARK_TIME, and the next Download starting where
  that stream is takes it over: one stream per sequential reader, not one per window. A read
  that starts where a recent fetch ended is sequential (one per reader: several sequential
  readers of one file each keep their --buffer-size window).
- A Download writes only the parts of a block still missing, checked under the item's lock:
  bytes written meanwhile win over the fetched ones.
- A failed fetch wakes its waiters with its error (EIO unless the backend said otherwise), a
  full cache disk with "read it uncached" (NoSpace).

Every method here is called with the item's lock held; Download threads take it themselves.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any

from ...backends.base import read_full
from .files import pwrite_all

log = logging.getLogger("pyclone.vfs.cache")

FETCH_BLOCK = 1 << 20  # the unit a Download copies into the data file (and wakes readers by)
RECENT_ENDS = 16  # where the last fetches end: a read starting at one is sequential
PARK_TIME = 5.0  # seconds a finished Download's stream waits for the next one to start where it is
MAX_PARKED = 16


class NoSpace(Exception):
    """The cache disk is full: the caller serves the read straight from the remote."""


class Download:
    """One stream from the remote into the data file: it owns the bytes [pos, stop)."""

    __slots__ = ("pos", "stop", "error", "nospace", "cancelled", "done", "reader")

    def __init__(self, start: int, stop: int) -> None:
        self.reader: Any = None  # a parked stream it took over, positioned at start
        self.pos = start  # everything before pos that it owned has landed
        self.stop = stop
        self.error: OSError | None = None
        self.nospace = False
        self.cancelled = False
        self.done = False

    def __repr__(self) -> str:
        return f"Download({self.pos}, {self.stop}{', done' if self.done else ''})"


class Downloaders:
    """The Downloads of one CacheItem (`item`: its lock, cond, ranges, size, fd, path, cache)."""

    __slots__ = ("item", "active", "ends", "parked")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.active: list[Download] = []
        self.parked: list[tuple[int, Any, float]] = []  # (position, stream, parked at) of finished Downloads
        self.ends: list[int] = []  # the RECENT_ENDS last fetch ends, oldest first

    # --- waiting for bytes (item lock held) -----------------------------------------------

    def wait_present(self, start: int, end: int, whole: bool = False) -> None:
        """Block until [start, end) (clipped to the item's size) is in the data file, fetching
        what is missing; the item's lock is released while waiting. Raises the fetch's error,
        or NoSpace. `whole`: fetch no further than `end` (the rest of the file is wanted, not
        read-ahead)."""
        item = self.item
        waited: list[Download] = []
        while True:
            stop = min(end, item.size)
            if start >= stop:
                return
            gaps = item.ranges.missing(start, stop)
            if not gaps:
                return
            for d in waited:
                if d.nospace:
                    raise NoSpace()
                if d.error is not None:
                    raise d.error
            waited = [self._owner(gs, ge, whole) for gs, ge in gaps]
            waited = [d for group in waited for d in group]
            item.cond.wait(5.0)  # woken by every landed block; the timeout is only a safety net

    def _owner(self, start: int, end: int, whole: bool) -> list[Download]:
        """The Downloads that will bring [start, end) (all missing now), started as needed."""
        owners: list[Download] = []
        pos = start
        while pos < end:
            d = self._covering(pos)
            if d is None:
                d = self._behind(pos)
                if d is not None:
                    d.stop = self._cap(d.pos, end if whole else max(end, pos + self._window(pos)), d)
                    self._ended_at(d.stop)
            if d is None:
                d = self._start(pos, end if whole else max(end, pos + self._window(pos)))
            owners.append(d)
            if d.stop <= pos:  # capped at once by a Download just ahead: wait for that one
                break
            pos = d.stop
        return owners

    def _window(self, pos: int) -> int:
        """How far a fetch starting at `pos` reads: --buffer-size plus --vfs-read-ahead for a
        sequential reader (rclone's rule), one block plus the read-ahead for a random one, so
        a database page costs 1 MiB, not 16."""
        cache = self.item.cache
        if pos in self.ends:
            self.ends.remove(pos)
            return cache.sequential_window
        return FETCH_BLOCK + cache.read_ahead

    def _ended_at(self, stop: int) -> None:
        self.ends.append(stop)
        if len(self.ends) > RECENT_ENDS:
            del self.ends[0]

    def _covering(self, pos: int) -> Download | None:
        for d in self.active:
            if d.pos <= pos < d.stop:
                return d
        return None

    def _behind(self, pos: int) -> Download | None:
        """A running Download that is about to reach `pos` (within a block and the read-ahead
        of it): extending it keeps one stream for a sequential reader."""
        near = FETCH_BLOCK + self.item.cache.read_ahead
        for d in self.active:
            if d.stop <= pos and pos - d.pos <= near and not d.cancelled:
                return d
        return None

    def _cap(self, start: int, stop: int, d: Download | None = None) -> int:
        """`stop` for a span from `start`, cut at the size and at the next Download after
        `start` (other than `d`): spans never overlap."""
        stop = min(stop, self.item.size)
        for other in self.active:
            if other is not d and other.pos > start:
                stop = min(stop, other.pos)
        return stop

    def _start(self, pos: int, stop: int) -> Download:
        d = Download(pos, self._cap(pos, stop))
        d.reader = self._adopt(pos)
        self._ended_at(d.stop)
        self.active.append(d)
        threading.Thread(target=self._run, args=(d,), name="fetch", daemon=True).start()
        return d

    def _adopt(self, pos: int) -> Any:
        """The parked stream positioned at `pos`, taken out of the park (stale ones closed)."""
        if not self.parked:
            return None
        now = time.monotonic()
        found, keep, stale = None, [], []
        for at, reader, since in self.parked:
            if now - since >= PARK_TIME:
                stale.append(reader)
            elif found is None and at == pos:
                found = reader
            else:
                keep.append((at, reader, since))
        self.parked = keep
        _close_later(stale)
        return found

    def cancel(self) -> None:
        """Stop every Download (the data file closes, or its bytes no longer count): none
        touches the data file again, and their waiters look again."""
        for d in self.active:
            d.cancelled = True
        self.active.clear()
        _close_later([reader for _at, reader, _since in self.parked])
        self.parked = []
        self.item.cond.notify_all()

    def idle(self) -> bool:
        return not self.active

    # --- a Download's thread -----------------------------------------------------------------

    def _run(self, d: Download) -> None:
        item = self.item
        try:
            with item.lock:
                gap = self._next_gap(d)
            while gap is not None:
                path, gap_start, gap_stop = gap
                adopted, d.reader = d.reader, None
                if adopted is not None and gap_start != d.pos:
                    adopted.close()  # its position is not where the gap begins
                    adopted = None
                gap = self._stream(d, path, gap_start, gap_stop, adopted)
        except OSError as e:
            d.error = e if e.errno else OSError(errno.EIO, str(e), item.path)
        except Exception as e:  # a backend bug must not leave its waiters hanging
            log.error("%s: fetch failed: %r", item.path, e)
            d.error = OSError(errno.EIO, f"fetch failed: {e}", item.path)
        finally:
            with item.lock:
                self._finish(d)

    def _stream(self, d: Download, path: str, start: int, stop: int,
                reader: Any = None) -> tuple[str, int, int] | None:
        """Read [start, stop) from the remote without the lock, landing it block by block, and
        on into the next gap while it starts where the stream is; returns the next gap that does
        not (found under the same lock as the last landing)."""
        item = self.item
        # unbounded: when the span grows (a sequential reader extends it) or its next gap starts
        # where this stream is, the same stream goes on: one stream per sequential reader
        if reader is None:
            reader = item.cache.backend.open_read(path, start, -1)
        parked = False
        try:
            buf = bytearray(min(FETCH_BLOCK, stop - start))
            view = memoryview(buf)
            pos = start
            while True:
                if len(buf) < FETCH_BLOCK and stop - pos > len(buf):
                    buf = bytearray(min(FETCH_BLOCK, stop - pos))
                    view = memoryview(buf)
                got = read_full(reader, view[:min(len(buf), stop - pos)])
                with item.lock:
                    if d.cancelled:
                        return None
                    if got == 0:
                        # the remote is shorter than we thought: the rest reads as zeros
                        item.ranges.add(pos, min(stop, item.size))
                        got = stop - pos
                    elif not self._land(d, view[:got], pos):
                        return None
                    pos += got
                    d.pos = max(d.pos, pos)
                    item.cond.notify_all()
                    if pos >= stop:
                        gap = self._next_gap(d)
                        if gap is None and not d.cancelled and pos < item.size and len(self.parked) < MAX_PARKED:
                            self.parked.append((pos, reader, time.monotonic()))  # for the next window
                            parked = True
                            return None
                        if gap is None or gap[0] != path or gap[1] != pos:
                            return gap
                        stop = gap[2]  # the next gap starts here: read on
        finally:
            if not parked:
                reader.close()

    def _land(self, d: Download, view: memoryview, pos: int) -> bool:
        """Copy a fetched block into the data file where its bytes are still missing (a write
        since wins). False: the cache disk is full (NoSpace for the waiters)."""
        item = self.item
        end = min(pos + len(view), item.size)
        for s, e in item.ranges.missing(pos, end):
            part = view[s - pos:e - pos]
            try:
                try:
                    pwrite_all(item.fd, part, s)
                except OSError as err:
                    if err.errno != errno.ENOSPC or not item.cache.free_space():
                        raise
                    pwrite_all(item.fd, part, s)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                if not item.cache.full_warned:
                    item.cache.full_warned = True  # once, not once per read
                    log.error("cache disk full while caching %s: reading uncached", item.path)
                item.cache.kick_cleaner()
                d.nospace = True
                return False
            item.ranges.add(s, e)
        return True

    def _next_gap(self, d: Download) -> tuple[str, int, int] | None:
        """The next missing stretch of d's span (skipping what is present), or None: done.
        Called with the lock held; ending here keeps "done" and the last landing together."""
        item = self.item
        if d.cancelled:
            return None
        stop = min(d.stop, item.size)
        gaps = item.ranges.missing(d.pos, stop) if d.pos < stop else []
        if not gaps:
            d.pos = max(d.pos, stop)
            self._finish(d)
            return None
        gap_start, gap_stop = gaps[0]
        d.pos = gap_start
        return item.path, gap_start, gap_stop

    def _finish(self, d: Download) -> None:
        if d.reader is not None:  # never ran: its adopted stream goes back to no one
            _close_later([d.reader])
            d.reader = None
        if d.done:
            return
        d.done = True
        if d in self.active:
            self.active.remove(d)
        self.item.cond.notify_all()


def _close_later(readers: list[Any]) -> None:
    """Close streams off the item's lock (closing one may talk to the remote)."""
    if readers:
        threading.Thread(target=_close_all, args=(readers,), name="fetch-close", daemon=True).start()


def _close_all(readers: list[Any]) -> None:
    for r in readers:
        try:
            r.close()
        except Exception as e:  # a stream that cannot close is forgotten, not fatal
            log.debug("closing a parked stream: %s", e)
