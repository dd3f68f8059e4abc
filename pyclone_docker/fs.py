"""From an rclone fs string (`remote:path`, `:local,opt=v:/dir`, `/dir`) to a Backend, in one pass.

- FsSpec: the string parsed once, a volume's backend options merged in, its type known;
- resolve(): every option's value from the sources rclone reads (connection string, backend
  flags, environment, rclone.conf), checked and typed the way the backend will read them;
- new_fs(): the backend built from that. A wrapping backend (alias; crypt later) gets a
  callback that opens its inner remote the same way, with a guard against loops.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import backends, flags, fspath, obscure, rcconfig
from .backends.base import Backend, BackendContext, BackendInfo

# remotes that open remotes (alias, crypt) nest no deeper than this: deeper is a loop
_MAX_DEPTH = 8

TypeOfRemote = Callable[[str, dict[str, str]], "str | None"]


@dataclass
class FsContext:
    """Where backend option values come from, besides the fs string itself."""

    config: rcconfig.RcloneConfig | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # backend flags given on the command line, keyed like "sftp-host"
    cli_flags: Mapping[str, str] = field(default_factory=dict)
    # relative local paths are taken from here (libfuse3 changes the process cwd to /)
    cwd: str = field(default_factory=os.getcwd)
    # the global flags that belong to backends (--timeout, --contimeout, ...)
    backend: BackendContext = field(default_factory=BackendContext)

    def type_of_remote(self, name: str, conn: dict[str, str]) -> str | None:
        """A named remote's type: connection string, then environment, then rclone.conf."""
        return rcconfig.remote_type(name, conn_params=conn, env=self.env, config=self.config)

    def named_types(self) -> set[str]:
        """The backend types of the remotes rclone.conf and RCLONE_CONFIG_<NAME>_TYPE define."""
        names = {k[len("RCLONE_CONFIG_"):-len("_TYPE")].lower() for k in self.env
                 if k.startswith("RCLONE_CONFIG_") and k.endswith("_TYPE") and len(k) > 19}
        if self.config is not None:
            names.update(self.config.sections())
        types = set()
        for name in names:
            try:
                t = self.type_of_remote(name, {})
            except ValueError:  # a broken section: its volume's Create will say so
                continue
            if t:
                types.add(t)
        return types


@dataclass(frozen=True)
class FsSpec:
    """A parsed fs string: what to build, before any option is looked up.

    name is ":type" for an on-the-fly backend, a remote's name, or "" for a plain local path;
    params are the connection string's (and the volume's backend options); type_name is the
    backend type, looked up for a named remote ("" when it has none).
    """

    name: str
    params: dict[str, str] = field(default_factory=dict, repr=False)  # may hold (obscured) passwords
    path: str = ""
    type_name: str = ""

    @classmethod
    def parse(cls, fs_string: str, type_of_remote: TypeOfRemote | None = None) -> FsSpec:
        """The one parse of a fs string (fspath.parse's errors)."""
        parsed = fspath.parse(fs_string)
        if parsed.is_local:
            return cls("", {}, parsed.path, "local")
        conn = dict(parsed.config)
        if parsed.name.startswith(":"):
            return cls(parsed.name, conn, parsed.path, parsed.name[1:])
        type_name = type_of_remote(parsed.name, conn) if type_of_remote is not None else None
        return cls(parsed.name, conn, parsed.path, type_name or "")

    @property
    def fs_string(self) -> str:
        """The fs string this spec stands for (fspath.parse reads it back as this spec)."""
        if not self.name:
            return self.path or "/"
        return fspath.make_fs_string(self.name, self.params, self.path)

    def redacted(self) -> str:
        """A printable form: parameters become a {hash}, as rclone's device names do."""
        if not self.name or not self.params:
            return self.fs_string
        return f"{self.name}{fspath.override_suffix(self.params)}:{self.path}"


@dataclass(frozen=True)
class ResolvedFs:
    """What a fs string means, before any connection is made."""

    type_name: str
    name: str  # rclone Fs name: "local", ":sftp", "myremote", with {hash} if overridden
    root: str
    options: dict[str, str] = field(repr=False)  # revealed passwords: never in a repr
    info: BackendInfo = field(repr=False)
    display: str = ""  # the fs string as logs and device names show it (FsSpec.redacted)
    context: BackendContext = field(default_factory=BackendContext, repr=False)


def resolve(fs: str | FsSpec, ctx: FsContext, values: Any = None) -> ResolvedFs:
    """Look up and check every option; raises ValueError with an rclone-style message.

    `values`: the volume's mount and VFS options, for the backend context's per-volume fields."""
    spec = fs if isinstance(fs, FsSpec) else FsSpec.parse(fs, ctx.type_of_remote)
    context = ctx.backend if values is None else ctx.backend.for_volume(values)
    if not spec.name:  # a plain local path
        info = backends.find("local")
        options = _collect(info, "", "local", {}, ctx)
        _check_values(info, options)
        return ResolvedFs("local", "local", os.path.join(ctx.cwd, spec.path), options, info, spec.redacted(),
                          context)
    remote = spec.name
    if remote.startswith(":"):
        type_name, remote = remote[1:], ""
    else:
        type_name = spec.type_name
        if not type_name:
            raise ValueError(f'didn\'t find section in config file ("{remote}")')
    info = backends.find(type_name)
    for key in spec.params:
        if key != "type" and info.option(key) is None:
            raise ValueError(f'unknown option "{key}" for backend "{type_name}"')
    options = _collect(info, remote, type_name, spec.params, ctx)
    overridden = {k: v for k, v in spec.params.items() if k != "type"}
    name = remote or ":" + type_name
    if overridden:
        name += fspath.override_suffix(overridden)
    if info.factory is None:
        raise ValueError(f'backend "{type_name}" is not available in this pyclone-docker version yet')
    _check_values(info, options)
    if info.precheck is not None:
        info.precheck(options)
    root = spec.path
    if type_name == "local":
        root = os.path.join(ctx.cwd, root)
    return ResolvedFs(type_name, name, root, options, info, spec.redacted(), context)


def _collect(info: BackendInfo, remote: str, type_name: str, conn: Mapping[str, str],
             ctx: FsContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in info.options:
        value = rcconfig.lookup_option(remote, type_name, opt.name, conn_params=conn,
                                       cli_flags=ctx.cli_flags, env=ctx.env, config=ctx.config,
                                       is_default=opt.means_default)
        if value is None or value == "":
            continue
        if opt.is_password:
            try:
                value = obscure.reveal(value)
            except ValueError as e:
                # never echo the value itself: it is a secret
                raise ValueError(f"{type_name}: couldn't decrypt {opt.name}: {e}") from None
        out[opt.name] = value
    return out


def _check_values(info: BackendInfo, options: Mapping[str, str]) -> None:
    """Every value parses as its option's type (what the backend does when it is built)."""
    for name, value in options.items():
        opt = info.option(name)
        if opt is not None and not opt.is_password:
            try:
                opt.parse(value)
            except ValueError as e:
                raise ValueError(f"{info.type_name}: {e}") from None


def new_fs(fs: str | FsSpec | ResolvedFs, ctx: FsContext, _depth: int = 0) -> Backend:
    """Resolve (unless given resolved) and construct the backend; network backends connect here."""
    if _depth > _MAX_DEPTH:
        raise ValueError("alias remotes nest too deeply (a loop?)")
    r = fs if isinstance(fs, ResolvedFs) else resolve(fs, ctx)
    if r.info.factory is None:
        raise ValueError(f'backend "{r.type_name}" is not available in this pyclone-docker version yet')
    if r.info.wraps:
        inner_ctx = ctx if r.context is ctx.backend else replace(ctx, backend=r.context)

        def open_inner(inner: str) -> Backend:  # the inner remote sees this volume's context too
            return new_fs(inner, inner_ctx, _depth + 1)

        return r.info.factory(r.name, r.root, r.options, r.context, open_inner)
    return r.info.factory(r.name, r.root, r.options, r.context)


def redact(fs: str | FsSpec) -> str:
    """A printable form of a fs string: parameters become a {hash}, as rclone's device names do."""
    if isinstance(fs, FsSpec):
        return fs.redacted()
    try:
        parsed = fspath.parse(fs)
    except ValueError:
        return "<unparsable fs string>"
    if parsed.is_local or not parsed.config:
        return fs
    return f"{parsed.name}{fspath.override_suffix(parsed.config)}:{parsed.path}"


def no_effect(r: ResolvedFs) -> list[str]:
    """The resolved backend options that have no effect yet, as flags (`--local-links`)."""
    return [f"--{r.type_name}-{name.replace('_', '-')}" for name in r.info.no_effect(r.options)]


def no_effect_flags(values: Any, backend_flags: Mapping[str, str]) -> list[str]:
    """The command-line (and RCLONE_*) flags set to something that has no effect yet."""
    out = flags.no_effect(values, flags.ALL_OPTIONS)
    for flag, value in backend_flags.items():
        found = backends.backend_option(flag)
        if found is not None and found[1].noop and value != "":
            try:
                differs = found[1].parse(value) != found[1].parse("")
            except ValueError:
                continue  # refused where it is used
            if differs:
                out.append("--" + flag)
    return out
