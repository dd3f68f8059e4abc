"""The webdav cases of the conformance suite: wsgidav, Apache mod_dav and rclone 1.75.2's
`serve webdav` (vendor rclone: modtimes through X-OC-Mtime), each with basic auth.

conftest.py adds DAV_CASES to CASES and imports the session fixture `dav_servers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend
from tests.support.davservers import DavServer, dav_server
from tests.support.infinitescale import infinitescale_server

from .case import BackendCase


@pytest.fixture(scope="session")
def dav_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DavServer]]:
    """One server of each kind, started on first use."""
    with _Servers(tmp_path_factory.mktemp("dav")) as servers:
        yield servers


class _Servers(dict):  # type: ignore[type-arg]
    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self._tmp = tmp
        self._stack: list = []

    def __enter__(self) -> _Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._stack:
            self._stack.pop().__exit__(None, None, None)

    def __missing__(self, kind: str) -> DavServer:
        cm = infinitescale_server(self._tmp / kind) if kind == "infinitescale" else dav_server(kind, self._tmp / kind)
        srv = cm.__enter__()
        self._stack.append(cm)
        self[kind] = srv
        return srv


def _make(kind: str) -> Callable[[Path, pytest.FixtureRequest], Backend]:
    def make(tmp: Path, request: pytest.FixtureRequest) -> Backend:
        srv: DavServer = request.getfixturevalue("dav_servers")[kind]
        spec = (f":webdav,url='{srv.url}',vendor={srv.vendor},user={srv.user},"
                f"pass={obscure.obscure(srv.password)}:")
        top = fsmod.new_fs(spec, fsmod.FsContext())
        top.mkdir(tmp.name)  # through the server: rclone serve webdav caches its directories
        top.shutdown()
        return fsmod.new_fs(spec + tmp.name, fsmod.FsContext())
    return make


# wsgidav 4.4 reads the MOVE's Destination header unescaped: a '?' in the name starts a query
# (the name is cut there) and a tab is dropped. The request is rclone's (an escaped URL).
_WSGIDAV_DEST = "wsgidav 4.4 unescapes the MOVE's Destination before it parses it ('?' cuts the name, a tab is dropped)"
_MOVES = ("test_move_file_to_and_from_the_name", "test_move_directory_to_the_name")
WSGIDAV_KNOWN_FAILURES: dict[str, str] = {
    f"{test}[{name}": _WSGIDAV_DEST for test in _MOVES for name in ("hash-percent-query-star", "mixed-punctuation",
                                                                    "control-tab")
}
DAV_CASES: list[BackendCase] = [
    BackendCase("webdav-wsgidav", _make("wsgidav"), dir_modtime=False, known_failures=WSGIDAV_KNOWN_FAILURES),
    BackendCase("webdav-apache", _make("apache"), dir_modtime=False),
    # rclone's own server: its VFS takes NFC and NFD spellings as one name
    BackendCase("webdav-rclone", _make("rclone"), modtime_precision_ns=10**9, dir_modtime=False,
                unicode_normalizes=True),
    # the Infinite Scale stand-in (tests/support/infinitescale.py): every upload by tus
    BackendCase("webdav-infinitescale", _make("infinitescale"), modtime_precision_ns=10**9, dir_modtime=False,
                known_failures=WSGIDAV_KNOWN_FAILURES),
]
