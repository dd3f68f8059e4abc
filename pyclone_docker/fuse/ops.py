"""The operations object libfuse's high-level API calls (through the vendored fusepy): FUSE
paths and integer file handles in, stat dicts out, everything else asked of the VFS.

What is FUSE's and not the VFS's lives here: the file-handle table, readdir offsets, the
caller of each request (`fuse_get_context`), and kernel passthrough of cached files, with
the bookkeeping it needs (the kernel refuses a passthrough open beside one it sends to us).
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import stat
import threading
from collections.abc import Iterator
from typing import Any

from ..backends.base import Entry
from ..vfs.handles import CachedHandle, ReadHandle
from ..vfs.perms import Caller
from ..vfs.vfs import VFS
from .passthrough import Passthrough

log = logging.getLogger("pyclone.fuse")

_ACCMODE = os.O_ACCMODE
_BLOCK = 4096


def caller() -> Caller:
    """The (uid, gid, pid) of the process whose request this thread serves."""
    from .._vendor.mfusepy import fuse_get_context

    return fuse_get_context()


class _DirHandle:
    __slots__ = ("path", "entries")

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Any] | None = None


class _Stream:
    """A read-only open streamed from the remote (writes mode with passthrough): the name of
    the file it reads, None once that file was replaced or the open closed."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path: str | None = path


class FuseOps:
    """fusepy-style operations over one VFS. Attribute names are looked up by the binding."""

    use_ns = True  # times are integer nanoseconds
    # flag_nopath would save libfuse a path lookup per read/write, but the binding then
    # passes no path to readdir, fchmod or futimens either, and those need it.
    flag_nullpath_ok = True

    def __init__(self, vfs: VFS) -> None:
        self.vfs = vfs
        self.cache_mode = vfs.cache_mode
        if self.cache_mode in ("writes", "full"):
            # Every write goes to the disk cache here, so FLUSH has nothing to do: without the
            # callback libfuse answers ENOSYS once and the kernel stops sending FLUSH on every
            # close (one round trip less per file). Modes off and minimal stream writes and
            # report upload errors at close, so they keep it.
            self.flush = None
        # set by the mount where the kernel may serve wholly cached files (passthrough.py)
        self.passthrough: Passthrough | None = None
        self._handles: dict[int, Any] = {}
        self._next_fh = itertools.count(1)
        # writes mode with passthrough: the read-only opens streamed from the remote, by the
        # name of the file they read (open(), _move_streams)
        self._streams: dict[str, list[_Stream]] = {}
        self._stream_of: dict[int, _Stream] = {}
        self._lock = threading.Lock()
        self.perms = vfs.perms

    def init_with_config(self, conn: Any, config: Any) -> None:
        """FUSE init: take over libfuse's reply path, where the mount offers passthrough."""
        if self.passthrough is not None and not self.passthrough.install():
            self.passthrough = None

    # --- attributes -------------------------------------------------------------------

    def _attrs(self, e: Entry) -> dict[str, int]:
        perms = self.perms
        if e.special:
            return {
                "st_mode": e.special | (e.mode or 0),
                "st_nlink": 1,
                "st_size": 0,
                "st_blocks": 0,
                "st_blksize": _BLOCK,
                "st_rdev": e.rdev,
                # the owner it was made or chowned to, unless --uid/--gid say otherwise
                "st_uid": perms.uid if perms.uid_explicit or e.uid is None else e.uid,
                "st_gid": perms.gid if perms.gid_explicit or e.gid is None else e.gid,
                "st_mtime": e.mtime_ns,
                "st_atime": e.mtime_ns,
                "st_ctime": e.ctime_ns or e.mtime_ns,
            }
        size = e.size
        return {
            "st_mode": perms.mode(e),
            "st_nlink": 2 if e.is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) >> 9,
            "st_blksize": _BLOCK,
            "st_uid": e.uid if perms.use_real_uid and e.uid is not None else perms.uid,
            "st_gid": e.gid if perms.use_real_gid and e.gid is not None else perms.gid,
            "st_mtime": e.mtime_ns,
            "st_atime": e.mtime_ns,
            "st_ctime": e.ctime_ns or e.mtime_ns,  # chmod, chown and renames move it (local)
        }

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        if fh is not None and path is None:
            handle = self._handles.get(fh)
            if handle is None:
                raise OSError(errno.EBADF, "bad file handle")
            path = handle.path
        return self._attrs(self.vfs.stat(path))

    def statfs(self, path: str) -> dict[str, int]:
        total, free = self.vfs.statfs()
        return {
            "f_bsize": _BLOCK, "f_frsize": _BLOCK,
            "f_blocks": total // _BLOCK, "f_bfree": free // _BLOCK, "f_bavail": free // _BLOCK,
            "f_files": 1 << 30, "f_ffree": 1 << 30, "f_favail": 1 << 30, "f_namemax": 255,
        }

    def access(self, path: str, amode: int) -> int:
        return 0

    # --- directories ------------------------------------------------------------------

    def _register(self, handle: Any) -> int:
        fh = next(self._next_fh)
        self._handles[fh] = handle
        return fh

    def opendir(self, path: str) -> int:
        p = self.vfs.resolve(path)
        # listed now (it is cached for readdir): a remote that cannot list fails the opendir(3),
        # which every ls reports; a failing readdir(3) alone, busybox's ls takes for the end
        self.vfs.list_dir(p)
        return self._register(_DirHandle(p))

    def readdir_with_offset(self, path: str | None, offset: int, fh: int) -> Iterator[tuple[str, dict[str, int], int]]:
        """Entries from `offset` on, with their attributes and offsets.

        Offsets make libfuse3 answer READDIRPLUS with full attributes, so `ls -l` costs the
        kernel no lookup per entry. The listing is a snapshot taken at the first call, as
        POSIX allows, so that offsets stay valid while the directory changes.
        """
        handle = self._handles.get(fh)
        if not isinstance(handle, _DirHandle):
            raise OSError(errno.EBADF, "not a directory handle")
        if handle.entries is None or offset == 0:
            # names and entries only: attributes are made as libfuse takes them, so a huge
            # directory costs one small tuple per name here, not a dict of attributes each
            try:
                handle.entries = [".", "..", *self.vfs.list_dir(handle.path).items()]
            except OSError as e:
                _log_io_error(e)
                raise
        entries, directory, attrs, live = handle.entries, handle.path, self._attrs, self.vfs.live
        for i in range(offset, len(entries)):
            item = entries[i]
            if isinstance(item, str):
                yield item, {"st_mode": stat.S_IFDIR}, i + 1
            else:
                yield item[0], attrs(live(directory, item[0], item[1])), i + 1

    def releasedir(self, path: str | None, fh: int) -> int:
        self._handles.pop(fh, None)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self.vfs.mkdir(path, mode, caller())
        return 0

    def rmdir(self, path: str) -> int:
        self.vfs.rmdir(path)
        return 0

    # --- names ------------------------------------------------------------------------

    def mknod(self, path: str, mode: int, dev: int) -> int:
        handle = self.vfs.mknod(path, mode, dev, caller())
        if handle is not None:
            self.vfs.release(handle)
        return 0

    def symlink(self, target: str, source: str) -> int:
        self.vfs.symlink(target)
        return 0

    def unlink(self, path: str) -> int:
        p = self.vfs.unlink(path)
        if self._streams:
            with self._lock:
                self._drop_streams(p)  # they read a file that is gone: a new one may take the name
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        src, dst = self.vfs.rename(old, new)
        if self._streams:
            with self._lock:
                self._move_streams(src, dst)
        return 0

    def _move_streams(self, src: str, dst: str) -> None:
        """After a rename, under self._lock: the streams of files it moved follow it (they
        decide passthrough, open()); those of a file it replaced no longer stand for the file
        of that name."""
        self._drop_streams(dst)
        prefix = src + "/"
        for path in [q for q in self._streams if q == src or q.startswith(prefix)]:
            moved = dst + path[len(src):]
            streams = self._streams.pop(path)
            for stream in streams:
                stream.path = moved
            self._streams.setdefault(moved, []).extend(streams)

    def _drop_streams(self, path: str) -> None:
        """The file (or directory) at `path` is gone: its streams stand for no file of that
        name any more. Under self._lock."""
        for name in [q for q in self._streams if q == path or q.startswith(path + "/")]:
            for stream in self._streams.pop(name):
                stream.path = None

    def _stream_closed(self, stream: _Stream) -> None:
        with self._lock:
            if stream.path is None:
                return
            streams = self._streams.get(stream.path, [])
            if stream in streams:
                streams.remove(stream)
            if not streams:
                self._streams.pop(stream.path, None)
            stream.path = None

    # --- metadata ---------------------------------------------------------------------

    def chmod(self, path: str | None, mode: int) -> int:
        self.vfs.chmod(path, mode)
        return 0

    def chown(self, path: str | None, uid: int, gid: int) -> int:
        self.vfs.chown(path, uid, gid)
        return 0

    def utimens(self, path: str | None, times: tuple[int | None, int | None] | None = None) -> int:
        self.vfs.utimens(path, times)
        return 0

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self.vfs.truncate(path, length, self._handles.get(fh) if fh else None)
        return 0

    # --- files ------------------------------------------------------------------------

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        handle = self.vfs.create(path, mode, flags, caller())
        if isinstance(handle, CachedHandle):
            return self._open_cached(handle, flags)
        return self._register(handle)

    def open(self, path: str, flags: int) -> int:
        vfs = self.vfs
        if self.passthrough is not None and self.cache_mode == "writes" and not flags & _ACCMODE:
            # a read-only open streamed from the remote is an open the kernel serves through
            # the plugin: while one lasts, no open of that file may start passthrough
            p = vfs.resolve(path)
            with self._lock:
                kind = vfs.open_kind(p, flags)
                if kind == "read":
                    stream = _Stream(p)
                    self._streams.setdefault(p, []).append(stream)
            if kind == "read":
                try:
                    handle = vfs.open_stream(p)
                except BaseException:
                    self._stream_closed(stream)
                    raise
                fh = self._register(handle)
                self._stream_of[fh] = stream
                return fh
        handle = vfs.open(path, flags)
        if isinstance(handle, CachedHandle):
            return self._open_cached(handle, flags)
        return self._register(handle)

    def _open_cached(self, handle: CachedHandle, flags: int) -> int:
        if self.passthrough is None:
            return self._register(handle)
        item = handle.item
        readable = flags & _ACCMODE != os.O_WRONLY
        handle.writable = flags & _ACCMODE != os.O_RDONLY
        try:
            if self.cache_mode == "writes":
                # not beside a read-only open streamed from the remote, and none may turn into
                # a stream meanwhile (open()): asked under the item's lock, then self._lock
                backing_id = item.open_passthrough(self.passthrough, handle.writable, readable,
                                                   refuse=lambda path: path in self._streams, guard=self._lock)
            else:  # mode full streams nothing
                backing_id = item.open_passthrough(self.passthrough, handle.writable, readable)
        except BaseException:
            self.vfs.release(handle)
            raise
        if not backing_id:
            return self._register(handle)
        handle.passthrough = self.passthrough
        fh = self._register(handle)
        self.passthrough.grant(backing_id)  # last: the reply on this thread carries it
        return fh

    def read_into(self, fh: int, view: memoryview, offset: int) -> int:
        # hot path: one dict lookup, then straight into libfuse's buffer
        try:
            return self._handles[fh].read_into(view, offset)
        except OSError as e:
            if e.errno == errno.EIO:  # as rclone's "ReadFileHandle.Read error": the kernel only says EIO
                log.error("%s: read error: %s", getattr(self._handles.get(fh), "path", "?"), e)
            raise

    def write_from(self, fh: int, view: memoryview, offset: int) -> int:
        try:
            return self._handles[fh].write_from(view, offset)
        except OSError as e:  # hot path: logged here, not by a wrapper
            _log_io_error(e)
            raise

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        buf = bytearray(size)
        n = self.read_into(fh, memoryview(buf), offset)
        return bytes(buf[:n])

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return self.write_from(fh, memoryview(data), offset)

    def flush(self, path: str | None, fh: int) -> int:  # type: ignore[no-redef]  # None in cache modes
        handle = self._handles.get(fh)
        if handle is not None:
            handle.flush()
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        handle = self._handles.get(fh)
        if handle is not None:
            self.vfs.fsync(handle, bool(datasync))
        return 0

    def release(self, path: str | None, fh: int) -> int:
        handle = self._handles.pop(fh, None)
        if handle is not None:
            try:
                self.vfs.release(handle)
            finally:
                stream = self._stream_of.pop(fh, None) if isinstance(handle, ReadHandle) else None
                if stream is not None:
                    self._stream_closed(stream)
        return 0

    # --- lifecycle --------------------------------------------------------------------

    def open_files(self) -> int:
        return self.vfs.open_files()

    def close_all(self) -> None:
        """Before an unmount: leave the kernel's passthrough files to it, then commit every
        open file and drain the write-back queue (VFS.close_all)."""
        for handle in list(self._handles.values()):
            if isinstance(handle, CachedHandle) and handle.passthrough is not None:
                if handle.writable:
                    # the kernel writes such a file without us: what it writes from now on
                    # stays in the cache file (through the plugin such writes would fail instead)
                    log.warning("%s is still open for writing at unmount: later writes are not uploaded",
                                handle.path)
                    handle.item.sync_from_disk()  # what it wrote so far is uploaded
                # the kernel keeps the file open in passthrough until the unmount ends: so do
                # we (its backing id and counts), so that an open meanwhile joins it, not EIO
                handle.passthrough = None
        self._handles.clear()
        self._stream_of.clear()
        self.vfs.close_all()


def _log_io_error(e: OSError) -> None:
    if e.errno == errno.EIO:  # the kernel passes on only "Input/output error": say what it was
        log.error("IO error: %s", e)


def _logging_io_errors(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(self: FuseOps, *args: Any) -> Any:
        try:
            return fn(self, *args)
        except OSError as e:
            _log_io_error(e)
            raise
    return wrapper


# as rclone's mount logs "IO error: ..." at ERROR for every EIO it returns (read_into and
# write_from, the hot paths, log their own)
for _name in ("getattr", "opendir", "mkdir", "rmdir", "unlink", "rename", "chmod", "chown", "utimens", "truncate",
              "create", "open", "flush", "fsync", "release"):
    setattr(FuseOps, _name, _logging_io_errors(getattr(FuseOps, _name)))
