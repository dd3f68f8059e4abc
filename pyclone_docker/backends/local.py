"""The `local` backend: a directory on this host, with POSIX metadata kept as it is."""

from __future__ import annotations

import errno
import os
import stat as stat_mod

from ..encoder import STANDARD, parse_encoding
from .base import (
    FEATURE_ABOUT,
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    FEATURE_RANDOM_READ,
    FEATURE_RANDOM_WRITE,
    FEATURE_SLOW_HASH,
    About,
    Backend,
    BackendContext,
    BackendInfo,
    BackendOption,
    Entry,
)

_O_BINARY_RO = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_O_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def _entry(name: str, st: os.stat_result, is_link: bool = False) -> Entry:
    return Entry(
        name=name,
        is_dir=stat_mod.S_ISDIR(st.st_mode),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        mode=stat_mod.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        is_link=is_link,
        ctime_ns=st.st_ctime_ns,
    )


class LocalReader:
    """A file descriptor: streaming reads (of `length` bytes at most, as a ranged request) and
    positional reads straight into the caller's buffer."""

    __slots__ = ("fd", "left")

    def __init__(self, fd: int, length: int = -1) -> None:
        self.fd = fd
        self.left = length  # bytes the stream may still give; -1: to the end of the file

    def readinto(self, view: memoryview) -> int:
        left = self.left
        if left < 0:
            return os.readv(self.fd, [view])
        if left < len(view):
            view = view[:left]
        n = os.readv(self.fd, [view])
        self.left = left - n
        return n

    def pread_into(self, view: memoryview, offset: int) -> int:
        return os.preadv(self.fd, [view], offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LocalWriter:
    """Writes go to the target file directly, as rclone's local backend does."""

    __slots__ = ("fd", "path", "full", "mtime_ns")

    def __init__(self, fd: int, path: str, mtime_ns: int | None, full: str = "") -> None:
        self.fd = fd
        self.path = path
        self.full = full  # its path on this host
        self.mtime_ns = mtime_ns

    def write(self, view: memoryview) -> int:
        total = len(view)
        done = os.write(self.fd, view)
        while done < total:  # short writes happen on signals and full pipes
            done += os.write(self.fd, view[done:])
        return total

    def close(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            if self.mtime_ns is not None:
                os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))
        finally:
            os.close(fd)

    def abort(self) -> None:
        """A failed upload: the partly written file is removed, as rclone's local backend does
        (the bytes before it were truncated away when the upload began)."""
        if self.fd < 0:
            return
        os.close(self.fd)
        self.fd = -1
        try:
            os.unlink(self.full)
        except FileNotFoundError:
            pass


def _o(name: str, kind: str = "bool", default: str = "false", noop: bool = False) -> BackendOption:
    return BackendOption(name, kind, default, noop=noop)


# rclone 1.75.2's options for local. noop: accepted, no effect yet. The skip_*, no_* switches
# whose "don't" this backend always keeps (it never warns, preallocates, clones or re-checks a
# file during an upload) and nounc (Windows only) are not noop: they hold as asked.
OPTIONS = (
    _o("nounc"),
    _o("copy_links"),
    _o("links", noop=True),
    _o("skip_links"),
    _o("skip_specials"),
    _o("zero_size_links", noop=True),
    _o("unicode_normalization", noop=True),
    _o("no_check_updated"),
    _o("one_file_system", noop=True),
    _o("case_sensitive", noop=True),
    _o("case_insensitive", noop=True),
    _o("no_clone"),
    _o("no_preallocate"),
    _o("no_sparse"),
    _o("no_set_modtime"),
    _o("metadata_restore_special_bits", noop=True),
    _o("fatal_if_no_space"),
    _o("time_type", "string", "mtime", noop=True),
    _o("hashes", "csv", "", noop=True),
    _o("encoding", "string", "Slash,Dot"),
    _o("description", "string", ""),
)


class LocalBackend(Backend):
    type_name = "local"
    description = "Local Disk"
    options = OPTIONS
    hashes = ("md5", "sha1")

    def __init__(self, name: str, root: str, config: dict[str, str], ctx: BackendContext | None = None) -> None:
        root = os.path.abspath(root or "/")
        super().__init__(name, root, config, ctx)
        opt = INFO.parse_options(config)  # the flag parsers: "yes" is an error, as in rclone
        self.copy_links: bool = opt["copy_links"]
        self.no_set_modtime: bool = opt["no_set_modtime"]
        # names in the VFS are in rclone's Standard encoding, on disk in `encoding` (rclone's
        # FromStandardPath / ToStandardName): a control character shows as its symbol (U+2400 +
        # c), and the symbol written through the mount lands on disk as the character
        self.enc = parse_encoding(opt["encoding"])
        self._identity = self.enc == STANDARD
        self._hashes: dict[tuple[str, str], tuple[tuple[int, ...], str]] = {}
        feats = {FEATURE_ABOUT, FEATURE_CHMOD, FEATURE_CHOWN, FEATURE_MOVE, FEATURE_DIR_MOVE,
                 FEATURE_RANDOM_READ, FEATURE_RANDOM_WRITE, FEATURE_SLOW_HASH, FEATURE_EMPTY_DIRS}
        if not self.no_set_modtime:
            feats.add(FEATURE_MODTIME)
        self.features = frozenset(feats)

    def _abs(self, path: str) -> str:
        # FUSE hands us normalised paths; refuse anything that could climb out anyway.
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        if not path:
            return self.root
        if not self._identity and not _plain(path):
            path = self.enc.encode_path(STANDARD.decode_path(path))
        return os.path.join(self.root, path)

    def _shown(self, name: str) -> str:
        return name if self._identity or _plain(name) else STANDARD.encode(self.enc.decode(name))

    def list(self, path: str) -> list[Entry]:
        out = []
        with os.scandir(self._abs(path)) as it:
            for de in it:
                try:
                    is_link = de.is_symlink()
                    st = de.stat(follow_symlinks=self.copy_links or not is_link)
                except FileNotFoundError:
                    continue  # vanished while listing
                if is_link and not self.copy_links:
                    continue  # rclone skips symlinks unless --links/--copy-links
                out.append(_entry(self._shown(de.name), st, is_link and not self.copy_links))
        return out

    def stat(self, path: str) -> Entry:
        full = self._abs(path)
        st = os.stat(full) if self.copy_links else os.lstat(full)
        if stat_mod.S_ISLNK(st.st_mode):
            raise FileNotFoundError(errno.ENOENT, "symlinks are not shown", path)
        return _entry(path.rsplit("/", 1)[-1], st)

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> LocalReader:
        fd = os.open(self._abs(path), _O_BINARY_RO)
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        return LocalReader(fd, length)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> LocalWriter:
        full = self._abs(path)
        perms = 0o666 if mode is None else mode
        try:
            fd = os.open(full, _O_WRITE, perms)
        except FileNotFoundError:
            # as rclone's local backend: an upload makes the directories it needs
            os.makedirs(os.path.dirname(full), 0o777, exist_ok=True)
            fd = os.open(full, _O_WRITE, perms)
        return LocalWriter(fd, path, None if self.no_set_modtime else mtime_ns, full)

    def mkdir(self, path: str) -> None:
        os.mkdir(self._abs(path), 0o777)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._abs(path))

    def delete(self, path: str) -> None:
        os.unlink(self._abs(path))

    def move(self, src: str, dst: str) -> None:
        os.rename(self._abs(src), self._abs(dst))

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        if self.no_set_modtime:
            return
        os.utime(self._abs(path), ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._abs(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.lchown(self._abs(path), uid, gid)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(self._abs(path), size)

    def about(self) -> About:
        st = os.statvfs(self.root)
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        return About(total=total, used=total - st.f_bfree * st.f_frsize, free=free)

    def hash(self, path: str, kind: str) -> str:
        """Read the whole file (slow, hence FEATURE_SLOW_HASH), unless it is unchanged since the
        last time: any write to a file moves its ctime, which no utime() can set back."""
        if kind not in self.hashes:
            return super().hash(path, kind)
        import hashlib  # lazily: OpenSSL costs ~4 MB of RSS

        with open(self._abs(path), "rb") as f:
            key = (path, kind)
            version = _version(os.fstat(f.fileno()))
            known = self._hashes.get(key)
            if known is not None and known[0] == version:
                return known[1]
            h = hashlib.new(kind, usedforsecurity=False)
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
        self._remember(key, version, h.hexdigest())
        return h.hexdigest()

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        if kind in self.hashes:
            try:
                self._remember((path, kind), _version(os.lstat(self._abs(path))), digest)
            except OSError:
                pass

    def _remember(self, key: tuple[str, str], version: tuple[int, ...], digest: str) -> None:
        if len(self._hashes) >= _HASH_MEMO:
            self._hashes.pop(next(iter(self._hashes)))  # the oldest entry
        self._hashes[key] = (version, digest)


_HASH_MEMO = 4096  # remembered file hashes per volume (~0.5 MB at most)


def _plain(text: str) -> bool:
    """Printable ASCII, no "." name: the same in every encoding (the fast path)."""
    return text.isascii() and text.isprintable() and text not in (".", "..")


def _version(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


INFO = BackendInfo("local", LocalBackend, OPTIONS, LocalBackend.description)
