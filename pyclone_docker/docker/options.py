"""Volume options, triaged exactly as rclone's `serve docker` does (cmd/serve/docker/options.go).

Special keys (`remote`/`fs`, `type`, `path`, `mount-type`, `persist`) are matched on the raw key;
every other key is normalised (lower case, no leading `--`, `_` for `-`) and is a mount
option, a VFS option, or a backend option that must carry the backend's prefix
(`sftp-host`). Anything else is refused, naming the key.

The remote is parsed once, here, into an FsSpec (the volume's backend options merged in);
the driver resolves that against the config and builds the backend from the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .. import backends, flags, parsers
from ..flags import MOUNT_OPTIONS, VOLUME_OPTIONS, OptionValues, normal_key
from ..fs import FsSpec, ResolvedFs
from ..fs import no_effect as backend_no_effect

MOUNT_TYPES = ("mount", "mount2", "cmount")
_MOUNT_NAMES = {o.name for o in MOUNT_OPTIONS}

MAX_VALUE = 65536  # bytes in any option value: longer is no remote, path or setting
PATH_MAX = 4096  # Linux: a local path, its terminating NUL included
NAME_MAX = 255  # Linux: one component of a local path


class OptionError(ValueError):
    pass


@dataclass
class VolumeSpec:
    """Everything a volume's options mean, checked, before anything is created."""

    fs: str  # the raw remote/fs option, '' when type= was used (rclone's state field)
    fs_type: str
    path: str
    options: dict[str, str]  # every other option, original keys (saved in the state file)
    remote: FsSpec  # what the backend is built from: the remote parsed once, backend options merged
    values: OptionValues  # mount + VFS options: plugin defaults overridden per volume
    explicit: frozenset[str] = field(default_factory=frozenset)
    mount_type: str = "mount"
    fs_shown: str = ""  # the remote/fs option as logs show it (its parameters as a {hash})
    resolved: ResolvedFs | None = None  # remote resolved against the config (by the driver)

    @property
    def fs_string(self) -> str:
        """rclone's fs string for the volume, e.g. ":local,case_sensitive='true':/srv"."""
        return self.remote.fs_string

    def no_effect(self) -> list[str]:
        """The options set (here or as plugin-wide defaults) that have no effect yet."""
        out = flags.no_effect(self.values, VOLUME_OPTIONS)
        if self.resolved is not None:
            out += backend_no_effect(self.resolved)
        return out


def no_effect_warning(spec: VolumeSpec) -> str:
    """The one warning for a volume whose options include some without effect ('' if none)."""
    names = spec.no_effect()
    if not names:
        return ""
    verb = "has" if len(names) == 1 else "have"
    return f"{', '.join(names)} {verb} no effect yet in pyclone-docker (accepted as rclone accepts it, ignored)"


def _byte_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def _check_value(key: str, value: str) -> None:
    """No option value holds a NUL (no C string can) or is absurdly long; never echo it."""
    if "\0" in value:
        raise OptionError(f'option "{key}" contains a NUL byte')
    if len(value) > MAX_VALUE // 4 and _byte_len(value) > MAX_VALUE:
        raise OptionError(f'option "{key}" is too long ({_byte_len(value)} bytes, at most {MAX_VALUE})')


def _check_local_path(key: str, path: str) -> None:
    """A local path the kernel can take: PATH_MAX in all, NAME_MAX per component."""
    n = _byte_len(path)
    if n >= PATH_MAX:
        raise OptionError(f'option "{key}": a local path is at most {PATH_MAX - 1} bytes long (PATH_MAX), '
                          f"this one is {n}")
    longest = max((_byte_len(c) for c in path.split("/")), default=0)
    if longest > NAME_MAX:
        raise OptionError(f'option "{key}": a local path component is at most {NAME_MAX} bytes long (NAME_MAX), '
                          f"one is {longest}")


def parse_volume_options(opts: Mapping[str, str] | None, defaults: OptionValues,
                         default_explicit: frozenset[str] = frozenset(),
                         type_of_remote: Callable[[str, dict[str, str]], str | None] | None = None) -> VolumeSpec:
    fs = fs_type = path = ""
    fs_key = "remote"
    have_fs = False
    rest: dict[str, str] = {}
    for key, value in (opts or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise OptionError("volume options must be strings")
        if key == "":
            continue
        _check_value(key, value)
        if key in ("remote", "fs"):
            if have_fs and value != fs:
                raise OptionError('give the remote as either "remote" or "fs", not both')
            fs, have_fs, fs_key = value, True, key
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

    fs_shown = ""
    if have_fs:
        try:
            parsed = FsSpec.parse(fs, type_of_remote)
        except ValueError as e:
            # rclone echoes the string, but a connection string can hold a password: don't
            raise OptionError(f"cannot parse remote/fs: {e}") from None
        name, conn, fs_path, resolved_type = parsed.name, dict(parsed.params), parsed.path, parsed.type_name
        if name and not name.startswith(":") and not resolved_type:
            # a named remote: its type comes from rclone.conf or RCLONE_CONFIG_<NAME>_TYPE
            raise OptionError(f'didn\'t find section in config file ("{name}")')
        fs_shown = parsed.redacted()
    else:
        name, conn, fs_path, resolved_type = ":" + fs_type, {}, "", fs_type
    if path:
        fs_path, fs_key = path, "path"  # rclone: an explicit path overrides the connection string's
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
                values.set(nk, value, as_flag=False)  # a config item: read once (flags.ITEM_PARSERS)
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

    if resolved_type == "local" and (have_fs or path):
        _check_local_path(fs_key, fs_path)
    if not name and conn:
        name = ":local"  # a plain path with local-* options: rclone's ":local,...:path"
    remote = FsSpec(name, conn, fs_path, resolved_type)
    return VolumeSpec(fs=fs if have_fs else "", fs_type=fs_type, path=path, options=rest, remote=remote,
                      values=values, explicit=frozenset(explicit), mount_type=mount_type, fs_shown=fs_shown)


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


def redact_options(opts: Mapping[str, str] | None, fs_shown: str | None = None) -> dict[str, str]:
    """A loggable copy: values of anything that may be a secret are hidden.

    `fs_shown`: the remote/fs option already redacted (VolumeSpec.fs_shown), so it is not parsed again."""
    out = {}
    for key, value in (opts or {}).items():
        nk = normal_key(str(key))
        if nk in VOLUME_OPTIONS or nk in ("type", "path", "mount_type", "persist"):
            out[key] = value
        elif nk in ("remote", "fs"):
            from ..fs import redact

            out[key] = fs_shown if fs_shown is not None and key in ("remote", "fs") else redact(value)
        elif any(h in nk for h in SECRET_HINTS):
            out[key] = "***"
        else:
            out[key] = value
    return out
