"""Volume options, triaged exactly as rclone's `serve docker` does (its docs, "Volume Configuration").

Special keys (`remote`/`fs`, `type`, `path`, `mount-type`, `persist`) are matched on the raw key;
every other key is normalised (lower case, no leading `--`, `_` for `-`) and is a mount
option, a VFS option, or a backend option that must carry the backend's prefix
(`sftp-host`). Anything else is refused, naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .. import backends, fspath, parsers
from ..flags import MOUNT_OPTIONS, VOLUME_OPTIONS, OptionValues, normal_key

MOUNT_TYPES = ("mount", "mount2", "cmount")
_MOUNT_NAMES = {o.name for o in MOUNT_OPTIONS}


class OptionError(ValueError):
    pass


@dataclass
class VolumeSpec:
    """Everything a volume's options mean, checked, before anything is created."""

    fs: str  # the raw remote/fs option, '' when type= was used (rclone's state field)
    fs_type: str
    path: str
    options: dict[str, str]  # every other option, original keys (saved in the state file)
    fs_string: str  # what the backend is built from, e.g. ":local,case_sensitive='true':/srv"
    values: OptionValues  # mount + VFS options: plugin defaults overridden per volume
    explicit: frozenset[str] = field(default_factory=frozenset)
    mount_type: str = "mount"


def parse_volume_options(opts: Mapping[str, str] | None, defaults: OptionValues,
                         default_explicit: frozenset[str] = frozenset(),
                         type_of_remote: Callable[[str, dict[str, str]], str | None] | None = None) -> VolumeSpec:
    fs = fs_type = path = ""
    have_fs = False
    rest: dict[str, str] = {}
    for key, value in (opts or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise OptionError("volume options must be strings")
        if key == "":
            continue
        if key in ("remote", "fs"):
            if have_fs and value != fs:
                raise OptionError('give the remote as either "remote" or "fs", not both')
            fs, have_fs = value, True
        elif key == "type":
            fs_type = value
        elif key == "path":
            path = value
        else:
            rest[key] = value
    if have_fs and fs == "":
        have_fs = False
    if have_fs == bool(fs_type):
        raise OptionError("volume must have either remote or backend type")

    if have_fs:
        try:
            parsed = fspath.parse(fs)
        except ValueError as e:
            # rclone echoes the string, but a connection string can hold a password: don't
            raise OptionError(f"cannot parse remote/fs: {e}") from None
        if parsed.is_local:
            name, conn, fs_path, resolved_type = "", {}, parsed.path, "local"
        else:
            name, conn, fs_path = parsed.name, dict(parsed.config), parsed.path
            if name.startswith(":"):
                resolved_type = name[1:]
            else:
                # a named remote: its type comes from rclone.conf or RCLONE_CONFIG_<NAME>_TYPE
                resolved_type = (type_of_remote(name, conn) if type_of_remote else None) or ""
                if not resolved_type:
                    raise OptionError(f'didn\'t find section in config file ("{name}")')
    else:
        name, conn, fs_path, resolved_type = ":" + fs_type, {}, "", fs_type
    if path:
        fs_path = path  # rclone: an explicit path overrides the connection string's

    values = defaults.copy()
    explicit = set(default_explicit)
    mount_type = "mount"
    persist = False
    backend_prefix = resolved_type
    info = None
    if resolved_type:
        try:
            info = backends.find(resolved_type)
        except ValueError as e:
            raise OptionError(str(e)) from None

    for key, value in rest.items():
        nk = normal_key(key)
        if nk == "persist":
            try:
                persist = parsers.parse_bool(value)
            except ValueError as e:
                raise OptionError(f'cannot parse option "{key}": {e}') from None
        elif nk == "mount_type":
            if value not in MOUNT_TYPES:
                raise OptionError(f'unsupported mount type "{value}"')
            mount_type = value
        elif nk in VOLUME_OPTIONS:
            group = "mount" if nk in _MOUNT_NAMES else "vfs"
            if nk == "daemon" and value.strip() and parsers.parse_bool(value):
                raise OptionError('option "daemon" is not supported: the plugin serves every mount itself')
            try:
                values.set(nk, value)
            except ValueError as e:
                raise OptionError(f'cannot parse {group} options: couldn\'t parse config item "{nk}" '
                                  f'= "{value}": {e}') from None
            explicit.add(nk)
        else:
            # a backend option: must be "<type>-<option>" for the volume's own backend type
            if not backend_prefix:
                raise OptionError(f'unsupported backend option "{key}" '
                                  f'(backend options of a named remote belong in rclone.conf)')
            prefix = backend_prefix + "_"
            opt_name = nk[len(prefix):] if nk.startswith(prefix) else ""
            if not opt_name or info is None or info.option(opt_name) is None:
                raise OptionError(f'unsupported backend option "{key}"')
            conn[opt_name] = value

    if persist:
        if not fs_type:
            raise OptionError("backend type is required to persist remotes")
        raise OptionError("using backend type to persist remotes is prohibited")

    fs_string = fspath.make_fs_string(name, conn, fs_path) if name else fs_path or "/"
    return VolumeSpec(fs=fs if have_fs else "", fs_type=fs_type, path=path, options=rest,
                      fs_string=fs_string, values=values, explicit=frozenset(explicit),
                      mount_type=mount_type)


def saved_options(fs: str, fs_type: str, path: str, options: Mapping[str, str]) -> dict[str, str]:
    """Rebuild Create's option map from a state record (including `path`: rclone #9853)."""
    out = dict(options)
    if fs:
        out["fs"] = fs
    if fs_type:
        out["type"] = fs_type
    if path:
        out["path"] = path
    return out


SECRET_HINTS = ("pass", "secret", "token", "key", "auth", "credential", "sas", "bearer")


def redact_options(opts: Mapping[str, str] | None) -> dict[str, str]:
    """A loggable copy: values of anything that may be a secret are hidden."""
    out = {}
    for key, value in (opts or {}).items():
        nk = normal_key(str(key))
        if nk in VOLUME_OPTIONS or nk in ("type", "path", "mount_type", "persist"):
            out[key] = value
        elif nk in ("remote", "fs"):
            from ..fs import redact

            out[key] = redact(value)
        elif any(h in nk for h in SECRET_HINTS):
            out[key] = "***"
        else:
            out[key] = value
    return out
