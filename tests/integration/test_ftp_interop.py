"""ftp volumes through the plugin's FUSE mounts, and interop with rclone 1.75.2 on the same
server (issue 14): what rclone uploads reads back through our mount with the same names,
sizes, modtimes and bytes, and what our mount uploads rclone lists, reads and checks.

Real parts: pyftpdlib (MLSD, MFMT) and vsftpd (LIST and MDTM only: both clients set times with
writing_mdtm; plain and explicit TLS with a test CA that both clients verify), the plugin
as a subprocess, the reference rclone as an ftp client.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyclone_docker import obscure
from tests import rclone_ref
from tests.support.pyftpd import PyFtpServer, pyftpd_server
from tests.support.rclonecli import GUARD, RcloneCli, make_tree
from tests.support.vsftpd import VsFtpServer, vsftpd_server

from .conftest import Plugin
from .test_dav_interop import parse_time, walk

MiB = 1 << 20
KINDS = ["pyftpdlib", "pyftpdlib-tls", "vsftpd", "vsftpd-tls"]
Server = PyFtpServer | VsFtpServer

# rel path -> (size, mtime ns); FTP keeps modtimes to the second
FILES: dict[str, tuple[int, int]] = {
    "empty.bin": (0, 1_000_000_000_000_000_000),
    "one.bin": (1, 1_000_086_400_000_000_000),
    "odd.bin": (MiB + 7, 1_000_172_800_000_000_000),
    "big.bin": (5 * MiB + 3, 1_234_567_890_000_000_000),
    "Grüße ☃ 日本語.txt": (4099, 1_300_000_000_000_000_000),
    "space name .txt": (5, 1_400_000_000_000_000_000),
    "trailing space ": (6, 1_400_000_001_000_000_000),
    "punct '$*:<>|#%[];!~+=&.txt": (7, 1_500_000_000_000_000_000),
    ".hidden": (8, 1_500_000_001_000_000_000),
    "dir/sub/deep/nested.txt": (33, 1_100_000_000_000_000_000),
    "dir/ünï cødé/f.txt": (12, 1_100_000_002_000_000_000),
}


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


@pytest.fixture(scope="module", params=KINDS)
def srv(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param.startswith("vsftpd"):
        yield from vsftpd_server(tls=request.param.endswith("-tls"))
    else:
        yield from pyftpd_server(tls=request.param.endswith("-tls"))


def kind_of(srv: Server) -> str:
    return ("vsftpd" if isinstance(srv, VsFtpServer) else "pyftpdlib") + ("-tls" if srv.tls else "")


def extra_opts(srv: Server) -> dict[str, str]:
    """The options both clients need on this server."""
    out = {"explicit_tls": "true"} if srv.tls else {}
    if isinstance(srv, VsFtpServer):
        out |= {"writing_mdtm": "true", "force_list_hidden": "true"}  # MDTM writes; LIST -a shows dot files
    return out


def rclone_for(srv: Server, home: Path) -> RcloneCli:
    opts = "".join(f",{k}={v}" for k, v in extra_opts(srv).items())
    if srv.tls:  # rclone's documented workaround: Go's TLS 1.3 uploads fail on these servers
        opts += ",disable_tls13=true"
    # the password through the environment, as a careful user gives it (never argv)
    env = {"RCLONE_FTP_PASS": obscure.obscure(srv.password)}
    if srv.tls:
        env["RCLONE_CA_CERT"] = srv.ca_file
    return RcloneCli(rclone_ref.require(), home,
                     lambda path: f":ftp,host={srv.host},port={srv.port},user={srv.user}{opts}:{path}", env=env)


@pytest.fixture(scope="module")
def rc(srv: Server, tmp_path_factory: pytest.TempPathFactory) -> RcloneCli:
    return rclone_for(srv, tmp_path_factory.mktemp("rclone-home"))


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("src"), FILES, content)


@pytest.fixture
def ftp_plugin(plugin_factory: Any, srv: Server) -> Plugin:
    return plugin_factory(extra=["--ca-cert", srv.ca_file] if srv.tls else [])


def ftp_opts(srv: Server, path: str, **extra: str) -> dict[str, str]:
    opts = {"type": "ftp", "ftp-host": srv.host, "ftp-port": str(srv.port), "ftp-user": srv.user,
            "ftp-pass": obscure.obscure(srv.password), "path": path}
    opts |= {f"ftp-{k}": v for k, v in extra_opts(srv).items()}
    return opts | extra


def mount(plugin: Plugin, name: str, opts: dict[str, str]) -> Path:
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": opts})
    return Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])


def unmount(plugin: Plugin, name: str) -> None:
    plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})
    plugin.client.ok("VolumeDriver.Remove", {"Name": name})


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_rclone_uploaded_reads_back_through_our_mount(ftp_plugin: Plugin, srv: Server, rc: RcloneCli, src: Path,
                                                           mode: str) -> None:
    d = f"from-rclone-{mode}"
    rc.run("copy", str(src), rc.remote(d))
    theirs = rc.lsjson(d)
    name = f"r-{kind_of(srv)}-{mode}"
    mp = mount(ftp_plugin, name, ftp_opts(srv, d, **{"vfs-cache-mode": mode}))
    try:
        ours = walk(mp)
    finally:
        unmount(ftp_plugin, name)
    assert sorted(ours) == sorted(theirs)
    for rel, (size, mtime_ns) in FILES.items():
        is_dir, got_size, got_mtime, data = ours[rel]
        assert not is_dir and got_size == size and data == content(rel, size), rel
        assert got_mtime == parse_time(theirs[rel]["ModTime"]) == mtime_ns, rel  # the source's, as rclone sees it


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_our_mount_uploaded_rclone_lists_reads_and_checks(ftp_plugin: Plugin, srv: Server, rc: RcloneCli,
                                                               src: Path, mode: str) -> None:
    d = f"from-mount-{mode}"
    name = f"w-{kind_of(srv)}-{mode}"
    mp = mount(ftp_plugin, name, ftp_opts(srv, d, **{"vfs-cache-mode": mode, "vfs-write-back": "0.2s"}))
    try:
        for rel, (size, mtime_ns) in FILES.items():
            (mp / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(mp / rel, "wb") as f:
                f.write(content(rel, size))
                f.flush()
                os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
    finally:
        unmount(ftp_plugin, name)  # waits for the uploads
    theirs = rc.lsjson(d)
    assert sorted(k for k, e in theirs.items() if not e["IsDir"]) == sorted(FILES)
    on_disk = sorted(str(p.relative_to(Path(srv.root_dir, d))) for p in Path(srv.root_dir, d).rglob("*")
                     if p.is_file())
    assert not [n for n in on_disk if n.endswith(".partial")], on_disk  # every partial upload was renamed
    for rel, (size, mtime_ns) in FILES.items():
        e = theirs[rel]
        assert e["Size"] == size, (rel, e)
        if mode == "full":  # the cache sets the modtime after the upload (MFMT or MDTM)
            assert parse_time(e["ModTime"]) == mtime_ns, (rel, e)
        assert rc.run("cat", rc.remote(f"{d}/{rel}")).stdout == content(rel, size), rel
        if rel == "odd.bin":
            assert Path(srv.root_dir, d, rel).read_bytes() == content(rel, size)  # on the server's disk
    check = subprocess.run([rc.binary, "check", "--size-only", str(src), rc.remote(d)], env=rc.env,
                           capture_output=True, timeout=GUARD, check=False)
    log = check.stderr.decode(errors="replace")
    assert check.returncode == 0 and "0 differences found" in log, log
    assert f"{len(FILES)} matching files" in log, log
