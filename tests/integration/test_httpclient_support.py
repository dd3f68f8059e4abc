"""Loopback servers for the HttpClient tests (no tests here): an HTTP/1.1 keep-alive server whose
handler is a test's function, a forward proxy for http:// URLs, and a test PKI made with the
openssl command (a CA, a server certificate for 127.0.0.1, a client certificate)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyclone_docker.backends.base import BackendContext


@dataclass
class Seen:
    method: str
    path: str
    headers: Any  # the request's http.client.HTTPMessage: names without case
    body: bytes


@dataclass
class Stats:
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


Handler = Callable[[http.server.BaseHTTPRequestHandler, Seen, int], None]


def reply(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"",
          headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def reset(h: http.server.BaseHTTPRequestHandler) -> None:
    """Flush what was written, then close the connection with RST."""
    with contextlib.suppress(OSError):
        h.wfile.flush()
    with contextlib.suppress(OSError):
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.close_connection = True
    with contextlib.suppress(OSError):
        h.connection.close()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server:
    """`handler(request_handler, seen, n)` answers request number n (1 = the first)."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.stats = Stats()
        stats = self.stats
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                with stats.lock:
                    stats.connections += 1
                super().setup()

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, self.headers, body)
                with stats.lock:
                    stats.requests.append(seen)
                    n = len(stats.requests)
                outer.handler(self, seen, n)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PROPFIND = do_MKCOL = do_MOVE = do_PROPPATCH = _any

        self.handler = handler
        self.httpd = _Server(("127.0.0.1", 0), H)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def serve(handler: Handler, **kw: object) -> Iterator[Server]:
    server = Server(handler, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


class ForwardProxy:
    """An HTTP forward proxy for http:// URLs (no CONNECT): it sends every request on to
    `origin` (host, port), whatever host the URL names, and counts what it forwarded."""

    def __init__(self, origin: tuple[str, int]) -> None:
        self.forwarded: list[str] = []
        self.proxy_auth: list[str] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                outer.forwarded.append(self.path)
                outer.proxy_auth.append(self.headers.get("Proxy-Authorization", ""))
                target = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with socket.create_connection(origin, timeout=10) as up:
                    path = target.path + (f"?{target.query}" if target.query else "")
                    head = [f"{self.command} {path} HTTP/1.1"]
                    head += [f"{k}: {v}" for k, v in self.headers.items()
                             if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")]
                    head.append("Connection: close")
                    up.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                    data = b""
                    while chunk := up.recv(65536):
                        data += chunk
                self.wfile.write(data)
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_HEAD = _any

        self.httpd = _Server(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ctx(**kw: object) -> BackendContext:
    """A BackendContext with short timeouts and few retries unless told."""
    base: dict[str, object] = {"contimeout": 5.0, "timeout": 5.0, "low_level_retries": 3}
    base.update(kw)
    return BackendContext(**base)  # type: ignore[arg-type]


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate for IP 127.0.0.1 signed by it, a client certificate, and an
    unrelated second CA."""
    for name in ("ca", "other"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                 "-days", "2", "-subj", f"/CN=pyclone test {name} CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=pyclone test {name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key", d / "other.pem")
