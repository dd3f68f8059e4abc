"""The `webdav` backend (WebDAV: Nextcloud, ownCloud, Apache mod_dav, ...), with rclone 1.75.2's
options.

The modules: vendors (what each `vendor` changes), props (the PROPFIND bodies and the streamed
multistatus parser), transfer (ranged reads, PUT uploads), backend (the Backend). Only this
module is imported until a volume uses webdav.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Backend, BackendInfo
from ..base import BackendOption as _O


def _new(name: str, root: str, config: dict[str, str], ctx: Any = None) -> Backend:
    from .backend import WebdavBackend

    return WebdavBackend(name, root, config, ctx)


def _precheck(raw: Mapping[str, str]) -> None:
    from .vendors import quirks

    quirks(raw.get("vendor", ""))  # sharepoint: refused at Create, with why


def _warm_up() -> None:
    from ...lib.httpclient.client import preload

    preload()


INFO = BackendInfo("webdav", _new, (
    _O("url", required=True), _O("vendor"), _O("user"), _O("pass", is_password=True), _O("bearer_token"),
    _O("bearer_token_command"), _O("encoding"), _O("headers", "csv"),
    _O("pacer_min_sleep", "duration", "10ms"), _O("nextcloud_chunk_size", "size", "10Mi"),
    _O("owncloud_exclude_shares", "bool"), _O("owncloud_exclude_mounts", "bool"), _O("unix_socket"),
    _O("auth_redirect", "bool"), _O("description"),
), "WebDAV", precheck=_precheck, warm_up=_warm_up)
