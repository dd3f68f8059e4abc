"""Integration fixtures: the plugin as a real subprocess on a real socket, with real FUSE mounts."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def fuse_usable() -> str:
    """'' when FUSE mounts can work here, else the reason."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "fuse3 not installed"
    return ""


@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    reason = fuse_usable()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_FUSE") == "1":
            pytest.fail(f"FUSE integration tests cannot run: {reason}")
        pytest.skip(f"FUSE integration tests skipped: {reason}")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Client:
    """Talks to the plugin as dockerd does: POST, JSON body, no Content-Type."""

    def __init__(self, sock_path: str) -> None:
        self.sock_path = sock_path

    def raw(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = UnixHTTPConnection(self.sock_path)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def call(self, endpoint: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = b"" if body is None else (json.dumps(body) + "\n").encode()
        status, _, raw = self.raw("POST", "/" + endpoint, data)
        return status, json.loads(raw) if raw.strip() else {}

    def ok(self, endpoint: str, body: Any = None) -> dict[str, Any]:
        status, data = self.call(endpoint, body)
        assert status == 200 and not data.get("Err"), (endpoint, status, data)
        return data

    def err(self, endpoint: str, body: Any = None) -> str:
        status, data = self.call(endpoint, body)
        assert status == 500 and data.get("Err"), (endpoint, status, data)
        return data["Err"]


class Plugin:
    """One plugin process with its own socket, base dir and cache dir."""

    def __init__(self, root: Path, extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.sock = str(root / "plug.sock")
        self.base = root / "volumes"
        self.cache = root / "cache"
        self.log = root / "plugin.log"
        self.extra = extra or []
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Client(self.sock)

    def start(self, *more: str, wait: bool = True) -> Plugin:
        pyz = os.environ.get("PYCLONE_PYZ")  # CI runs this suite against the built zipapp too
        head = [sys.executable, pyz] if pyz else [sys.executable, "-m", "pyclone_docker"]
        cmd = [*head, "serve", "docker", "-vv",
               "--socket-addr", self.sock, "--base-dir", str(self.base), "--cache-dir", str(self.cache),
               "--log-file", str(self.log), *self.extra, *more]
        env = dict(os.environ, PYTHONPATH=str(REPO), **self.env)
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"plugin exited {self.proc.returncode}: {out}\n{self.log_text()}")
            try:
                status, _data = self.client.call("Plugin.Activate")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("plugin did not answer in time\n" + self.log_text())

    def log_text(self) -> str:
        try:
            return self.log.read_text()
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return rc

    def mounts(self) -> list[str]:
        base = str(self.base) + "/"
        out = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4].startswith(base):
                    out.append(fields[4])
        return out

    def cleanup(self) -> None:
        self.stop()
        for mp in self.mounts():
            subprocess.run(["umount", "-l", mp], check=False)


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    # short path: unix socket paths are limited to 107 bytes
    d = Path(tempfile.mkdtemp(prefix="pyc-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def plugin_factory(tmp_root: Path) -> Iterator[Any]:
    made: list[Plugin] = []

    def make(extra: list[str] | None = None, env: dict[str, str] | None = None, start: bool = True) -> Plugin:
        p = Plugin(tmp_root, extra, env)
        made.append(p)
        return p.start() if start else p

    yield make
    for p in made:
        p.cleanup()


@pytest.fixture
def plugin(plugin_factory: Any) -> Plugin:
    return plugin_factory()


@pytest.fixture
def data_dir(tmp_root: Path) -> Path:
    d = tmp_root / "data"
    d.mkdir()
    return d
