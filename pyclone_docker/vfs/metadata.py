"""chmod, chown and utimens: part of the VFS (vfs.py), kept where the backend can store them,
with the file not uploaded yet (the upload applies them) and with special nodes (special.py)."""

from __future__ import annotations

import dataclasses
import errno
import time

from ..backends.base import Entry


class Metadata:
    """A part of VFS: uses its backend, cache, dircache, specials and path helpers."""

    def _special_meta(self, p: str, **attrs: int | None) -> bool:
        """chmod/chown/utimens of a special node: kept with it (False: not one)."""
        node = self.specials.get(p)
        if node is None:
            return False
        for key, value in attrs.items():
            if value is not None:
                setattr(node, key, value)
        node.ctime_ns = time.time_ns()
        self.dircache.put(p, dataclasses.replace(node))
        return True

    def _pending_meta(self, p: str, **attrs: int) -> bool:
        """Keep chmod/chown of a file not uploaded yet; the upload applies them."""
        item = self.cache.peek(p) if self.cache is not None else None
        if item is None or not item.set_pending_meta(**attrs):
            return False
        try:
            entry = self._lookup(p)
            for key, value in attrs.items():
                setattr(entry, key, value)
            entry.ctime_ns = time.time_ns()  # a metadata change, even before the upload
        except FileNotFoundError:
            pass
        return True

    def chmod(self, path: str | None, mode: int) -> int:
        p = self._path(path)
        self._check_writable(p)
        if self._special_meta(p, mode=mode & 0o7777):
            return 0
        if self._can_chmod:
            pending = self._pending_meta(p, mode=mode & 0o7777)
            try:
                self.backend.chmod(p, mode & 0o7777)
                self._refresh(p)
            except FileNotFoundError:
                if not pending:
                    raise
        return 0  # rclone accepts and ignores chmod where it can't be stored

    def chown(self, path: str | None, uid: int, gid: int) -> int:
        p = self._path(path)
        self._check_writable(p)
        keep = (-1, 0xFFFFFFFF, None)  # chown(2)'s "leave this one as it is"
        if self._special_meta(p, uid=None if uid in keep else uid, gid=None if gid in keep else gid):
            return 0
        if self._can_chown:
            e = self._lookup(p)
            uid = e.uid if uid in (-1, 0xFFFFFFFF) or uid is None else uid
            gid = e.gid if gid in (-1, 0xFFFFFFFF) or gid is None else gid
            pending = self._pending_meta(p, uid=uid, gid=gid)
            try:
                self.backend.chown(p, uid, gid)
                self._refresh(p)
            except FileNotFoundError:
                if not pending:
                    raise
        return 0

    def _dir_time(self, p: str, mtime: int) -> bool:
        """A directory the backend keeps no time for (an object store's prefix, a directory
        made here and stored nowhere): its time is kept in memory, as rclone's Dir.SetModTime
        does (dockerd sets it on a volume's root before a container starts)."""
        try:
            entry = self._lookup(p)
        except OSError:
            return False
        if not entry.is_dir:
            return False
        if p:
            self.dircache.put(p, dataclasses.replace(entry, mtime_ns=mtime))
        else:
            self._root = dataclasses.replace(entry, mtime_ns=mtime)
        return True

    def utimens(self, path: str | None, times: tuple[int | None, int | None] | None = None) -> int:
        p = self._path(path)
        self._check_writable(p)
        mtime = times[1] if times else time.time_ns()
        if self._special_meta(p, mtime_ns=mtime):
            return 0
        if mtime is None:
            return 0  # UTIME_OMIT: only the access time changes, and that is not stored (as rclone)
        if self.cache is not None:
            item = self.cache.peek(p)
            # open or changed here: the pending upload carries the time (True), or, clean but
            # for a writer that wrote nothing, the remote takes it now as below (False)
            if item is not None and item.set_modtime(mtime):
                self.dircache.put(p, Entry(p, False, item.size, mtime))
                return 0
        writer = self._writers.get(p)
        committed = False
        if writer is not None:
            # applied when the upload completes; a commit under way (the last close of an empty
            # file arrives after close(2) returned) ends first, and then the time goes below
            with writer.cond:
                writer.mtime_ns = mtime
                committed = writer.writer is None and (writer.written or writer.truncated)
                if not committed:  # shown at once; the upload stamps it on the remote
                    self.dircache.put(p, Entry(p, False, writer.size, mtime))
        if self._can_modtime:
            try:
                self.backend.set_modtime(p, mtime)
            except OSError as e:
                if e.errno in (errno.ENOTSUP, errno.ENOENT) and writer is None and self._dir_time(p, mtime):
                    return 0
                if not isinstance(e, FileNotFoundError) or writer is None or committed:
                    raise
            else:
                remote = self._refresh(p)
                if self.cache is not None:
                    self.cache.times_changed(p, remote)
        return 0
