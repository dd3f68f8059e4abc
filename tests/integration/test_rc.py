"""`--rc`: flushing the directory cache of ONE volume through rclone's remote control, with a real
plugin process, real FUSE mounts, our `pyclone-docker rc` client and `rclone rc` (1.75.2, tests/rclone_ref.py)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .. import rclone_ref
from .conftest import REPO, Plugin


def local(path: Path, **extra: str) -> dict[str, str]:
    return {"type": "local", "path": str(path), "dir-cache-time": "1h", **extra}


def rc_url(plugin: Plugin, timeout: float = 10.0) -> str:
    """The URL the plugin logged ("Serving remote control on http://127.0.0.1:PORT/"); the last
    one, as plugins of one test share a log file. It is logged before the API answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(r"Serving remote control on (\S+)", plugin.log_text())
        if found:
            return str(found[-1])
        time.sleep(0.02)
    raise AssertionError("no rc server in the log\n" + plugin.log_text())


def start_rc(plugin_factory: Any, *flags: str, env: dict[str, str] | None = None) -> tuple[Plugin, str]:
    plugin = plugin_factory(["--rc", "--rc-addr", "127.0.0.1:0", *flags], env=env)
    return plugin, rc_url(plugin)


def run_rc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    pyz = os.environ.get("PYCLONE_PYZ")
    head = [sys.executable, pyz] if pyz else [sys.executable, "-m", "pyclone_docker"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    full_env.update(PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([*head, "rc", *args], capture_output=True, text=True, cwd=REPO, env=full_env,
                          timeout=60)


def run_rclone(tmp_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    rclone = rclone_ref.require()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_root),
           "RCLONE_CONFIG": str(tmp_root / "no-rclone.conf")}
    return subprocess.run([rclone, "rc", *args], capture_output=True, text=True, env=env, timeout=60)


def post(url: str, method: str, body: Any = None, headers: dict[str, str] | None = None,
         verb: str = "POST") -> tuple[int, dict[str, str], bytes]:
    m = re.fullmatch(r"http://([^/]+):(\d+)/", url)
    assert m, url
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        conn.request(verb, "/" + method, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def visible(mp: Path, name: str) -> bool:
    return (mp / name).exists() and name.split("/")[-1] in os.listdir((mp / name).parent)


class TwoVolumes:
    """Volumes va and vb with a one-hour directory cache, mounted, their listings cached."""

    def __init__(self, plugin: Plugin, root: Path) -> None:
        self.plugin = plugin
        self.a, self.b = root / "a", root / "b"
        for d in (self.a, self.b):
            (d / "sub").mkdir(parents=True)
        c = plugin.client
        c.ok("VolumeDriver.Create", {"Name": "va", "Opts": local(self.a)})
        c.ok("VolumeDriver.Create", {"Name": "vb", "Opts": local(self.b)})
        self.mpa = Path(c.ok("VolumeDriver.Mount", {"Name": "va", "ID": "x"})["Mountpoint"])
        self.mpb = Path(c.ok("VolumeDriver.Mount", {"Name": "vb", "ID": "x"})["Mountpoint"])
        for mp in (self.mpa, self.mpb):
            assert os.listdir(mp) == ["sub"] and os.listdir(mp / "sub") == []
        for d in (self.a, self.b):  # behind the VFS's back
            (d / "new.txt").write_text(d.name)
            (d / "sub" / "s.txt").write_text(d.name)
        for mp in (self.mpa, self.mpb):
            assert not visible(mp, "new.txt") and not visible(mp, "sub/s.txt")  # the cache holds

    def unmount(self) -> None:
        for name in ("va", "vb"):
            self.plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "x"})


def test_forget_flushes_one_volume_only(plugin_factory: Any, tmp_root: Path) -> None:
    plugin, url = start_rc(plugin_factory, "--rc-no-auth")
    vols = TwoVolumes(plugin, tmp_root)
    try:
        res = run_rc("--url", url, "vfs/list")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == {"vfses": [f":local:{vols.a}", f":local:{vols.b}"],
                                          "volumes": {"va": f":local:{vols.a}", "vb": f":local:{vols.b}"}}

        res = run_rc("--url", url, "vfs/forget", "dir=")  # two volumes: fs is required
        assert res.returncode != 0
        assert 'more than one VFS active - need "fs" parameter' in res.stderr
        assert json.loads(res.stdout)["status"] == 500
        assert not visible(vols.mpa, "new.txt") and not visible(vols.mpb, "new.txt")

        # rclone's VFS name; file= re-reads that file's directory only
        res = run_rc("--url", url, "vfs/forget", f"fs=:local:{vols.a}", "file=new.txt")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == {"forgotten": ["new.txt"]}
        assert visible(vols.mpa, "new.txt") and (vols.mpa / "new.txt").read_text() == "a"
        assert not visible(vols.mpa, "sub/s.txt")
        assert not visible(vols.mpb, "new.txt")  # volume B's cache was not flushed

        # the Docker volume name (our extension); dir= a subdirectory
        res = run_rc("--url", url, "vfs/forget", "fs=va", "dir=/sub/")
        assert (res.returncode, json.loads(res.stdout)) == (0, {"forgotten": ["sub"]})
        assert visible(vols.mpa, "sub/s.txt")
        assert not visible(vols.mpb, "new.txt") and not visible(vols.mpb, "sub/s.txt")

        # dir= the root: B's whole cache
        res = run_rc("--url", url, "--json", '{"fs": "vb", "dir": ""}', "vfs/forget")
        assert (res.returncode, json.loads(res.stdout)) == (0, {"forgotten": [""]})
        assert visible(vols.mpb, "new.txt") and visible(vols.mpb, "sub/s.txt")

        res = run_rc("--url", url, "vfs/forget", "fs=va", "dir=../..")  # never a path outside
        assert res.returncode != 0 and json.loads(res.stdout)["status"] == 400
        res = run_rc("--url", url, "vfs/forget", "fs=nosuch")
        assert res.returncode != 0 and 'no VFS found with name "nosuch"' in res.stderr

        (vols.a / "sub" / "late").mkdir()
        (vols.a / "sub" / "late" / "l.txt").write_text("l")
        res = run_rc("--url", url, "vfs/refresh", "fs=va", "dir=sub", "recursive=true")
        assert (res.returncode, json.loads(res.stdout)) == (0, {"result": {"sub": "OK"}})
        assert visible(vols.mpa, "sub/late/l.txt")
    finally:
        vols.unmount()
    assert "Serving remote control" in plugin.log_text()


def test_unknown_method_errors_and_auth_required(plugin_factory: Any, tmp_root: Path) -> None:
    _, url = start_rc(plugin_factory)  # no --rc-user, no --rc-no-auth
    status, _, body = post(url, "no/such", {"a": "1"})
    assert status == 404
    assert json.loads(body) == {"error": 'couldn\'t find method "no/such"', "input": {"a": "1"},
                                "path": "no/such", "status": 404}
    res = run_rc("--url", url, "no/such")
    assert res.returncode != 0 and json.loads(res.stdout)["status"] == 404

    assert post(url, "rc/noop", {"x": "y"})[::2] == (200, b'{\n\t"x": "y"\n}\n')
    assert post(url, "core/version")[0] == 200
    status, _, body = post(url, "vfs/forget", {"dir": ""})  # changes something: needs auth
    assert status == 403 and "--rc-no-auth" in json.loads(body)["error"]
    status, _, body = post(url, "rc/noop?a=1&b=two", None, verb="POST")  # URL query parameters
    assert (status, json.loads(body)) == (200, {"a": "1", "b": "two"})
    assert post(url, "", verb="GET")[0] == 404


def test_basic_auth_when_user_and_pass_are_set(plugin_factory: Any, tmp_root: Path) -> None:
    secret = "pw-hunter2-secret"
    plugin, url = start_rc(plugin_factory, "--rc-user", "admin", env={"RCLONE_RC_PASS": secret})
    data = tmp_root / "d"
    data.mkdir()
    plugin.client.ok("VolumeDriver.Create", {"Name": "v", "Opts": local(data)})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": "v", "ID": "x"})["Mountpoint"])
    try:
        assert os.listdir(mp) == []
        (data / "f").write_text("x")
        for headers in ({}, basic("admin", "wrong"), basic("root", secret)):
            status, got, _ = post(url, "rc/noop", {}, headers)
            assert status == 401 and got["www-authenticate"].startswith("Basic realm=")
        res = run_rc("--url", url, "vfs/forget", "dir=")
        assert res.returncode != 0
        assert not visible(mp, "f")
        # one volume mounted: fs may be left out, as in rclone
        res = run_rc("--url", url, "--user", "admin", "--pass", secret, "vfs/forget", "dir=")
        assert (res.returncode, json.loads(res.stdout)) == (0, {"forgotten": [""]}), res.stderr
        assert visible(mp, "f")
        res = run_rc("--url", url, "rc/noop", env={"RCLONE_RC_USER": "admin", "RCLONE_RC_PASS": secret})
        assert res.returncode == 0, res.stderr
    finally:
        plugin.client.ok("VolumeDriver.Unmount", {"Name": "v", "ID": "x"})
    assert secret not in plugin.log_text()


def test_real_rclone_rc_client(plugin_factory: Any, tmp_root: Path) -> None:
    rclone_ref.require()
    plugin, url = start_rc(plugin_factory, "--rc-user", "u", "--rc-pass", "p")
    vols = TwoVolumes(plugin, tmp_root)
    try:
        res = run_rclone(tmp_root, "--url", url, "--user", "u", "--pass", "p", "vfs/list")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["vfses"] == [f":local:{vols.a}", f":local:{vols.b}"]
        res = run_rclone(tmp_root, "--url", url, "--user", "u", "--pass", "p", "vfs/forget",
                         f"fs=:local:{vols.a}", "dir=")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == {"forgotten": [""]}
        assert visible(vols.mpa, "new.txt") and visible(vols.mpa, "sub/s.txt")
        assert not visible(vols.mpb, "new.txt")
        res = run_rclone(tmp_root, "--url", url, "--user", "u", "--pass", "p", "vfs/forget", "dir=")
        # 1.75.2 prints the error unquoted (1.60 printed the raw JSON body: need \"fs\")
        assert res.returncode != 0 and 'failed: more than one VFS active - need "fs" parameter' in res.stderr
        res = run_rclone(tmp_root, "--url", url, "--user", "u", "--pass", "wrong", "rc/noop")
        assert res.returncode != 0
        res = run_rclone(tmp_root, "--url", url, "--user", "u", "--pass", "p", "vfs/forget", "fs=vb", "file=new.txt")
        assert res.returncode == 0, res.stderr
        assert visible(vols.mpb, "new.txt")
    finally:
        vols.unmount()


def _listening_inodes(pid: int) -> set[str]:
    """Socket inodes of `pid` that listen on TCP (IPv4 or IPv6)."""
    mine = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in mine:  # 0A: LISTEN
                listening.add(fields[9])
    return listening


def test_rc_is_off_by_default_and_closed_at_shutdown(plugin_factory: Any, tmp_root: Path) -> None:
    plain = plugin_factory()
    assert plain.proc is not None
    assert _listening_inodes(plain.proc.pid) == set()
    assert "remote control" not in plain.log_text()
    plain.stop()

    plugin, url = start_rc(plugin_factory)
    host, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    assert host == "127.0.0.1"
    assert plugin.proc is not None and len(_listening_inodes(plugin.proc.pid)) == 1
    socket.create_connection((host, int(port)), timeout=5).close()
    assert plugin.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=5).close()

    sock = tmp_root / "rc.sock"
    plugin = plugin_factory(["--rc", "--rc-addr", f"unix://{sock}", "--rc-no-auth"])
    assert rc_url(plugin) == f"unix://{sock}"
    assert stat.S_ISSOCK(os.stat(sock).st_mode) and stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    res = run_rc("--unix-socket", str(sock), "rc/noop", "a=b")
    assert (res.returncode, json.loads(res.stdout)) == (0, {"a": "b"}), res.stderr
    res = run_rc("--url", f"unix://{sock}", "vfs/list")
    assert (res.returncode, json.loads(res.stdout)["vfses"]) == (0, [])
    assert plugin.stop() == 0
    assert not sock.exists()


def test_rc_addr_in_use_fails_start(plugin_factory: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        plugin = plugin_factory(["--rc", "--rc-addr", f"127.0.0.1:{port}"], start=False)
        plugin.start(wait=False)
        assert plugin.proc is not None
        assert plugin.proc.wait(20) == 1
        out = plugin.proc.stdout.read().decode() if plugin.proc.stdout else ""
        assert f"cannot listen on --rc-addr 127.0.0.1:{port}" in out + plugin.log_text()
        assert not Path(plugin.sock).exists()  # nothing was left behind
