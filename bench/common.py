"""What bench/run.py and bench/posix_suite.py share: the plugin processes under test, the
reference rclone, versions, and byte-checked dd.

A `Plugin` is one volume plugin on a private unix socket with its own --base-dir, --cache-dir,
an empty --config and a log file: ours (`python3 -m pyclone_docker serve docker`, from a snapshot
of a source tree's pyclone_docker/, or $PYCLONE_PYZ) or rclone 1.75.2 (`rclone serve docker`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from tests import rclone_ref  # noqa: E402


class BenchError(RuntimeError):
    """A measure that cannot give a figure (a short read, a hung API call, a failed mount): it is
    reported as an ERROR with this message, never as a number."""


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 120) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path_ = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path_)


def rclone_binary() -> str:
    """rclone 1.75.2 (tests/rclone_ref.py); BenchError naming what was found otherwise."""
    try:
        return rclone_ref.find()
    except rclone_ref.RcloneNotFound as e:
        raise BenchError(str(e)) from None


def git_describe(src: Path) -> dict[str, str]:
    """The commit of a source tree, and a hash of any uncommitted change to its pyclone_docker/."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True).stdout.strip()

    diff = git("diff", "HEAD", "--", "pyclone_docker")
    digest = hashlib.sha1(diff.encode()).hexdigest()[:10]
    return {"src": str(src), "commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "subject": git("log", "-1", "--format=%s")[:100],
            "dirty": f"+ uncommitted changes in pyclone_docker/ (diff sha1 {digest})" if diff else ""}


def snapshot(src: Path, dest: Path) -> Path:
    """A copy of src/pyclone_docker/ in dest, so edits to the tree during a run do not change the code under
    test half-way; returns dest (the PYTHONPATH for the plugin)."""
    if not (src / "pyclone_docker" / "__main__.py").exists():
        raise BenchError(f"{src} holds no pyclone_docker/ package")
    shutil.copytree(src / "pyclone_docker", dest / "pyclone_docker", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


class Plugin:
    """One plugin process. `code` (a directory holding pyclone_docker/) makes it ours; `rclone` (a binary)
    makes it rclone's. `label` names it in every output ("after", "before", "rclone", ...)."""

    def __init__(self, label: str, root: Path, code: Path | None = None, rclone: str | None = None,
                 pyz: str | None = None) -> None:
        assert (code is None) != (rclone is None)
        self.label, self.code, self.rclone, self.pyz = label, code, rclone, pyz
        self.kind = "rclone" if rclone else "pyclone"
        self.root = root / label
        self.sock = str(self.root / "plugin.sock")
        self.base, self.cache, self.data = self.root / "base", self.root / "cache", self.root / "data"
        for d in (self.root, self.base, self.cache, self.data):
            d.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "rclone.conf"
        self.config.touch()
        self.log = self.root / "plugin.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: UnixHTTP | None = None

    def command(self) -> list[str]:
        common = ["--socket-addr", self.sock, "--base-dir", str(self.base), "--cache-dir", str(self.cache),
                  "--config", str(self.config)]
        if self.rclone:
            return [self.rclone, "serve", "docker", *common]
        # BENCH_PYTHON: the interpreter ours runs under (users run the system's python3, whose
        # start lacks a pyenv's site-packages .pth files)
        python = os.environ.get("BENCH_PYTHON") or sys.executable
        head = [python, self.pyz] if self.pyz else [python, "-m", "pyclone_docker"]
        return [*head, "serve", "docker", *common]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the snapshot keeps its .pyc: starts do not compile
        if self.code:
            env["PYTHONPATH"] = str(self.code)
        return env

    def start(self, timeout: float = 30) -> float:
        """Seconds from exec to the first successful Plugin.Activate answer."""
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        with open(self.log, "ab") as log:
            log.write(f"==== {time.strftime('%F %T')} start: {' '.join(self.command())}\n".encode())
            log.flush()
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(self.command(), cwd=self.code or self.root, stdout=log, stderr=log,
                                         env=self.env())
        try:
            while True:
                try:
                    self.call("Plugin.Activate", None, fresh=True, timeout=5)
                    return time.perf_counter() - t0
                except (OSError, http.client.HTTPException):
                    if self.proc.poll() is not None:
                        raise BenchError(f"{self.label} exited {self.proc.returncode} at start: "
                                         f"{' | '.join(self.log_tail(3))}") from None
                    if time.perf_counter() - t0 > timeout:
                        raise BenchError(f"{self.label} did not answer Plugin.Activate within {timeout:.0f} s") \
                            from None
                    time.sleep(0.001)
        except BaseException:
            self.stop()
            raise

    def call(self, method: str, body: dict | None, fresh: bool = False, timeout: float = 120) -> dict:
        if fresh or self.conn is None:
            if self.conn is not None:
                self.conn.close()
            self.conn = UnixHTTP(self.sock, timeout)
        else:  # a kept connection waits as long as this call allows (start() opened it with 5 s)
            self.conn.timeout = timeout
            if self.conn.sock is not None:
                self.conn.sock.settimeout(timeout)
        data = b"" if body is None else json.dumps(body).encode() + b"\n"
        try:
            self.conn.request("POST", "/" + method, data)
            resp = self.conn.getresponse()
            raw = resp.read()
        except TimeoutError:
            self.conn = None
            raise BenchError(f"{self.label} {method}: no answer within {timeout:.0f} s (API hung)") from None
        except (OSError, http.client.HTTPException):
            self.conn = None
            raise
        out = json.loads(raw or b"{}")
        if out.get("Err"):
            raise BenchError(f"{self.label} {method} {json.dumps(body)}: {out['Err']}")
        return out

    def create(self, name: str, mode: str = "off", **opts: str) -> Path:
        """A local volume on a fresh backing dir under data/; returns that dir."""
        path = self.data / name
        path.mkdir(exist_ok=True)
        extra = {"vfs-cache-mode": mode} if mode != "off" else {}
        self.call("VolumeDriver.Create", {"Name": name, "Opts": {"type": "local", "path": str(path), **extra,
                                                                 **opts}})
        return path

    def mount(self, name: str, mount_id: str) -> str:
        return str(self.call("VolumeDriver.Mount", {"Name": name, "ID": mount_id})["Mountpoint"])

    def unmount(self, name: str, mount_id: str) -> None:
        self.call("VolumeDriver.Unmount", {"Name": name, "ID": mount_id})

    def pids(self) -> list[int]:
        assert self.proc is not None
        pids = [self.proc.pid]
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return pids + [int(p) for p in kids.split()]

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                pass
        return total

    def log_tail(self, n: int = 20) -> list[str]:
        """The last n lines the plugin wrote (not the bench's own `====` lines)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if not line.startswith("==== ")][-n:]

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        force_unmount(self.base)


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    return [mp for mp in mps if mp == str(root) or mp.startswith(str(root) + "/")]


def force_unmount(root: Path) -> None:
    for mp in reversed(mounts_under(root)):
        subprocess.run(["fusermount", "-uz", mp], capture_output=True, timeout=30, check=False)
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30, check=False)


DD_BYTES = re.compile(r"^(\d+) bytes", re.M)


def dd(args: list[str], expect: int, what: str) -> float:
    """Run dd; seconds it took. BenchError unless dd copied exactly `expect` bytes (counted by dd itself,
    from its summary line): a read of fewer bytes than the file is an error, never a figure."""
    t0 = time.perf_counter()
    res = subprocess.run(["dd", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise BenchError(f"{what}: dd {' '.join(args)} failed: {res.stderr.strip()[-300:]}")
    m = DD_BYTES.search(res.stderr)
    if m is None:
        raise BenchError(f"{what}: dd printed no byte count: {res.stderr.strip()[-300:]}")
    if int(m.group(1)) != expect:
        src = next((a[3:] for a in args if a.startswith("if=")), "?")
        try:
            size = f"; the file's size is now {os.stat(src).st_size}"
        except OSError as e:
            size = f"; stat: {e.strerror}"
        raise BenchError(f"{what}: dd copied {int(m.group(1))} of {expect} bytes ({src}{size}) in {seconds:.3f} s")
    return seconds


def drop_caches() -> None:
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass
