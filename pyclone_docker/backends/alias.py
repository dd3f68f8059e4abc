"""The `alias` backend: another remote (or local path) under a new name.

As rclone's, it wraps nothing at run time: its factory opens the target remote with the
alias's root joined on, and that backend is the volume's.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Backend, BackendContext, BackendInfo, BackendOption

OPTIONS = (
    BackendOption("remote", "string", "", required=True),
    BackendOption("description", "string", ""),
)


def target(root: str, options: dict[str, str]) -> str:
    """The fs string the alias stands for: `remote` with `root` joined on."""
    remote = options.get("remote", "")
    if not remote:
        raise ValueError('alias: option "remote" is required')
    if root:
        sep = "" if remote.endswith((":", "/")) else "/"
        remote = remote + sep + root.lstrip("/")
    return remote


def open_alias(name: str, root: str, options: dict[str, str], ctx: BackendContext | None,
               open_inner: Callable[[str], Backend]) -> Backend:
    return open_inner(target(root, options))


INFO = BackendInfo("alias", open_alias, OPTIONS, "Alias for an existing remote", wraps=True)
