"""The `sftp` backend (SSH/SFTP) over the system OpenSSH client: rclone 1.75.2's options.

The modules: proto (SFTP v3 packets), channel (one pipelined session), ssh (options to an
OpenSSH command line), pool (shared connections), transfer (pipelined reads and writes),
hashes (remote commands), backend (the Backend). Only this module is imported until a volume
uses sftp.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Backend, BackendInfo, current_user
from ..base import BackendOption as _O

NO_SSH = ("sftp: the OpenSSH client `ssh` is not installed: install it (Debian/Ubuntu: "
          "apt-get install openssh-client; Alpine: apk add openssh-client)")


def _precheck(options: Mapping[str, str]) -> None:
    """At Create: the ssh program is there (unless the `ssh` option names its own)."""
    import shutil

    if not options.get("ssh") and shutil.which("ssh") is None:
        raise ValueError(NO_SSH)


def _new(name: str, root: str, config: dict[str, str], ctx: Any = None) -> Backend:
    from .backend import SftpBackend

    return SftpBackend(name, root, config, ctx)


INFO = BackendInfo("sftp", _new, (
    _O("host", required=True), _O("user", default=current_user()), _O("port", "int", "22"),
    _O("pass", is_password=True), _O("key_pem"), _O("key_file"), _O("key_file_pass", is_password=True),
    _O("pubkey"), _O("pubkey_file"), _O("known_hosts_file"), _O("pin_host_key", "bool"),
    _O("host_keys", "csv"), _O("key_use_agent", "bool"), _O("use_insecure_cipher", "bool"),
    _O("disable_hashcheck", "bool"), _O("ask_password", "bool"), _O("path_override"),
    _O("encoding", default="Slash,Del,Ctl,Dot"), _O("set_modtime", "bool", "true"), _O("shell_type"),
    _O("hashes", "csv"), _O("md5sum_command"), _O("sha1sum_command"), _O("crc32sum_command"),
    _O("sha256sum_command"), _O("blake3sum_command"), _O("xxh3sum_command"), _O("xxh128sum_command"),
    _O("skip_links", "bool"), _O("subsystem", default="sftp"), _O("server_command"),
    _O("use_fstat", "bool"), _O("disable_concurrent_reads", "bool"), _O("disable_concurrent_writes", "bool"),
    _O("idle_timeout", "duration", "1m"), _O("chunk_size", "size", "32Ki"), _O("concurrency", "int", "64"),
    _O("connections", "int", "0"), _O("set_env"), _O("ciphers"), _O("key_exchange"), _O("macs"),
    _O("host_key_algorithms"), _O("ssh"), _O("socks_proxy"), _O("http_proxy"), _O("copy_is_hardlink", "bool"),
    _O("description"),
), "SSH/SFTP", precheck=_precheck)
