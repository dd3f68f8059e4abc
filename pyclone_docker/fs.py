"""Turn an rclone fs string (`remote:path`, `:local,opt=v:/dir`, `/dir`) into a Backend."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import backends, fspath, obscure, rcconfig
from .backends.alias import make_alias
from .backends.base import Backend, BackendInfo

# alias chains deeper than this are a loop
_MAX_DEPTH = 8


@dataclass
class FsContext:
    """Where backend option values come from, besides the fs string itself."""

    config: rcconfig.RcloneConfig | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # backend flags given on the command line, keyed like "sftp-host"
    cli_flags: Mapping[str, str] = field(default_factory=dict)
    # relative local paths are taken from here (libfuse3 changes the process cwd to /)
    cwd: str = field(default_factory=os.getcwd)


@dataclass(frozen=True)
class ResolvedFs:
    """What a fs string means, before any connection is made."""

    type_name: str
    name: str  # rclone Fs name: "local", ":sftp", "myremote", with {hash} if overridden
    root: str
    options: dict[str, str]
    info: BackendInfo


def resolve(fs_string: str, ctx: FsContext) -> ResolvedFs:
    """Parse and look up every option; raises ValueError with an rclone-style message."""
    parsed = fspath.parse(fs_string)
    if parsed.is_local:
        root = os.path.join(ctx.cwd, parsed.path)
        info = backends.find("local")
        return ResolvedFs("local", "local", root, _collect(info, "", "local", {}, ctx), info)
    remote = parsed.name
    if remote.startswith(":"):
        type_name, remote = remote[1:], ""
    else:
        type_name = rcconfig.remote_type(remote, conn_params=parsed.config, env=ctx.env, config=ctx.config) or ""
        if not type_name:
            raise ValueError(f'didn\'t find section in config file ("{remote}")')
    info = backends.find(type_name)
    for key in parsed.config:
        if key != "type" and info.option(key) is None:
            raise ValueError(f'unknown option "{key}" for backend "{type_name}"')
    options = _collect(info, remote, type_name, parsed.config, ctx)
    overridden = {k: v for k, v in parsed.config.items() if k != "type"}
    name = remote or ":" + type_name
    if overridden:
        name += fspath.override_suffix(overridden)
    if info.factory is None and type_name != "alias":
        raise ValueError(f'backend "{type_name}" is not available in this pyclone-docker version yet')
    root = parsed.path
    if type_name == "local":
        root = os.path.join(ctx.cwd, root)
    return ResolvedFs(type_name, name, root, options, info)


def _collect(info: BackendInfo, remote: str, type_name: str, conn: Mapping[str, str],
             ctx: FsContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in info.options:
        value = rcconfig.lookup_option(remote, type_name, opt.name, conn_params=conn,
                                       cli_flags=ctx.cli_flags, env=ctx.env, config=ctx.config)
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


def new_fs(fs_string: str, ctx: FsContext, _depth: int = 0) -> Backend:
    """Resolve and construct the backend; network backends connect here."""
    if _depth > _MAX_DEPTH:
        raise ValueError("alias remotes nest too deeply (a loop?)")
    r = resolve(fs_string, ctx)
    if r.type_name == "alias":
        return make_alias(lambda s: new_fs(s, ctx, _depth + 1), r.name, r.root, r.options)
    if r.info.factory is None:
        raise ValueError(f'backend "{r.type_name}" is not available in this pyclone-docker version yet')
    return r.info.factory(r.name, r.root, r.options)


def redact(fs_string: str) -> str:
    """A printable form of a fs string: parameters become a {hash}, as rclone's device names do."""
    try:
        parsed = fspath.parse(fs_string)
    except ValueError:
        return "<unparsable fs string>"
    if parsed.is_local or not parsed.config:
        return fs_string
    return f"{parsed.name}{fspath.override_suffix(parsed.config)}:{parsed.path}"
