"""The VFS: path operations over one Backend, as a filesystem sees them.

It keeps rclone's VFS semantics (directory cache, cache-mode rules, permission flags)
and adds what a POSIX user expects where the backend can store it: chmod, chown and
utimens on a `local` backend change the real files. It knows nothing of FUSE: the mount's
adapter (fuse/ops.py) hands it paths and the caller of each request, and gets back
entries and open-file handles.
"""

from __future__ import annotations

import dataclasses
import errno
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
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    Backend,
    Entry,
)
from ..flags import OptionValues
from .cache import Cache
from .dircache import DirCache
from .handles import Handle, WriteHandle
from .metadata import Metadata
from .openfiles import OpenFiles
from .perms import ROOT, Caller, Perms
from .special import SpecialNodes
from .virtualdirs import VirtualDirOps, VirtualDirs

log = logging.getLogger("pyclone.vfs")

__all__ = ["ROOT", "VFS", "Caller"]

_FAKE_TOTAL = 1 << 50  # what rclone reports as total when the backend can't say (1 PiB)


def _internal(path: str | None) -> str:
    """FUSE paths are '/a/b'; backends want 'a/b'. No path (an unlinked open file) is ENOENT."""
    if path is None:
        raise FileNotFoundError(errno.ENOENT, "file has no name any more")
    return path.strip("/")


class VFS(OpenFiles, Metadata, VirtualDirOps):
    """Paths are '/a/b' or 'a/b' (None: an unlinked open file's, ENOENT); errors are OSError
    with an errno; opens return handles (vfs/handles.py) whose read_into/write_from serve
    the data, and that release() closes."""

    def __init__(self, backend: Backend, opts: OptionValues, explicit: frozenset[str] = frozenset(),
                 cache: Cache | None = None, buffer_size: int = 16 << 20) -> None:
        self.backend = backend
        self.opts = opts
        self.buffer_size = buffer_size
        self.read_only = bool(opts.read_only)
        self.cache_mode = opts.vfs_cache_mode if cache is not None else "off"
        self.cache = cache
        # an object store's directories made here, shown while they are empty (virtualdirs.py)
        self.virtuals = VirtualDirs() if FEATURE_EMPTY_DIRS not in backend.features else None
        self._list_remote = backend.list if self.virtuals is None else self.virtuals.lister(backend.list)
        self._list_backend = self._list if cache is not None else self._list_remote
        self.specials = SpecialNodes()
        self.dircache = DirCache(self._list_with_specials, float(opts.dir_cache_time))
        self._open: set[Any] = set()  # every open file's handle (renames follow them, close_all)
        self._writers: dict[str, WriteHandle] = {}
        self._lock = threading.Lock()
        feats = backend.features
        self._can_chmod = FEATURE_CHMOD in feats
        self._can_chown = FEATURE_CHOWN in feats and os.geteuid() == 0
        self._can_modtime = FEATURE_MODTIME in feats and not opts.no_modtime
        self.perms = Perms(opts, explicit, self._can_chmod, self._can_chown)
        self._root = Entry("", True, mtime_ns=time.time_ns())
        self._root_time = 0.0
        if FEATURE_CHANGE_NOTIFY in backend.features and float(opts.poll_interval) > 0:
            # --poll-interval: the backend reports changed paths; their directories are re-listed
            backend.change_notify(self._changed, float(opts.poll_interval))

    def _changed(self, path: str) -> None:
        self.dircache.forget_tree(path)
        self.dircache.forget_tree(path.rpartition("/")[0])

    # --- attributes -------------------------------------------------------------------

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
        return self.live(head, name, entry)  # the newest size may be local

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
        if self._writers:
            entries = self._with_writers(path, entries)
        if self.virtuals is not None:
            entries = self.virtuals.merge(path, entries)
        if self.specials:
            nodes = self.specials.children(path)
            if nodes:
                names = {e.name for e in nodes}
                entries = [e for e in entries if e.name not in names] + nodes
        return entries

    def _with_writers(self, path: str, entries: list[Entry]) -> list[Entry]:
        """A listing plus the files being written here in cache mode off: a backend that
        uploads to a partial name (sftp, ftp) lists them only once they are closed, and a
        re-listing (an expired --dir-cache-time) must not lose them (rclone keeps them too)."""
        with self._lock:
            pending = [(p, w) for p, w in self._writers.items() if p.rpartition("/")[0] == path]
        if pending:
            names = {e.name for e in entries}
            for p, w in pending:
                name = p.rpartition("/")[2]
                if name not in names:
                    entries.append(Entry(name, False, w.size, w.mtime_ns or time.time_ns(), w.mode))
        return entries

    def _list(self, path: str) -> list[Entry]:
        """A backend listing plus the files written here and not uploaded yet."""
        entries = self._list_remote(path)
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

    def stat(self, path: str | None) -> Entry:
        """The entry at `path`, with the newest size and modtime of a file open here (live())."""
        return self._lookup(self._path(path))

    def resolve(self, path: str | None) -> str:
        """The backend path for a path given to the VFS (see _path)."""
        return self._path(path)

    def list_dir(self, path: str) -> dict[str, Entry]:
        """A directory's entries by name, `path` a backend path as resolve() gives; each entry
        is as listed: live() gives the newest size of a file open here."""
        return self.dircache.children(path)

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

    def live(self, directory: str, name: str, entry: Entry) -> Entry:
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
            live = item.local_attrs() if item is not None else None
            if live is not None:  # open or changed here (what the kernel wrote in passthrough too)
                entry.size, entry.mtime_ns = live
        return entry

    def _check_writable(self, path: str) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, "read-only file system", path)

    def _set_owner(self, path: str, caller: Caller) -> None:
        """New files belong to the caller, as on a local filesystem (root only)."""
        if not self._can_chown:
            return
        uid, gid, _pid = caller
        if uid or gid:
            try:
                self.backend.chown(path, uid, gid)
            except OSError as e:
                log.debug("chown %s: %s", path, e)

    def mknod(self, path: str, mode: int, dev: int, caller: Caller = ROOT) -> Handle | None:
        """A regular file (`mknod` and NFS servers create files this way) is created on the
        remote: its open handle is returned, for the caller to release (after what an open
        needs, e.g. passthrough); a FIFO, socket or device node is kept in memory while
        mounted (special.py), and None returned."""
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFREG:
            return self.create(path, mode, os.O_WRONLY | os.O_EXCL, caller)
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
        uid, gid, _pid = caller
        now = time.time_ns()
        node = Entry(p.rpartition("/")[2], False, 0, now, mode & 0o7777, uid, gid, ctime_ns=now, special=kind,
                     rdev=dev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0)
        self.specials.add(p, node)
        self.dircache.put(p, dataclasses.replace(node))
        return None

    def symlink(self, target: str) -> None:
        # symlink(2): "EPERM: the filesystem does not support the creation of symbolic links"
        raise OSError(errno.EPERM, "symbolic links cannot be stored on the remote", target)

    def mkdir(self, path: str, mode: int, caller: Caller = ROOT) -> None:
        p = self._path(path)
        self._check_writable(p)
        if self.virtuals is not None:
            self._mkdir_virtual(p)
            return
        self.backend.mkdir(p)
        if self._can_chmod:
            self.backend.chmod(p, mode & 0o7777)
        self._set_owner(p, caller)
        self._refresh(p)

    def rmdir(self, path: str) -> int:
        p = self._path(path)
        self._check_writable(p)
        if self.virtuals is not None and self.dircache.children(p):
            # the backend can't tell: its rmdir of a prefix may succeed with objects below it
            raise OSError(errno.ENOTEMPTY, "directory not empty", p)
        if self.specials.has_under(p):
            raise OSError(errno.ENOTEMPTY, "directory not empty", p)
        if self.cache is not None and self.cache.has_pending_under(p):
            # the remote may hold it empty while files in it still wait for their upload
            raise OSError(errno.ENOTEMPTY, "directory not empty (files not uploaded yet)", p)
        self.backend.rmdir(p)
        if self.virtuals is not None:
            self.virtuals.remove(p)
        self.dircache.remove(p)
        if self.cache is not None:
            self.cache.forget_dir(p)
        return 0

    # --- names ------------------------------------------------------------------------

    def unlink(self, path: str) -> str:
        """Remove a file; returns its backend path."""
        p = self._path(path)
        self._check_writable(p)
        if self.specials.remove(p) is not None:
            self.dircache.remove(p)
            return p
        pending = False
        if self.cache is not None:
            item = self.cache.peek(p)
            pending = item is not None and item.pending()
            self.cache.remove(p)
        try:
            self.backend.delete(p)
        except FileNotFoundError:
            if not pending:  # a file never uploaded exists only in the cache
                raise
        self.dircache.remove(p)
        return p

    def rename(self, old: str, new: str) -> tuple[str, str]:
        """Rename a file, directory or special node; returns the (src, dst) backend paths."""
        src, dst = self._path(old), self._path(new, create=True)
        self._check_writable(src)
        entry = self._lookup(src)
        if self.specials.has_under(dst):
            raise OSError(errno.ENOTEMPTY, "directory not empty", dst)
        if entry.special:
            self._rename_special(src, dst)
            return src, dst
        if entry.is_dir and self.cache is not None and self.cache.has_pending_under(dst):
            # replacing a directory that looks empty on the remote would orphan those files
            raise OSError(errno.ENOTEMPTY, "directory not empty (files not uploaded yet)", dst)
        if self.virtuals is not None:
            self._check_rename_target(src, entry, dst)
        # uploads of the file replaced end first; those of the files moved stop counting
        hold = self.cache.begin_rename(src, dst) if self.cache is not None else None
        try:
            self.backend.move(src, dst)
        except FileNotFoundError:
            if not self._nothing_to_move(src, entry):
                self._end_rename(hold, False)
                raise  # else: not uploaded yet, or a virtual directory: it moves here only
        except BaseException:
            self._end_rename(hold, False)
            raise
        if self.cache is not None:
            try:
                self.cache.rename(src, dst)
            finally:
                self._end_rename(hold, True)
        if self.virtuals is not None:
            self.virtuals.move(src, dst)
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
            self._follow_rename(src, dst)
        try:
            self._refresh(dst)
        except FileNotFoundError:
            # not on the remote yet (its upload is pending): show it under its new name now,
            # not when the upload lands or the listing expires
            self.dircache.put(dst, dataclasses.replace(entry))
        return src, dst

    def _end_rename(self, hold: Any, done: bool) -> None:
        if hold is not None:
            assert self.cache is not None
            self.cache.end_rename(hold, done)

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

    # --- the filesystem ---------------------------------------------------------------

    def statfs(self) -> tuple[int, int]:
        """(total, free) bytes, as rclone's mount reports them."""
        about = self.backend.about()
        total = about.total if about.total >= 0 else _FAKE_TOTAL
        if self.opts.vfs_disk_space_total_size >= 0:
            total = int(self.opts.vfs_disk_space_total_size)
        free = about.free if about.free >= 0 else total
        if self.opts.vfs_used_is_size:
            free = max(0, total - self._used_by_files())
        return total, min(free, total)

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

    # --- lifecycle --------------------------------------------------------------------

    def forget_all(self) -> None:
        """SIGHUP / vfs forget: drop every cached listing."""
        self.dircache.forget_all()
        self._root_time = 0.0

    def uploaded(self, path: str, entry: Entry) -> None:
        """The write-back queue finished an upload: show the remote's own metadata (`entry`,
        what the backend said of the object just after it; not asked again)."""
        self.dircache.put(path, dataclasses.replace(entry))

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
