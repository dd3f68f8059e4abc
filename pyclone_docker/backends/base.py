"""The interface every storage backend implements, and that the VFS talks to.

Paths are relative to the backend's root, '/'-separated, with no leading slash; the
root itself is ''. Errors are OSError subclasses with an errno (FileNotFoundError,
FileExistsError, OSError(ENOTEMPTY), ...), so the FUSE layer can pass them through.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Protocol

from .. import __version__
from ..parsers.bwtimetable import BwTimetable


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
    """A backend option as rclone registers it (name in snake_case).

    `kind` names a parser of the flag table (flags.PARSERS: bool, int, size, duration, csv,
    tristate, string), so `-o sftp-port=22`, `--sftp-port 22` and `port = 22` in rclone.conf
    read alike. `noop`: accepted, as rclone accepts it, but without any effect yet (a volume
    that sets it to another value than the default is warned about).
    """

    name: str
    kind: str = "string"
    default: str = ""
    is_password: bool = False
    required: bool = False
    noop: bool = False

    def __post_init__(self) -> None:
        if self.default == "" and self.kind in _ZERO:  # Go's zero value, as rclone's default
            object.__setattr__(self, "default", _ZERO[self.kind])

    def parse(self, raw: str) -> Any:
        """The typed value of `raw` ('' means the default), in rclone's configstruct words on error."""
        from ..flags import ITEM_PARSERS
        from ..parsers import go_quote

        value = raw if raw != "" else self.default
        try:
            return ITEM_PARSERS[self.kind](value)  # a config item: read once
        except ValueError as e:
            go_type, q = _GO_TYPES.get(self.kind, self.kind), go_quote(value)
            why = str(e)
            if self.kind not in ("size", "duration"):  # those parsers name the value and type themselves
                why = f"parsing {q} as {go_type} failed: {why}"
            raise ValueError(f"couldn't parse config item {go_quote(self.name)} = {q} as {go_type}: {why}") from None

    def means_default(self, raw: str) -> bool:
        """Whether `raw` reads as the default (rclone's Option.IsDefault); a bad value does not."""
        try:
            return self.parse(raw) == self.parse("")
        except ValueError:
            return False


_ZERO = {"bool": "false", "int": "0", "size": "0", "duration": "0s"}
_GO_TYPES = {"size": "fs.SizeSuffix", "duration": "fs.Duration", "csv": "fs.CommaSepList",
             "tristate": "fs.Tristate"}


_NO_BWLIMIT = BwTimetable()


@dataclass(frozen=True)
class BackendContext:
    """The global flags that belong to backends, handed to every factory in one object.

    Field names are the flags' (flags.py). Hashable: list values become tuples, --header values
    (`Key: Value`) become (key, value) pairs, --dump a frozenset of its choices.
    """

    timeout: float = 300.0  # --timeout: IO idle timeout, seconds
    contimeout: float = 60.0  # --contimeout: connect timeout, seconds
    low_level_retries: int = 10  # --low-level-retries
    retries: int = 3  # --retries
    no_checksum: bool = False  # --no-checksum (a per-volume VFS option in rclone)
    use_server_modtime: bool = False  # --use-server-modtime
    inplace: bool = False  # --inplace: upload straight to the final name (no partial name)
    partial_suffix: str = ".partial"  # --partial-suffix
    # the HTTP client of the web backends (lib/httpclient)
    ca_cert: tuple[str, ...] = ()  # --ca-cert files: they replace the system's roots, as in rclone
    client_cert: str = ""  # --client-cert
    client_key: str = ""  # --client-key
    no_check_certificate: bool = False  # --no-check-certificate
    user_agent: str = f"pyclone-docker/v{__version__}"  # --user-agent
    header: tuple[tuple[str, str], ...] = ()  # --header, every transaction
    header_download: tuple[tuple[str, str], ...] = ()  # --header-download
    header_upload: tuple[tuple[str, str], ...] = ()  # --header-upload
    dump: frozenset[str] = frozenset()  # --dump choices
    tpslimit: float = 0.0  # --tpslimit: transactions a second, 0 = off
    tpslimit_burst: int = 1  # --tpslimit-burst
    bwlimit: BwTimetable = _NO_BWLIMIT  # --bwlimit (an empty table: no limit)

    @classmethod
    def from_values(cls, values: Any) -> BackendContext:
        """From parsed flag values (an OptionValues or any object with these attributes);
        what `values` lacks keeps its default."""
        from ..flags import parse_header

        known: dict[str, Any] = {}
        for f in fields(cls):
            try:
                value = getattr(values, f.name)
            except AttributeError:
                continue
            if f.name in ("header", "header_download", "header_upload"):
                value = tuple(v if isinstance(v, tuple) else parse_header(v) for v in value)
            elif f.name == "dump":
                value = frozenset(value)
            elif isinstance(value, list):
                value = tuple(value)
            known[f.name] = value
        return cls(**known)

    def for_volume(self, values: Any) -> BackendContext:
        """This context with a volume's own values for the fields that are volume options."""
        try:
            no_checksum = bool(values.no_checksum)
        except AttributeError:
            return self
        return self if no_checksum == self.no_checksum else replace(self, no_checksum=no_checksum)


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
FEATURE_RANDOM_WRITE = "random_write"  # files can be changed in place (truncate)
FEATURE_ABOUT = "about"
FEATURE_SLOW_HASH = "slow_hash"
FEATURE_SLOW_MODTIME = "slow_modtime"
FEATURE_CHANGE_NOTIFY = "change_notify"
# directories exist on their own, empty ones too (rclone's CanHaveEmptyDirectories); an object
# store without them has a directory only while an object lies below it, and the VFS keeps
# the ones made through the mount (vfs/virtualdirs.py)
FEATURE_EMPTY_DIRS = "empty_dirs"


class Backend(ABC):
    """Base class: subclasses set `type_name`, `options` and implement the abstract methods."""

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[BackendOption, ...]] = ()
    features: frozenset[str] = frozenset()
    hashes: tuple[str, ...] = ()

    def __init__(self, name: str, root: str, config: dict[str, str], ctx: BackendContext | None = None) -> None:
        self.name = name  # rclone's Fs name, e.g. "local" or ":local{abcde}"
        self.root = root
        self.config = config
        self.ctx = ctx if ctx is not None else BackendContext()  # the global flags for backends

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

    def upload_hashes(self, size: int) -> tuple[str, ...]:
        """The hash kinds an upload of `size` bytes needs before its first byte (s3 stores a
        multipart object's MD5 as metadata at its start, as rclone does). The VFS hashes its
        cached copy first and sets the writer's `source_hashes` ({kind: hex}) before writing;
        a streamed write (cache mode off) has none to give."""
        return ()

    def change_notify(self, callback: Callable[[str], None], interval: float) -> None:
        """Backends that can report changes call `callback(path)`; the default cannot."""

    def shutdown(self) -> None:
        """Release connections; called when a volume is removed or the plugin stops."""


# A factory: (name, root, options, context) -> Backend. A wrapping backend's (BackendInfo.wraps)
# takes a fifth argument, open_inner(fs_string) -> Backend, which opens the remote it wraps.
Factory = Callable[..., Backend]


@dataclass
class BackendInfo:
    """What a backend module declares: its rclone type name, options and factory.

    `factory` None: the options are known (so a volume is checked as rclone would check it),
    but the backend is not built yet.
    """

    type_name: str
    factory: Factory | None
    options: tuple[BackendOption, ...] = field(default_factory=tuple)
    description: str = ""
    wraps: bool = False
    # checks what a volume's Create can check without connecting (a program the backend needs);
    # raises ValueError with what to do
    precheck: Callable[[Mapping[str, str]], None] | None = None
    # imports what the backend's first connection would (urllib3 for the web backends): the
    # plugin's warm-up calls it for the types it expects, so a first Create doesn't pay for it
    warm_up: Callable[[], None] | None = None

    def option(self, name: str) -> BackendOption | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Every declared option's typed value: `raw`'s where given, else the default."""
        return {opt.name: opt.parse(raw.get(opt.name, "")) for opt in self.options}

    def no_effect(self, raw: Mapping[str, str]) -> list[str]:
        """The options in `raw` that have no effect yet and differ from their default."""
        out = []
        for opt in self.options:
            if opt.noop and raw.get(opt.name, "") != "" and opt.parse(raw[opt.name]) != opt.parse(""):
                out.append(opt.name)
        return out


def current_user() -> str:
    """rclone's default `user` (sftp, ftp): the one running the plugin."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
