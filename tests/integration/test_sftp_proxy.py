"""sftp through rclone's socks_proxy (SOCKS5, with a user name and password) and http_proxy
(HTTP CONNECT): real sshd, small real proxies in the test; the proxy's password reaches the
helper over the askpass socket, never an argv."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.sftp import pool
from tests.support.proxies import PROXY_PASS, PROXY_USER, Proxy
from tests.support.sshd import SshServer, sshd_server


@pytest.fixture(scope="module")
def srv() -> Iterator[SshServer]:
    yield from sshd_server()


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


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
