"""webdav volumes end to end (issue 14): dockerd, the plugin, FUSE and a real Apache mod_dav
with basic auth (tests/support/davservers.py) on loopback.

    docker volume create NAME -d <driver> -o type=webdav -o webdav-url=http://127.0.0.1:PORT/dav \
        -o webdav-user=... -o webdav-pass=$(pyclone-docker obscure ...) -o path=PREFIX -o allow-other=true

One container writes 200 small files of 1-4 KiB and one 100 MiB file of /dev/urandom (md5s
taken in the container with busybox md5sum), a second reads them back, the volume is removed,
and the files are checked on the server's own disk: names, sizes and bytes. In cache modes off
and full, set per volume. Then a wrong password: the write fails in the container with an
error, never a hang, and the plugin keeps serving.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pyclone_docker import obscure
from tests.support.davservers import DavServer, dav_server

if TYPE_CHECKING:
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker

SMALL_FILES = 200
BIG_MIB = 100
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def apache(docker_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with dav_server("apache", tmp_path_factory.mktemp("dav-e2e")) as srv:
        yield srv


def tag() -> str:
    return secrets.token_hex(4)


def dav_opts(srv: DavServer, path: str, *extra: str, password: str = "") -> list[str]:
    return ["type=webdav", f"webdav-url={srv.url}", f"webdav-user={srv.user}",
            f"webdav-pass={obscure.obscure(password or srv.password)}", f"path={path}", "allow-other=true", *extra]


def create_volume(res: Resources, name: str, *opts: str) -> None:
    res.volumes.append(name)
    r = res.docker("volume", "create", name, "-d", res.plugin.driver, *[a for o in opts for a in ("-o", o)],
                   check=False, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == name, f"docker volume create {name} failed: {r.stderr}"


def ctr_run(res: Resources, volume: str, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return res.docker("run", "--rm", *res.run_args(), "-v", f"{volume}:/mnt", res.image, "sh", "-c",
                      "cd /mnt && " + script, timeout=RUN_TIMEOUT, check=check)


WRITE = (
    "set -e\nmkdir -p small\ni=0\n"
    f"while [ $i -lt {SMALL_FILES} ]; do head -c $((1024 + i * 15)) /dev/urandom > small/f$i; i=$((i + 1)); done\n"
    f"dd if=/dev/urandom of=big.bin bs=1M count={BIG_MIB} 2>/dev/null\n"
    "md5sum small/* big.bin\n"
)
READ = "set -e\nmd5sum small/* big.bin\n"


def md5_lines(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"([0-9a-f]{32})  (\S+)", line.strip())
        if m:
            found[m.group(2)] = m.group(1)
    return found


def md5_file(p: Path) -> str:
    h = hashlib.md5()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("mode", ["off", "full"])
def test_webdav_volume_roundtrip(plugin: PluginProcess, res: Resources, apache: DavServer, mode: str) -> None:
    prefix = f"vol-{tag()}"
    name = f"davvol{tag()}"
    create_volume(res, name, *dav_opts(apache, prefix, f"vfs-cache-mode={mode}"))
    written = md5_lines(ctr_run(res, name, WRITE).stdout)
    assert len(written) == SMALL_FILES + 1
    back = md5_lines(ctr_run(res, name, READ).stdout)
    assert back == written, "a second container read other bytes"
    res.docker("volume", "remove", name, timeout=RUN_TIMEOUT)  # waits for uploads still going
    res.volumes.remove(name)
    on_disk = apache.root / prefix
    files = sorted(str(p.relative_to(on_disk)) for p in on_disk.rglob("*") if p.is_file())
    assert files == sorted(written), f"on the server: {files[:5]}... ({len(files)} files)"
    for i in range(SMALL_FILES):
        assert (on_disk / f"small/f{i}").stat().st_size == 1024 + i * 15
    assert (on_disk / "big.bin").stat().st_size == BIG_MIB << 20
    differ = [k for k in written if md5_file(on_disk / k) != written[k]]
    assert not differ, f"bytes on the server differ: {differ[:5]}"


def test_a_wrong_password_fails_the_write_and_the_plugin_serves_on(plugin: PluginProcess, res: Resources,
                                                                   apache: DavServer) -> None:
    name = f"davbad{tag()}"
    r = res.docker("volume", "create", name, "-d", res.plugin.driver,
                   *[a for o in dav_opts(apache, "bad", password="wrong") for a in ("-o", o)], check=False,
                   timeout=120)
    if r.returncode == 0:
        res.volumes.append(name)
        out = ctr_run(res, name, "echo x > f && echo written", check=False)
        assert out.returncode != 0 and "written" not in out.stdout, out.stdout
    else:
        assert "401" in r.stderr or "denied" in r.stderr.lower() or "permission" in r.stderr.lower(), r.stderr
    assert plugin.call("Plugin.Activate")[0] == 200
