"""The ftp cases of the conformance suite, and the session fixtures of their real servers:
pyftpdlib 2.2.0 (MLSD, MFMT) and Debian's vsftpd (LIST and MDTM only), each plain and with
explicit TLS against a test CA (verified: the CA is given with --ca-cert).

conftest.py adds FTP_CASES to CASES and imports the fixtures by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend, BackendContext
from tests.support.pyftpd import PyFtpServer, pyftpd_server
from tests.support.vsftpd import VsFtpServer, vsftpd_server

from .case import TAB_KNOWN_FAILURES, BackendCase


@pytest.fixture(scope="session")
def pyftpd() -> Iterator[PyFtpServer]:
    yield from pyftpd_server()


@pytest.fixture(scope="session")
def pyftpd_tls() -> Iterator[PyFtpServer]:
    yield from pyftpd_server(tls=True)


@pytest.fixture(scope="session")
def vsftpd() -> Iterator[VsFtpServer]:
    yield from vsftpd_server()


@pytest.fixture(scope="session")
def vsftpd_tls() -> Iterator[VsFtpServer]:
    yield from vsftpd_server(tls=True)


def ftp_spec(srv: PyFtpServer | VsFtpServer, extra: str = "") -> str:
    """A connection string for `srv` (explicit TLS when it has it), without its root."""
    spec = f":ftp,host={srv.host},port={srv.port},user={srv.user},pass={obscure.obscure(srv.password)}"
    if srv.tls:
        spec += ",explicit_tls=true"
    return spec + extra + ":"


def _make(fixture: str, extra: str = "") -> Callable[[Path, pytest.FixtureRequest], Backend]:
    def make(tmp: Path, request: pytest.FixtureRequest) -> Backend:
        srv = request.getfixturevalue(fixture)
        ctx = fsmod.FsContext(backend=BackendContext(ca_cert=(srv.ca_file,))) if srv.tls else fsmod.FsContext()
        top = fsmod.new_fs(ftp_spec(srv, extra), ctx)
        top.mkdir(tmp.name)
        top.shutdown()
        return fsmod.new_fs(ftp_spec(srv, extra) + tmp.name, ctx)
    return make


# vsftpd: LIST hides dot files unless asked (force_list_hidden), and sets times with MDTM
# (writing_mdtm); its LIST times are to the minute, MDTM's to the second
_VSFTPD = ",force_list_hidden=true,writing_mdtm=true"
FTP_CASES: list[BackendCase] = [
    BackendCase("ftp-pyftpdlib", _make("pyftpd"), modtime_precision_ns=10**9, dir_modtime=False,
                known_failures=TAB_KNOWN_FAILURES),
    BackendCase("ftp-pyftpdlib-tls", _make("pyftpd_tls"), modtime_precision_ns=10**9, dir_modtime=False,
                known_failures=TAB_KNOWN_FAILURES),
    BackendCase("ftp-vsftpd", _make("vsftpd", _VSFTPD), modtime_precision_ns=10**9, dir_modtime=False,
                known_failures=TAB_KNOWN_FAILURES),
    BackendCase("ftp-vsftpd-tls", _make("vsftpd_tls", _VSFTPD), modtime_precision_ns=10**9, dir_modtime=False,
                known_failures=TAB_KNOWN_FAILURES),
]
