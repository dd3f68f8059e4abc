"""The VFS: a fusepy-API operations object over one Backend.

It keeps rclone's VFS semantics (directory cache, cache-mode rules, permission flags)
and adds what a POSIX user expects where the backend can store it: chmod, chown and
utimens on a `local` backend change the real files.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import logging
import os
import stat
import threading
import time
from typing import Any

from ..backends.base import (
    FEATURE_CHANGE_NOTIFY,
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_MODTIME,
    FEATURE_RANDOM_WRITE,
    Backend,
    Entry,
)
from ..flags import PROCESS_UMASK, OptionValues
from ..fuse_passthrough import Passthrough
from .cache import Cache
from .dircache import DirCache
from .handles import CachedHandle, ReadHandle, WriteHandle
from .special import SpecialNodes

log = logging.getLogger("pyclone.vfs")

_ACCMODE = os.O_ACCMODE
_FAKE_TOTAL = 1 << 50  # what rclone reports as total when the backend can't say (1 PiB)
_BLOCK = 4096


class _DirHandle:
    __slots__ = ("path", "entries")

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Any] | None = None

    def release(self) -> None:
        pass

    def flush(self) -> None:
        pass


def _internal(path: str | None) -> str:
    """FUSE paths are '/a/b'; backends want 'a/b'. No path (an unlinked open file) is ENOENT."""
    if path is None:
        raise FileNotFoundError(errno.ENOENT, "file has no name any more")
    return path.strip("/")


class _Stream:
    """A read-only open streamed from the remote (writes mode with passthrough): the name of
    the file it reads, None once that file was replaced or the open closed."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path: str | None = path


class VFS:
    """fusepy-style operations. Attribute names below are looked up by the FUSE binding."""

    use_ns = True  # times are integer nanoseconds
    # flag_nopath would save libfuse a path lookup per read/write, but the binding then
    # passes no path to readdir, fchmod or futimens either, and those need it.
    flag_nullpath_ok = True

    def __init__(self, backend: Backend, opts: OptionValues, explicit: frozenset[str] = frozenset(),
                 cache: Cache | None = None, buffer_size: int = 16 << 20) -> None:
        self.backend = backend
        self.opts = opts
        self.buffer_size = buffer_size
        self.read_only = bool(opts.read_only)
        self.cache_mode = opts.vfs_cache_mode if cache is not None else "off"
        self.cache = cache
        if self.cache_mode in ("writes", "full"):
            # Every write goes to the disk cache here, so FLUSH has nothing to do: without the
            # callback libfuse answers ENOSYS once and the kernel stops sending FLUSH on every
            # close (one round trip less per file). Modes off and minimal stream writes and
            # report upload errors at close, so they keep it.
            self.flush = None
        self._list_backend = self._list if cache is not None else backend.list
        # set by the mount where the kernel may serve wholly cached files (fuse_passthrough.py)
        self.passthrough: Passthrough | None = None
        self.specials = SpecialNodes()
        self.dircache = DirCache(self._list_with_specials, float(opts.dir_cache_time))
        self._handles: dict[int, Any] = {}
        self._next_fh = itertools.count(1)
        self._writers: dict[str, WriteHandle] = {}
        # writes mode with passthrough: the read-only opens streamed from the remote, by the
        # name of the file they read (open(), _move_streams)
        self._streams: dict[str, list[_Stream]] = {}
        self._lock = threading.Lock()
        feats = backend.features
        self._can_chmod = FEATURE_CHMOD in feats
        self._can_chown = FEATURE_CHOWN in feats and os.geteuid() == 0
        self._can_modtime = FEATURE_MODTIME in feats and not opts.no_modtime
        umask = int(opts.umask)
        # rclone's attributes unless the backend stores real ones and the user didn't override
        self._dir_mode = stat.S_IFDIR | (int(opts.dir_perms) & ~umask & 0o7777)
        self._file_mode = stat.S_IFREG | (int(opts.file_perms) & ~umask & 0o7777)
        self._use_real_mode = self._can_chmod and not explicit & {"umask", "dir_perms", "file_perms"}
        self._uid = int(opts.uid)
        self._gid = int(opts.gid)
        self._uid_explicit, self._gid_explicit = "uid" in explicit, "gid" in explicit
        self._use_real_uid = self._can_chown and "uid" not in explicit
        self._use_real_gid = self._can_chown and "gid" not in explicit
        self._root = Entry("", True, mtime_ns=time.time_ns())
        self._root_time = 0.0
        if FEATURE_CHANGE_NOTIFY in backend.features and float(opts.poll_interval) > 0:
            # --poll-interval: the backend reports changed paths; their directories are re-listed
            backend.change_notify(self._changed, float(opts.poll_interval))

    def init_with_config(self, conn: Any, config: Any) -> None:
        """FUSE init: take over libfuse's reply path, where the mount offers passthrough."""
        if self.passthrough is not None and not self.passthrough.install():
            self.passthrough = None

    def _changed(self, path: str) -> None:
        self.dircache.forget_tree(path)
        self.dircache.forget_tree(path.rpartition("/")[0])

    # --- attributes -------------------------------------------------------------------

    def _attrs(self, e: Entry) -> dict[str, int]:
        if e.special:
            return self._special_attrs(e)
        if e.is_dir:
            mode = self._dir_mode
            if self._use_real_mode and e.mode is not None:
                mode = stat.S_IFDIR | e.mode
        else:
            mode = self._file_mode
            if self._use_real_mode and e.mode is not None:
                mode = stat.S_IFREG | e.mode
        size = e.size
        return {
            "st_mode": mode,
            "st_nlink": 2 if e.is_dir else 1,
            "st_size": size,
            "st_blocks": (size + 511) >> 9,
            "st_blksize": _BLOCK,
            "st_uid": e.uid if self._use_real_uid and e.uid is not None else self._uid,
            "st_gid": e.gid if self._use_real_gid and e.gid is not None else self._gid,
            "st_mtime": e.mtime_ns,
            "st_atime": e.mtime_ns,
            "st_ctime": e.ctime_ns or e.mtime_ns,  # chmod, chown and renames move it (local)
        }

    def _special_attrs(self, e: Entry) -> dict[str, int]:
        return {
            "st_mode": e.special | (e.mode or 0),
            "st_nlink": 1,
            "st_size": 0,
            "st_blocks": 0,
            "st_blksize": _BLOCK,
            "st_rdev": e.rdev,
            # the owner it was made or chowned to, unless --uid/--gid say otherwise
            "st_uid": self._uid if self._uid_explicit or e.uid is None else e.uid,
            "st_gid": self._gid if self._gid_explicit or e.gid is None else e.gid,
            "st_mtime": e.mtime_ns,
            "st_atime": e.mtime_ns,
            "st_ctime": e.ctime_ns or e.mtime_ns,
        }

    def _lookup(self, path: str) -> Entry:
        if not path:
            now = time.monotonic()
            if now - self._root_time > 1.0:
                self._root = self.backend.stat("")
                self._root_time = now
            return self._root
        known, entry = self.dircache.cached_entry(path)
        if not known:
            head = path.rpartition("/")[0]
            parent = self._lookup(head)  # raises ENOENT if a parent is missing
            if not parent.is_dir:
                raise OSError(errno.ENOTDIR, "not a directory", head)
            entry = self.dircache.children(head).get(path.rpartition("/")[2])
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        head, _, name = path.rpartition("/")
        return self._live(head, name, entry)  # the newest size may be local

    def _path(self, path: str | None, create: bool = False) -> str:
        """The backend path for a FUSE path; with --vfs-case-insensitive, an existing name that
        differs only by case stands in for a missing exact one (rclone's fixup)."""
        p = _internal(path)
        if not self.opts.vfs_case_insensitive or not p:
            return p
        parts = p.split("/")
        fixed: list[str] = []
        for i, name in enumerate(parts):
            head = "/".join(fixed)
            try:
                children = self.dircache.children(head)
            except OSError:
                return "/".join(fixed + parts[i:])
            if name not in children:
                matches = [c for c in children if c.lower() == name.lower()]
                if len(matches) == 1 and not (create and i == len(parts) - 1):
                    name = matches[0]
            fixed.append(name)
        return "/".join(fixed)

    def _list_with_specials(self, path: str) -> list[Entry]:
        entries = self._list_backend(path)
        if self.specials:
            nodes = self.specials.children(path)
            if nodes:
                names = {e.name for e in nodes}
                entries = [e for e in entries if e.name not in names] + nodes
        return entries

    def _list(self, path: str) -> list[Entry]:
        """A backend listing plus the files written here and not uploaded yet."""
        entries = self.backend.list(path)
        assert self.cache is not None
        dirty = self.cache.dirty_children(path)
        if dirty:
            names = {e.name for e in entries}
            for item in dirty:
                name = item.path.rpartition("/")[2]
                if name not in names:
                    entries.append(Entry(name, False, item.size, item.modtime_ns, item.mode, item.uid, item.gid))
        return entries

    def _remote_entry(self, p: str) -> Entry | None:
        """The object as the backend has it (None: not there), bypassing the cache overlay."""
        try:
            entry = self.backend.stat(p)
        except FileNotFoundError:
            return None
        return None if entry.is_dir else entry

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        if fh is not None and path is None:
            handle = self._handles.get(fh)
            if handle is None:
                raise OSError(errno.EBADF, "bad file handle")
            path = "/" + handle.path
        return self._attrs(self._lookup(self._path(path)))

    def _refresh(self, path: str) -> Entry:
        """Re-read one entry from the backend after we changed it."""
        try:
            entry = self.backend.stat(path)
        except FileNotFoundError:
            self.dircache.remove(path)
            raise
        self.dircache.put(path, entry)
        return entry

    # --- directories ------------------------------------------------------------------

    def opendir(self, path: str) -> int:
        return self._register(_DirHandle(self._path(path)))

    def readdir_with_offset(self, path: str | None, offset: int, fh: int) -> Any:
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
            handle.entries = [".", "..", *self.dircache.children(handle.path).items()]
        entries, directory, attrs, live = handle.entries, handle.path, self._attrs, self._live
        for i in range(offset, len(entries)):
            item = entries[i]
            if isinstance(item, str):
                yield item, {"st_mode": stat.S_IFDIR}, i + 1
            else:
                yield item[0], attrs(live(directory, item[0], item[1])), i + 1

    def _live(self, directory: str, name: str, entry: Entry) -> Entry:
        """A listed entry, with the size of a file being written here (the kernel keeps
        what readdirplus tells it, so a stale size must not reach it)."""
        if not self._writers and self.cache is None:
            return entry
        path = f"{directory}/{name}" if directory else name
        writer = self._writers.get(path)
        if writer is not None and writer.size > entry.size:
            entry.size = writer.size
        if self.cache is not None:
            item = self.cache.peek(path)
            if item is not None and (item.opens or item.dirty):
                if item.passthrough_writers:
                    item.sync_from_disk()  # the kernel writes it without telling us
                entry.size, entry.mtime_ns = item.size, item.modtime_ns
        return entry

    def releasedir(self, path: str | None, fh: int) -> int:
        self._handles.pop(fh, None)
        return 0

    def _check_writable(self, path: str) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, "read-only file system", path)

    def _set_owner(self, path: str, is_dir: bool) -> None:
        """New files belong to the caller, as on a local filesystem (root only)."""
        if not self._can_chown:
            return
        from .._vendor.mfusepy import fuse_get_context

        uid, gid, _pid = fuse_get_context()
        if uid or gid:
            try:
                self.backend.chown(path, uid, gid)
            except OSError as e:
                log.debug("chown %s: %s", path, e)

    def mknod(self, path: str, mode: int, dev: int) -> int:
        """A regular file (`mknod` and NFS servers create files this way) is created on the
        remote; a FIFO, socket or device node is kept in memory while mounted (special.py)."""
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFREG:
            self.release(None, self.create(path, mode, os.O_WRONLY | os.O_EXCL))
            return 0
        if kind not in (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
            raise OSError(errno.EINVAL, "not a file type mknod can create", path)
        p = self._path(path, create=True)
        self._check_writable(p)
        try:
            self._lookup(p)
        except FileNotFoundError:
            pass  # and a missing parent raised ENOENT, a file as parent ENOTDIR
        else:
            raise FileExistsError(errno.EEXIST, "file exists", p)
        from .._vendor.mfusepy import fuse_get_context

        uid, gid, _pid = fuse_get_context()
        now = time.time_ns()
        node = Entry(p.rpartition("/")[2], False, 0, now, mode & 0o7777, uid, gid, ctime_ns=now, special=kind,
                     rdev=dev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0)
        self.specials.add(p, node)
        self.dircache.put(p, dataclasses.replace(node))
        return 0

    def symlink(self, target: str, source: str) -> int:
        # symlink(2): "EPERM: the filesystem does not support the creation of symbolic links"
        raise OSError(errno.EPERM, "symbolic links cannot be stored on the remote", target)

    def mkdir(self, path: str, mode: int) -> int:
        p = self._path(path)
        self._check_writable(p)
        self.backend.mkdir(p)
        if self._can_chmod:
            self.backend.chmod(p, mode & 0o7777)
        self._set_owner(p, True)
        self._refresh(p)
        return 0

    def rmdir(self, path: str) -> int:
        p = self._path(path)
        self._check_writable(p)
        if self.specials.has_under(p):
            raise OSError(errno.ENOTEMPTY, "directory not empty", p)
        if self.cache is not None and self.cache.has_pending_under(p):
            # the remote may hold it empty while files in it still wait for their upload
            raise OSError(errno.ENOTEMPTY, "directory not empty (files not uploaded yet)", p)
        self.backend.rmdir(p)
        self.dircache.remove(p)
        if self.cache is not None:
            self.cache.forget_dir(p)
        return 0

    # --- names ------------------------------------------------------------------------

    def unlink(self, path: str) -> int:
        p = self._path(path)
        self._check_writable(p)
        if self.specials.remove(p) is not None:
            self.dircache.remove(p)
            return 0
        pending = False
        if self.cache is not None:
            item = self.cache.peek(p)
            pending = item is not None and item.dirty
            self.cache.remove(p)
        if self._streams:
            with self._lock:
                self._drop_streams(p)  # they read a file that is gone: a new one may take the name
        try:
            self.backend.delete(p)
        except FileNotFoundError:
            if not pending:  # a file never uploaded exists only in the cache
                raise
        self.dircache.remove(p)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        src, dst = self._path(old), self._path(new, create=True)
        self._check_writable(src)
        entry = self._lookup(src)
        if self.specials.has_under(dst):
            raise OSError(errno.ENOTEMPTY, "directory not empty", dst)
        if entry.special:
            return self._rename_special(src, dst)
        if entry.is_dir and self.cache is not None and self.cache.has_pending_under(dst):
            # replacing a directory that looks empty on the remote would orphan those files
            raise OSError(errno.ENOTEMPTY, "directory not empty (files not uploaded yet)", dst)
        replaced = self._stop_upload_of_replaced(dst) if self.cache is not None and src != dst else None
        try:
            self.backend.move(src, dst)
        except FileNotFoundError:
            item = self.cache.peek(src) if self.cache is not None else None
            if item is None or not item.dirty:
                self._resume_upload(replaced)
                raise  # else: not uploaded yet; it will be uploaded under its new name
        except BaseException:
            self._resume_upload(replaced)
            raise
        if self.cache is not None:
            self.cache.rename(src, dst)
        self.specials.remove(dst)  # a file or directory moved over a special node
        self.dircache.remove(src)
        self.dircache.remove(dst)
        if entry.is_dir:
            self.dircache.forget_tree(src)
            self.specials.move(src, dst)
        with self._lock:
            writer = self._writers.pop(src, None)
            if writer is not None:
                writer.path = dst
                self._writers[dst] = writer
            self._move_streams(src, dst)
        try:
            self._refresh(dst)
        except FileNotFoundError:
            # not on the remote yet (its upload is pending): show it under its new name now,
            # not when the upload lands or the listing expires
            self.dircache.put(dst, dataclasses.replace(entry))
        return 0

    def _stop_upload_of_replaced(self, dst: str) -> Any:
        """Before a rename over a file not uploaded yet: an upload of it running now ends first
        (its item's lock), and none starts later (it is no longer dirty), or it would land on
        the remote after the move and put the replaced bytes back over the renamed file.
        Returns the item to resume (_resume_upload) if the rename fails."""
        assert self.cache is not None
        item = self.cache.peek(dst)
        if item is None:
            return None
        with item.lock:
            if not item.dirty or item.opens:
                return None  # nothing queued (an open one is uploaded only after its close)
            item.dirty = False
        return item

    def _resume_upload(self, item: Any) -> None:
        if item is not None:
            with item.lock:
                item.dirty = True
            self.cache.writeback.schedule(item.path)

    def _rename_special(self, src: str, dst: str) -> int:
        try:
            target = self._lookup(dst)
        except FileNotFoundError:
            target = None
        if target is not None and not target.special:
            if target.is_dir:
                raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
            self.unlink("/" + dst)  # a regular file replaced by the node
        self.specials.move(src, dst)  # over a node of that name too
        node = self.specials.get(dst)
        assert node is not None
        node.ctime_ns = time.time_ns()
        self.dircache.remove(src)
        self.dircache.put(dst, dataclasses.replace(node))
        return 0

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

    # --- metadata ---------------------------------------------------------------------

    def _pending(self, p: str) -> Any:
        """The cache item of a file whose upload is still pending, else None."""
        if self.cache is None:
            return None
        item = self.cache.peek(p)
        return item if item is not None and item.dirty else None

    def _pending_meta(self, p: str, **attrs: int) -> bool:
        """Keep chmod/chown of a file not uploaded yet; the upload applies them."""
        item = self._pending(p)
        if item is None:
            return False
        for key, value in attrs.items():
            setattr(item, key, value)
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
            if item is not None and (item.opens or item.dirty):
                with item.lock:
                    opened_only = False
                    if item.passthrough_writers:
                        item.sync_from_disk()  # a write by the kernel before it must not win over it
                        # dirty only because a writer is open (as `touch` opens the file): the
                        # remote takes the time now, as for a clean file, not a whole upload
                        opened_only = not item.kernel_wrote and item.clean_before is not None
                        if opened_only:
                            item.clean_before = mtime
                        else:
                            item.touched()
                    item.modtime_ns = mtime  # the upload carries it
                    if not item.opens:
                        item.persist()
                    pending = item.dirty and not opened_only
                if pending:
                    self.dircache.put(p, Entry(p, False, item.size, mtime))
                    return 0
        writer = self._writers.get(p)
        if writer is not None:
            writer.mtime_ns = mtime  # applied when the upload completes
        if self._can_modtime:
            try:
                self.backend.set_modtime(p, mtime)
            except FileNotFoundError:
                if writer is None:
                    raise
            else:
                remote = self._refresh(p)
                if self.cache is not None:
                    self.cache.times_changed(p, remote)
        return 0

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        handle = self._handles.get(fh) if fh else None
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

    def statfs(self, path: str) -> dict[str, int]:
        about = self.backend.about()
        total = about.total if about.total >= 0 else _FAKE_TOTAL
        if self.opts.vfs_disk_space_total_size >= 0:
            total = int(self.opts.vfs_disk_space_total_size)
        free = about.free if about.free >= 0 else total
        if self.opts.vfs_used_is_size:
            free = max(0, total - self._used_by_files())
        free = min(free, total)
        return {
            "f_bsize": _BLOCK, "f_frsize": _BLOCK,
            "f_blocks": total // _BLOCK, "f_bfree": free // _BLOCK, "f_bavail": free // _BLOCK,
            "f_files": 1 << 30, "f_ffree": 1 << 30, "f_favail": 1 << 30, "f_namemax": 255,
        }

    def _used_by_files(self) -> int:
        """--vfs-used-is-size: add up every file, as `rclone size` does (cached for
        --dir-cache-time: it lists the whole remote)."""
        now = time.monotonic()
        cached = getattr(self, "_used_cache", None)
        if cached is not None and now - cached[0] < float(self.opts.dir_cache_time):
            return cached[1]
        total, todo = 0, [""]
        while todo:
            directory = todo.pop()
            for e in self.backend.list(directory):
                if e.is_dir:
                    todo.append(f"{directory}/{e.name}" if directory else e.name)
                else:
                    total += e.size
        self._used_cache = (now, total)
        return total

    def access(self, path: str, amode: int) -> int:
        return 0

    # --- files ------------------------------------------------------------------------

    def _register(self, handle: Any) -> int:
        fh = next(self._next_fh)
        self._handles[fh] = handle
        return fh

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

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        p = self._path(path)
        self._check_writable(p)
        if self._open_kind(p, flags | os.O_CREAT) == "cached":
            return self._open_cached(p, flags | os.O_TRUNC, mode)
        bits = mode & 0o7777
        handle = self._new_writer(p, truncated=True, mode=bits if self._can_chmod else None)
        if self._can_chmod and bits & (PROCESS_UMASK | 0o7000):
            self.backend.chmod(p, bits)  # bits the umask took or open(2) may drop: set them
        self._set_owner(p, False)
        if self._can_chmod or self._can_chown:
            self._refresh(p)  # the backend made the file: show its real metadata
        else:
            self.dircache.put(p, Entry(p, False, 0, time.time_ns()))
        return self._register(handle)

    def _open_kind(self, p: str, flags: int) -> str:
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
            if item is not None and (item.opens or item.dirty):
                return "cached"  # local changes not uploaded yet: read them, not the remote
        if read and write:
            # off mode, as rclone: read+write of a file being created or truncated opens it write
            # only ("hope the user doesn't want to read": reads get EPERM); O_CREAT reaches here
            # only from create(), the kernel strips it from opens of existing files
            if flags & (os.O_TRUNC | os.O_CREAT):
                return "write"
            raise OSError(errno.EPERM, "can't open for read and write without --vfs-cache-mode >= minimal", p)
        return "write" if write else "read"

    def open(self, path: str, flags: int) -> int:
        p = self._path(path)
        if self.passthrough is not None and self.cache_mode == "writes" and not flags & _ACCMODE:
            # a read-only open streamed from the remote is an open the kernel serves through
            # the plugin: while one lasts, no open of that file may start passthrough
            with self._lock:
                kind = self._open_kind(p, flags)
                if kind == "read":
                    stream = _Stream(p)
                    self._streams.setdefault(p, []).append(stream)
            if kind == "read":
                try:
                    fh = self._open_stream(p)
                except BaseException:
                    self._stream_closed(stream)
                    raise
                self._handles[fh].stream = stream
                return fh
        else:
            kind = self._open_kind(p, flags)
        if kind == "cached":
            if flags & _ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                self._check_writable(p)
            entry = self._lookup(p)
            if entry.is_dir:
                raise OSError(errno.EISDIR, "is a directory", p)
            return self._open_cached(p, flags, None)
        if kind == "read":
            return self._open_stream(p)
        self._check_writable(p)
        try:
            exists = self._lookup(p) is not None
        except FileNotFoundError:
            exists = False
        return self._register(self._new_writer(p, truncated=bool(flags & os.O_TRUNC) or not exists))

    def _open_stream(self, p: str) -> int:
        entry = self._lookup(p)
        if entry.is_dir:
            raise OSError(errno.EISDIR, "is a directory", p)
        return self._register(ReadHandle(self.backend, p, float(self.opts.vfs_read_wait),
                                         bool(self.opts.no_seek), int(self.opts.vfs_read_chunk_size),
                                         int(self.opts.vfs_read_chunk_size_limit), entry.size,
                                         self.buffer_size))

    def _move_streams(self, src: str, dst: str) -> None:
        """A rename, under self._lock. Files streamed from the remote follow it (later reads
        reopen the remote under the new name), and so do their entries in _streams, which
        decide passthrough (open()); the streams of files it replaced no longer stand for the
        file of that name."""
        prefix = src + "/"
        for handle in list(self._handles.values()):
            if isinstance(handle, ReadHandle) and (handle.path == src or handle.path.startswith(prefix)):
                handle.path = dst + handle.path[len(src):]
        if not self._streams:
            return
        self._drop_streams(dst)
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

    def _open_cached(self, p: str, flags: int, create_mode: int | None) -> int:
        assert self.cache is not None
        item = self.cache.get(p)
        # a create truncates whatever the remote holds: no need to ask it first (one stat and
        # one exception less per new file)
        lookup = (lambda: None) if create_mode is not None else (lambda: self._remote_entry(p))
        item.open(lookup, truncate=bool(flags & os.O_TRUNC))
        if create_mode is not None:
            item.mode = create_mode & 0o7777 if self._can_chmod else None
            if self._can_chown:
                from .._vendor.mfusepy import fuse_get_context

                item.uid, item.gid, _pid = fuse_get_context()
        readable = flags & _ACCMODE != os.O_WRONLY
        handle = CachedHandle(item, readable, bool(flags & os.O_APPEND))
        if create_mode is not None or flags & os.O_TRUNC:
            self.dircache.put(p, Entry(p, False, item.size, item.modtime_ns, item.mode, item.uid, item.gid))
        if self.passthrough is not None:
            handle.writable = flags & _ACCMODE != os.O_RDONLY
            try:
                if self.cache_mode == "writes":
                    # the item's lock first (a fetch may hold it a while), then no read-only
                    # open may turn into a stream meanwhile (open())
                    with item.lock, self._lock:
                        streamed = p in self._streams
                        backing_id = 0 if streamed else item.open_passthrough(
                            self.passthrough, handle.writable, readable)
                else:  # mode full streams nothing
                    backing_id = item.open_passthrough(self.passthrough, handle.writable, readable)
            except BaseException:
                item.close()
                raise
            if backing_id:
                handle.passthrough = self.passthrough
                fh = self._register(handle)
                self.passthrough.grant(backing_id)  # last: the reply on this thread carries it
                return fh
        return self._register(handle)

    def read_into(self, fh: int, view: memoryview, offset: int) -> int:
        # hot path: one dict lookup, then straight into libfuse's buffer
        return self._handles[fh].read_into(view, offset)

    def write_from(self, fh: int, view: memoryview, offset: int) -> int:
        return self._handles[fh].write_from(view, offset)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        buf = bytearray(size)
        n = self.read_into(fh, memoryview(buf), offset)
        return bytes(buf[:n])

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return self.write_from(fh, memoryview(data), offset)

    def flush(self, path: str | None, fh: int) -> int:
        handle = self._handles.get(fh)
        if handle is not None:
            handle.flush()
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        # rclone's mount answers fsync without doing anything; here the bytes reach the disk
        # they are on (the backend's file in mode off, the cache file in the cache modes)
        handle = self._handles.get(fh)
        if isinstance(handle, (WriteHandle, CachedHandle)):
            handle.fsync(bool(datasync))
        return 0

    def release(self, path: str | None, fh: int) -> int:
        handle = self._handles.pop(fh, None)
        if handle is not None:
            try:
                handle.release()
            finally:
                if isinstance(handle, ReadHandle) and handle.stream is not None:
                    self._stream_closed(handle.stream)
        return 0

    # --- lifecycle --------------------------------------------------------------------

    def forget_all(self) -> None:
        """SIGHUP / vfs forget: drop every cached listing."""
        self.dircache.forget_all()
        self._root_time = 0.0

    def uploaded(self, path: str) -> None:
        """The write-back queue finished an upload: show the remote's own metadata."""
        try:
            self._refresh(path)
        except FileNotFoundError:
            pass

    def open_files(self) -> int:
        return len(self._handles)

    def close_all(self) -> None:
        """Commit every open upload and drain the write-back queue; called before unmount."""
        for fh in list(self._handles):
            handle = self._handles.pop(fh, None)
            if handle is None:
                continue
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
            try:
                handle.release()
            except OSError as e:
                log.error("closing %s at unmount: %s", handle.path, e)
        if self.cache is not None:
            self.cache.shutdown()

    # --- remote control (rc vfs/forget, vfs/refresh) --------------------------------------

    def forget_path(self, path: str, is_dir: bool) -> None:
        """rc vfs/forget file=path (is_dir False) or dir=path: the next lookup of the name, or of
        anything under the directory, is answered from the backend. `path` is a clean
        relative path ('' is the root: dir= forgets the whole cache, as forget_all)."""
        self.dircache.forget_path(path, is_dir)
        if is_dir and not path:
            self._root_time = 0.0

    def refresh_dir(self, path: str, recursive: bool = False) -> int:
        """rc vfs/refresh: read a directory (and with `recursive` everything below it) from the
        backend now. Returns how many directories were listed; ENOENT/EINVAL as OSError."""
        if path:
            self.dircache.forget_path(path, False)  # its parent's listing may be what hides it
        entry = self._lookup(path)
        if not entry.is_dir:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        todo, listed = [path], 0
        while todo:
            directory = todo.pop()
            children = self.dircache.refill(directory)
            listed += 1
            if recursive:
                todo.extend(f"{directory}/{name}" if directory else name
                            for name, e in children.items() if e.is_dir)
        return listed
