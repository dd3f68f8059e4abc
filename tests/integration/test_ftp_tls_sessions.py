"""ftp's tls_cache_size (rclone's TLS session cache), on vsftpd with explicit TLS, whose
require_ssl_reuse refuses a data connection that does not resume its control connection's
session, and on pyftpdlib, which asks for no such thing. rclone 1.75.2 is run alongside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend, BackendContext
from tests import rclone_ref
from tests.support.pyftpd import PyFtpServer, pyftpd_server
from tests.support.rclonecli import RcloneCli
from tests.support.vsftpd import VsFtpServer, vsftpd_server

Server = PyFtpServer | VsFtpServer


@pytest.fixture(autouse=True)
def _require_fuse() -> None:
    """No mount here: the backend alone (the suite's FUSE check does not apply)."""


@pytest.fixture(scope="module")
def vsftpd_tls() -> Iterator[VsFtpServer]:
    yield from vsftpd_server(tls=True)


@pytest.fixture(scope="module")
def pyftpd_tls() -> Iterator[PyFtpServer]:
    yield from pyftpd_server(tls=True)


def _backend(srv: Server, extra: str = "") -> Backend:
    spec = (f":ftp,host={srv.host},port={srv.port},user={srv.user},pass={obscure.obscure(srv.password)},"
            f"explicit_tls=true,force_list_hidden=true{extra}:")
    return fsmod.new_fs(spec, fsmod.FsContext(backend=BackendContext(ca_cert=(srv.ca_file,), low_level_retries=1)))


def _rclone(srv: Server, home: Path, *flags: str) -> RcloneCli:
    return RcloneCli(rclone_ref.require(), home, lambda p: f":ftp,host={srv.host},port={srv.port},user={srv.user},"
                     f"explicit_tls=true,disable_tls13=true:{p}",
                     env={"RCLONE_FTP_PASS": obscure.obscure(srv.password), "RCLONE_CA_CERT": srv.ca_file})


def test_the_default_cache_resumes_data_and_control_sessions(vsftpd_tls: VsFtpServer) -> None:
    be = _backend(vsftpd_tls)
    try:
        be.list("")  # data connections on vsftpd work only by resuming the control session
        pool = be.session.pool
        first, second = pool.acquire(), pool.acquire()  # one of them new: it resumes the cached session
        try:
            assert any(c.sock.session_reused for c in (first, second))
        finally:
            pool.release(first)
            pool.release(second)
    finally:
        be.shutdown()


def test_size_0_resumes_nothing_so_vsftpd_refuses_the_data_connection(vsftpd_tls: VsFtpServer,
                                                                    tmp_path: Path) -> None:
    be = _backend(vsftpd_tls, ",tls_cache_size=0")
    try:
        with pytest.raises(OSError) as err:
            be.list("")
        assert "522" in str(err.value) or "reuse" in str(err.value).lower(), err.value
    finally:
        be.shutdown()
    rc = _rclone(vsftpd_tls, tmp_path)
    refused = rc.run("lsf", "--ftp-tls-cache-size", "0", rc.remote(""), check=False)
    assert refused.returncode != 0  # rclone 1.75.2 is refused the same way
    assert rc.run("lsf", rc.remote("")).returncode == 0


def test_size_0_works_where_the_server_asks_for_no_reuse(pyftpd_tls: PyFtpServer) -> None:
    be = _backend(pyftpd_tls, ",tls_cache_size=0")
    try:
        be.mkdir("s0")
        w = be.open_write("s0/f", 3)
        w.write(memoryview(b"abc"))
        w.close()
        assert [e.name for e in be.list("s0")] == ["f"]
        conn = be.session.pool.acquire()
        try:
            assert not conn.sock.session_reused
        finally:
            be.session.pool.release(conn)
    finally:
        be.shutdown()
