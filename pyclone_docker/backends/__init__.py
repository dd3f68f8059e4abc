"""Backend registry: rclone type names to their options and factories.

Backends that are planned but not built yet are listed with their rclone option
names, so that a volume using them fails with a clear "not available yet" error
rather than "unknown backend".
"""

from __future__ import annotations

from .alias import OPTIONS as ALIAS_OPTIONS
from .base import Backend, BackendInfo, BackendOption, Entry
from .local import LocalBackend

__all__ = ["REGISTRY", "Backend", "BackendInfo", "BackendOption", "Entry", "find"]


def _planned(name: str, *opts: BackendOption) -> BackendInfo:
    return BackendInfo(name, None, tuple(opts))


_O = BackendOption

REGISTRY: dict[str, BackendInfo] = {
    "local": BackendInfo("local", LocalBackend, LocalBackend.options, LocalBackend.description),
    "alias": BackendInfo("alias", None, ALIAS_OPTIONS, "Alias for an existing remote"),
    "sftp": _planned("sftp", _O("host"), _O("user"), _O("port", "int", "22"), _O("pass", is_password=True),
                     _O("key_pem"), _O("key_file"), _O("key_file_pass", is_password=True), _O("pubkey_file"),
                     _O("known_hosts_file"), _O("key_use_agent", "bool"), _O("use_insecure_cipher", "bool"),
                     _O("disable_hashcheck", "bool"), _O("ask_password", "bool"), _O("path_override"),
                     _O("set_modtime", "bool", "true"), _O("shell_type"), _O("md5sum_command"),
                     _O("sha1sum_command"), _O("skip_links", "bool"), _O("subsystem", default="sftp"),
                     _O("server_command"), _O("use_fstat", "bool"), _O("disable_concurrent_reads", "bool"),
                     _O("disable_concurrent_writes", "bool"), _O("idle_timeout", "duration", "1m"),
                     _O("chunk_size", "size", "32Ki"), _O("concurrency", "int", "64"), _O("set_env")),
    "s3": _planned("s3", _O("provider"), _O("env_auth", "bool"), _O("access_key_id"),
                   _O("secret_access_key"), _O("region"), _O("endpoint"), _O("location_constraint"),
                   _O("acl"), _O("bucket_acl"), _O("storage_class"), _O("upload_cutoff", "size", "200Mi"),
                   _O("chunk_size", "size", "5Mi"), _O("disable_checksum", "bool"), _O("session_token"),
                   _O("upload_concurrency", "int", "4"), _O("force_path_style", "bool", "true"),
                   _O("v2_auth", "bool"), _O("no_check_bucket", "bool"), _O("server_side_encryption")),
    "webdav": _planned("webdav", _O("url"), _O("vendor"), _O("user"), _O("pass", is_password=True),
                       _O("bearer_token"), _O("bearer_token_command"), _O("encoding"), _O("headers")),
    "http": _planned("http", _O("url"), _O("headers"), _O("no_slash", "bool"), _O("no_head", "bool")),
    "ftp": _planned("ftp", _O("host"), _O("user"), _O("port", "int", "21"), _O("pass", is_password=True),
                    _O("tls", "bool"), _O("explicit_tls", "bool"), _O("concurrency", "int", "0"),
                    _O("no_check_certificate", "bool"), _O("disable_epsv", "bool"), _O("disable_mlsd", "bool"),
                    _O("disable_utf8", "bool"), _O("idle_timeout", "duration", "1m")),
    "crypt": _planned("crypt", _O("remote"), _O("filename_encryption", default="standard"),
                      _O("directory_name_encryption", "bool", "true"), _O("password", is_password=True),
                      _O("password2", is_password=True), _O("server_side_across_configs", "bool"),
                      _O("show_mapping", "bool"), _O("no_data_encryption", "bool"),
                      _O("filename_encoding", default="base32"), _O("suffix", default=".bin"),
                      _O("pass_bad_blocks", "bool"), _O("strict_names", "bool")),
}


def find(type_name: str) -> BackendInfo:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise ValueError(f'didn\'t find backend called "{type_name}"') from None
