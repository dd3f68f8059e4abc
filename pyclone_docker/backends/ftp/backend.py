"""The `ftp` backend: rclone's ftp remote on the stdlib ftplib (conn.py, listing.py, transfer.py).

Paths are absolute on the server (the login directory, from PWD, joined with the remote's root)
and encoded with `encoding`. Errors are OSError with an errno: FTP folds most failures into
550, so the error paths look again (MLST, or CWD and a listing of the parent) to tell
ENOENT, EEXIST, ENOTEMPTY, ENOTDIR and EISDIR apart. A dropped control connection is
replaced and the operation retried (--low-level-retries).
"""

from __future__ import annotations

import errno
import ftplib
import logging
import os
import posixpath
import time
from collections.abc import Callable
from typing import Any

from ...encoder import STANDARD, parse_encoding
from ..base import (
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    FEATURE_SLOW_MODTIME,
    Backend,
    BackendContext,
    Entry,
    Reader,
)
from .conn import FtpConn
from .listing import Listed, format_time, mdtm_time, parse_list, parse_mlsd
from .session import FtpSession
from .transfer import EMPTY, FtpReader, FtpWriter, end_data, partial_name

log = logging.getLogger("pyclone")
_MAX_NAME = 255
_MDTM_BATCH = 32  # MDTM commands sent before their replies are read


def _enoent(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class FtpBackend(Backend):
    type_name = "ftp"
    description = "FTP"

    def __init__(self, name: str, root: str, config: dict[str, str], ctx: BackendContext | None = None) -> None:
        from . import INFO

        super().__init__(name, root, config, ctx)
        opt: dict[str, Any] = INFO.parse_options(config)
        self.opt = opt
        if opt["ask_password"]:
            raise ValueError("ftp: ask_password needs a terminal to ask on, and a plugin has none: "
                             "set pass (rclone obscure) instead")
        if opt["tls"] and opt["explicit_tls"]:
            raise ValueError("ftp: implicit TLS and explicit TLS are mutually incompatible: set only one of "
                             "tls and explicit_tls")
        self.session = FtpSession(opt, self.ctx, str(opt["pass"]))  # fs.py revealed the password
        self.label = self.session.label
        self.enc = parse_encoding(opt["encoding"])
        self.inplace = bool(self.ctx.inplace)
        self.partial_suffix = str(self.ctx.partial_suffix)
        try:
            conn = self.session.acquire()  # connect now, as rclone's NewFs: a bad host or password fails at create
        except BaseException:
            self.session.close()
            raise
        self.session.release(conn)
        feats = self.session.features or {}
        self.mlsd = "MLST" in feats and not opt["disable_mlsd"]
        self.mlst = "MLST" in feats
        self.get_time = "MDTM" in feats
        self.mfmt = "MFMT" in feats
        self.set_time = self.mfmt or (bool(opt["writing_mdtm"]) and self.get_time)
        # without MLST, one file is looked up by SIZE and MDTM rather than in its directory's listing
        self.size_and_mdtm = not self.mlst and self.get_time and "SIZE" in feats
        f = {FEATURE_MOVE, FEATURE_DIR_MOVE, FEATURE_EMPTY_DIRS}
        if self.set_time and (self.get_time or self.mlsd):  # rclone's Precision: 1s, else none
            f.add(FEATURE_MODTIME)
        if not self.mlsd and self.get_time:
            f.add(FEATURE_SLOW_MODTIME)
        self.features = frozenset(f)
        r = root.strip("/") if root not in ("", "/") else ""
        self.base = posixpath.normpath(posixpath.join(self.session.home if not root.startswith("/") else "/", r))

    def remote(self, path: str) -> str:
        if path.startswith("/") or ".." in path.split("/"):
            raise OSError(errno.EINVAL, "invalid path", path)
        if not path:
            return self.base
        for seg in path.split("/"):
            if len(seg.encode("utf-8", "surrogateescape")) > _MAX_NAME:
                raise OSError(errno.ENAMETOOLONG, "file name too long", path)
        enc = self.enc.encode_path(STANDARD.decode_path(path))
        return posixpath.join(self.base, enc)

    def _shown(self, raw: str) -> str:
        return STANDARD.encode(self.enc.decode(raw))

    # --- metadata -----------------------------------------------------------------------

    def _entry(self, name: str, it: Listed) -> Entry:
        return Entry(name=name, is_dir=it.is_dir, size=it.size, mtime_ns=it.mtime_ns)

    def _lines(self, conn: FtpConn, cmd: str) -> list[str]:
        sock, _ = conn.ntransfercmd(cmd)
        try:
            with sock.makefile("rb") as f:
                raw = [line.rstrip(b"\r\n") for line in f]
        finally:
            end_data(sock)
        conn.voidresp()
        return [r.decode("utf-8", "surrogateescape") for r in raw if r]

    def _cwd_ok(self, conn: FtpConn, remote: str) -> bool:
        try:
            conn.sendcmd(f"CWD {remote}")
            return True
        except ftplib.error_perm:
            return False

    def _lookup(self, conn: FtpConn, path: str) -> Listed | None:
        """The entry at `path` (None if there is none): MLST, else the parent's listing."""
        if not path:
            return Listed("", True) if self._cwd_ok(conn, self.base) else None
        remote = self.remote(path)
        if self.mlst:
            try:
                resp = conn.sendcmd(f"MLST {remote}")
            except ftplib.error_perm:
                return None
            for line in resp.splitlines()[1:]:
                if line.startswith(" "):
                    it = parse_mlsd(line[1:])
                    if it is not None:
                        return it
            return None
        parent, _, leaf = path.rpartition("/")
        if self.size_and_mdtm:
            it = self._size_lookup(conn, remote, leaf)
            if it is not None:
                return it
            return Listed(leaf, True) if self._cwd_ok(conn, remote) else None
        if self._cwd_ok(conn, remote):
            return Listed(leaf, True)
        items = self._list_plain(conn, self.remote(parent))
        if items is None:
            return None
        want = self.remote(path).rpartition("/")[2]
        for it in items:
            if it.name == want:
                if not it.is_dir and not it.precise and self.get_time:
                    it.mtime_ns = self._mdtm(conn, remote, it.mtime_ns)
                return it
        return None

    def _size_lookup(self, conn: FtpConn, remote: str, leaf: str) -> Listed | None:
        """A file by SIZE and MDTM, sent together (one round trip, whatever the directory
        holds); None where SIZE is refused: no such file, or a directory."""
        conn.putcmd(f"SIZE {remote}")
        conn.putcmd(f"MDTM {remote}")
        replies: list[str | None] = []
        for _ in range(2):
            try:
                replies.append(conn.getresp())
            except (ftplib.error_perm, ftplib.error_temp, ftplib.error_reply):
                replies.append(None)
        size, when = replies
        try:
            it = Listed(leaf, False, int((size or "")[4:].strip()))
        except ValueError:
            return None
        try:
            it.mtime_ns, it.precise = mdtm_time((when or "")[4:]), True
        except ValueError:
            pass
        return it

    def _mdtm(self, conn: FtpConn, remote: str, fallback: int) -> int:
        try:
            resp = conn.sendcmd(f"MDTM {remote}")
            return mdtm_time(resp[4:])
        except (ftplib.error_perm, ValueError):
            return fallback

    def _precise_times(self, conn: FtpConn, remote: str, items: list[Listed]) -> None:
        """The modtimes of the files LIST gave to the minute or day, from MDTM (as rclone's
        ModTime asks it, file by file); the commands go out in batches, their replies read after."""
        files = [it for it in items if not it.is_dir and not it.precise]
        for i in range(0, len(files), _MDTM_BATCH):
            batch = files[i:i + _MDTM_BATCH]
            for it in batch:
                conn.putcmd(f"MDTM {posixpath.join(remote, it.name)}")
            for it in batch:
                try:
                    it.mtime_ns, it.precise = mdtm_time(conn.getresp()[4:]), True
                except (ftplib.error_perm, ftplib.error_temp, ftplib.error_reply, ValueError):
                    pass  # the LIST time stays

    def _missing(self, conn: FtpConn, path: str) -> OSError:
        """ENOENT, or ENOTDIR where a parent of `path` is a file."""
        parent = path.rpartition("/")[0]
        while parent:
            it = self._lookup(conn, parent)
            if it is not None:
                if not it.is_dir:
                    return _err(errno.ENOTDIR, path)
                break
            parent = parent.rpartition("/")[0]
        return _enoent(path)

    def _list_plain(self, conn: FtpConn, remote: str) -> list[Listed] | None:
        """The entries of the directory `remote`, None if it can't be listed (no such
        directory, or a file)."""
        if self.mlsd:
            try:
                lines = self._lines(conn, f"MLSD {remote}")
            except ftplib.error_perm:
                return None
            return [it for it in map(parse_mlsd, lines) if it is not None]
        if not self._cwd_ok(conn, remote):
            return None
        lines = self._lines(conn, "LIST -a" if self.opt["force_list_hidden"] else "LIST")
        now = time.time()
        return [it for it in (parse_list(line, now) for line in lines) if it is not None]

    def _list_raw(self, conn: FtpConn, remote: str, path: str) -> list[Listed]:
        items = self._list_plain(conn, remote)
        if items is None:
            raise self._not_a_dir(conn, path)
        return items

    def _not_a_dir(self, conn: FtpConn, path: str) -> OSError:
        it = self._lookup(conn, path) if path else None
        if it is not None and not it.is_dir:
            return _err(errno.ENOTDIR, path)
        return self._missing(conn, path) if path else _enoent(path)

    def list(self, path: str) -> list[Entry]:
        remote = self.remote(path)

        def run(conn: FtpConn) -> list[Entry]:
            items = []
            for it in self._list_raw(conn, remote, path):
                if it.is_link:  # as rclone's ftp: a link is listed as what it points to if it can tell
                    target = self._lookup_raw_link(conn, remote, it)
                    if target is None:
                        continue
                    it = target
                items.append(it)
            if self.get_time:
                self._precise_times(conn, remote, items)
            return [self._entry(self._shown(it.name), it) for it in items]

        return self.session.call(run)

    def _lookup_raw_link(self, conn: FtpConn, remote: str, it: Listed) -> Listed | None:
        full = posixpath.join(remote, it.name)
        if self._cwd_ok(conn, full):
            return Listed(it.name, True, 0, it.mtime_ns)
        try:
            size = conn.size(full)
        except ftplib.Error:
            return None
        return Listed(it.name, False, size or 0, it.mtime_ns)

    def stat(self, path: str) -> Entry:
        self.remote(path)

        def run(conn: FtpConn) -> Entry:
            it = self._lookup(conn, path)
            if it is None:
                raise self._missing(conn, path)
            return self._entry(path.rpartition("/")[2], it)

        return self.session.call(run)

    # --- transfers ------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> Reader:
        remote = self.remote(path)

        def refused(conn: FtpConn, e: ftplib.Error) -> OSError:
            it = self._lookup(conn, path)
            if it is None:
                return self._missing(conn, path)
            if it.is_dir:
                return _err(errno.EISDIR, path)
            if offset and offset >= it.size:
                return _PastEnd()  # REST beyond the end is refused (554): there is nothing to read
            return OSError(errno.EIO, f"ftp {self.label}: {e}", path)

        try:
            return FtpReader(self.session, lambda at: self.session.data(f"RETR {remote}", at or None, refused),
                             path, offset, length)
        except _PastEnd:
            return EMPTY

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> FtpWriter:
        remote = self.remote(path)
        tmp = remote if self.inplace else partial_name(path, remote, size, mtime_ns, self.partial_suffix)
        retried = False

        def refused(conn: FtpConn, e: ftplib.Error) -> OSError:
            nonlocal retried
            it = self._lookup(conn, path)
            if it is not None and it.is_dir:
                return _err(errno.EISDIR, path)
            parent = path.rpartition("/")[0]
            if not retried and not self._cwd_ok(conn, self.remote(parent)):
                self._makedirs(conn, parent)  # as rclone: an upload makes its directories (the root too)
                retried = True
                return _Again()
            if parent:
                p = self._lookup(conn, parent)
                if p is None:
                    return self._missing(conn, path)
                if not p.is_dir:
                    return _err(errno.ENOTDIR, path)
            return OSError(errno.EIO, f"ftp {self.label}: {e}", path)

        try:
            conn, sock = self.session.data(f"STOR {tmp}", None, refused)
        except _Again:
            conn, sock = self.session.data(f"STOR {tmp}", None, refused)
        return FtpWriter(self.session, conn, sock, path,
                         lambda n: self._finish_upload(path, remote, tmp, n, mtime_ns),
                         lambda: self._remove_quietly(tmp))

    def _makedirs(self, conn: FtpConn, path: str) -> None:
        """The directory `path` ("": the root) and those above it that are missing."""
        missing = []
        remote = self.remote(path)
        while remote not in ("/", "") and not self._cwd_ok(conn, remote):
            missing.append(remote)
            remote = posixpath.dirname(remote)
        for remote in reversed(missing):
            try:
                conn.sendcmd(f"MKD {remote}")
            except ftplib.error_perm as e:
                if self._cwd_ok(conn, remote):
                    continue  # made by someone else meanwhile
                sub = posixpath.relpath(remote, self.base)
                if not sub.startswith("..") and sub != ".":
                    it = self._lookup(conn, sub)
                    if it is not None and not it.is_dir:
                        raise _err(errno.ENOTDIR, path) from None
                raise OSError(errno.EACCES, f"ftp {self.label}: can't make {remote!r}: {e}", path) from None

    def _finish_upload(self, path: str, remote: str, tmp: str, written: int, mtime_ns: int | None) -> None:
        """After a STOR: the partial name renamed over the final one, the modtime set, the size checked."""
        def run(conn: FtpConn) -> None:
            if tmp != remote:
                try:
                    conn.rename(tmp, remote)
                except ftplib.error_perm:
                    it = self._lookup(conn, path)  # a server that won't rename over a file
                    if it is not None and it.is_dir:
                        raise _err(errno.EISDIR, path) from None
                    if it is None:
                        raise
                    conn.delete(remote)
                    conn.rename(tmp, remote)
            if mtime_ns is not None and self.set_time:
                self._set_time(conn, remote)(mtime_ns)
            if not self.opt["no_check_upload"]:
                it = self._lookup(conn, path)
                if it is None or (not it.is_dir and it.size != written):
                    got = "nothing" if it is None else f"{it.size} bytes"
                    raise OSError(errno.EIO, f"ftp {self.label}: upload check: wrote {written} bytes, "
                                  f"the server has {got}", path)

        try:
            self.session.call(run)
        except BaseException:
            self._remove_quietly(tmp)
            raise

    def _remove_quietly(self, remote: str) -> None:
        try:
            self.session.call(lambda c: c.delete(remote))
        except (OSError, ftplib.Error):
            pass

    # --- changes ------------------------------------------------------------------------

    def _set_time(self, conn: FtpConn, remote: str) -> Callable[[int], None]:
        def run(mtime_ns: int) -> None:
            when = format_time(mtime_ns)
            conn.sendcmd(f"MFMT {when} {remote}" if self.mfmt else f"MDTM {when} {remote}")
        return run

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        if not self.set_time:
            return  # as rclone: "SetModTime is not supported", quietly
        remote = self.remote(path)

        def run(conn: FtpConn) -> None:
            try:
                self._set_time(conn, remote)(mtime_ns)
            except ftplib.error_perm as e:
                if self._lookup(conn, path) is None:
                    raise self._missing(conn, path) from None
                raise OSError(errno.EPERM, f"ftp {self.label}: can't set the modification time: {e}",
                              path) from None

        self.session.call(run)

    def mkdir(self, path: str) -> None:
        remote = self.remote(path)

        def run(conn: FtpConn) -> None:
            if not path:  # the volume's root, and the directories above it, as rclone's Mkdir("")
                if self._cwd_ok(conn, remote):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
                return self._makedirs(conn, "")
            try:
                conn.sendcmd(f"MKD {remote}")
            except ftplib.error_perm as e:
                if self._lookup(conn, path) is not None:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path) from None
                parent = path.rpartition("/")[0]
                p = self._lookup(conn, parent) if parent else Listed("", True)
                if p is None:
                    raise self._missing(conn, path) from None
                if not p.is_dir:
                    raise _err(errno.ENOTDIR, path) from None
                raise OSError(errno.EACCES, f"ftp {self.label}: {e}", path) from None

        self.session.call(run)

    def rmdir(self, path: str) -> None:
        remote = self.remote(path)

        def run(conn: FtpConn) -> None:
            try:
                conn.sendcmd(f"RMD {remote}")
            except ftplib.error_perm:
                it = self._lookup(conn, path)
                if it is None:
                    raise self._missing(conn, path) from None
                if not it.is_dir:
                    raise _err(errno.ENOTDIR, path) from None
                raise _err(errno.ENOTEMPTY, path) from None

        self.session.call(run)

    def delete(self, path: str) -> None:
        remote = self.remote(path)

        def run(conn: FtpConn) -> None:
            try:
                conn.sendcmd(f"DELE {remote}")
            except ftplib.error_perm as e:
                it = self._lookup(conn, path)
                if it is None:
                    raise self._missing(conn, path) from None
                if it.is_dir:
                    raise _err(errno.EISDIR, path) from None
                raise OSError(errno.EACCES, f"ftp {self.label}: {e}", path) from None

        self.session.call(run)

    def move(self, src: str, dst: str) -> None:
        rs, rd = self.remote(src), self.remote(dst)
        if dst == src or dst.startswith(src + "/"):
            raise OSError(errno.EINVAL, "can't move a directory into itself", dst)

        def run(conn: FtpConn) -> None:
            a = self._lookup(conn, src)
            if a is None:
                raise self._missing(conn, src)
            b = self._lookup(conn, dst)
            if b is not None:
                if b.is_dir and not a.is_dir:
                    raise _err(errno.EISDIR, dst)
                if a.is_dir and not b.is_dir:
                    raise _err(errno.ENOTDIR, dst)
            try:
                conn.rename(rs, rd)
            except ftplib.error_perm as e:
                if b is not None and b.is_dir:
                    raise _err(errno.ENOTEMPTY, dst) from None
                if b is not None:  # a server that won't rename over a file
                    conn.delete(rd)
                    conn.rename(rs, rd)
                    return
                parent = dst.rpartition("/")[0]
                if parent and self._lookup(conn, parent) is None:
                    raise self._missing(conn, dst) from None
                raise OSError(errno.EACCES, f"ftp {self.label}: {e}", dst) from None

        self.session.call(run)

    def shutdown(self) -> None:
        self.session.close()


class _Again(OSError):
    """open_write made the missing parent directories: STOR again."""


class _PastEnd(OSError):
    """open_read's offset is at or past the end of the file."""
