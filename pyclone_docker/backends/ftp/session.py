"""The connections of one ftp remote: TLS, login, the pool, and the retry loops.

`call(fn)` runs fn(conn) on a pooled control connection; `data(cmd)` opens a data connection
for a RETR/STOR. A lost control connection (EOF, reset, timeout, a 421) is closed, replaced and
the operation tried again, up to --low-level-retries times. Permanent replies (5xx) reach the
caller as ftplib.error_perm, for it to tell ENOENT from EEXIST and the rest.
"""

from __future__ import annotations

import errno
import ftplib
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...lib.httpclient import limits
from ...lib.httpclient.tls import ssl_context
from .conn import FtpConn, Pool, TlsSessions, make_dialer

T = TypeVar("T")
# a lost control connection: replace it and try again
LOST = (EOFError, ConnectionError, TimeoutError, ssl.SSLError, ftplib.error_proto)
RETRY_CODES = ("421", "425", "426")  # service not available, can't open data connection, aborted


def _backoff(attempt: int) -> None:
    time.sleep(min(0.1 * 2 ** attempt, 2.0))


class FtpSession:
    """Logs in as `user` to host:port (`tls`: "", "implicit" or "explicit"); `opt` is the
    remote's parsed options, `ctx` its BackendContext."""

    def __init__(self, opt: dict[str, Any], ctx: Any, password: str) -> None:
        self.opt = opt
        self.host, self.port, self.user = str(opt["host"]), int(opt["port"]), str(opt["user"])
        self.label = f"{self.user}@{self.host}:{self.port}"
        self._password = password
        self.timeout = float(ctx.timeout) or None
        self.close_timeout = float(opt["close_timeout"])  # for a download closed early
        self.shut_timeout = float(opt["shut_timeout"])  # for the reply that ends an upload
        self.tries = max(1, int(ctx.low_level_retries))
        self.tls = "implicit" if opt["tls"] else "explicit" if opt["explicit_tls"] else ""
        self.context = self._tls_context(ctx) if self.tls else None
        size = int(opt["tls_cache_size"])  # rclone's: 0 or less, no session is resumed
        self.tls_sessions = TlsSessions(size) if size > 0 else None
        self.dialer = make_dialer(str(opt["socks_proxy"]), str(opt["http_proxy"]), float(ctx.contimeout))
        self.bandwidth = limits.bandwidth(getattr(ctx, "bwlimit", None))
        self.features: dict[str, str] | None = None  # FEAT of the first login
        self.home = "/"  # PWD of the first login
        self.pool = Pool(self._connect, int(opt["concurrency"]), float(opt["idle_timeout"]))

    def _tls_context(self, ctx: Any) -> ssl.SSLContext:
        context = ssl_context(ctx)  # --ca-cert, --client-cert/--client-key, --no-check-certificate
        if self.opt["no_check_certificate"]:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.opt["disable_tls13"]:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        if self.opt["allow_insecure_tls_ciphers"]:
            context.set_ciphers("ALL:@SECLEVEL=0")
        return context

    def _connect(self) -> FtpConn:
        conn = FtpConn(self.dialer, self.tls, self.context, not self.opt["disable_epsv"], self.tls_sessions)
        try:
            conn.connect(self.host, self.port)
            if self.timeout is not None and conn.sock is not None:
                conn.sock.settimeout(self.timeout)
            conn.login_tls(self.user, self._password)
            if self.features is None:
                conn.read_features()
                self.features = conn.features
                self._utf8(conn)
                self.home = self._pwd(conn)
            else:
                conn.features = self.features
                self._utf8(conn)
            conn.voidcmd("TYPE I")
        except ftplib.error_perm as e:
            conn.close_quietly()
            if str(e)[:3] == "530":
                raise PermissionError(errno.EACCES, f"ftp {self.label}: login refused: {e}") from None
            raise OSError(errno.EIO, f"ftp {self.label}: {e}") from None
        except ssl.SSLCertVerificationError as e:
            conn.close_quietly()
            raise PermissionError(errno.EACCES, f"ftp {self.label}: the server's TLS certificate: "
                                  f"{e.verify_message or e}") from None
        except BaseException:
            conn.close_quietly()
            raise
        return conn

    def _utf8(self, conn: FtpConn) -> None:
        if "UTF8" in conn.features and not self.opt["disable_utf8"]:
            try:
                conn.sendcmd("OPTS UTF8 ON")
            except ftplib.Error:
                pass

    @staticmethod
    def _pwd(conn: FtpConn) -> str:
        try:
            return conn.pwd() or "/"
        except ftplib.Error:
            return "/"

    def acquire(self) -> FtpConn:
        """A logged-in connection (the pool's, or a new one: connection failures retried)."""
        for attempt in range(self.tries):
            try:
                return self.pool.acquire()
            except PermissionError:
                raise
            except (OSError, EOFError, ftplib.Error) as e:
                if attempt == self.tries - 1:
                    why = e.strerror if isinstance(e, OSError) and e.strerror else e
                    raise OSError(errno.EIO, f"ftp {self.label}: can't connect: {why}") from None
                _backoff(attempt)
        raise AssertionError("unreachable")

    def release(self, conn: FtpConn) -> None:
        self.pool.release(conn)

    def discard(self, conn: FtpConn) -> None:
        """A connection in an unknown state: closed, its pool slot freed."""
        conn.close_quietly()
        self.pool.release(None)

    def call(self, fn: Callable[[FtpConn], T]) -> T:
        """fn(conn) on a pooled connection; a lost one is replaced and fn retried."""
        last: BaseException | None = None
        for attempt in range(self.tries):
            conn = self.acquire()
            try:
                out = fn(conn)
            except LOST as e:
                last = e
                self.discard(conn)
                _backoff(attempt)
                continue
            except ftplib.error_temp as e:
                if str(e)[:3] not in RETRY_CODES:
                    self.release(conn)
                    raise OSError(errno.EIO, f"ftp {self.label}: {e}") from None
                last = e
                self.discard(conn)
                _backoff(attempt)
                continue
            except ftplib.Error as e:
                self.release(conn)
                raise OSError(errno.EIO, f"ftp {self.label}: {e}") from None
            except BaseException:
                self.release(conn)
                raise
            self.release(conn)
            return out
        raise OSError(errno.EIO, f"ftp {self.label}: {last}") from None

    def data(self, cmd: str, rest: int | None,
             on_perm: Callable[[FtpConn, ftplib.Error], OSError]) -> tuple[FtpConn, Any]:
        """A connection and its data socket for `cmd` (REST `rest` first); lost connections
        retried; a refusal is on_perm(conn, error), raised."""
        last: BaseException | None = None
        for attempt in range(self.tries):
            conn = self.acquire()
            try:
                sock, _ = conn.ntransfercmd(cmd, rest)
                return conn, sock
            except (*LOST, ftplib.error_temp) as e:
                last = e
                self.discard(conn)
                if isinstance(e, ftplib.error_temp) and str(e)[:3] not in RETRY_CODES:
                    raise OSError(errno.EIO, f"ftp {self.label}: {e}") from None
                _backoff(attempt)
            except ftplib.Error as e:
                try:
                    err = on_perm(conn, e)
                finally:
                    self.release(conn)
                raise err from None
            except BaseException:
                self.discard(conn)
                raise
        raise OSError(errno.EIO, f"ftp {self.label}: {last}") from None

    def close(self) -> None:
        self.pool.close()
