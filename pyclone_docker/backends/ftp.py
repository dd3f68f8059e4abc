"""The `ftp` backend (FTP): rclone 1.75.2's options, declared only.

Not built yet: a volume of this type is checked as rclone would check it (option names,
types, password reveal) and then refused as "not available in this pyclone-docker version yet".
"""

from __future__ import annotations

from .base import BackendInfo
from .base import BackendOption as _O

INFO = BackendInfo("ftp", None, (
    _O("host", required=True), _O("user", default="root"), _O("port", "int", "21"),
    _O("pass", is_password=True), _O("tls", "bool"), _O("explicit_tls", "bool"), _O("concurrency", "int", "0"),
    _O("no_check_certificate", "bool"), _O("disable_epsv", "bool"), _O("disable_mlsd", "bool"),
    _O("disable_utf8", "bool"), _O("writing_mdtm", "bool"), _O("force_list_hidden", "bool"),
    _O("idle_timeout", "duration", "1m"), _O("close_timeout", "duration", "1m"),
    _O("tls_cache_size", "int", "32"), _O("disable_tls13", "bool"), _O("allow_insecure_tls_ciphers", "bool"),
    _O("shut_timeout", "duration", "1m"), _O("ask_password", "bool"), _O("socks_proxy"), _O("http_proxy"),
    _O("no_check_upload", "bool"), _O("encoding", default="Slash,Del,Ctl,RightSpace,Dot"),
    _O("description"),
), "FTP")
