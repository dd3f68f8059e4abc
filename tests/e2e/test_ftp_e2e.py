"""ftp volumes end to end (issue 14): dockerd, the plugin, FUSE and a real vsftpd (Debian's,
one local user, tests/support/vsftpd.py) on loopback.

    docker volume create NAME -d <driver> -o type=ftp -o ftp-host=127.0.0.1 -o ftp-port=PORT \
        -o ftp-user=... -o ftp-pass=$(pyclone-docker obscure ...) -o ftp-writing-mdtm=true \
        -o path=PREFIX -o allow-other=true

One container writes 200 small files of 1-4 KiB and one 100 MiB file of /dev/urandom (md5s
taken in the container with busybox md5sum), a second reads them back, the volume is removed,
and the files are checked on the server's own disk: names, sizes and bytes, and no partial
upload left behind. In cache modes off and full, set per volume. Then a wrong password: the
create fails with the server's refusal, and the plugin keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pyclone_docker import obscure
from tests.e2e.test_dav_e2e import BIG_MIB, READ, SMALL_FILES, WRITE, create_volume, ctr_run, md5_file, md5_lines, tag
from tests.support.vsftpd import VsFtpServer, vsftpd_server

if TYPE_CHECKING:
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def vsftpd(docker_ready: str) -> Iterator[VsFtpServer]:
    yield from vsftpd_server()


def ftp_opts(srv: VsFtpServer, path: str, *extra: str, password: str = "") -> list[str]:
    return ["type=ftp", f"ftp-host={srv.host}", f"ftp-port={srv.port}", f"ftp-user={srv.user}",
            f"ftp-pass={obscure.obscure(password or srv.password)}", "ftp-writing-mdtm=true", f"path={path}",
            "allow-other=true", *extra]


@pytest.mark.parametrize("mode", ["off", "full"])
def test_ftp_volume_roundtrip(plugin: PluginProcess, res: Resources, vsftpd: VsFtpServer, mode: str) -> None:
    prefix = f"vol-{tag()}"
    name = f"ftpvol{tag()}"
    create_volume(res, name, *ftp_opts(vsftpd, prefix, f"vfs-cache-mode={mode}"))
    written = md5_lines(ctr_run(res, name, WRITE).stdout)
    assert len(written) == SMALL_FILES + 1
    back = md5_lines(ctr_run(res, name, READ).stdout)
    assert back == written, "a second container read other bytes"
    res.docker("volume", "remove", name, timeout=300)  # waits for uploads still going
    res.volumes.remove(name)
    on_disk = Path(vsftpd.root_dir) / prefix
    files = sorted(str(p.relative_to(on_disk)) for p in on_disk.rglob("*") if p.is_file())
    assert files == sorted(written), f"on the server: {files[:5]}... ({len(files)} files)"
    for i in range(SMALL_FILES):
        assert (on_disk / f"small/f{i}").stat().st_size == 1024 + i * 15
    assert (on_disk / "big.bin").stat().st_size == BIG_MIB << 20
    differ = [k for k in written if md5_file(on_disk / k) != written[k]]
    assert not differ, f"bytes on the server differ: {differ[:5]}"


def test_a_wrong_password_fails_the_create_and_the_plugin_serves_on(plugin: PluginProcess, res: Resources,
                                                                    vsftpd: VsFtpServer) -> None:
    name = f"ftpbad{tag()}"
    secret = f"not-the-password-{tag()}"
    r = res.docker("volume", "create", name, "-d", res.plugin.driver,
                   *[a for o in ftp_opts(vsftpd, "bad", password=secret) for a in ("-o", o)], check=False,
                   timeout=120)
    if r.returncode == 0:
        res.volumes.append(name)
    assert r.returncode != 0 and "login refused" in r.stderr and "530" in r.stderr, r.stderr
    assert secret not in r.stderr and obscure.obscure(secret) not in r.stderr
    assert plugin.call("Plugin.Activate")[0] == 200
