"""`serve docker`: the listening socket, start-up order, signals and shutdown.

Order matters: the socket is bound and answering
before any slow work, because dockerd gives a managed plugin ~9 s and a v1 plugin's Get
must never say "not found" for a volume that exists. So: bind, load the state file (no
backend contact), serve; stale-mount cleanup and remounts run in the background.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..lib.atomic import atomic_write
from ..lib.httpserver import HttpServer, Request, Response
from ..lib.libc import tune_malloc
from ..lib.listeners import BACKLOG, Listener, raise_open_files_limit, sd_notify, systemd_socket, unix_listener
from . import api as apimod
from .driver import Driver

if TYPE_CHECKING:
    from ..rc import RcServer

log = logging.getLogger("pyclone.serve")

PLUGIN_DIR = "/run/docker/plugins"
SPEC_DIR = "/etc/docker/plugins"
DEFAULT_NAME = "pyclone"
WARM_UP_DELAY = 1.0  # seconds restore() waits for the first request when nothing needs remounting


def unix_socket_path(addr: str) -> str:
    """rclone's rules: no extension -> '.sock' added; relative -> under /run/docker/plugins."""
    path = addr or DEFAULT_NAME
    if not os.path.splitext(path)[1]:
        path += ".sock"
    if not os.path.isabs(path):
        path = os.path.join(PLUGIN_DIR, path)
    return path


def open_listener(socket_addr: str, socket_gid: int, no_spec: bool) -> Listener:
    passed = systemd_socket()
    if passed is not None:
        name = os.path.splitext(os.path.basename(unix_socket_path(socket_addr)))[0]
        return Listener(passed, name, [], "systemd socket")
    if socket_addr and not socket_addr.startswith("/") and ":" in socket_addr:
        return _tcp_listener(socket_addr, no_spec)
    return unix_listener(unix_socket_path(socket_addr), socket_gid)


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
    sock.listen(BACKLOG)
    bound_host, bound_port = sock.getsockname()[:2]
    cleanup = []
    if not no_spec:
        os.makedirs(SPEC_DIR, mode=0o755, exist_ok=True)
        spec = os.path.join(SPEC_DIR, DEFAULT_NAME + ".spec")
        shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
        atomic_write(spec, f"tcp://{shown}:{bound_port}".encode(), mode=0o644)
        cleanup.append(spec)
    return Listener(sock, DEFAULT_NAME, cleanup, f"tcp {bound_host}:{bound_port}")


class PluginServer:
    """Glues listener, HTTP loop, driver and signals together."""

    def __init__(self, driver: Driver, listener: Listener, forget_state: bool,
                 rc: RcServer | None = None) -> None:
        self.driver = driver
        self.listener = listener
        self.forget_state = forget_state
        self.rc = rc  # the --rc server, served on its own thread
        self.api = apimod.Api(driver)
        self._answered = threading.Event()  # the first request is answered: warm-up may begin
        self.http = HttpServer(listener.sock, self._handle_first, apimod.err_body)
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
        raise_open_files_limit()
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

    def _handle_first(self, req: Request) -> Response | Callable[[], Response]:
        """The first request (dockerd's Activate, as a rule) goes before the warm-up imports of
        restore(), which would otherwise share the interpreter with it; then the API's own
        handler takes over."""
        try:
            return self.api.handle(req)
        finally:
            self.http.handler = self.api.handle
            self._answered.set()

    def _restore(self) -> None:
        if not self.driver.has_remounts():
            self._answered.wait(WARM_UP_DELAY)
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
