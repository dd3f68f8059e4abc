"""The `sftp` backend: rclone's sftp remote over the system OpenSSH client (pool.py, ssh.py).

Paths are the volume's, joined onto the remote's root (relative roots are relative to the
login directory, as rclone's) and encoded with the `encoding` option. Errors are OSError with
an errno; OpenSSH's sftp-server folds most errnos into "failure", so the error paths look
again (a stat) to tell EEXIST, ENOTEMPTY, ENOTDIR and EISDIR apart.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat as stat_mod
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...encoder import STANDARD, parse_encoding
from ..base import (
    FEATURE_ABOUT,
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    FEATURE_SLOW_HASH,
    About,
    Backend,
    BackendContext,
    Entry,
)
from . import proto, ssh
from .channel import Channel, ChannelClosed
from .hashes import RemoteCommands
from .pool import ConnectError, Connection, get_pool, put_pool
from .proto import Attrs, SftpStatus, string, u32
from .transfer import SftpReader, SftpWriter, expect_handle, expect_status, partial_name

log = logging.getLogger("pyclone")
T = TypeVar("T")
_MAX_NAME = 255
_READDIR_AHEAD = 4  # READDIR requests in flight per listing


class SftpBackend(Backend):
    type_name = "sftp"
    description = "SSH/SFTP"

    def __init__(self, name: str, root: str, config: dict[str, str], ctx: BackendContext | None = None) -> None:
        from . import INFO

        super().__init__(name, root, config, ctx)
        opt: dict[str, Any] = INFO.parse_options(config)
        self.opt = opt
        cfg = ssh.build(opt, self.ctx.contimeout)
        self.label = cfg.label
        self.chunk_size = max(1024, min(int(opt["chunk_size"]), 255 * 1024))
        conc = max(1, int(opt["concurrency"]))
        self.read_concurrency = 1 if opt["disable_concurrent_reads"] else conc
        self.write_concurrency = 1 if opt["disable_concurrent_writes"] else conc
        self.modtime_ok = bool(opt["set_modtime"])
        self.skip_links = bool(opt["skip_links"])
        self.inplace = bool(getattr(self.ctx, "inplace", False))
        self.partial_suffix = str(getattr(self.ctx, "partial_suffix", ".partial"))
        # names in the VFS are in rclone's Standard encoding; the server's in `encoding`
        self.enc = parse_encoding(opt["encoding"])
        self._enc_is_standard = self.enc == STANDARD
        self.root = root.rstrip("/") if root not in ("", "/") else root
        self._modtime_warned = False
        self.pool = get_pool(cfg, self.ctx.timeout, self.ctx.contimeout, int(opt["connections"]),
                             float(opt["idle_timeout"]))
        try:
            # connect now, as rclone's NewFs does: a volume with a bad host or password fails at create
            exts = self._call(lambda ch: ch.extensions)
        except BaseException:
            put_pool(self.pool)
            raise
        feats = {FEATURE_MOVE, FEATURE_DIR_MOVE, FEATURE_SLOW_HASH, FEATURE_EMPTY_DIRS}
        if self.modtime_ok:
            feats.add(FEATURE_MODTIME)
        if "statvfs@openssh.com" in exts:
            feats.add(FEATURE_ABOUT)
        self.features = frozenset(feats)
        self.commands = RemoteCommands(self, opt)
        self.hashes = self.commands.hash_names()

    # --- plumbing -----------------------------------------------------------------------

    def _call(self, fn: Callable[[Channel], T], streaming: bool = False) -> T:
        """fn(channel) on a pooled connection; a lost connection is replaced and fn retried
        (--low-level-retries), as is a connect that failed for a reason that may pass."""
        pool = self.pool
        tries = max(1, int(self.ctx.low_level_retries))
        delay = 0.1
        last: BaseException | None = None
        for _ in range(tries):
            try:
                conn = pool.acquire(streaming)
            except ConnectError as e:
                if not e.retryable:
                    raise
                last = e
            else:
                try:
                    return fn(conn.channel)  # type: ignore[arg-type]
                except ChannelClosed as e:
                    last = e
                    pool.discard(conn)
                finally:
                    pool.release(conn)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        assert last is not None
        if isinstance(last, ConnectError):
            raise last
        raise OSError(errno.EIO, f"sftp {self.label}: {last}") from None

    def connection(self) -> Connection:
        """For remote commands (hashes.py): a live connection, released at once (its
        ControlMaster stays while the pool keeps it)."""
        conn = self.pool.acquire()
        self.pool.release(conn)
        return conn

    def remote(self, path: str) -> str:
        """The server's path for a volume path."""
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        if path:
            for seg in path.split("/"):
                if len(seg.encode("utf-8", "surrogateescape")) > _MAX_NAME:
                    raise OSError(errno.ENAMETOOLONG, "file name too long", path)
            if self._enc_is_standard is False:  # rclone's FromStandardPath
                path = self.enc.encode_path(STANDARD.decode_path(path))
        root = self.root
        if not path:
            return root or "."
        return f"{root}/{path}" if root and root != "/" else (f"/{path}" if root == "/" else path)

    def _shown(self, raw: str) -> str:
        """A server name as the mount shows it: rclone's ToStandardName (the same name when
        `encoding` is rclone's Standard one, sftp's default)."""
        return raw if self._enc_is_standard else STANDARD.encode(self.enc.decode(raw))

    def _entry(self, name: str, a: Attrs) -> Entry:
        return Entry(name=name, is_dir=a.is_dir, size=a.size or 0 if not a.is_dir else 0,
                     mtime_ns=(a.mtime or 0) * 10**9)

    def _stat(self, ch: Channel, remote: str, path: str, follow: bool = True) -> Attrs:
        kind, d = ch.call(proto.STAT if follow else proto.LSTAT, string(remote))
        if kind == proto.ATTRS:
            return d.attrs()
        if kind == proto.STATUS:
            raise d.status(path)
        raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", path)

    def _try_stat(self, ch: Channel, path: str) -> Attrs | None:
        try:
            return self._stat(ch, self.remote(path), path)
        except (SftpStatus, OSError):
            return None

    def _not_found(self, ch: Channel, path: str, e: OSError) -> OSError:
        """NO_SUCH_FILE also means ENOTDIR to OpenSSH: a parent that is a file says which."""
        parent = path.rpartition("/")[0]
        while parent:
            a = self._try_stat(ch, parent)
            if a is not None:
                if not a.is_dir:
                    return OSError(errno.ENOTDIR, "not a directory", path)
                break
            parent = parent.rpartition("/")[0]
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def refine_read_error(self, st: SftpStatus, path: str) -> OSError:
        if st.code == proto.FX_FAILURE:
            a = self._call(lambda ch: self._try_stat(ch, path))
            if a is not None and a.is_dir:
                return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        return OSError(st.errno, f"sftp {self.label}: {st.strerror}", path)

    def log_modtime_failure(self, path: str, e: OSError) -> None:
        if not self._modtime_warned:
            self._modtime_warned = True
            log.error("sftp %s: %s: couldn't set the modification time: %s", self.label, path, e.strerror)

    # --- listing and stat ---------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        remote = self.remote(path)
        return self._call(lambda ch: self._list(ch, remote, path))

    def _list(self, ch: Channel, remote: str, path: str) -> list[Entry]:
        kind, d = ch.call(proto.OPENDIR, string(remote))
        try:
            handle = expect_handle(kind, d, path)
        except SftpStatus as e:
            a = self._try_stat(ch, path)
            if a is not None and not a.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path) from None
            if e.errno == errno.ENOENT:
                raise self._not_found(ch, path, e) from None
            raise
        hs = string(handle)
        out: list[Entry] = []
        links: list[tuple[str, Attrs]] = []
        calls = [ch.submit(proto.READDIR, hs) for _ in range(_READDIR_AHEAD)]
        done = False
        try:
            while calls:
                kind, d = calls.pop(0).wait()
                if kind == proto.STATUS:
                    st = d.status(path)
                    if st.code != proto.FX_EOF:
                        raise st
                    done = True
                    continue
                if kind != proto.NAME:
                    raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", path)
                if not done:
                    calls.append(ch.submit(proto.READDIR, hs))
                for raw_name, a in d.names():
                    if raw_name in (".", ".."):
                        continue
                    if a.is_dir or a.is_regular:
                        out.append(self._entry(self._shown(raw_name), a))
                    elif not self.skip_links:
                        links.append((raw_name, a))
        finally:
            ch.submit(proto.CLOSE, hs)
        if links:  # follow them (all at once), as rclone: a dangling one keeps its own attributes
            base = remote if remote != "." else ""
            stats = [ch.submit(proto.STAT, string(posixpath.join(base, raw))) for raw, _ in links]
            for (raw, a), call in zip(links, stats, strict=True):
                kind, d = call.wait()
                target = d.attrs() if kind == proto.ATTRS else a
                if target.is_dir or target.is_regular or target.is_link:
                    out.append(self._entry(self._shown(raw), target))
        return out

    def stat(self, path: str) -> Entry:
        remote = self.remote(path)

        def run(ch: Channel) -> Entry:
            try:
                a = self._stat(ch, remote, path)
            except SftpStatus as e:
                if e.errno == errno.ENOENT:
                    raise self._not_found(ch, path, e) from None
                raise
            return self._entry(path.rpartition("/")[2], a)

        return self._call(run)

    # --- reads and writes ---------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> SftpReader:
        remote = self.remote(path)
        tries = max(1, int(self.ctx.low_level_retries))
        for attempt in range(tries):
            try:
                return SftpReader(self, path, remote, offset, length)
            except (ChannelClosed, ConnectError) as e:
                if attempt == tries - 1 or not getattr(e, "retryable", True):
                    raise OSError(errno.EIO, f"sftp {self.label}: can't open for reading: {e}", path) from None
                time.sleep(min(0.1 * 2 ** attempt, 2.0))
            except SftpStatus as e:
                if e.errno == errno.ENOENT:
                    raise self._call(lambda ch, err=e: self._not_found(ch, path, err)) from None
                raise
        raise AssertionError("unreachable")

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> SftpWriter:
        remote = self.remote(path)
        tmp = remote if self.inplace else partial_name(path, remote, size, mtime_ns, self.partial_suffix)
        self.forget_hashes(path)
        return SftpWriter(self, path, remote, tmp, mtime_ns, mode)

    def open_for_write(self, conn: Connection, path: str, tmp: str, mode: int | None) -> bytes:
        ch = conn.channel
        assert ch is not None
        flags = u32(proto.FXF_WRITE | proto.FXF_CREAT | proto.FXF_TRUNC)
        attrs = Attrs(mode=None if mode is None else stat_mod.S_IMODE(mode)).pack()
        kind, d = ch.call(proto.OPEN, string(tmp), flags, attrs)
        try:
            return expect_handle(kind, d, path)
        except SftpStatus as e:
            if e.errno != errno.ENOENT or "/" not in path:
                raise self.write_error(ch, path, e) from None
        self._makedirs(ch, path.rpartition("/")[0])  # as rclone: an upload makes its directories
        kind, d = ch.call(proto.OPEN, string(tmp), flags, attrs)
        try:
            return expect_handle(kind, d, path)
        except SftpStatus as e:
            raise self.write_error(ch, path, e) from None

    def write_error(self, ch: Channel, path: str, e: SftpStatus) -> OSError:
        a = self._try_stat(ch, path)
        if a is not None and a.is_dir:
            return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if e.errno == errno.ENOENT:
            return self._not_found(ch, path, e)
        return e

    def _makedirs(self, ch: Channel, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            a = self._try_stat(ch, sub)
            if a is not None:
                if not a.is_dir:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), sub)
                continue
            kind, d = ch.call(proto.MKDIR, string(self.remote(sub)), Attrs().pack())
            try:
                expect_status(kind, d, sub)
            except SftpStatus:
                a = self._try_stat(ch, sub)
                if a is None or not a.is_dir:
                    raise

    def rename_over(self, ch: Channel, src: str, dst: str, path: str) -> None:
        """Rename onto `dst`, replacing a file there (posix-rename@openssh.com, or remove then
        rename where the server lacks it)."""
        if "posix-rename@openssh.com" in ch.extensions:
            kind, d = ch.call(proto.EXTENDED, string("posix-rename@openssh.com"), string(src), string(dst))
            expect_status(kind, d, path)
            return
        kind, d = ch.call(proto.RENAME, string(src), string(dst))
        if kind == proto.STATUS and d.status().code == proto.FX_OK:
            return
        ch.call(proto.REMOVE, string(dst))
        kind, d = ch.call(proto.RENAME, string(src), string(dst))
        expect_status(kind, d, path)

    def remove_quietly(self, conn: Connection | None, hs: bytes, remote: str) -> None:
        """Close `hs` and remove `remote`, on a new connection if `conn` is dead."""
        def run(ch: Channel) -> None:
            if hs and conn is not None and ch is conn.channel:
                ch.submit(proto.CLOSE, hs)
            ch.call(proto.REMOVE, string(remote))

        if conn is not None and conn.alive:
            run(conn.channel)  # type: ignore[arg-type]
        else:
            self._call(run)

    # --- namespace ----------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        remote = self.remote(path)

        def run(ch: Channel) -> None:
            kind, d = ch.call(proto.MKDIR, string(remote), Attrs().pack())
            if kind == proto.STATUS:
                st = d.status(path)
                if st.code == proto.FX_OK:
                    return
                if self._try_stat(ch, path) is not None:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
                if st.errno == errno.ENOENT:
                    raise self._not_found(ch, path, st)
                raise st
            raise OSError(errno.EPROTO, f"unexpected SFTP reply {kind}", path)

        self._call(run)

    def rmdir(self, path: str) -> None:
        remote = self.remote(path)

        def run(ch: Channel) -> None:
            _kind, d = ch.call(proto.RMDIR, string(remote))
            st = d.status(path)
            if st.code == proto.FX_OK:
                return
            a = self._try_stat(ch, path)
            if a is None:
                raise self._not_found(ch, path, st)
            if not a.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            if st.code == proto.FX_FAILURE:
                raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), path)
            raise st

        self._call(run)

    def delete(self, path: str) -> None:
        remote = self.remote(path)
        self.forget_hashes(path)

        def run(ch: Channel) -> None:
            _kind, d = ch.call(proto.REMOVE, string(remote))
            st = d.status(path)
            if st.code == proto.FX_OK:
                return
            a = self._try_stat(ch, path)
            if a is None:
                raise self._not_found(ch, path, st)
            if a.is_dir:
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            raise st

        self._call(run)

    def move(self, src: str, dst: str) -> None:
        rs, rd = self.remote(src), self.remote(dst)
        self.commands.forget_all()  # a directory move renames everything under it
        if dst == src or dst.startswith(src + "/"):
            raise OSError(errno.EINVAL, "can't move a directory into itself", dst)

        def run(ch: Channel) -> None:
            a = self._try_stat(ch, src)
            if a is None:
                raise self._not_found(ch, src, FileNotFoundError(errno.ENOENT, "", src))
            b = self._try_stat(ch, dst)
            if b is not None:
                if b.is_dir and not a.is_dir:
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), dst)
                if a.is_dir and not b.is_dir:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), dst)
            try:
                self.rename_over(ch, rs, rd, dst)
            except SftpStatus as e:
                if b is not None and b.is_dir and e.code == proto.FX_FAILURE:
                    raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), dst) from None
                if e.errno == errno.ENOENT:
                    raise self._not_found(ch, dst, e) from None
                raise

        self._call(run)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        if not self.modtime_ok:
            return
        remote = self.remote(path)

        def run(ch: Channel) -> None:
            kind, d = ch.call(proto.SETSTAT, string(remote), Attrs(mtime=mtime_ns // 10**9).pack())
            try:
                expect_status(kind, d, path)
            except SftpStatus as e:
                if e.errno == errno.ENOENT:
                    raise self._not_found(ch, path, e) from None
                raise

        self._call(run)

    def truncate(self, path: str, size: int) -> None:
        remote = self.remote(path)

        def run(ch: Channel) -> None:
            kind, d = ch.call(proto.SETSTAT, string(remote), Attrs(size=size).pack())
            expect_status(kind, d, path)

        self._call(run)

    def about(self) -> About:
        if FEATURE_ABOUT not in self.features:
            return About()
        remote = self.remote("")

        def run(ch: Channel) -> About:
            kind, d = ch.call(proto.EXTENDED, string("statvfs@openssh.com"), string(remote))
            if kind != proto.EXTENDED_REPLY:
                return About()
            _bsize, frsize, blocks, bfree = d.u64(), d.u64(), d.u64(), d.u64()
            total, free = frsize * blocks, frsize * bfree  # as rclone: bfree, not bavail
            return About(total=total, used=total - free, free=free)

        return self._call(run)

    def hash(self, path: str, kind: str) -> str:
        return self.commands.hash(path, self.remote(path), kind)

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        self.commands.remember(path, self.remote(path), kind, digest)

    def forget_hashes(self, *paths: str) -> None:
        self.commands.forget(*paths)

    def stat_remote(self, remote: str, path: str) -> Attrs:
        return self._call(lambda ch: self._stat(ch, remote, path))

    def shutdown(self) -> None:
        pool, self.pool = self.pool, None  # type: ignore[assignment]
        if pool is not None:
            put_pool(pool)

