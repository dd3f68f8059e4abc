"""An object store over a local directory, for tests only: directories exist only while an
object lies below them, as on s3 (without directory markers).

`FlatStore(LocalBackend)`:
- declares the local backend's features but FEATURE_EMPTY_DIRS (and chmod, chown, truncate:
  objects have no POSIX metadata and cannot change in place);
- `mkdir` stores nothing (the root always exists);
- an empty directory on the disk below is never listed or stat'ed; `list()` of a prefix with
  no objects below it raises FileNotFoundError (the root lists as empty);
- writing `a/b/f` makes its parents implicitly (the local backend makes the directories);
- deleting or moving away the last object below a directory makes it vanish (the emptied
  directories on the disk are removed);
- `rmdir` of a prefix that still has objects is ENOTEMPTY, of any other prefix a no-op (as
  rclone's s3 Rmdir of a directory inside a bucket);
- `move` of a directory moves every object below it (ENOENT when there is none).

`disk(path)` is where a path lies on the disk, for tests that look at what was stored.
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace

from pyclone_docker.backends.base import (
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_EMPTY_DIRS,
    FEATURE_RANDOM_WRITE,
    Backend,
    Entry,
    Writer,
)
from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.backends.wrapping import WrappingBackend

_DROPPED = frozenset({FEATURE_EMPTY_DIRS, FEATURE_CHMOD, FEATURE_CHOWN, FEATURE_RANDOM_WRITE})


def _object(entry: Entry) -> Entry:
    """An entry as an object store lists it: no POSIX metadata."""
    return replace(entry, mode=None, uid=None, gid=None, ctime_ns=None)


def _has_objects(full: str) -> bool:
    """Whether a directory on the disk holds a file anywhere below it."""
    return any(files for _top, _dirs, files in os.walk(full))


class _PruningWriter:
    """A local writer whose abort also removes the directories the upload made."""

    def __init__(self, inner: Writer, store: FlatStore, path: str) -> None:
        self._inner, self._store, self._path = inner, store, path

    def write(self, view: memoryview) -> int:
        return self._inner.write(view)

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()
        self._store._prune(self._path)


class FlatStore(WrappingBackend):
    """See the module docstring."""

    type_name = "flatstore"

    def __init__(self, inner: Backend) -> None:
        assert isinstance(inner, LocalBackend), "a flat store lies over a local directory"
        super().__init__(inner.name, inner.root, inner.config, inner)
        self.features = inner.features - _DROPPED
        self.local = inner

    def disk(self, path: str) -> str:
        return self.local._abs(path)

    def _dir_with_objects(self, path: str) -> bool:
        full = self.disk(path)
        return os.path.isdir(full) and not os.path.islink(full) and _has_objects(full)

    def _prune(self, path: str) -> None:
        """Remove the directories above `path` that no object keeps any more."""
        head = path.rpartition("/")[0]
        while head:
            try:
                os.rmdir(self.disk(head))
            except OSError:
                return
            head = head.rpartition("/")[0]

    def list(self, path: str) -> list[Entry]:
        if path and not self._dir_with_objects(path):
            raise FileNotFoundError(errno.ENOENT, "no objects below this prefix", path)
        prefix = path + "/" if path else ""
        return [_object(e) for e in self.local.list(path)
                if not e.is_dir or _has_objects(self.disk(prefix + e.name))]

    def stat(self, path: str) -> Entry:
        entry = self.local.stat(path)
        if entry.is_dir and path and not _has_objects(self.disk(path)):
            raise FileNotFoundError(errno.ENOENT, "no objects below this prefix", path)
        return _object(entry)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> Writer:
        return _PruningWriter(self.local.open_write(path, size, mtime_ns, None), self, path)

    def mkdir(self, path: str) -> None:
        self.local._abs(path)  # a path that climbs out is EINVAL, as everywhere
        if any(len(os.fsencode(part)) > 255 for part in path.split("/")):
            raise OSError(errno.ENAMETOOLONG, "a name is longer than the store keeps", path)

    def rmdir(self, path: str) -> None:
        if path and self._dir_with_objects(path):
            raise OSError(errno.ENOTEMPTY, "objects below this prefix", path)

    def delete(self, path: str) -> None:
        self.local.delete(path)
        self._prune(path)

    def move(self, src: str, dst: str) -> None:
        full_src, full_dst = self.disk(src), self.disk(dst)
        if not os.path.isdir(full_src):
            os.makedirs(os.path.dirname(full_dst), exist_ok=True)
            try:
                self.local.move(src, dst)
            except OSError:
                self._prune(dst)
                raise
            self._prune(src)
            return
        if not _has_objects(full_src):
            raise FileNotFoundError(errno.ENOENT, "no objects below this prefix", src)
        if dst == src or dst.startswith(src + "/"):
            raise OSError(errno.EINVAL, "a directory cannot move into itself", dst)
        if self._dir_with_objects(dst):
            raise OSError(errno.ENOTEMPTY, "objects below the destination prefix", dst)
        if os.path.isfile(full_dst):
            raise FileExistsError(errno.EEXIST, "an object has the destination's name", dst)
        for top, _dirs, files in os.walk(full_src):
            for name in files:
                rel = os.path.relpath(os.path.join(top, name), full_src)
                target = os.path.join(full_dst, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(os.path.join(top, name), target)
        for top, _dirs, _files in os.walk(full_src, topdown=False):
            os.rmdir(top)
        self._prune(src)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        if self.stat(path).is_dir:
            return  # a prefix has no modtime to keep
        self.local.set_modtime(path, mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        raise OSError(errno.ENOTSUP, "objects have no permissions", path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        raise OSError(errno.ENOTSUP, "objects have no owners", path)

    def truncate(self, path: str, size: int) -> None:
        raise OSError(errno.ENOTSUP, "objects cannot change in place", path)
