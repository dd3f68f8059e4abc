"""The rc methods on a volume's VFS: vfs/list, vfs/forget, vfs/refresh. `fs` names a VFS as
rclone does (vfs/list: the fs.ConfigString of the volume's backend, e.g. `:local:/srv/x`) or, as
an extension, by Docker volume name. With one mounted volume it may be left out; with several
it is required (rclone's error otherwise)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..parsers import go_quote, parse_bool
from ..rc.params import Params, RcError, clean_path, string_value
from ..rc.registry import Call, register
from .vfs import VFS

log = logging.getLogger("pyclone.rc")


@dataclass(frozen=True)
class ActiveVFS:
    """A mounted volume's VFS, as the remote control (rc vfs/...) sees it."""

    volume: str  # the Docker volume name
    name: str  # rclone's name for the VFS: fs.ConfigString of its backend
    vfs: VFS
    spellings: tuple[str, ...] = ()  # the fs strings the volume was created with, also accepted


class Volumes(Protocol):
    """Where the mounted volumes' VFSes are found (the Docker driver)."""

    def active_vfses(self) -> list[ActiveVFS]: ...

    def vfs_by_name(self, name: str) -> list[ActiveVFS]: ...

    def has_volume(self, name: str) -> bool: ...


def forget_plan(params: Params) -> list[tuple[str, bool]]:
    """vfs/forget's parameters (`fs` already taken out): (path, is_dir) for every `file*` and
    `dir*` key, in the order given. Everything is checked before anything is forgotten."""
    plan = []
    for key, value in params.items():
        if key.startswith("file"):
            plan.append((clean_path(key, value), False))
        elif key.startswith("dir"):
            plan.append((clean_path(key, value), True))
        else:
            raise RcError(f"unknown key {go_quote(key)}")
    return plan



def list_names(active: Sequence[ActiveVFS]) -> list[str]:
    """vfs/list's names: the VFS name, or `name[i]` for each of several VFSes sharing one."""
    counts: dict[str, int] = {}
    for a in active:
        counts[a.name] = counts.get(a.name, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for a in active:
        if counts[a.name] == 1:
            names.append(a.name)
        else:
            i = seen.get(a.name, 0)
            seen[a.name] = i + 1
            names.append(f"{a.name}[{i}]")
    return names


def _redact(fs_string: str) -> str:
    from ..fs import redact

    return redact(fs_string)


def get_vfs(driver: Volumes, params: Params) -> ActiveVFS:
    """rclone's getVFS: `fs` picks the VFS (and is taken out of params); without it the only
    active VFS is used."""
    if "fs" not in params:
        active = driver.active_vfses()
        if len(active) == 1:
            return active[0]
        if not active:
            raise RcError('no VFS active and "fs" parameter not supplied')
        raise RcError('more than one VFS active - need "fs" parameter')
    name = params["fs"]
    if not isinstance(name, str):
        raise RcError(f'expecting string value for key "fs" (was {type(name).__name__})', 400)
    matches = driver.vfs_by_name(name)
    if not matches:
        active = driver.active_vfses()
        matches = [a for a, listed in zip(active, list_names(active), strict=True) if listed == name]
    shown = go_quote(_redact(name))
    if not matches:
        hint = " (the volume is not mounted)" if driver.has_volume(name) else ""
        raise RcError(f"no VFS found with name {shown}{hint}")
    if len(matches) > 1:
        raise RcError(f"more than one VFS active with name {shown} (give the Docker volume name instead)")
    del params["fs"]
    return matches[0]


_GET_VFS_HELP = """
This command takes an "fs" parameter: a name from vfs/list, or a Docker volume name. If this
parameter is not supplied and if there is only one VFS in use then that VFS will be used. If
there is more than one VFS in use then the "fs" parameter must be supplied."""


def _vfs_list(driver: Volumes, _params: Params) -> Params:
    active = driver.active_vfses()
    names = list_names(active)
    # "volumes" is ours: which Docker volume each VFS serves
    return {"vfses": names, "volumes": {a.volume: n for a, n in zip(active, names, strict=True)}}


def _vfs_forget(driver: Volumes, params: Params) -> Params:
    target = get_vfs(driver, params)
    if not params:
        target.vfs.forget_all()
        log.info('rc: volume "%s": forgot the whole directory cache', target.volume)
        return {"forgotten": []}
    plan = forget_plan(params)
    for path, is_dir in plan:
        target.vfs.forget_path(path, is_dir)
    log.info('rc: volume "%s": forgot %d path(s)', target.volume, len(plan))
    return {"forgotten": [path for path, _ in plan]}


def _vfs_refresh(driver: Volumes, params: Params) -> Params:
    target = get_vfs(driver, params)
    recursive = False
    if "recursive" in params:
        raw = string_value("recursive", params.pop("recursive"))
        try:
            recursive = parse_bool(raw)
        except ValueError:
            raise RcError(f"invalid value {go_quote('recursive')}={raw}") from None
    wanted: list[tuple[str, str]] = []  # (as given, clean)
    if not params:
        wanted.append(("", ""))
    for key, value in params.items():
        if not key.startswith("dir"):
            raise RcError(f"unknown key {go_quote(key)}")
        wanted.append((string_value(key, value), clean_path(key, value)))
    result = {}
    for given, path in wanted:
        try:
            target.vfs.refresh_dir(path, recursive)
            result[given] = "OK"
        except OSError as e:
            result[given] = (e.strerror or str(e)).lower() if e.errno else str(e)
    return {"result": result}


register(
    Call("vfs/list", _vfs_list, "List active VFSes.", no_auth=True,
         help='This lists the active VFSes (one per mounted volume) under the key "vfses": the names that\n'
              'can be passed to the other VFS commands in the "fs" parameter. "volumes" maps each\n'
              "Docker volume name to its VFS name."),
    Call("vfs/forget", _vfs_forget, "Forget files or directories in the directory cache.",
         help="This forgets the paths in the directory cache causing them to be re-read from the\n"
              "remote when needed. With no paths, the whole directory cache of the VFS is forgotten.\n\n"
              "    rclone rc vfs/forget fs=myvolume file=hello file2=goodbye dir=home/junk\n" + _GET_VFS_HELP,
         slow=True),
    Call("vfs/refresh", _vfs_refresh, "Refresh the directory cache.",
         help="This reads the directories for the specified paths (dir=path, dir2=path...) and\n"
              "freshens the directory cache; with no paths, the root. recursive=true reads the\n"
              "whole tree below them.\n" + _GET_VFS_HELP,
         slow=True),
)
