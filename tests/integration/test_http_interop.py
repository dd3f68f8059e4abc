"""http volumes (read-only) through the plugin's FUSE mounts, and interop with rclone 1.75.2 on the
same web server (issue 14): the tree rclone's http remote lists and reads is the tree our mount
shows (names, sizes, modtimes, bytes), on nginx's autoindex, Apache's mod_autoindex and python's
http.server; a write through the mount fails with EROFS and changes nothing on the server.
"""

from __future__ import annotations

import calendar
import errno
import json
import os
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rclone_ref
from tests.support.webservers import WebServer, web_server

from .conftest import Plugin

T = 1_500_000_000
FILES = {
    "a.txt": 10, "big.bin": 3 * (1 << 20) + 5, "Grüße ☃ 日本語.txt": 4099, "space name .txt": 5,
    "punct '$&+,;=@[]!~#%.txt": 7, "dir/sub/deep.txt": 33, "dir/ünï cødé/f.txt": 12,
}


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


@pytest.fixture(scope="module", params=["nginx", "apache", "python"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with web_server(request.param, tmp_path_factory.mktemp(f"web-{request.param}")) as s:
        for i, (rel, size) in enumerate(FILES.items()):
            p = s.root / "tree" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content(rel, size))
            os.utime(p, (T + i, T + i))
        for p in (s.root / "tree").rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.chmod(s.root / "tree", 0o755)
        yield s


def rclone(*args: str) -> bytes:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RCLONE_CONFIG": "/dev/null", "HOME": "/tmp", "TZ": "UTC"}
    p = subprocess.run([rclone_ref.require(), *args], capture_output=True, env=env, timeout=180, check=False)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout


def parse_time(s: str) -> int:
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z", s)
    assert m, s
    return calendar.timegm(time.strptime(m[1], "%Y-%m-%dT%H:%M:%S")) * 10**9


def test_our_mount_shows_what_rclone_lists_and_reads(plugin: Plugin, srv: WebServer) -> None:
    remote = f":http,url='{srv.url}':tree"
    theirs: dict[str, dict[str, Any]] = {e["Path"]: e for e in json.loads(rclone("lsjson", "-R", remote))}
    name = f"h-{srv.kind}"
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": {"type": "http", "http-url": srv.url,
                                                                     "path": "tree"}})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])
    try:
        ours = {}
        for dirpath, dirnames, filenames in os.walk(mp):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                ours[os.path.relpath(p, mp)] = (n in dirnames, os.stat(p))
        assert sorted(ours) == sorted(theirs)
        for rel, size in FILES.items():
            is_dir, st = ours[rel]
            assert not is_dir and st.st_size == size == theirs[rel]["Size"], rel
            assert st.st_mtime_ns == parse_time(theirs[rel]["ModTime"]), rel
            assert (mp / rel).read_bytes() == content(rel, size) == rclone("cat", f"{remote}/{rel}"), rel
        with open(mp / "big.bin", "rb") as f:  # a seek: a ranged GET (python's server: the bytes dropped)
            f.seek(2 << 20)
            assert f.read(4096) == content("big.bin", FILES["big.bin"])[2 << 20:(2 << 20) + 4096]
        with pytest.raises(OSError) as e:
            (mp / "new.txt").write_bytes(b"x")
        assert e.value.errno == errno.EROFS, e.value
        with pytest.raises(OSError):
            os.unlink(mp / "a.txt")
    finally:
        plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})
        plugin.client.ok("VolumeDriver.Remove", {"Name": name})
    assert not (srv.root / "tree" / "new.txt").exists() and (srv.root / "tree" / "a.txt").exists()
