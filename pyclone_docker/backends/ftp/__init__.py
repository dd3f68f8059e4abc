"""The `ftp` backend (FTP, FTPS) on the stdlib ftplib: rclone 1.75.2's options.

The modules: conn (a control connection and the pool), listing (MLSD facts, unix and DOS LIST
lines), transfer (downloads and uploads on the data connection), backend (the Backend). Only
this module is imported until a volume uses ftp.
"""

from __future__ import annotations

from typing import Any

from ..base import Backend, BackendInfo, current_user
from ..base import BackendOption as _O


def _new(name: str, root: str, config: dict[str, str], ctx: Any = None) -> Backend:
    from .backend import FtpBackend

    return FtpBackend(name, root, config, ctx)


def _warm_up() -> None:
    import ftplib  # noqa: F401
    import ssl  # noqa: F401


INFO = BackendInfo("ftp", _new, (
    _O("host", required=True), _O("user", default=current_user()), _O("port", "int", "21"),
    _O("pass", is_password=True), _O("tls", "bool"), _O("explicit_tls", "bool"), _O("concurrency", "int", "0"),
    _O("no_check_certificate", "bool"), _O("disable_epsv", "bool"), _O("disable_mlsd", "bool"),
    _O("disable_utf8", "bool"), _O("writing_mdtm", "bool"), _O("force_list_hidden", "bool"),
    _O("idle_timeout", "duration", "1m"), _O("close_timeout", "duration", "1m"),
    _O("tls_cache_size", "int", "32"), _O("disable_tls13", "bool"),
    _O("allow_insecure_tls_ciphers", "bool"),
    _O("shut_timeout", "duration", "1m"), _O("ask_password", "bool"), _O("socks_proxy"),
    _O("http_proxy"), _O("no_check_upload", "bool"), _O("encoding", default="Slash,Del,Ctl,RightSpace,Dot"),
    _O("description"),
), "FTP", warm_up=_warm_up)
