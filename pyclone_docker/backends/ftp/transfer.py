"""FTP transfers on the data connection: a ranged download (REST + RETR) read straight into
the caller's buffer, and an upload (STOR, to rclone's partial name unless --inplace) written
straight from it. The control reply that ends a transfer decides: a download whose server
did not say 226 is EIO, never a short file."""

from __future__ import annotations

import errno
import ftplib
import logging
import socket
import ssl
import zlib
from collections.abc import Callable

from .conn import FtpConn
from .session import FtpSession

log = logging.getLogger("pyclone")

# what a server may answer when we closed a download early (as rclone's ftpReadCloser.Close)
_EARLY_CLOSE_OK = ("226", "250", "150", "426", "450", "451", "550")


def partial_name(path: str, remote: str, size: int, mtime_ns: int | None, suffix: str = ".partial") -> str:
    """rclone's partial upload name `leaf.<crc32 hex>.partial` (--partial-suffix); the CRC is of
    the path and of what the upload is; a long leaf is cut so the name stays within 255 bytes."""
    crc = zlib.crc32(f"{path}{size},{mtime_ns}".encode("utf-8", "surrogateescape"))
    tail = f".{crc:08x}{suffix}"
    head, _, leaf = remote.rpartition("/")
    raw = leaf.encode("utf-8", "surrogateescape")
    if len(raw) > 100:
        leaf = raw[:255 - len(tail.encode())].decode("utf-8", "ignore")
    return f"{head}/{leaf}{tail}" if head else f"{leaf}{tail}"


def end_data(sock: socket.socket) -> None:
    """Close a data connection (a TLS one with its close_notify, as ftplib's storbinary)."""
    try:
        if isinstance(sock, ssl.SSLSocket):
            sock.unwrap()
    except (OSError, ValueError):
        pass
    finally:
        sock.close()


class _Empty:
    """A read at or past the end of a file."""

    def readinto(self, view: memoryview) -> int:
        return 0

    def close(self) -> None:
        pass


EMPTY = _Empty()


class _Cut(Exception):
    """The data connection ended before the server said the transfer was complete."""


class FtpReader:
    """A RETR from `offset`, `length` bytes (-1: to the end). A transfer cut short (a reset, or
    a 4xx/5xx reply where 226 was due) is resumed where it stopped, with REST, up to
    --low-level-retries times; then it is EIO, never a short file."""

    def __init__(self, session: FtpSession, open_at: Callable[[int], tuple[FtpConn, socket.socket]], path: str,
                 offset: int, length: int) -> None:
        self.session, self.open_at, self.path = session, open_at, path
        self.bandwidth = session.bandwidth
        self.pos = offset
        self.left = length  # -1: to the end
        self.resumes = session.tries - 1
        self.done = False  # the server's final reply was read
        self.closed = False
        self.conn: FtpConn | None = None
        self.conn, self.sock = open_at(offset)

    def readinto(self, view: memoryview) -> int:
        if self.closed:
            raise ValueError("read of a closed reader")
        if self.done or self.left == 0 or not len(view):
            return 0
        want = len(view) if self.left < 0 else min(len(view), self.left)
        while True:
            try:
                n = self._recv(view, want)
                break
            except _Cut as e:
                self._resume(str(e))
        if n:
            self.pos += n
            if self.left > 0:
                self.left -= n
            if self.bandwidth is not None:
                self.bandwidth.rx(n)
        return n

    def _recv(self, view: memoryview, want: int) -> int:
        assert self.conn is not None
        try:
            n = self.sock.recv_into(view, want)
        except ssl.SSLEOFError:
            n = 0  # a server that ends without close_notify: its 226 (or not) tells
        except (OSError, ValueError) as e:
            end_data(self.sock)
            self.session.discard(self.conn)
            self.conn = None
            raise _Cut(str(e)) from None
        if n:
            return n
        end_data(self.sock)
        try:
            self.conn.voidresp()
        except ftplib.Error as e:  # 426 and the like: the control connection is still good
            self.session.release(self.conn)
            self.conn = None
            raise _Cut(str(e)) from None
        except (OSError, EOFError) as e:
            self.session.discard(self.conn)
            self.conn = None
            raise _Cut(str(e) or "the control connection closed") from None
        self.done = True
        return 0

    def _resume(self, why: str) -> None:
        if self.resumes <= 0:
            self.closed = True
            raise OSError(errno.EIO, f"ftp {self.session.label}: download cut at byte {self.pos}: {why}",
                          self.path)
        self.resumes -= 1
        log.info("ftp %s: download of %r cut at byte %d (%s): resuming", self.session.label, self.path, self.pos,
                 why)
        try:
            self.conn, self.sock = self.open_at(self.pos)
        except OSError as e:
            self.closed = True
            raise OSError(errno.EIO, f"ftp {self.session.label}: download cut at byte {self.pos} ({why}), "
                          f"and resuming it failed: {e.strerror or e}", self.path) from None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if not self.done:  # closed early: the server's reply to the abandoned transfer
            end_data(self.sock)
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(self.session.close_timeout or None)
                resp = conn.getresp()
                ok = resp[:3] in _EARLY_CLOSE_OK
            except ftplib.Error as e:
                ok = str(e)[:3] in _EARLY_CLOSE_OK
            except (OSError, EOFError):
                ok = False
            if not ok:
                self.session.discard(conn)
                return
            if conn.sock is not None:
                conn.sock.settimeout(self.session.timeout)
        self.session.release(conn)


class FtpWriter:
    """A STOR's data connection. close() reads the server's reply, then `finish(written)` renames
    the partial file and sets the modtime; a failed upload is `remove()`d."""

    def __init__(self, session: FtpSession, conn: FtpConn, sock: socket.socket, path: str,
                 finish: Callable[[int], None], remove: Callable[[], None]) -> None:
        self.session, self.conn, self.sock, self.path = session, conn, sock, path
        self.finish, self.remove = finish, remove
        self.bandwidth = session.bandwidth
        self.written = 0
        self.finished = False

    def write(self, view: memoryview) -> int:
        if self.finished:
            raise ValueError("write to a closed writer")
        if self.bandwidth is not None:
            self.bandwidth.tx(len(view))
        try:
            self.sock.sendall(view)
        except (OSError, ValueError) as e:
            self.abort()
            raise OSError(errno.EIO, f"ftp {self.session.label}: upload cut: {e}", self.path) from None
        self.written += len(view)
        return len(view)

    def close(self) -> None:
        if self.finished:
            return
        self.finished = True
        end_data(self.sock)
        try:
            if self.conn.sock is not None:  # --ftp-shut-timeout: how long the server may take to confirm
                self.conn.sock.settimeout(self.session.shut_timeout or None)
            self.conn.voidresp()
            if self.conn.sock is not None:
                self.conn.sock.settimeout(self.session.timeout)
        except ftplib.Error as e:
            self.session.discard(self.conn)
            self.remove()
            raise OSError(errno.EIO, f"ftp {self.session.label}: upload failed: {e}", self.path) from None
        except (OSError, EOFError) as e:
            self.session.discard(self.conn)
            self.remove()
            raise OSError(errno.EIO, f"ftp {self.session.label}: upload cut: {e}", self.path) from None
        self.session.release(self.conn)
        self.finish(self.written)

    def abort(self) -> None:
        if self.finished:
            return
        self.finished = True
        end_data(self.sock)
        try:
            self.conn.sock.settimeout(self.session.close_timeout or None)
            self.conn.getresp()
            self.conn.sock.settimeout(self.session.timeout)
        except ftplib.Error:
            self.conn.sock.settimeout(self.session.timeout)
        except (OSError, EOFError, AttributeError):
            self.session.discard(self.conn)
            self.remove()
            return
        self.session.release(self.conn)
        self.remove()
