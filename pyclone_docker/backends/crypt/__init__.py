"""The `crypt` backend (Encrypt/Decrypt a remote), with rclone 1.75.2's options and formats.

It wraps any remote (local, sftp, s3, an rclone.conf section, another crypt): names and
contents are rclone's byte for byte (pyclone_docker/crypt: keys, names, contents), so a
remote rclone wrote reads here and the other way round. The modules: backend (names and
sizes over the inner backend), transfer (the reader decrypting only the blocks a read
covers, the streaming writer). Only this module is imported until a volume uses crypt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..base import Backend, BackendInfo
from ..base import BackendOption as _O


def _new(name: str, root: str, options: dict[str, str], ctx: Any, open_inner: Callable[[str], Backend]) -> Backend:
    from .backend import open_crypt

    return open_crypt(name, root, options, ctx, open_inner)


INFO = BackendInfo("crypt", _new, (
    _O("remote", required=True), _O("filename_encryption", default="standard"),
    _O("directory_name_encryption", "bool", "true"), _O("password", is_password=True, required=True),
    _O("password2", is_password=True), _O("server_side_across_configs", "bool"), _O("show_mapping", "bool"),
    _O("no_data_encryption", "bool"), _O("pass_bad_blocks", "bool"), _O("strict_names", "bool"),
    _O("filename_encoding", default="base32"), _O("suffix", default=".bin"),
    _O("description"),
), "Encrypt/Decrypt a remote", wraps=True)
