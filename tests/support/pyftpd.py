"""A real FTP server for tests: pyftpdlib 2.2.0 in a child process, plain or explicit TLS.

`make_test_ca(dir)` writes a test CA and a server certificate for 127.0.0.1/localhost (the
`openssl` CLI), used by this server and by vsftpd.py. The server serves `root_dir` to one user
with a random password (given to the child on stdin, never in argv or its environment), with a
passive port range of its own.

    with PyFtpServer(tls=True) as srv:
        srv.host, srv.port, srv.user, srv.password, srv.root_dir, srv.ca_file
        srv.restart()                  # same port and root
        srv.cut_downloads(after=1000, count=2)  # the next two RETRs are aborted (426) after 1000 bytes
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CHILD = r"""
import json, logging, os, sys
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer
cfg = json.loads(sys.stdin.readline())
logging.basicConfig(filename=cfg["log"], level=logging.INFO)
auth = DummyAuthorizer()
auth.add_user(cfg["user"], cfg["password"], cfg["root"], perm="elradfmwMT")
handler = TLS_FTPHandler if cfg["tls"] else FTPHandler
if cfg["tls"]:
    handler.certfile = cfg["cert"]
    handler.keyfile = cfg["key"]
    handler.tls_control_required = True
    handler.tls_data_required = True


class _CutFile:  # a file whose reads fail after `cut` bytes: the server aborts the transfer (426)

    def __init__(self, f, cut):
        self._f, self._left = f, cut
        self.name, self.closed = f.name, False

    def read(self, n=-1):
        if self._left <= 0:
            raise OSError("cut by the test's fault file")
        data = self._f.read(min(n, self._left) if n >= 0 else self._left)
        self._left -= len(data)
        return data

    def seek(self, *a):
        return self._f.seek(*a)

    def close(self):
        self.closed = True
        self._f.close()


class FaultyFS(AbstractedFS):
    def open(self, filename, mode):
        f = super().open(filename, mode)
        if "r" in mode and os.path.exists(cfg["faults"]):
            with open(cfg["faults"]) as fh:
                faults = json.load(fh)
            if faults.get("cuts", 0) > 0:
                faults["cuts"] -= 1
                with open(cfg["faults"], "w") as fh:
                    json.dump(faults, fh)
                return _CutFile(f, faults["cut_after"])
        return f


handler.abstracted_fs = FaultyFS
handler.authorizer = auth
handler.passive_ports = range(cfg["pasv_lo"], cfg["pasv_hi"])
handler.permit_foreign_addresses = True
handler.use_sendfile = False
server = FTPServer(("127.0.0.1", cfg["port"]), handler)
server.max_cons = 256
print("ready", flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class TestCA:
    ca_file: str
    cert_file: str
    key_file: str


def make_test_ca(d: str | Path) -> TestCA:
    """A CA and a server certificate signed by it (CN localhost, SAN 127.0.0.1 and localhost)."""
    d = Path(d)
    ca_key, ca, key, csr, cert, ext = (str(d / n) for n in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                            "server.pem", "san.ext"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
        "-subj", "/CN=pyclone test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    Path(ext).write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
        "-extfile", ext)
    os.chmod(key, 0o644)  # vsftpd reads it as root, pyftpdlib as us
    return TestCA(ca, cert, key)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_range(n: int = 40) -> tuple[int, int]:
    """n consecutive ports that are free now (for passive data connections)."""
    for _ in range(200):
        lo = free_port()
        if lo + n >= 65535:
            continue
        socks = []
        try:
            for p in range(lo, lo + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return lo, lo + n
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class PyFtpServer:
    def __init__(self, tls: bool = False, ca: TestCA | None = None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="pyc-pyftpd-")
        self.tls = tls
        self.ca = ca if ca is not None else make_test_ca(self.tmp) if tls else None
        self.root_dir = os.path.join(self.tmp, "root")
        os.mkdir(self.root_dir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.pasv = free_range()
        self.user = "pyclone"
        self.password = os.urandom(9).hex()
        self.log = os.path.join(self.tmp, "pyftpd.log")
        self.faults = os.path.join(self.tmp, "faults.json")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        return self.ca.ca_file if self.ca else ""

    def __enter__(self) -> PyFtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        cfg = {"user": self.user, "password": self.password, "root": self.root_dir, "port": self.port,
               "tls": self.tls, "pasv_lo": self.pasv[0], "pasv_hi": self.pasv[1], "log": self.log,
               "faults": self.faults, "cert": self.ca.cert_file if self.ca else "",
               "key": self.ca.key_file if self.ca else ""}
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "/usr/bin")})
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cfg).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"pyftpdlib did not start: {self.log_tail()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), 1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pyftpdlib does not listen")

    def cut_downloads(self, after: int, count: int = 1) -> None:
        """The next `count` downloads are aborted by the server (426) after `after` bytes."""
        tmp = self.faults + ".tmp"
        Path(tmp).write_text(json.dumps({"cut_after": after, "cuts": count}))
        os.replace(tmp, self.faults)

    def cuts_left(self) -> int:
        try:
            return int(json.loads(Path(self.faults).read_text())["cuts"])
        except (OSError, ValueError, KeyError):
            return 0

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def pyftpd_server(**kwargs: object) -> Iterator[PyFtpServer]:
    """A generator fixture body; skips when pyftpdlib is not installed."""
    import pytest

    try:
        import pyftpdlib  # noqa: F401
    except ImportError:
        pytest.skip("pyftpdlib is not installed (pip install pyftpdlib pyopenssl)")
    with PyFtpServer(**kwargs) as srv:  # type: ignore[arg-type]
        yield srv
