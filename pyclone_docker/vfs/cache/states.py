"""A cache item's state machine as the rest of the system drives it: what the VFS asks and
changes (busy, pending, times, owner), the write-back's upload (begin, end), and a rename's
hold on the uploads it could race with.

A mixin of CacheItem (item.py): these methods use its state and its lock.

An upload sends a snapshot without the item's lock. `gen` counts every change an upload must
carry (bytes, size, times, owner); `moves` every rename that touches the item. At the end,
under the lock: unchanged, the item is clean; changed, it stays dirty and goes back to the
queue; renamed, the bytes it sent may sit under a name the file no longer has, so they are
removed from there and the file is sent again under its name.
"""

from __future__ import annotations

import os
from typing import Any

CLEAN, CHANGED, MOVED = "clean", "changed", "moved"


class Upload:
    """What an upload sends: the item as it was when the upload began."""

    __slots__ = ("path", "gen", "moves", "size", "modtime_ns", "mode", "uid", "gid", "fd")

    def __init__(self, item: Any, fd: int) -> None:
        self.path: str = item.path
        self.gen: int = item.gen
        self.moves: int = item.moves
        self.size: int = item.size
        self.modtime_ns: int = item.modtime_ns
        self.mode: int | None = item.mode
        self.uid: int | None = item.uid
        self.gid: int | None = item.gid
        self.fd = fd  # the data file, opened under the lock: a rename moves it, not what is read


class ItemStates:
    """The transitions of a CacheItem (whose __init__ calls _init_states)."""

    cache: Any
    path: str
    lock: Any
    cond: Any
    _cond: Any
    size: int
    modtime_ns: int
    dirty: bool
    opens: int
    deleted: bool
    fp: str
    passthrough_writers: int
    kernel_wrote: bool
    clean_before: int | None
    data_path: str  # and fill_missing, persist, sync_from_disk, touched: CacheItem's

    def _init_states(self) -> None:
        self.gen = 0  # bumped by every change an upload must carry
        self.uploading = False
        self.moving = 0  # renames of this item under way (between Cache.begin_rename and end)
        self.moves = 0  # renames begun, ever
        self.remote_epoch = 0  # uploads ended, ever: a remote stat taken before one is stale

    # --- what the VFS asks -----------------------------------------------------------------

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

    # --- what the VFS changes --------------------------------------------------------------

    def set_modtime(self, mtime_ns: int) -> bool:
        """A utime of a file open or changed here. True: the pending upload carries the new
        time (nothing to do on the remote); False: set it on the remote as for a clean file
        (then Cache.times_changed)."""
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
            self.gen += 1
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
            self.gen += 1
            return True

    # --- renames -------------------------------------------------------------------------------

    def hold_upload(self) -> bool:
        """Before a rename over this file: an upload of it running now ends first (the one
        wait for a transfer outside an unmount or unlink), and none starts later (it is no
        longer dirty), or it would land on the remote after the move and put the replaced
        bytes back over the renamed file. True if an upload was pending: resume_upload()
        puts it back if the rename fails."""
        with self.lock:
            while self.uploading:
                self.cond.wait(1.0)
            if not self.dirty or self.opens:
                return False  # nothing queued (an open one is uploaded only after its close)
            self.dirty = False
            return True

    def resume_upload(self) -> None:
        with self.lock:
            self.dirty = True
        self.cache.writeback.schedule(self.path)

    def begin_move(self) -> None:
        """A rename of this file (or a directory above it) is under way: no upload starts until
        end_move, and one running now will not count (MOVED)."""
        with self.lock:
            self.moving += 1
            self.moves += 1

    def end_move(self) -> None:
        with self.lock:
            self.moving -= 1

    # --- uploads (writeback.py) ------------------------------------------------------------

    def begin_upload(self) -> Upload | str | None:
        """The snapshot to upload; None: nothing to upload; "later": not now (open, renamed or
        uploaded right now). Fetches what is missing first, the lock released meanwhile."""
        with self.lock:
            if not self.dirty or self.deleted:
                return None
            if self.opens or self.moving or self.uploading:
                return "later"
            self.uploading = True
            try:
                self.fill_missing()
                if not self.dirty or self.deleted:
                    self._upload_ended()
                    return None
                if self.opens or self.moving:
                    self._upload_ended()
                    return "later"
                fd = os.open(self.data_path, os.O_RDONLY | os.O_CLOEXEC)
            except BaseException:
                self._upload_ended()
                raise
            return Upload(self, fd)

    def end_upload(self, job: Upload, fp: str | None) -> tuple[str, bool]:
        """The upload of `job` ended (fp: the remote's fingerprint, None if it was stopped).
        Returns (CLEAN | CHANGED | MOVED, whether the bytes sent may sit under a name the file
        no longer has)."""
        with self.lock:
            self._upload_ended()
            if self.moves != job.moves or self.path != job.path:
                return MOVED, self.path != job.path or self.moving > 0
            if fp is None or self.gen != job.gen or not self.dirty:
                return CHANGED, False
            self.dirty = False
            self.fp = fp
            self.persist()
            return CLEAN, False

    def abort_upload(self) -> None:
        """The upload failed: the remote may hold part of it; the item stays dirty."""
        with self.lock:
            self._upload_ended()

    def _upload_ended(self) -> None:
        self.uploading = False
        self.remote_epoch += 1
        if self._cond is not None:
            self._cond.notify_all()  # hold_upload waits for it
