"""One FTP control connection (ftplib.FTP_TLS with what rclone's jlaffaye/ftp adds: implicit TLS,
EPSV first, SOCKS5 and HTTP CONNECT proxies for the control and data connections, TLS session
resumption, FEAT), and the pool of them (`concurrency` bounds it, idle ones closed after
`idle_timeout`).

TLS sessions (rclone's tls_cache_size, Go's LRU client session cache): with a cache, a data
connection resumes its control connection's session (what vsftpd's require_ssl_reuse asks for) and
a new control connection resumes the last session of its server; with none (size 0) every
handshake is a full one."""

from __future__ import annotations

import ftplib
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ...lib import proxyconnect


@dataclass(frozen=True)
class Dialer:
    """How to reach a host:port: directly or through a proxy (`socks5` or `http`)."""

    timeout: float
    proxy_kind: str = ""
    proxy_host: str = ""
    proxy_port: int = 0
    proxy_auth: tuple[str, str] | None = field(default=None, repr=False)

    def dial(self, host: str, port: int) -> socket.socket:
        if not self.proxy_kind:
            s = socket.create_connection((host, port), self.timeout)
        else:
            s = socket.create_connection((self.proxy_host, self.proxy_port), self.timeout)
            try:
                (proxyconnect.socks5 if self.proxy_kind == "socks5" else proxyconnect.http_connect)(
                    s, host, port, self.proxy_auth)
            except BaseException:
                s.close()
                raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def make_dialer(socks_proxy: str, http_proxy: str, timeout: float) -> Dialer:
    """rclone's socks_proxy (`[user:pass@]host:port`) or http_proxy (a URL) as a Dialer."""
    if socks_proxy and http_proxy:
        raise ValueError("ftp: only one of socks_proxy and http_proxy may be set")
    if socks_proxy:
        auth, _, hostport = socks_proxy.rpartition("@")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"ftp: socks_proxy must be host:port (optionally user:pass@ before), not {hostport!r}")
        user, _, password = auth.partition(":")
        return Dialer(timeout, "socks5", host.strip("[]"), int(port), (user, password) if auth else None)
    if http_proxy:
        u = urlsplit(http_proxy if "://" in http_proxy else f"http://{http_proxy}")
        if u.scheme != "http" or not u.hostname:
            raise ValueError("ftp: http_proxy must be an http:// URL of a proxy that does CONNECT")
        auth = (unquote(u.username or ""), unquote(u.password or "")) if u.username else None
        return Dialer(timeout, "http", u.hostname, u.port or 80, auth)
    return Dialer(timeout)


class TlsSessions:
    """Up to `size` TLS sessions, one per server, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._sessions: OrderedDict[tuple[str, int], ssl.SSLSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> ssl.SSLSession | None:
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
            return session

    def put(self, key: tuple[str, int], session: ssl.SSLSession | None) -> None:
        if session is None:
            return
        with self._lock:
            self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.size:
                self._sessions.popitem(last=False)


class FtpConn(ftplib.FTP_TLS):
    """A control connection; `tls` is "", "implicit" or "explicit"; `sessions` None: no TLS
    session is ever resumed (tls_cache_size 0)."""

    def __init__(self, dialer: Dialer, tls: str, context: ssl.SSLContext | None, epsv: bool,
                 sessions: TlsSessions | None = None) -> None:
        super().__init__(context=context, timeout=dialer.timeout, encoding="utf-8")
        self.sessions = sessions
        self.dialer = dialer
        self.tls_mode = tls
        self.epsv = epsv
        self.features: dict[str, str] = {}
        self.last_used = time.monotonic()

    def connect(self, host: str = "", port: int = 0, timeout: float = -999,  # type: ignore[override]
                source_address: object = None) -> str:
        self.host, self.port = host, port
        sock = self.dialer.dial(host, port)
        if self.tls_mode == "implicit":
            sock = self._wrap_control(sock)
        self.sock = sock
        self.af = sock.family
        self.file = sock.makefile("r", encoding=self.encoding, errors="surrogateescape")
        self.welcome = self.getresp()
        return self.welcome

    def _wrap_control(self, sock: socket.socket) -> ssl.SSLSocket:
        resume = self.sessions.get((self.host, self.port)) if self.sessions is not None else None
        return self.context.wrap_socket(sock, server_hostname=self.host, session=resume)

    def auth(self) -> str:
        """AUTH TLS, resuming a cached session (ftplib's own never does)."""
        resp = self.voidcmd("AUTH TLS")
        self.sock = self._wrap_control(self.sock)
        self.file = self.sock.makefile("r", encoding=self.encoding, errors="surrogateescape")
        return resp

    def login_tls(self, user: str, password: str) -> None:
        if self.tls_mode == "explicit":
            self.auth()
        ftplib.FTP.login(self, user, password)  # FTP_TLS.login would send AUTH TLS on a plain connection
        if self.tls_mode:
            self.prot_p()
            if self.sessions is not None:  # after replies were read: a TLS 1.3 ticket has come by now
                self.sessions.put((self.host, self.port), self.sock.session)

    def read_features(self) -> None:
        try:
            resp = self.sendcmd("FEAT")
        except ftplib.error_perm:
            return
        for line in resp.splitlines()[1:]:
            if line.startswith(" "):
                name, _, arg = line.strip().partition(" ")
                self.features[name.upper()] = arg

    def makepasv(self) -> tuple[str, int]:
        if self.epsv:
            try:
                _host, port = ftplib.parse229(self.sendcmd("EPSV"), ("", 0))
                return self._data_host(), port
            except ftplib.error_perm:
                self.epsv = False  # as jlaffaye/ftp: the server has no EPSV, PASV from now on
        untrusted, port = ftplib.parse227(self.sendcmd("PASV"))
        return self._data_host(untrusted), port

    def _data_host(self, offered: str = "") -> str:
        if self.dialer.proxy_kind:
            return self.host  # the server as named: the proxy connects to it
        return self.sock.getpeername()[0]

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        host, port = self.makepasv()
        conn = self.dialer.dial(host, port)
        try:
            if rest is not None:
                self.sendcmd(f"REST {rest}")
            resp = self.sendcmd(cmd)
            if resp[0] == "2":
                resp = self.getresp()
            if resp[0] != "1":
                raise ftplib.error_reply(resp)
            if self._prot_p:
                session = self.sock.session if self.sessions is not None else None
                conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        except BaseException:
            conn.close()
            raise
        return conn, None

    def close_quietly(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Pool:
    """Idle control connections, and a bound (`limit`, 0 = none) on those in use plus idle."""

    def __init__(self, new: Callable[[], FtpConn], limit: int, idle_timeout: float) -> None:
        self._new = new
        self._idle: list[FtpConn] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self._idle_timeout = idle_timeout
        self._reaper: threading.Timer | None = None
        self._closed = False

    def acquire(self) -> FtpConn:
        if self._slots is not None:
            self._slots.acquire()
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            return conn if conn is not None else self._new()
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def release(self, conn: FtpConn | None) -> None:
        """Back to the pool (None or a broken connection: its slot only; close it first)."""
        if conn is not None:
            conn.last_used = time.monotonic()
            with self._lock:
                if self._closed:
                    conn.close_quietly()
                else:
                    self._idle.append(conn)
                    self._arm()
        if self._slots is not None:
            self._slots.release()

    def _arm(self) -> None:
        if self._idle_timeout > 0 and self._reaper is None:
            self._reaper = threading.Timer(self._idle_timeout, self._reap)
            self._reaper.daemon = True
            self._reaper.start()

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._reaper = None
            old = [c for c in self._idle if now - c.last_used >= self._idle_timeout]
            self._idle = [c for c in self._idle if c not in old]
            if self._idle:
                self._arm()
        for c in old:  # off the lock: QUIT may wait on the server
            try:
                c.quit()
            except Exception:
                c.close_quietly()

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if self._reaper is not None:
                self._reaper.cancel()
                self._reaper = None
        for c in idle:
            c.close_quietly()
