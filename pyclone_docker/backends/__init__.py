"""Backend registry: rclone type names to the module that declares each one.

Each backend module declares its own options and factory as `INFO` (a BackendInfo). A module
is imported only when its type is first used (a volume, a `--<type>-<option>` flag), so the
plugin never pays in start-up time or RSS for backends no volume uses. Backends that are
planned but not built yet declare their options with `factory=None`: a volume using them
fails with a clear "not available yet" rather than "unknown backend".
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BackendInfo, BackendOption

__all__ = ["NAMES", "REGISTRY", "backend_option", "find", "warm_up"]

# type name -> module (in this package) holding its INFO
_MODULES = {
    "local": "local",
    "alias": "alias",
    "sftp": "sftp",
    "s3": "s3",
    "webdav": "webdav",
    "http": "http",
    "ftp": "ftp",
    "crypt": "crypt",
    "chunker": "chunker",
}
NAMES: tuple[str, ...] = tuple(_MODULES)


def find(type_name: str) -> BackendInfo:
    """The backend of that rclone type (importing its module the first time)."""
    module = _MODULES.get(type_name)
    if module is None:
        raise ValueError(f'didn\'t find backend called "{type_name}"')
    return importlib.import_module(f"{__name__}.{module}").INFO


def warm_up(type_names: Iterator[str] | list[str] | set[str]) -> list[str]:
    """Import the backends of these types and what their first connection needs (unknown
    names are skipped): called off the request path. The types warmed, in order."""
    done = []
    for type_name in sorted(set(type_names)):
        if type_name not in _MODULES:
            continue
        info = find(type_name)
        try:  # a package backend's Backend class lives in its `backend` module
            importlib.import_module(f"{__name__}.{_MODULES[type_name]}.backend")
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith(f"{__name__}.{_MODULES[type_name]}"):
                raise
        if info.warm_up is not None:
            info.warm_up()
        done.append(type_name)
    return done


def backend_option(flag: str) -> tuple[str, BackendOption] | None:
    """`sftp-host` -> ("sftp", its option) when it names a backend option, else None.

    Only a backend whose type name prefixes the flag is imported."""
    for type_name in NAMES:
        prefix = type_name + "-"
        if flag.startswith(prefix):
            opt = find(type_name).option(flag[len(prefix):].replace("-", "_"))
            if opt is not None:
                return type_name, opt
    return None


class _Registry(Mapping[str, "BackendInfo"]):
    """Type name -> BackendInfo, importing a backend's module only when it is looked up."""

    def __getitem__(self, type_name: str) -> BackendInfo:
        try:
            return find(type_name)
        except ValueError:
            raise KeyError(type_name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


REGISTRY: Mapping[str, BackendInfo] = _Registry()
