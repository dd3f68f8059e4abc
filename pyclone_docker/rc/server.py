"""The rc HTTP server on its own thread, beside the Docker API loop: auth, parameters, the
method, the reply (rclone's fs/rc/rcserver)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .. import __version__
from ..lib.httpserver import HttpServer, Request, Response
from ..lib.listeners import BACKLOG, Listener, unix_listener
from ..parsers import go_quote
from .params import JOB_PARAMS, Params, RcError, request_params
from .registry import CALLS, Call

log = logging.getLogger("pyclone.rc")

REALM = "rclone"


def to_json(data: Any) -> bytes:
    """rclone's rc.WriteJSON: tab-indented, keys sorted (Go's maps), newline-terminated."""
    return (json.dumps(data, indent="\t", sort_keys=True, ensure_ascii=False) + "\n").encode()


def error_body(path: str, params: Params | None, message: str, status: int) -> bytes:
    return to_json({"error": message, "input": params, "path": path, "status": status})


def _bare_error(message: str) -> bytes:
    """Errors the HTTP layer itself answers (malformed requests, timeouts)."""
    return to_json({"error": message})


def check_basic_auth(header: str, user: str, password: str) -> bool:
    """HTTP Basic credentials against the one configured user (constant-time compare)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    got_user, sep, got_pass = decoded.partition(b":")
    if not sep:
        return False
    ok_user = hmac.compare_digest(got_user, user.encode())
    ok_pass = hmac.compare_digest(got_pass, password.encode())
    return ok_user and ok_pass


class RcHandler:
    """Routes one rc request: auth, parameters, method, reply (rclone's rcserver.handler)."""

    def __init__(self, context: object, user: str = "", password: str = "", no_auth: bool = False) -> None:
        self.context = context  # what every method gets first (the Docker driver)
        self.user = user
        self.password = password
        self.no_auth = no_auth

    @property
    def using_auth(self) -> bool:
        return bool(self.user)  # rclone: basic auth is on when a user name is set

    def handle(self, req: Request) -> Response | Callable[[], Response]:
        path = unquote(req.path).lstrip("/")
        authorization = req.headers.get("authorization", "")
        if (self.using_auth and req.method != "OPTIONS"
                and not check_basic_auth(authorization, self.user, self.password)):
            log.info("rc: %s: unauthorized request", go_quote(path))
            return Response(401, b"401 Unauthorized\n", "text/plain; charset=utf-8",
                            headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
        if req.method == "POST":
            return self._post(req, path)
        if req.method == "OPTIONS":
            return Response(200, b"", "text/plain; charset=utf-8")
        if req.method in ("GET", "HEAD"):
            body = b"" if req.method == "HEAD" else b"Not Found\n"
            return Response(404, body, "text/plain; charset=utf-8")
        return self._error(path, None, RcError(f"method {go_quote(req.method)} not allowed", 405))

    def _post(self, req: Request, path: str) -> Response | Callable[[], Response]:
        try:
            params = request_params(req.query, req.headers.get("content-type", ""), req.body)
        except RcError as e:
            return self._error(path, None, e)
        async_flag = params.pop("_async", None)
        for key in JOB_PARAMS:
            params.pop(key, None)
        call = CALLS.get(path)
        if call is None:
            return self._error(path, params, RcError(f"couldn't find method {go_quote(path)}", 404))
        if not call.no_auth and not self.no_auth and not self.using_auth:
            return self._error(path, params, RcError(
                f"authentication must be set up on the rc server to use {go_quote(path)} "
                "or the --rc-no-auth flag must be in use", 403))
        if async_flag not in (None, False, "false", "0"):
            return self._error(path, params, RcError("_async: background jobs are not supported", 400))
        log.debug("rc: %s: with parameters %s", go_quote(path), sorted(params))  # names only
        original = dict(params)
        if call.slow:
            return lambda: self._run(call, path, params, original)
        return self._run(call, path, params, original)

    def _run(self, call: Call, path: str, params: Params, original: Params) -> Response:
        try:
            out = call.fn(self.context, params)
        except RcError as e:
            return self._error(path, original, e)
        except OSError as e:
            return self._error(path, original, RcError(str(e)))
        return Response(200, to_json(out if out is not None else {}), "application/json")

    def _error(self, path: str, params: Params | None, e: RcError) -> Response:
        level = logging.ERROR if e.status >= 500 else logging.INFO
        log.log(level, "rc: %s: error: %s", go_quote(path), e)
        return Response(e.status, error_body(path, params, str(e), e.status), "application/json")


class RcServer:
    """The rc HTTP server on its own thread, beside the Docker API loop."""

    def __init__(self, context: object, listener: Listener, user: str = "", password: str = "",
                 no_auth: bool = False) -> None:
        self.listener = listener
        self.handler = RcHandler(context, user, password, no_auth)
        self.http = HttpServer(listener.sock, self.handler.handle, _bare_error, workers=2,
                               headers={"Server": f"pyclone-docker/{__version__}"})
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="rc", daemon=True)
        self._thread.start()
        log.warning("Serving remote control on %s", self.listener.description)
        if not self.handler.using_auth and not self.handler.no_auth:
            log.info("rc: no --rc-user: only the read-only methods answer (vfs/forget needs auth or --rc-no-auth)")

    def _serve(self) -> None:
        try:
            self.http.serve()
        except Exception:
            log.exception("rc server failed")

    def close(self) -> None:
        """Stop serving and close the socket (a unix socket file is removed). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.http.stop()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._thread is None or not self._thread.is_alive():
            self.http.close()
        self.listener.close()


def parse_rc_addr(addr: str) -> tuple[str, str, int]:
    """--rc-addr -> ("unix", path, 0) or ("tcp", host, port), with rclone's forms:
    `unix:///path` or `/path`; `host:port`, `[v6]:port`, `:port` (every interface), `http://`."""
    addr = addr.strip()
    if addr.startswith("unix://") or addr.startswith("/"):
        path = addr.removeprefix("unix://")
        if not path.startswith("/"):
            raise ValueError(f"bad --rc-addr {addr!r}: a unix socket needs an absolute path")
        return "unix", path, 0
    if addr.startswith(("tls://", "https://")):
        raise ValueError(f"bad --rc-addr {addr!r}: TLS is not supported")
    hostport = addr.removeprefix("http://").rstrip("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"bad --rc-addr {addr!r}: want host:port, :port or unix:///path")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"bad --rc-addr {addr!r}: write an IPv6 address as [addr]:port")
    return "tcp", host, int(port_text)


def open_listener(addr: str) -> Listener:
    """The --rc-addr socket: TCP only where asked (default localhost:5572), or a unix socket
    (`unix:///path` or `/path`) created 0660 like the plugin's own."""
    try:
        kind, host, port = parse_rc_addr(addr)
    except ValueError as e:
        raise RuntimeError(str(e)) from None
    if kind == "unix":
        listener = unix_listener(host, os.getgid())
        return Listener(listener.sock, "rc", listener.cleanup, f"unix://{host}")
    try:
        if host:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            # Go's Listen takes the first IPv4 address of a name: localhost is 127.0.0.1
            family, _, _, _, sockaddr = next((i for i in infos if i[0] == socket.AF_INET), infos[0])
            sock = socket.create_server(sockaddr[:2], family=family, backlog=BACKLOG)
        elif socket.has_dualstack_ipv6():  # ":port" is every interface, as Go's net.Listen
            sock = socket.create_server(("", port), family=socket.AF_INET6, backlog=BACKLOG, dualstack_ipv6=True)
        else:
            sock = socket.create_server(("0.0.0.0", port), backlog=BACKLOG)
    except OSError as e:
        raise RuntimeError(f"cannot listen on --rc-addr {addr}: {e.strerror or e}") from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if sock.family == socket.AF_INET6 else bound_host
    return Listener(sock, "rc", [], f"http://{shown}:{bound_port}/")
