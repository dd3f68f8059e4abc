"""Opening files: rclone's per-cache-mode rules for which handle an open gets (streamed from
or to the remote, or through the disk cache), create, truncate, fsync and the last close.
Part of the VFS (vfs.py)."""

from __future__ import annotations

import errno
import logging
import os
import time

from ..backends.base import FEATURE_RANDOM_WRITE, Entry
from ..flags import PROCESS_UMASK
from .handles import CachedHandle, Handle, ReadHandle, WriteHandle
from .perms import ROOT, Caller

log = logging.getLogger("pyclone.vfs")

_ACCMODE = os.O_ACCMODE


class OpenFiles:
    """A part of VFS: uses its backend, cache, dircache, options and path helpers, and keeps
    its table of open handles (`_open`) and of files being written (`_writers`)."""

    def truncate(self, path: str | None, length: int, handle: Handle | None = None) -> int:
        """truncate(2), or ftruncate(2) of an open file's `handle`."""
        p = handle.path if handle is not None else self._path(path)
        self._check_writable(p)
        if handle is None:
            handle = self._writers.get(p)
        if isinstance(handle, (WriteHandle, CachedHandle)):
            handle.truncate(length)
            return 0
        if self.cache is not None:
            item = self.cache.get(p)
            item.open(lambda: self._remote_entry(p), truncate=False)
            try:
                item.truncate(length)
            finally:
                item.close()
            self.dircache.put(p, Entry(p, False, length, item.modtime_ns))
            return 0
        if FEATURE_RANDOM_WRITE in self.backend.features:
            self.backend.truncate(p, length)
        elif length == 0:
            self.backend.open_write(p).close()
        else:
            raise OSError(errno.EPERM, "can't truncate without --vfs-cache-mode >= writes", p)
        self._refresh(p)
        return 0

    def _new_writer(self, p: str, truncated: bool, mode: int | None = None) -> WriteHandle:
        handle = WriteHandle(self.backend, p, truncated, float(self.opts.vfs_write_wait), self._writer_closed,
                             mode)
        with self._lock:
            self._writers[p] = handle
        return handle

    def _writer_closed(self, handle: WriteHandle) -> None:
        with self._lock:
            if self._writers.get(handle.path) is handle:
                del self._writers[handle.path]
        try:
            self._refresh(handle.path)
        except FileNotFoundError:
            pass

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY, caller: Caller = ROOT) -> Handle:
        """open(2) with O_CREAT of a file that does not exist: its open handle."""
        p = self._path(path)
        self._check_writable(p)
        if self.open_kind(p, flags | os.O_CREAT) == "cached":
            return self._open_cached(p, flags | os.O_TRUNC, mode, caller)
        bits = mode & 0o7777
        handle = self._new_writer(p, truncated=True, mode=bits if self._can_chmod else None)
        if self._can_chmod and bits & (PROCESS_UMASK | 0o7000):
            self.backend.chmod(p, bits)  # bits the umask took or open(2) may drop: set them
        self._set_owner(p, caller)
        if self._can_chmod or self._can_chown:
            self._refresh(p)  # the backend made the file: show its real metadata
        else:
            self.dircache.put(p, Entry(p, False, 0, time.time_ns()))
        self._open.add(handle)
        return handle

    def open_kind(self, p: str, flags: int) -> str:
        """rclone's File.Open table: which handle an open gets in this cache mode.

        "cached" is a disk-cache handle; "read"/"write" stream as in cache mode off.
        """
        acc = flags & _ACCMODE
        read = acc in (os.O_RDONLY, os.O_RDWR) or bool(flags & os.O_APPEND)
        write = acc in (os.O_WRONLY, os.O_RDWR) or bool(flags & os.O_TRUNC)
        mode = self.cache_mode
        if mode == "full" or (mode == "writes" and write) or (mode == "minimal" and read and write):
            return "cached"
        if mode != "off" and not write and self.cache is not None:
            item = self.cache.peek(p)
            if item is not None and (item.is_busy() or item.is_whole()):
                # local changes not uploaded yet, or a whole copy: read it, not the remote
                return "cached"
        if read and write:
            # off mode, as rclone: read+write of a file being created or truncated opens it write
            # only ("hope the user doesn't want to read": reads get EPERM); O_CREAT reaches here
            # only from create(), the kernel strips it from opens of existing files
            if flags & (os.O_TRUNC | os.O_CREAT):
                return "write"
            raise OSError(errno.EPERM, "can't open for read and write without --vfs-cache-mode >= minimal", p)
        return "write" if write else "read"

    def open(self, path: str, flags: int) -> Handle:
        """open(2) of an existing file: a handle of the kind open_kind() says."""
        p = self._path(path)
        kind = self.open_kind(p, flags)
        if kind == "cached":
            if flags & _ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                self._check_writable(p)
            entry = self._lookup(p)
            if entry.is_dir:
                raise OSError(errno.EISDIR, "is a directory", p)
            return self._open_cached(p, flags, None, ROOT)
        if kind == "read":
            return self.open_stream(p)
        self._check_writable(p)
        try:
            exists = self._lookup(p) is not None
        except FileNotFoundError:
            exists = False
        handle = self._new_writer(p, truncated=bool(flags & os.O_TRUNC) or not exists)
        self._open.add(handle)
        return handle

    def open_stream(self, p: str) -> ReadHandle:
        """A read-only open streamed from the remote (`p` a backend path)."""
        entry = self._lookup(p)
        if entry.is_dir:
            raise OSError(errno.EISDIR, "is a directory", p)
        handle = ReadHandle(self.backend, p, float(self.opts.vfs_read_wait), bool(self.opts.no_seek),
                            int(self.opts.vfs_read_chunk_size), int(self.opts.vfs_read_chunk_size_limit),
                            entry.size, self.buffer_size)
        self._open.add(handle)
        return handle

    def _follow_rename(self, src: str, dst: str) -> None:
        """A rename, under self._lock: files streamed from the remote follow it (later reads
        reopen the remote under the new name)."""
        prefix = src + "/"
        for handle in list(self._open):
            if isinstance(handle, ReadHandle) and (handle.path == src or handle.path.startswith(prefix)):
                handle.path = dst + handle.path[len(src):]

    def _open_cached(self, p: str, flags: int, create_mode: int | None, caller: Caller) -> CachedHandle:
        assert self.cache is not None
        item = self.cache.get(p)
        # a create truncates whatever the remote holds: no need to ask it first (one stat and
        # one exception less per new file)
        lookup = (lambda: None) if create_mode is not None else (lambda: self._remote_entry(p))
        item.open(lookup, truncate=bool(flags & os.O_TRUNC))
        if create_mode is not None:  # a new file: its upload applies these
            item.set_pending_meta(mode=create_mode & 0o7777 if self._can_chmod else None)
            if self._can_chown:
                item.set_pending_meta(uid=caller[0], gid=caller[1])
        handle = CachedHandle(item, flags & _ACCMODE != os.O_WRONLY, bool(flags & os.O_APPEND))
        if create_mode is not None or flags & os.O_TRUNC:
            self.dircache.put(p, Entry(p, False, item.size, item.modtime_ns, item.mode, item.uid, item.gid))
        self._open.add(handle)
        return handle

    def fsync(self, handle: Handle, datasync: bool = False) -> None:
        # rclone's mount answers fsync without doing anything; here the bytes reach the disk
        # they are on (the backend's file in mode off, the cache file in the cache modes)
        if isinstance(handle, (WriteHandle, CachedHandle)):
            handle.fsync(datasync)

    def release(self, handle: Handle) -> None:
        """The last close of an open file (its handle from open() or create())."""
        self._open.discard(handle)
        handle.release()

    def open_files(self) -> int:
        return len(self._open)

    def close_all(self) -> None:
        """Commit every open upload and drain the write-back queue; called before unmount."""
        for handle in list(self._open):
            self._open.discard(handle)
            try:
                handle.release()
            except OSError as e:
                log.error("closing %s at unmount: %s", handle.path, e)
        if self.cache is not None:
            self.cache.shutdown()
