"""The interface every storage backend implements, and that the VFS talks to.

Paths are relative to the backend's root, '/'-separated, with no leading slash; the
root itself is ''. Errors are OSError subclasses with an errno (FileNotFoundError,
FileExistsError, OSError(ENOTEMPTY), ...), so the FUSE layer can pass them through.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol


@dataclass(slots=True)
class Entry:
    """One directory entry or object, as a listing or stat returns it."""

    name: str
    is_dir: bool
    size: int = 0
    mtime_ns: int = 0
    # set only by backends that store POSIX metadata (local)
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    is_link: bool = False
    ctime_ns: int | None = None  # the inode change time, where the backend has one (local)
    special: int = 0  # S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK: a node kept by the VFS (vfs/special.py)
    rdev: int = 0  # a device node's device number


@dataclass(frozen=True)
class About:
    total: int = -1
    used: int = -1
    free: int = -1


@dataclass(frozen=True)
class BackendOption:
    """A backend option as rclone registers it (name in snake_case)."""

    name: str
    kind: str = "string"
    default: str = ""
    is_password: bool = False
    required: bool = False


class Reader(Protocol):
    """A streaming download. `pread_into` exists only where random reads are cheap."""

    def readinto(self, view: memoryview) -> int: ...

    def close(self) -> None: ...


def read_full(reader: Reader, view: memoryview) -> int:
    """Fill `view` from a stream unless it ends first (streams may return less per call)."""
    total = len(view)
    got = reader.readinto(view)
    while 0 < got < total:
        n = reader.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class Writer(Protocol):
    """A streaming upload: bytes arrive in order; close() commits, abort() discards."""

    def write(self, view: memoryview) -> int: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


# Feature flags a backend may declare.
FEATURE_MODTIME = "modtime"  # set_modtime works
FEATURE_CHMOD = "chmod"
FEATURE_CHOWN = "chown"
FEATURE_MOVE = "move"  # server-side rename of files
FEATURE_DIR_MOVE = "dir_move"  # server-side rename of directories
FEATURE_RANDOM_READ = "random_read"  # readers have pread_into
FEATURE_RANDOM_WRITE = "random_write"  # open_random gives a pwrite-able handle
FEATURE_ABOUT = "about"
FEATURE_SLOW_HASH = "slow_hash"
FEATURE_SLOW_MODTIME = "slow_modtime"
FEATURE_CHANGE_NOTIFY = "change_notify"


class Backend(ABC):
    """Base class: subclasses set `type_name`, `options` and implement the abstract methods."""

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[BackendOption, ...]] = ()
    features: frozenset[str] = frozenset()
    hashes: tuple[str, ...] = ()

    def __init__(self, name: str, root: str, config: dict[str, str]) -> None:
        self.name = name  # rclone's Fs name, e.g. "local" or ":local{abcde}"
        self.root = root
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}:{self.root})"

    @abstractmethod
    def list(self, path: str) -> list[Entry]: ...

    @abstractmethod
    def stat(self, path: str) -> Entry: ...

    @abstractmethod
    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Reader: ...

    @abstractmethod
    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> Writer:
        """A new object, or a replacement; `mode` is the permission bits of a file it creates
        (backends that store them; the process umask applies, as for open(2))."""

    @abstractmethod
    def mkdir(self, path: str) -> None: ...

    @abstractmethod
    def rmdir(self, path: str) -> None: ...

    @abstractmethod
    def delete(self, path: str) -> None: ...

    def move(self, src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "backend cannot move", src)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        raise OSError(errno.ENOTSUP, "backend cannot set modification times", path)

    def chmod(self, path: str, mode: int) -> None:
        raise OSError(errno.ENOTSUP, "backend cannot store permissions", path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        raise OSError(errno.ENOTSUP, "backend cannot store owners", path)

    def truncate(self, path: str, size: int) -> None:
        raise OSError(errno.ENOTSUP, "backend cannot truncate in place", path)

    def about(self) -> About:
        return About()

    def hash(self, path: str, kind: str) -> str:
        raise OSError(errno.ENOTSUP, f"backend has no {kind} hash", path)

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        """The VFS just uploaded `path` and hashed it on the way: a backend whose hashes are
        slow (local) may remember it instead of reading the file again."""

    def change_notify(self, callback: Callable[[str], None], interval: float) -> None:
        """Backends that can report changes call `callback(path)`; the default cannot."""

    def shutdown(self) -> None:
        """Release connections; called when a volume is removed or the plugin stops."""


@dataclass
class BackendInfo:
    type_name: str
    factory: Callable[[str, str, dict[str, str]], Backend] | None
    options: tuple[BackendOption, ...] = field(default_factory=tuple)
    description: str = ""

    def option(self, name: str) -> BackendOption | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


def join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name
