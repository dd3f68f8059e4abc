"""The backend conformance suite: one set of tests, run over every backend in CASES.

Modelled on rclone's fstests and PyFilesystem2's fs/test.py. Each test gets `backend`, a
Backend whose root is a fresh, empty directory, and `case`, what that backend declares about
itself (modtime precision, which errors it can tell apart, known bugs). Tests talk to the
backend only through the Backend interface, so a network backend joins the suite by adding
one BackendCase whose `make` builds it against a real server (a session fixture it can ask
for through `request.getfixturevalue`).

Capability-dependent tests carry `@pytest.mark.needs(FEATURE_...)` and are skipped, with the
missing feature as the reason, on a backend that does not declare it; `@pytest.mark.needs_not(
FEATURE_...)` marks a test of what a backend without the feature does (an object store's
directories), skipped where it is declared. A case's
`known_failures` turn named tests into strict xfails on that case, with the reason shown.

    python3 -m pytest -q tests/conformance
    python3 -m pytest -q tests/conformance -k alias
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend
from tests.support.faulty import FaultyBackend
from tests.support.flatstore import FlatStore
from tests.support.moto import MotoServer, moto_server
from tests.support.rclones3 import RcloneS3, rclone_s3_server
from tests.support.sshd import SshServer, sshd_server

from .case import TAB_KNOWN_FAILURES, BackendCase
from .cases_dav import DAV_CASES, dav_servers  # noqa: F401  (fixtures)
from .cases_ftp import FTP_CASES, pyftpd, pyftpd_tls, vsftpd, vsftpd_tls  # noqa: F401  (fixtures)
from .cases_web import WEB_CASES, web_servers  # noqa: F401  (fixtures)

LOCAL_KNOWN_FAILURES: dict[str, str] = dict(TAB_KNOWN_FAILURES)  # test name -> why it fails (a strict xfail)


def _fresh(tmp: Path, name: str) -> Path:
    d = tmp / name
    d.mkdir()
    return d


def _local(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    return fsmod.new_fs(f":local:{_fresh(tmp, 'root')}", fsmod.FsContext())


def _alias(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # an alias of a parent directory with the volume's path below it, as `remote = /target` + `:sub`
    _fresh(_fresh(tmp, "target"), "sub")
    return fsmod.new_fs(f":alias,remote='{tmp / 'target'}':sub", fsmod.FsContext())


def _local_no_modtime(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # a real configuration that lacks a feature: its capability tests are skipped, with the reason
    return fsmod.new_fs(f":local,no_set_modtime=true:{_fresh(tmp, 'root')}", fsmod.FsContext())


def _faulty(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    return FaultyBackend(_local(tmp, request), delay=0.001)


def _flatstore(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # an object store (directories only while objects lie below them) over a local directory
    local = fsmod.new_fs(f":local:{_fresh(tmp, 'root')}", fsmod.FsContext())
    return FlatStore(local)


def _sftp_root(tmp: Path, request: pytest.FixtureRequest) -> tuple[SshServer, str]:
    srv: SshServer = request.getfixturevalue("sshd")
    root = Path(srv.root_dir) / tmp.name
    root.mkdir()
    os.chown(root, srv.uid, srv.gid)
    return srv, str(root)


def _sftp(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # a key file and a known_hosts file: the way a careful user configures it
    srv, root = _sftp_root(tmp, request)
    return fsmod.new_fs(f":sftp,host={srv.host},port={srv.port},user={srv.user},key_file='{srv.key_file}',"
                        f"known_hosts_file='{srv.known_hosts_file}':{root}", fsmod.FsContext())


def _sftp_pass(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # seed 002's getting-started: a password (obscured), no host key validation, a relative root
    srv, root = _sftp_root(tmp, request)
    relative = os.path.relpath(root, srv.home)
    return fsmod.new_fs(f":sftp,host={srv.host},port={srv.port},user={srv.user},pass={obscure.obscure(srv.password)}:"
                        f"{relative}", fsmod.FsContext())


def _s3_root(tmp: Path, request: pytest.FixtureRequest, bucket: str) -> tuple[MotoServer, str]:
    srv: MotoServer = request.getfixturevalue("moto")
    if bucket not in _S3_BUCKETS:
        srv.make_bucket(bucket)
        _S3_BUCKETS.add(bucket)
    return srv, f"{bucket}/{tmp.name}"


_S3_BUCKETS: set[str] = set()


def _s3(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # provider Other: path style, ListObjects V1, no URL-encoded listings (rclone's quirks)
    srv, root = _s3_root(tmp, request, "pyc-conformance")
    return fsmod.new_fs(f":s3,provider=Other,endpoint='{srv.endpoint}',access_key_id={srv.access_key_id},"
                        f"secret_access_key={srv.secret_access_key}:{root}", fsmod.FsContext())


def _s3_vhost(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # provider Minio told not to force path style: BUCKET.localhost, ListObjectsV2, URL-encoded
    # listings, small multipart parts (5 MiB parts above a 6 MiB cutoff)
    srv: MotoServer = request.getfixturevalue("moto")
    srv.virtual_host_name("pyc-vhost")
    _, root = _s3_root(tmp, request, "pyc-vhost")
    return fsmod.new_fs(f":s3,provider=Minio,force_path_style=false,endpoint='{srv.virtual_host_base_endpoint()}',"
                        f"access_key_id={srv.access_key_id},secret_access_key={srv.secret_access_key},"
                        f"upload_cutoff=6Mi:{root}", fsmod.FsContext())


def _s3_rclone(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # rclone 1.75.2's own S3 server, which checks SigV4 signatures (moto does not); provider
    # Rclone: path style, no multipart ETag check, no multipart server-side copy
    srv: RcloneS3 = request.getfixturevalue("rclone_s3")
    srv.make_bucket("conformance")
    return fsmod.new_fs(f":s3,provider=Rclone,endpoint='{srv.endpoint}',access_key_id={srv.access_key_id},"
                        f"secret_access_key={srv.secret_access_key},upload_cutoff=6Mi:conformance/{tmp.name}",
                        fsmod.FsContext())


def _crypt(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # crypt over local, rclone's defaults (standard names, base32, directory names encrypted)
    return fsmod.new_fs(f":crypt,remote='{_fresh(tmp, 'root')}',password={obscure.obscure('conformance')}:",
                        fsmod.FsContext())


def _crypt_obfuscate_s3(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # crypt over s3 (an object store: no empty directories), obfuscated names, a password2
    srv, root = _s3_root(tmp, request, "pyc-crypt")
    inner = (f":s3,provider=Other,endpoint='{srv.endpoint}',access_key_id={srv.access_key_id},"
             f"secret_access_key={srv.secret_access_key}:{root}")
    return fsmod.new_fs(f":crypt,remote=\"{inner}\",password={obscure.obscure('conformance')},"
                        f"password2={obscure.obscure('pepper')},filename_encryption=obfuscate:", fsmod.FsContext())


def _chunker(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # chunker over local with 64 KiB chunks, so the suite's larger files span several chunks
    return fsmod.new_fs(f":chunker,remote='{_fresh(tmp, 'root')}',chunk_size=64Ki:", fsmod.FsContext())


SFTP_KNOWN_FAILURES: dict[str, str] = {}
# a 255-byte name encrypts to more than the 255 bytes a local file name may have (rclone: the
# same ENAMETOOLONG); base32 of a padded name is 8/5 as long
_CRYPT_LONG = ("a 255-byte name encrypts to a 416-character base32 name, longer than the 255 bytes a local "
               "file name may have (rclone: the same ENAMETOOLONG; crypt over local holds names to 143 bytes)")
CRYPT_KNOWN_FAILURES: dict[str, str] = {
    f"{test}[{name}": _CRYPT_LONG
    for test in ("test_file_name_round_trip", "test_directory_name_round_trip", "test_move_file_to_and_from_the_name",
                 "test_move_directory_to_the_name")
    for name in ("ascii-255", "utf8-255-bytes")
}
FLATSTORE_KNOWN_FAILURES: dict[str, str] = dict(TAB_KNOWN_FAILURES)
_S3_DEEP = {"test_deep_path_made_by_an_upload": "an S3 key is at most 1024 bytes (20 levels of 95 bytes are ~1,900)"}
S3_KNOWN_FAILURES = {**FLATSTORE_KNOWN_FAILURES, **_S3_DEEP}
CRYPT_S3_KNOWN_FAILURES = dict(S3_KNOWN_FAILURES)  # obfuscate leaves a tab as it is
# every upload goes first to "<name>.rclone_chunk.001_<6-char transaction ID>", 24 bytes longer
_CHUNKER_LONG = ("a 255-byte name's temporary first chunk (+ '.rclone_chunk.001_xxxxxx') is longer than the 255 bytes "
                 "a local file name may have (rclone 1.75.2: the same 'file name too long'; names up to 231 bytes)")
CHUNKER_KNOWN_FAILURES: dict[str, str] = {
    **LOCAL_KNOWN_FAILURES,
    **{f"{test}[{name}": _CHUNKER_LONG for test in ("test_file_name_round_trip", "test_directory_name_round_trip")
       for name in ("ascii-255", "utf8-255-bytes")},
    "test_name_longer_than_the_limit": "a file name is held to 231 bytes, a directory's is not (directories are not "
                                       "chunked: a 232-byte one is made, as rclone 1.75.2 makes it)",
}

CASES = [
    BackendCase("local", _local, known_failures=LOCAL_KNOWN_FAILURES),
    BackendCase("alias", _alias, known_failures=LOCAL_KNOWN_FAILURES),
    BackendCase("faulty", _faulty, known_failures=LOCAL_KNOWN_FAILURES),
    BackendCase("local-no-modtime", _local_no_modtime, known_failures=LOCAL_KNOWN_FAILURES),
    BackendCase("flatstore", _flatstore, dir_modtime=False, posix_errors=False,
                known_failures=FLATSTORE_KNOWN_FAILURES),
    BackendCase("sftp", _sftp, modtime_precision_ns=10**9, known_failures=SFTP_KNOWN_FAILURES),
    BackendCase("sftp-pass", _sftp_pass, modtime_precision_ns=10**9, known_failures=SFTP_KNOWN_FAILURES),
    BackendCase("s3", _s3, dir_modtime=False, posix_errors=False, max_name_bytes=0,
                known_failures=S3_KNOWN_FAILURES),
    BackendCase("s3-vhost", _s3_vhost, dir_modtime=False, posix_errors=False, max_name_bytes=0,
                known_failures=S3_KNOWN_FAILURES),
    BackendCase("s3-rclone", _s3_rclone, dir_modtime=False, posix_errors=False, max_name_bytes=0,
                known_failures=S3_KNOWN_FAILURES),
    BackendCase("crypt", _crypt, max_name_bytes=143, known_failures=CRYPT_KNOWN_FAILURES),
    BackendCase("crypt-obfuscate-s3", _crypt_obfuscate_s3, dir_modtime=False, posix_errors=False, max_name_bytes=0,
                known_failures=CRYPT_S3_KNOWN_FAILURES),
    BackendCase("chunker", _chunker, max_name_bytes=231, known_failures=CHUNKER_KNOWN_FAILURES),
    *DAV_CASES, *WEB_CASES, *FTP_CASES,
]


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    yield from sshd_server()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    yield from moto_server()


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    yield from rclone_s3_server(tmp_path_factory.mktemp("rclone-s3"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*features): the test needs these backend features (else skipped)")
    config.addinivalue_line("markers", "needs_not(*features): the test is for backends without these features")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec is not None else None
        if not isinstance(case, BackendCase):
            continue
        reason = case.known_failures.get(getattr(item, "originalname", item.name))
        if not reason:  # "test_x[param" names the cases of a parametrized test that start so
            reason = next((why for key, why in case.known_failures.items()
                           if "[" in key and item.name.startswith(key)), "")
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{case.id}: {reason}"))


WRITABLE_CASES = [c for c in CASES if not c.read_only]
READ_ONLY_CASES = [c for c in CASES if c.read_only]


@pytest.fixture(params=WRITABLE_CASES, ids=[c.id for c in WRITABLE_CASES])
def case(request: pytest.FixtureRequest) -> BackendCase:
    return request.param


@pytest.fixture(params=READ_ONLY_CASES, ids=[c.id for c in READ_ONLY_CASES])
def ro_case(request: pytest.FixtureRequest) -> BackendCase:
    """A read-only case (test_read_only.py): its `served` directory is filled, then `make` is called."""
    return request.param


@pytest.fixture
def backend(case: BackendCase, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
    b = case.make(tmp_path, request)
    missing = [f for m in request.node.iter_markers("needs") for f in m.args if f not in b.features]
    if missing:
        b.shutdown()
        pytest.skip(f"{case.id} backend lacks feature(s): {', '.join(missing)}")
    present = [f for m in request.node.iter_markers("needs_not") for f in m.args if f in b.features]
    if present:
        b.shutdown()
        pytest.skip(f"{case.id} backend has feature(s): {', '.join(present)}")
    yield b
    b.shutdown()

