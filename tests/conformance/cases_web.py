"""The http (read-only) cases of the conformance suite: nginx autoindex, Apache mod_autoindex and
python's http.server, each serving a fresh directory per test (filled before `make`).

conftest.py adds WEB_CASES to CASES and imports the session fixture `web_servers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend
from tests.support.webservers import WebServer, web_server

from .case import BackendCase


@pytest.fixture(scope="session")
def web_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, WebServer]]:
    stack: list = []
    servers: dict[str, WebServer] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, kind: str) -> WebServer:
            cm = web_server(kind, tmp_path_factory.mktemp(f"web-{kind}"))
            servers[kind] = self[kind] = cm.__enter__()
            stack.append(cm)
            return servers[kind]
    try:
        yield Lazy()
    finally:
        while stack:
            stack.pop().__exit__(None, None, None)


def _served(kind: str) -> Callable[[Path, pytest.FixtureRequest], Path]:
    def served(tmp: Path, request: pytest.FixtureRequest) -> Path:
        srv: WebServer = request.getfixturevalue("web_servers")[kind]
        d = srv.root / tmp.name
        d.mkdir(mode=0o755)
        return d
    return served


def _make(kind: str, extra: str = "") -> Callable[[Path, pytest.FixtureRequest], Backend]:
    def make(tmp: Path, request: pytest.FixtureRequest) -> Backend:
        srv: WebServer = request.getfixturevalue("web_servers")[kind]
        return fsmod.new_fs(f":http,url='{srv.url}'{extra}:{tmp.name}", fsmod.FsContext())
    return make


def _local_served(tmp: Path, request: pytest.FixtureRequest) -> Path:
    d = tmp / "served"
    d.mkdir()
    return d


def _local(tmp: Path, request: pytest.FixtureRequest) -> Backend:
    # the same reads over local: the read-only tests hold for a writable backend too
    return fsmod.new_fs(f":local:{tmp / 'served'}", fsmod.FsContext())


WEB_CASES: list[BackendCase] = [
    BackendCase("http-nginx", _make("nginx"), read_only=True, served=_served("nginx")),
    BackendCase("http-apache", _make("apache"), read_only=True, served=_served("apache")),
    BackendCase("http-python", _make("python"), read_only=True, served=_served("python")),
    BackendCase("http-nginx-no-head", _make("nginx", ",no_head=true"), read_only=True, served=_served("nginx")),
    BackendCase("local-read-only-part", _local, read_only=True, served=_local_served),
]
