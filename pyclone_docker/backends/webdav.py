"""The `webdav` backend (WebDAV): rclone 1.75.2's options, declared only.

Not built yet: a volume of this type is checked as rclone would check it (option names,
types, password reveal) and then refused as "not available in this pyclone-docker version yet".
"""

from __future__ import annotations

from .base import BackendInfo
from .base import BackendOption as _O

INFO = BackendInfo("webdav", None, (
    _O("url", required=True), _O("vendor"), _O("user"), _O("pass", is_password=True), _O("bearer_token"),
    _O("bearer_token_command"), _O("encoding"), _O("headers", "csv"),
    _O("pacer_min_sleep", "duration", "10ms"), _O("nextcloud_chunk_size", "size", "10Mi"),
    _O("owncloud_exclude_shares", "bool"), _O("owncloud_exclude_mounts", "bool"), _O("unix_socket"),
    _O("auth_redirect", "bool"), _O("description"),
), "WebDAV")
