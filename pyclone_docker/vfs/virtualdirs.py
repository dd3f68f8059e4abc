"""Directories made through the mount on a backend that cannot hold empty ones (rclone's
"virtual" directory entries, vfs/dir.go's vAddDir).

On an object store a directory exists only while an object lies below it: `mkdir` stores
nothing, and a listing of the new name finds nothing. The VFS remembers such a directory
here and shows it, empty, as long as the mount lives:

- in the listing of its parent (merge), even after the parent's cached listing expired;
- as an empty directory itself (`lister`: a listing that finds nothing reads as empty);
- above it, every parent up to the root is shown too, so that it stays reachable even when a
  parent that was real loses its last object.

A directory stops being virtual once a listing of its parent shows it for real (an object
was uploaded below it); from then on it lives and vanishes with its objects, as rclone
accepts. rmdir forgets it (and what is below it); a rename moves it and what is below it.

A VFS over a backend with FEATURE_EMPTY_DIRS has none of this (no VirtualDirs at all).
Every method is thread safe, in memory only, and never waits for remote I/O.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

from ..backends.base import Entry


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


class VirtualDirs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._own: dict[str, int] = {}  # a virtual directory's path -> its modtime (ns)
        # a directory -> {child name: how many virtual directories lie at or below that child}
        self._below: dict[str, dict[str, int]] = {}
        self._times: dict[str, int] = {}  # the modtime shown for each path counted in _below

    def __bool__(self) -> bool:
        return bool(self._own)

    def __contains__(self, path: str) -> bool:
        """Whether `path` itself is virtual (made here, not listed for real yet)."""
        return path in self._own

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._own)

    # --- changes ------------------------------------------------------------------------

    def add(self, path: str, mtime_ns: int | None = None) -> None:
        """mkdir made `path` (not the root), and the backend stored nothing the listings show."""
        when = time.time_ns() if mtime_ns is None else mtime_ns
        with self._lock:
            self._add(path, when)

    def remove(self, path: str) -> None:
        """rmdir of `path`: it and every virtual directory below it are forgotten."""
        if not self._own:
            return
        with self._lock:
            for p in [p for p in self._own if _under(p, path)]:
                self._drop(p)

    def move(self, src: str, dst: str) -> None:
        """A rename of `src` to `dst`: the virtual directories at and below `src` move along;
        those at and below `dst` (an empty directory renamed over) are gone."""
        if not self._own:
            return
        with self._lock:
            for p in [p for p in self._own if _under(p, dst)]:
                self._drop(p)
            moving = [(p, self._own[p]) for p in self._own if _under(p, src)]
            for p, _when in moving:
                self._drop(p)
            for p, when in moving:
                self._add(dst + p[len(src):], when)

    def _add(self, path: str, when: int) -> None:
        if path in self._own:
            return
        self._own[path] = when
        self._count(path, 1, when)

    def _drop(self, path: str) -> None:
        if self._own.pop(path, None) is not None:
            self._count(path, -1, 0)

    def _count(self, path: str, n: int, when: int) -> None:
        """Add `n` to the count of every (parent, name) pair from `path` up to the root."""
        p = path
        while p:
            head, _, name = p.rpartition("/")
            kids = self._below.setdefault(head, {})
            count = kids.get(name, 0) + n
            if count > 0:
                kids[name] = count
                self._times.setdefault(p, when)
            else:
                kids.pop(name, None)
                self._times.pop(p, None)
                if not kids:
                    del self._below[head]
            p = head

    # --- listings -----------------------------------------------------------------------

    def keeps(self, path: str) -> bool:
        """Whether `path` is a directory shown here (virtual, or with a virtual one below it),
        so that a listing of it that finds nothing reads as empty."""
        if not self._own:
            return False
        with self._lock:
            return path in self._own or path in self._below

    def lister(self, list_remote: Callable[[str], list[Entry]]) -> Callable[[str], list[Entry]]:
        """`list_remote`, with a virtual directory's FileNotFoundError read as empty (as rclone
        reads fs.ErrorDirNotFound: directories are made on the fly)."""

        def list_or_empty(path: str) -> list[Entry]:
            try:
                return list_remote(path)
            except FileNotFoundError:
                if self.keeps(path):
                    return []
                raise

        return list_or_empty

    def merge(self, directory: str, entries: list[Entry]) -> list[Entry]:
        """A fresh listing of `directory`: the names it shows stop being virtual; the virtual
        ones it lacks (and the parents of virtual ones) are added as empty directories."""
        if directory not in self._below:  # no lock: a dict lookup is atomic, and an add racing
            return entries  # with this listing puts its entry into the cache itself
        with self._lock:
            kids = self._below.get(directory)
            if not kids:
                return entries
            listed = {e.name for e in entries}
            for name in listed.intersection(kids):
                self._drop(_join(directory, name))  # on the remote now: real
            kids = self._below.get(directory, {})
            now = time.time_ns()
            extra = [Entry(name, True, mtime_ns=self._times.get(_join(directory, name), now))
                     for name in kids if name not in listed]
        return entries + extra if extra else entries


class VirtualDirOps:
    """A part of VFS (vfs.py) over a backend without empty directories (`virtuals` set): the
    checks its mkdir, rmdir and rename cannot leave to such a backend."""

    def _mkdir_virtual(self, p: str) -> None:
        """mkdir on a backend without empty directories: the backend may store nothing (a
        marker at most), so the name is checked here and kept as a virtual directory."""
        head, _, name = p.rpartition("/")
        if not self._lookup(head).is_dir:  # a missing parent is ENOENT
            raise OSError(errno.ENOTDIR, "not a directory", head)
        if name in self.dircache.children(head):
            raise FileExistsError(errno.EEXIST, "file exists", p)
        self.backend.mkdir(p)
        now = time.time_ns()
        self.virtuals.add(p, now)
        self.dircache.put(p, Entry(name, True, mtime_ns=now))

    def _nothing_to_move(self, src: str, entry: Entry) -> bool:
        """Whether a backend's ENOENT for moving `src` is fine: a file not uploaded yet (it will
        be, under its new name), or a directory the backend does not hold (virtual, or with
        only files not uploaded yet)."""
        if not entry.is_dir:
            item = self.cache.peek(src) if self.cache is not None else None
            return item is not None and item.pending()
        if self.virtuals is not None and self.virtuals.keeps(src):
            return True
        return self.virtuals is not None and self.cache is not None and self.cache.has_pending_under(src)

    def _check_rename_target(self, src: str, entry: Entry, dst: str) -> None:
        """On a backend without empty directories, its move cannot tell that the directory
        renamed over is virtual or not empty, nor that the new parent is missing (the move of a
        virtual directory stores nothing): POSIX's errors are given here."""
        head = dst.rpartition("/")[0]
        if not self._lookup(head).is_dir:  # a missing parent is ENOENT
            raise OSError(errno.ENOTDIR, "not a directory", head)
        if entry.is_dir and dst.startswith(src + "/"):
            raise OSError(errno.EINVAL, "a directory cannot move into itself", dst)
        try:
            target = self._lookup(dst)
        except FileNotFoundError:
            return
        if target.is_dir and not entry.is_dir:
            raise IsADirectoryError(errno.EISDIR, "is a directory", dst)
        if target.is_dir and self.dircache.children(dst):
            raise OSError(errno.ENOTEMPTY, "directory not empty", dst)

