"""ssh connections to one server, shared by every volume with the same server and credentials.

A Connection is one `ssh -s sftp` process (with the ControlMaster for remote commands such as
md5sum, so those need no handshake of their own). Its SFTP channel multiplexes any number of
requests, so one connection serves many files at once; a Pool opens another only when every one
it has carries STREAMS_PER_CONNECTION open transfers, up to `connections` (0: no cap, as rclone).
Connects and remote I/O never run under the pool's lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

from .channel import Channel, ChannelClosed
from .ssh import SshConfig, askpass, runtime_dir

log = logging.getLogger("pyclone")

STREAMS_PER_CONNECTION = 4
# ssh's stderr lines that say nothing to a user (the second and third follow a failed connect
# of the ProxyUseFdpass helper, whose own line says why)
_NOISE = ("Warning: Permanently", "mm_receive_fd", "proxy dialer did not pass back")
_PIPE_SIZE = 1 << 20
_ids = itertools.count(1)


class ConnectError(ConnectionError):
    """ssh could not connect; `retryable` False for authentication and host key failures."""

    def __init__(self, err: int, why: str, retryable: bool) -> None:
        super().__init__(err, why)
        self.retryable = retryable


def _classify(text: str) -> tuple[int, bool]:
    low = text.lower()
    if "permission denied" in low or "too many authentication failures" in low:
        return errno.EACCES, False
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return errno.EACCES, False
    if "could not resolve hostname" in low or "name or service not known" in low:
        return errno.EHOSTUNREACH, False  # as rclone: a name that does not resolve is not retried
    if "connection refused" in low:
        return errno.ECONNREFUSED, True
    if "timed out" in low:
        return errno.ETIMEDOUT, True
    return errno.ECONNRESET, True


class Connection:
    """One ssh process and its SFTP channel."""

    def __init__(self, cfg: SshConfig, timeout: float, contimeout: float) -> None:
        self.cfg = cfg
        self.timeout = timeout
        self.contimeout = contimeout
        self.users = 0  # open transfers on this connection
        self.control: str | None = None
        self.proc: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self._stderr = None

    @property
    def alive(self) -> bool:
        return self.channel is not None and not self.channel.closed

    def open(self) -> None:
        cfg = self.cfg
        rd = runtime_dir()
        if not cfg.external:
            self.control = os.path.join(rd, f"c{next(_ids)}")
        server, helper = askpass() if cfg.password or cfg.passphrase or cfg.proxy_auth else (None, "")
        self._stderr = tempfile.TemporaryFile(dir=rd)
        proc = subprocess.Popen(cfg.session_argv(self.control), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self._stderr, env=cfg.child_env(helper), start_new_session=True,
                                close_fds=True, bufsize=0)
        self.proc = proc
        if server is not None:
            server.register(proc.pid, cfg.answer, uses=3)
        assert proc.stdin is not None and proc.stdout is not None
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(f.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        channel = Channel(proc.stdout.fileno(), proc.stdin.fileno(), cfg.label, self.timeout)
        # a server that accepts the TCP connection and then says nothing must not hang us
        watchdog = threading.Timer(self.contimeout + 30, self._kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            channel.start()
        except (ChannelClosed, OSError) as e:
            self._kill()
            text = self.stderr_tail() or str(e)
            self.close()  # the process reaped, its stderr file and control socket gone
            err, retryable = _classify(text)
            raise ConnectError(err, f"couldn't connect SSH to {cfg.label}: {text}", retryable) from None
        finally:
            watchdog.cancel()
            if server is not None:
                server.forget(proc.pid)
        self.channel = channel

    def stderr_tail(self) -> str:
        f = self._stderr
        if f is None:
            return ""
        try:
            f.seek(0)
            text = f.read()[-2000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
        return "; ".join(lines[-3:])

    def exec(self, command: str, stdin: bytes = b"", timeout: float | None = None) -> tuple[int, bytes]:
        """Run a remote command (over the ControlMaster's connection); (exit status, stdout)."""
        argv = self.cfg.exec_argv(self.control if self.alive else None, command)
        helper = askpass()[1] if self.cfg.password or self.cfg.passphrase else ""
        try:
            r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=self.cfg.child_env(helper), timeout=timeout or self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return -1, b""
        return r.returncode, r.stdout

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.fail("closed")
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._kill()
                proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()  # type: ignore[union-attr]
        if self._stderr is not None:
            self._stderr.close()
        if self.control:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.control)


class Pool:
    """The connections to one server with one set of credentials."""

    def __init__(self, cfg: SshConfig, timeout: float, contimeout: float, connections: int,
                 idle_timeout: float) -> None:
        self.cfg = cfg
        self.timeout = timeout
        self.contimeout = contimeout
        self.cap = connections
        self.idle_timeout = idle_timeout
        self.refs = 0
        self.unused_since = 0.0
        self._conns: list[Connection] = []
        self._opening = 0
        self._lock = threading.Lock()
        self._opened = threading.Condition(self._lock)
        self.last_used = time.monotonic()

    def _pick(self, streaming: bool) -> Connection | None:
        self._conns = [c for c in self._conns if c.alive]
        best = min(self._conns, key=lambda c: c.users, default=None)
        if best is None:
            return None
        room = self.cap <= 0 or len(self._conns) + self._opening < self.cap
        if streaming and best.users >= STREAMS_PER_CONNECTION and room:
            return None
        return best

    def acquire(self, streaming: bool = False) -> Connection:
        """A live connection (opened now if need be); give it back with release()."""
        with self._lock:
            while True:
                conn = self._pick(streaming)
                if conn is not None:
                    conn.users += 1
                    self.last_used = time.monotonic()
                    return conn
                if self.cap <= 0 or len(self._conns) + self._opening < self.cap:
                    break
                self._opened.wait(self.contimeout)  # capped: wait for one being opened
            self._opening += 1
        conn = Connection(self.cfg, self.timeout, self.contimeout)
        try:
            conn.open()
        finally:
            with self._lock:
                self._opening -= 1
                self._opened.notify_all()
        with self._lock:
            self._conns.append(conn)
            conn.users += 1
            self.last_used = time.monotonic()
        return conn

    def release(self, conn: Connection) -> None:
        with self._lock:
            conn.users -= 1
            self.last_used = time.monotonic()

    def discard(self, conn: Connection) -> None:
        """A connection that failed: closed, and never handed out again."""
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        if conn.channel is not None and not conn.channel.closed:
            log.error("Discarding closed SSH connection: %s", conn.channel.closed_reason or self.cfg.label)
        conn.close()

    @contextlib.contextmanager
    def connection(self, streaming: bool = False) -> Iterator[Connection]:
        conn = self.acquire(streaming)
        try:
            yield conn
        finally:
            self.release(conn)

    def close_idle(self, now: float) -> None:
        if self.idle_timeout <= 0:
            return
        with self._lock:
            if now - self.last_used < self.idle_timeout or any(c.users for c in self._conns):
                return
            if any(c.channel is not None and c.channel.in_flight for c in self._conns):
                return
            idle, self._conns = self._conns, []
        for c in idle:
            c.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()


_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()
_janitor: list[threading.Thread] = []


def get_pool(cfg: SshConfig, timeout: float, contimeout: float, connections: int, idle_timeout: float) -> Pool:
    """The shared pool for this server and these credentials (one more user of it)."""
    key = f"{cfg.key()}:{connections}:{idle_timeout}:{timeout}"
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(cfg, timeout, contimeout, connections, idle_timeout)
        # else: an equal config names the same files (ssh.build), which the pool keeps
        pool.refs += 1
        _start_janitor()
        return pool


LINGER = 30.0  # seconds a pool no volume uses stays open: an Unmount then Mount (a container
# restart) reuses its connection


def put_pool(pool: Pool) -> None:
    """One user fewer. The last one leaves the pool open for LINGER seconds; then (janitor) it
    closes its connections and removes its inline key files."""
    with _pools_lock:
        pool.refs -= 1
        if pool.refs <= 0:
            pool.unused_since = time.monotonic()
        _start_janitor()


def _start_janitor() -> None:
    if not _janitor:
        t = threading.Thread(target=_close_idle_loop, name="sftp-idle", daemon=True)
        _janitor.append(t)
        t.start()


def _close_unused(now: float, linger: float) -> None:
    with _pools_lock:
        gone = [(k, p) for k, p in _pools.items() if p.refs <= 0 and now - p.unused_since >= linger]
        for k, _p in gone:
            del _pools[k]
    for _k, p in gone:
        p.close()
        p.cfg.close()


def close_all() -> None:
    """Every pool no volume uses, now (tests; the plugin's exit removes the runtime dir anyway)."""
    _close_unused(float("inf"), 0.0)


def _close_idle_loop() -> None:
    while True:
        time.sleep(2)
        now = time.monotonic()
        try:
            _close_unused(now, LINGER)
            with _pools_lock:
                pools = list(_pools.values())
            for p in pools:
                p.close_idle(now)
        except Exception:  # the janitor must not die
            log.exception("sftp: closing idle connections failed")
