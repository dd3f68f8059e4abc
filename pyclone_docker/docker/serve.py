"""`serve docker`: the listening socket, start-up order, signals and shutdown.

Order matters: the socket is bound and answering
before any slow work, because dockerd gives a managed plugin ~9 s and a v1 plugin's Get
must never say "not found" for a volume that exists. So: bind, load the state file (no
backend contact), serve; stale-mount cleanup and remounts run in the background.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import stat
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lib.atomic import atomic_write
from ..lib.httpserver import HttpServer
from ..lib.libc import tune_malloc
from . import api as apimod
from .driver import Driver

if TYPE_CHECKING:
    from ..rc import RcServer

log = logging.getLogger("pyclone.serve")

PLUGIN_DIR = "/run/docker/plugins"
SPEC_DIR = "/etc/docker/plugins"
DEFAULT_NAME = "pyclone"
SD_LISTEN_FDS_START = 3


@dataclass
class Listener:
    sock: socket.socket
    driver_name: str
    cleanup: list[str]  # files to remove at exit (socket, spec)
    description: str

    def close(self) -> None:
        """Remove the socket and spec files, then close the socket."""
        for path in self.cleanup:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.sock.close()


def unix_socket_path(addr: str) -> str:
    """rclone's rules: no extension -> '.sock' added; relative -> under /run/docker/plugins."""
    path = addr or DEFAULT_NAME
    if not os.path.splitext(path)[1]:
        path += ".sock"
    if not os.path.isabs(path):
        path = os.path.join(PLUGIN_DIR, path)
    return path


def systemd_socket(env: dict[str, str] | None = None) -> socket.socket | None:
    """The socket systemd passed (LISTEN_PID/LISTEN_FDS, fd 3), or None."""
    env = dict(os.environ) if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count == 0:
        return None
    if count != 1:
        raise RuntimeError(f"expected only one socket from systemd, got {count}")
    fd = SD_LISTEN_FDS_START
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    return socket.socket(fileno=fd)


def open_listener(socket_addr: str, socket_gid: int, no_spec: bool) -> Listener:
    passed = systemd_socket()
    if passed is not None:
        name = os.path.splitext(os.path.basename(unix_socket_path(socket_addr)))[0]
        return Listener(passed, name, [], "systemd socket")
    if socket_addr and not socket_addr.startswith("/") and ":" in socket_addr:
        return _tcp_listener(socket_addr, no_spec)
    return _unix_listener(unix_socket_path(socket_addr), socket_gid)


def _unix_listener(path: str, gid: int) -> Listener:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise RuntimeError(f"{path} exists and is not a socket; refusing to replace it")
        os.unlink(path)  # stale socket from an earlier run
        log.info("removed stale socket %s", path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # born 0660: no window where others may connect
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if os.geteuid() == 0:
        os.chown(path, 0, gid)
    sock.listen(128)
    name = os.path.splitext(os.path.basename(path))[0]
    return Listener(sock, name, [path], f"unix socket {path}")


def _tcp_listener(addr: str, no_spec: bool) -> Listener:
    host, _, port_text = addr.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise RuntimeError(f"bad --socket-addr {addr!r}: want host:port or an absolute path") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound_host, bound_port = sock.getsockname()[:2]
    cleanup = []
    if not no_spec:
        os.makedirs(SPEC_DIR, mode=0o755, exist_ok=True)
        spec = os.path.join(SPEC_DIR, DEFAULT_NAME + ".spec")
        shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
        atomic_write(spec, f"tcp://{shown}:{bound_port}".encode(), mode=0o644)
        cleanup.append(spec)
    return Listener(sock, DEFAULT_NAME, cleanup, f"tcp {bound_host}:{bound_port}")


def open_rc_listener(addr: str) -> Listener:
    """The --rc-addr socket: TCP only where asked (default localhost:5572), or a unix socket
    (`unix:///path` or `/path`) created 0660 like the plugin's own."""
    from ..rc import parse_rc_addr

    try:
        kind, host, port = parse_rc_addr(addr)
    except ValueError as e:
        raise RuntimeError(str(e)) from None
    if kind == "unix":
        listener = _unix_listener(host, os.getgid())
        return Listener(listener.sock, "rc", listener.cleanup, f"unix://{host}")
    try:
        if host:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            # Go's Listen takes the first IPv4 address of a name: localhost is 127.0.0.1
            family, _, _, _, sockaddr = next((i for i in infos if i[0] == socket.AF_INET), infos[0])
            sock = socket.create_server(sockaddr[:2], family=family, backlog=128)
        elif socket.has_dualstack_ipv6():  # ":port" is every interface, as Go's net.Listen
            sock = socket.create_server(("", port), family=socket.AF_INET6, backlog=128, dualstack_ipv6=True)
        else:
            sock = socket.create_server(("0.0.0.0", port), backlog=128)
    except OSError as e:
        raise RuntimeError(f"cannot listen on --rc-addr {addr}: {e.strerror or e}") from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if sock.family == socket.AF_INET6 else bound_host
    return Listener(sock, "rc", [], f"http://{shown}:{bound_port}/")


def sd_notify(message: str) -> None:
    """The sd_notify protocol without libsystemd: one datagram to $NOTIFY_SOCKET."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    if target.startswith("@"):
        target = "\0" + target[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(target)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify %s: %s", message.split("=")[0], e)


class PluginServer:
    """Glues listener, HTTP loop, driver and signals together."""

    def __init__(self, driver: Driver, listener: Listener, forget_state: bool,
                 rc: RcServer | None = None) -> None:
        self.driver = driver
        self.listener = listener
        self.forget_state = forget_state
        self.rc = rc  # the --rc server, served on its own thread
        self.api = apimod.Api(driver)
        self.http = HttpServer(listener.sock, self.api.handle, apimod.err_body)
        self._signals: list[int] = []

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals.append(signum)  # handled on the loop thread, outside the handler

    def install_signals(self) -> None:
        # Python handlers must exist before the first FUSE mount: libfuse only takes over
        # signals that are still SIG_DFL, and its handler would hang a multi-mount process.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        signal.set_wakeup_fd(self.http.wakeup_fd, warn_on_full_buffer=False)

    def _tick(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig == signal.SIGHUP:
                n = self.driver.forget_caches()
                log.info("SIGHUP: flushed directory caches of %d mounted volume(s)", n)
            else:
                log.info("signal received: %s", signal.Signals(sig).name)
                self.http.stop()

    def run(self) -> int:
        tune_malloc()  # before any thread exists
        self.install_signals()
        if not self.forget_state:
            self.driver.load_state()
        self.driver.clean_stale_mounts()  # fast: one read of the mount table
        log.info("serving %s (driver name %r)", self.listener.description, self.listener.driver_name)
        if self.rc is not None:
            self.rc.start()
        sd_notify("READY=1")
        threading.Thread(target=self._restore, name="restore", daemon=True).start()
        try:
            self.http.serve(self._tick)
        finally:
            self.shutdown()
        return 0

    def _restore(self) -> None:
        try:
            self.driver.restore()
        except Exception:
            log.exception("restore failed")

    def shutdown(self) -> None:
        started = time.monotonic()
        sd_notify("STOPPING=1")
        if self.rc is not None:
            self.rc.close()  # first: no forget may reach a volume being unmounted
        self.http.close()
        self.driver.shutdown()
        self.listener.close()
        log.info("stopped in %.0f ms", (time.monotonic() - started) * 1000)
