"""The `alias` backend: another remote (or local path) under a new name."""

from __future__ import annotations

from .base import BackendOption

OPTIONS = (BackendOption("remote", "string", "", required=True),)


def make_alias(new_fs, name: str, root: str, config: dict[str, str]):
    """Resolve `remote` joined with `root` through the same factory the plugin uses."""
    target = config.get("remote", "")
    if not target:
        raise ValueError('alias: option "remote" is required')
    if root:
        sep = "" if target.endswith((":", "/")) else "/"
        target = target + sep + root.lstrip("/")
    return new_fs(target)
