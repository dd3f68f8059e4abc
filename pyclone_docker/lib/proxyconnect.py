"""`proxy-connect`: the TCP connection for ssh through a SOCKS5 or HTTP CONNECT proxy (rclone's
sftp `socks_proxy` and `http_proxy`), handed to ssh as a file descriptor (ProxyUseFdpass).

ssh runs it as its ProxyCommand. The proxy's user name and password never reach an argv or an
environment: with `--auth-socket`, the helper asks the plugin for them (lib/askpass: answered
only to a child of the ssh the plugin started). Like the direct connect (backends/sftp/ssh.py)
it sets TCP_NODELAY and keeps TCP_QUICKACK set during the handshake.

    proxy-connect HOST PORT TIMEOUT socks5|http PROXYHOST PROXYPORT [--auth-socket PATH]
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import sys
import time


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("the proxy closed the connection")
        out += chunk
    return out


def socks5(s: socket.socket, host: str, port: int, auth: tuple[str, str] | None) -> None:
    """RFC 1928 CONNECT (with RFC 1929 user/password when `auth`); the name resolves at the proxy."""
    s.sendall(b"\x05\x02\x00\x02" if auth else b"\x05\x01\x00")
    ver, method = _recv_exact(s, 2)
    if ver != 5 or method == 0xFF or (method == 2 and not auth) or method not in (0, 2):
        raise OSError("the SOCKS5 proxy accepts none of our authentication methods")
    if method == 2:
        assert auth is not None
        user, password = (x.encode("utf-8") for x in auth)
        s.sendall(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        if _recv_exact(s, 2)[1] != 0:
            raise OSError("the SOCKS5 proxy refused the user name or password")
    name = host.encode("idna")
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
    head = _recv_exact(s, 4)
    if head[1] != 0:
        raise OSError(f"the SOCKS5 proxy could not connect (reply {head[1]})")
    kind = head[3]
    skip = 4 if kind == 1 else 16 if kind == 4 else _recv_exact(s, 1)[0]
    _recv_exact(s, skip + 2)


def http_connect(s: socket.socket, host: str, port: int, auth: tuple[str, str] | None) -> None:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk or len(head) > 16384:
            raise OSError("the HTTP proxy closed the connection")
        head += chunk
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise OSError(f"the HTTP proxy answered {b' '.join(status[1:]).decode('latin-1')}")


def main(argv: list[str]) -> int:
    try:
        host, port, timeout, kind, phost, pport = argv[0], int(argv[1]), float(argv[2]), argv[3], argv[4], int(argv[5])
    except (IndexError, ValueError):
        sys.stderr.write(__doc__ or "")
        return 2
    auth = None
    if argv[6:7] == ["--auth-socket"]:
        from .askpass import ask

        answer = ask(argv[7], f"proxy credentials for {phost}:{pport}")
        if answer is None:
            sys.stderr.write("proxy-connect: no credentials for the proxy\n")
            return 1
        user, _, password = answer.partition(":")
        auth = (user, password)
    try:
        s = socket.create_connection((phost, pport), timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        (socks5 if kind == "socks5" else http_connect)(s, host, port, auth)
        s.settimeout(None)
    except OSError as e:
        sys.stderr.write(f"ssh: connect to host {host} port {port} via proxy {phost}:{pport}: {e.strerror or e}\n")
        return 1
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    out = socket.socket(fileno=1)
    out.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, s.fileno().to_bytes(4, sys.byteorder))])
    if os.fork() == 0:  # the handshake's delayed ACKs: see backends/sftp/ssh.py
        os.setsid()
        for _ in range(1000):
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                break
            time.sleep(0.002)
        os._exit(0)
    return 0
