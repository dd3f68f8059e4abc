"""FIFOs, unix sockets and device nodes of a mount, kept in memory while it is mounted.

The kernel implements all of them: a FIFO's data and a socket's connections never reach
the filesystem, which only keeps the name and attributes. No remote can store them, so
they live here and vanish at unmount, like the pipes and sockets themselves. This is what
makes `mkfifo`, `mknod` and `bind()` of a unix socket work in a volume (two containers
sharing a socket through it, a daemon putting its socket beside its data). rclone's mount
answers EIO to them and leaves a regular file of that name behind.
"""

from __future__ import annotations

import dataclasses
import threading

from ..backends.base import Entry


class SpecialNodes:
    """Special files by path ('a/b'), each an Entry with `special` set (its S_IFMT bits)."""

    def __init__(self) -> None:
        self._nodes: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._nodes)

    def get(self, path: str) -> Entry | None:
        return self._nodes.get(path)

    def add(self, path: str, entry: Entry) -> None:
        with self._lock:
            self._nodes[path] = entry

    def remove(self, path: str) -> Entry | None:
        with self._lock:
            return self._nodes.pop(path, None)

    def children(self, directory: str) -> list[Entry]:
        """Copies of the nodes directly in `directory`, named as a listing names them."""
        prefix = directory + "/" if directory else ""
        with self._lock:
            return [dataclasses.replace(e, name=p[len(prefix):]) for p, e in self._nodes.items()
                    if p.startswith(prefix) and "/" not in p[len(prefix):]]

    def has_under(self, directory: str) -> bool:
        prefix = directory + "/"
        with self._lock:
            return any(p.startswith(prefix) for p in self._nodes)

    def move(self, src: str, dst: str) -> None:
        """A node renamed, or every node below a renamed directory."""
        with self._lock:
            node = self._nodes.pop(src, None)
            if node is not None:
                self._nodes[dst] = node
            prefix = src + "/"
            for path in [p for p in self._nodes if p.startswith(prefix)]:
                self._nodes[dst + "/" + path[len(prefix):]] = self._nodes.pop(path)
