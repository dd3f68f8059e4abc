"""webdav volumes through the plugin's FUSE mounts, and interop with rclone 1.75.2 on the same
server (issue 14): what rclone uploads reads back through our mount with the same names,
sizes, modtimes and bytes, and what our mount uploads rclone lists, reads and checks.

Real parts: Apache mod_dav, wsgidav and rclone's own `serve webdav` (tests/support/davservers.py,
basic auth), the plugin as a subprocess, the reference rclone as a webdav client.
"""

from __future__ import annotations

import calendar
import os
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import obscure
from tests import rclone_ref
from tests.support.davservers import DavServer, dav_server
from tests.support.rclonecli import GUARD, RcloneCli, make_tree

from .conftest import Plugin

MiB = 1 << 20
KINDS = ["apache", "wsgidav", "rclone"]

# rel path -> (size, mtime ns); webdav keeps seconds where it keeps modtimes at all (vendor rclone)
FILES: dict[str, tuple[int, int]] = {
    "empty.bin": (0, 1_000_000_000_000_000_000),
    "one.bin": (1, 1_000_086_400_000_000_000),
    "odd.bin": (MiB + 7, 1_000_172_800_000_000_000),
    "big.bin": (5 * MiB + 3, 1_234_567_890_000_000_000),
    "Grüße ☃ 日本語.txt": (4099, 1_300_000_000_000_000_000),
    "space name .txt": (5, 1_400_000_000_000_000_000),
    "punct '$*:<>|#%[];!~+=&.txt": (7, 1_500_000_000_000_000_000),
    "dir/sub/deep/nested.txt": (33, 1_100_000_000_000_000_000),
    "dir/ünï cødé/f.txt": (12, 1_100_000_002_000_000_000),
}


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def parse_time(s: str) -> int:
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    assert m, s
    secs = calendar.timegm(time.strptime(m[1], "%Y-%m-%dT%H:%M:%S"))
    if m[3] != "Z":
        sign = 1 if m[3][0] == "+" else -1
        secs -= sign * (int(m[3][1:3]) * 3600 + int(m[3][4:6]) * 60)
    return secs * 10**9 + int((m[2] or "0").ljust(9, "0"))


@pytest.fixture(scope="module", params=KINDS)
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with dav_server(request.param, tmp_path_factory.mktemp(f"dav-{request.param}")) as s:
        yield s


def rclone_for(srv: DavServer, home: Path) -> RcloneCli:
    # the password through the environment, as a careful user gives it (never argv)
    return RcloneCli(rclone_ref.require(), home,
                     lambda path: f":webdav,url='{srv.url}',vendor={srv.vendor},user={srv.user}:{path}",
                     env={"RCLONE_WEBDAV_PASS": obscure.obscure(srv.password)})


@pytest.fixture(scope="module")
def rc(srv: DavServer, tmp_path_factory: pytest.TempPathFactory) -> RcloneCli:
    return rclone_for(srv, tmp_path_factory.mktemp("rclone-home"))


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("src"), FILES, content)


def dav_opts(srv: DavServer, path: str, **extra: str) -> dict[str, str]:
    return {"type": "webdav", "webdav-url": srv.url, "webdav-vendor": srv.vendor, "webdav-user": srv.user,
            "webdav-pass": obscure.obscure(srv.password), "path": path, **extra}


def mount(plugin: Plugin, name: str, opts: dict[str, str]) -> Path:
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": opts})
    return Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])


def unmount(plugin: Plugin, name: str) -> None:
    plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})
    plugin.client.ok("VolumeDriver.Remove", {"Name": name})


def walk(root: Path) -> dict[str, tuple[bool, int, int, bytes]]:
    out: dict[str, tuple[bool, int, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st, is_dir = os.stat(p), n in dirnames
            data = b"" if is_dir else Path(p).read_bytes()
            out[os.path.relpath(p, root)] = (is_dir, len(data), st.st_mtime_ns, data)
    return out


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_rclone_uploaded_reads_back_through_our_mount(plugin: Plugin, srv: DavServer, rc: RcloneCli, src: Path,
                                                           mode: str) -> None:
    d = f"from-rclone-{mode}"
    rc.run("copy", str(src), rc.remote(d))
    theirs = rc.lsjson(d)
    name = f"r-{srv.kind}-{mode}"
    mp = mount(plugin, name, dav_opts(srv, d, **{"vfs-cache-mode": mode}))
    try:
        ours = walk(mp)
    finally:
        unmount(plugin, name)
    assert sorted(ours) == sorted(theirs)
    for rel, (size, mtime_ns) in FILES.items():
        is_dir, got_size, got_mtime, data = ours[rel]
        assert not is_dir and got_size == size and data == content(rel, size), rel
        assert got_mtime == parse_time(theirs[rel]["ModTime"]), rel  # the same modtime as rclone sees
        if srv.vendor == "rclone":  # X-OC-Mtime: the source's, to the second
            assert got_mtime == mtime_ns, rel


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_our_mount_uploaded_rclone_lists_reads_and_checks(plugin: Plugin, srv: DavServer, rc: RcloneCli,
                                                               src: Path, mode: str) -> None:
    d = f"from-mount-{mode}"
    name = f"w-{srv.kind}-{mode}"
    mp = mount(plugin, name, dav_opts(srv, d, **{"vfs-cache-mode": mode, "vfs-write-back": "0.2s"}))
    try:
        for rel, (size, mtime_ns) in FILES.items():
            (mp / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(mp / rel, "wb") as f:
                f.write(content(rel, size))
                f.flush()
                os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
    finally:
        unmount(plugin, name)  # waits for the uploads
    theirs = rc.lsjson(d)
    assert sorted(k for k, e in theirs.items() if not e["IsDir"]) == sorted(FILES)
    for rel, (size, mtime_ns) in FILES.items():
        e = theirs[rel]
        assert e["Size"] == size, (rel, e)
        if srv.vendor == "rclone" and mode == "full":  # the modtime went up with the PUT (X-OC-Mtime)
            assert parse_time(e["ModTime"]) == mtime_ns, (rel, e)
        assert rc.run("cat", rc.remote(f"{d}/{rel}")).stdout == content(rel, size), rel
        assert (srv.root / d / rel).read_bytes() == content(rel, size), rel  # on the server's disk
    check = subprocess.run([rc.binary, "check", "--size-only", str(src), rc.remote(d)], env=rc.env,
                           capture_output=True, timeout=GUARD, check=False)
    log = check.stderr.decode(errors="replace")
    assert check.returncode == 0 and "0 differences found" in log, log
    assert f"{len(FILES)} matching files" in log, log
