"""The `crypt` backend (Encrypt/Decrypt a remote): rclone 1.75.2's options, declared only.

Not built yet: a volume of this type is checked as rclone would check it (option names,
types, password reveal) and then refused as "not available in this pyclone-docker version yet".
"""

from __future__ import annotations

from .base import BackendInfo
from .base import BackendOption as _O

INFO = BackendInfo("crypt", None, (
    _O("remote", required=True), _O("filename_encryption", default="standard"),
    _O("directory_name_encryption", "bool", "true"), _O("password", is_password=True, required=True),
    _O("password2", is_password=True), _O("server_side_across_configs", "bool"), _O("show_mapping", "bool"),
    _O("no_data_encryption", "bool"), _O("pass_bad_blocks", "bool"), _O("strict_names", "bool"),
    _O("filename_encoding", default="base32"), _O("suffix", default=".bin"),
    _O("description"),
), "Encrypt/Decrypt a remote")
