"""The `http` backend (HTTP): rclone 1.75.2's options, declared only.

Not built yet: a volume of this type is checked as rclone would check it (option names,
types, password reveal) and then refused as "not available in this pyclone-docker version yet".
"""

from __future__ import annotations

from .base import BackendInfo
from .base import BackendOption as _O

INFO = BackendInfo("http", None, (
    _O("url", required=True), _O("headers", "csv"), _O("no_slash", "bool"), _O("no_head", "bool"),
    _O("no_escape", "bool"), _O("description"),
), "HTTP")
