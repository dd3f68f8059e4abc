"""What the parts of the cache need from the Cache that owns them (registry.py is it): typed
interfaces, so that item, kernel and write-back never import the registry above them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ...backends.base import Backend
from .files import Dirs


class Scheduler(Protocol):
    def schedule(self, path: str, delay: float | None = None) -> None: ...


class ItemOwner(Protocol):
    """The Cache as its items see it."""

    backend: Backend
    data_root: str
    meta_root: str
    dirs: Dirs
    fast_fingerprint: bool
    read_ahead: int
    sequential_window: int
    full_warned: bool
    writeback: Scheduler

    def kick_cleaner(self) -> None: ...

    def free_space(self) -> int: ...

    def has_room(self) -> bool: ...

    def watch(self, item: Any, on: bool = True) -> None: ...


class QueueOwner(Protocol):
    """The Cache as the write-back queue sees it."""

    backend: Backend
    volume: str  # its name, for log lines
    fast_fingerprint: bool
    set_modtime: bool

    def peek(self, path: str) -> Any: ...

    def all_items(self) -> Iterable[Any]: ...
