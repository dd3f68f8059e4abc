"""Small real proxies for tests: SOCKS5 (RFC 1928/1929, user name and password) and HTTP
CONNECT (basic auth), each recording the credentials it was given and the targets it was asked
for. Used by the sftp and ftp proxy tests.

    proxy = Proxy("socks5")   # or "http"; listens on 127.0.0.1:proxy.port
    ... proxy.auths, proxy.targets ...
    proxy.close()
"""

from __future__ import annotations

import base64
import socket
import struct
import threading

PROXY_USER, PROXY_PASS = "proxyuser", "pr0xy-s3cret"


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Proxy:
    """A SOCKS5 (RFC 1928/1929) or HTTP CONNECT proxy that records what it was asked."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.auths: list[str] = []
        self.targets: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c: socket.socket) -> None:
        try:
            host, port = self._socks(c) if self.kind == "socks5" else self._http(c)
        except (OSError, ValueError):
            c.close()
            return
        up = socket.create_connection((host, port))
        self.targets.append(f"{host}:{port}")
        threading.Thread(target=_pipe, args=(c, up), daemon=True).start()
        threading.Thread(target=_pipe, args=(up, c), daemon=True).start()

    def _socks(self, c: socket.socket) -> tuple[str, int]:
        _ver, n = c.recv(2)
        methods = c.recv(n)
        if 2 not in methods:
            c.sendall(b"\x05\xff")
            raise ValueError("no user/password method offered")
        c.sendall(b"\x05\x02")
        _v, ulen = c.recv(2)
        user = c.recv(ulen).decode()
        plen = c.recv(1)[0]
        password = c.recv(plen).decode()
        self.auths.append(f"{user}:{password}")
        ok = (user, password) == (PROXY_USER, PROXY_PASS)
        c.sendall(b"\x01" + (b"\x00" if ok else b"\x01"))
        if not ok:
            raise ValueError("bad credentials")
        _v, _cmd, _r, atyp = c.recv(4)
        assert atyp == 3
        host = c.recv(c.recv(1)[0]).decode()
        port = struct.unpack(">H", c.recv(2))[0]
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("0.0.0.0") + b"\x00\x00")
        return host, port

    def _http(self, c: socket.socket) -> tuple[str, int]:
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(1)
        lines = head.decode().split("\r\n")
        target = lines[0].split()[1]
        auth = [ln.split(" ", 2)[2] for ln in lines if ln.lower().startswith("proxy-authorization: basic ")]
        self.auths.append(base64.b64decode(auth[0]).decode() if auth else "")
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        host, _, port = target.rpartition(":")
        return host, int(port)

    def close(self) -> None:
        self.sock.close()
