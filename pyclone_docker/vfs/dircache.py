"""In-memory directory cache, as rclone's VFS keeps one: entries live for --dir-cache-time.

Changes made through the mount update the cache at once; changes made elsewhere show
up when a directory's listing expires, when the backend reports them, on SIGHUP (every
volume) or on `rc vfs/forget` (one volume, one path).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..backends.base import Entry


def parent_of(path: str) -> tuple[str, str]:
    """'a/b/c' -> ('a/b', 'c'); 'c' -> ('', 'c')."""
    head, _, tail = path.rpartition("/")
    return head, tail


class _Listing:
    __slots__ = ("expires", "children")

    def __init__(self, expires: float, children: dict[str, Entry]) -> None:
        self.expires = expires
        self.children = children


class DirCache:
    def __init__(self, lister: Callable[[str], list[Entry]], ttl: float) -> None:
        self._lister = lister
        self._ttl = ttl
        self._dirs: dict[str, _Listing] = {}
        # serialises listing fills so that N concurrent lookups list a directory once
        self._fill_lock = threading.Lock()

    def _fresh(self, path: str) -> _Listing | None:
        listing = self._dirs.get(path)
        if listing is not None and listing.expires > time.monotonic():
            return listing
        return None

    def children(self, path: str) -> dict[str, Entry]:
        """The entries of a directory, listing it from the backend when not cached."""
        listing = self._fresh(path)
        if listing is None:
            with self._fill_lock:
                listing = self._fresh(path)
                if listing is None:
                    entries = self._lister(path)
                    listing = _Listing(time.monotonic() + self._ttl, {e.name: e for e in entries})
                    if self._ttl > 0:
                        self._dirs[path] = listing
        return listing.children

    def cached_entry(self, path: str) -> tuple[bool, Entry | None]:
        """(known, entry): known is False when the parent is not cached."""
        head, tail = parent_of(path)
        listing = self._fresh(head)
        if listing is None:
            return False, None
        return True, listing.children.get(tail)

    def put(self, path: str, entry: Entry) -> None:
        head, tail = parent_of(path)
        listing = self._dirs.get(head)
        if listing is not None:
            entry.name = tail
            listing.children[tail] = entry

    def remove(self, path: str) -> None:
        head, tail = parent_of(path)
        listing = self._dirs.get(head)
        if listing is not None:
            listing.children.pop(tail, None)
        self.forget_tree(path)

    def forget_tree(self, path: str) -> None:
        """Drop a directory's listing and those of everything below it."""
        self._dirs.pop(path, None)
        prefix = path + "/" if path else ""
        # list() first: FUSE threads may add listings while this runs on another thread
        for key in [k for k in list(self._dirs) if k.startswith(prefix) and k]:
            self._dirs.pop(key, None)

    def forget_all(self) -> None:
        self._dirs.clear()

    def forget_path(self, path: str, is_dir: bool) -> None:
        """rclone's Dir.ForgetPath (rc vfs/forget): the parent's listing is dropped, so the next
        lookup of the name goes to the backend; a directory also loses its own subtree.

        Waits for a listing being filled: one read before this call must not be stored after it.
        """
        with self._fill_lock:
            if path:
                self._dirs.pop(parent_of(path)[0], None)
            if is_dir:
                self.forget_tree(path)

    def refill(self, path: str) -> dict[str, Entry]:
        """List a directory from the backend now, whatever the age of its cached listing."""
        with self._fill_lock:
            entries = self._lister(path)
            listing = _Listing(time.monotonic() + self._ttl, {e.name: e for e in entries})
            if self._ttl > 0:
                self._dirs[path] = listing
        return listing.children

    def __len__(self) -> int:
        return len(self._dirs)
