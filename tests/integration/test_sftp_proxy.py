"""sftp through rclone's socks_proxy (SOCKS5, with a user name and password) and http_proxy
(HTTP CONNECT): real sshd, small real proxies in the test; the proxy's password reaches the
helper over the askpass socket, never an argv."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.sftp import pool
from tests.support.sshd import SshServer, sshd_server

PROXY_USER, PROXY_PASS = "proxyuser", "pr0xy-s3cret"


@pytest.fixture(scope="module")
def srv() -> Iterator[SshServer]:
    yield from sshd_server()


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


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


def _cmdlines_and_environs() -> str:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for f in ("cmdline", "environ"):
                try:
                    out.append(Path(f"/proc/{pid}/{f}").read_bytes().decode("utf-8", "replace"))
                except OSError:
                    pass
    return "\n".join(out)


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_sftp_through_a_proxy_with_credentials(srv: SshServer, kind: str) -> None:
    proxy = Proxy(kind)
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(_cmdlines_and_environs())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        spec = (f"socks_proxy='{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{proxy.port}'" if kind == "socks5" else
                f"http_proxy='http://{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{proxy.port}'")
        b = fsmod.new_fs(f":sftp,host={srv.host},port={srv.port},user={srv.user},key_file='{srv.key_file}',"
                         f"known_hosts_file='{srv.known_hosts_file}',{spec}:{srv.root_dir}", fsmod.FsContext())
        try:
            b.mkdir(f"via-{kind}")
            assert any(e.name == f"via-{kind}" for e in b.list(""))
        finally:
            b.shutdown()
            pool.close_all()
    finally:
        stop.set()
        watcher.join()
        proxy.close()
    assert proxy.targets == [f"{srv.host}:{srv.port}"]
    assert proxy.auths == [f"{PROXY_USER}:{PROXY_PASS}"]
    assert seen and not any(PROXY_PASS in text for text in seen)


def test_bad_proxy_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        fsmod.new_fs(":sftp,host=h,key_file=/k,socks_proxy='a:1',http_proxy='http://b:2':", fsmod.FsContext())
    with pytest.raises(ValueError, match="http://"):
        fsmod.new_fs(":sftp,host=h,key_file=/k,http_proxy='socks5://b:2':", fsmod.FsContext())
