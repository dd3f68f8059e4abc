"""The `http` backend (read-only files from a web server's index pages), with rclone 1.75.2's
options. The modules: index (the streamed parser of index pages), backend (the Backend). Only
this module is imported until a volume uses http.
"""

from __future__ import annotations

from typing import Any

from ..base import Backend, BackendInfo
from ..base import BackendOption as _O


def _new(name: str, root: str, config: dict[str, str], ctx: Any = None) -> Backend:
    from .backend import HttpBackend

    return HttpBackend(name, root, config, ctx)


def _warm_up() -> None:
    from ...lib.httpclient.client import preload

    preload()


INFO = BackendInfo("http", _new, (
    _O("url", required=True), _O("headers", "csv"), _O("no_slash", "bool"), _O("no_head", "bool"),
    _O("no_escape", "bool"), _O("description"),
), "HTTP", warm_up=_warm_up)
