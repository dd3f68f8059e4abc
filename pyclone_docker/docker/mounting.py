"""Building what serves a mounted volume: its backend's root, its VFS and disk cache. The VFS
layer loads here, at the first mount, not at start-up."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..backends.base import Backend
from .options import VolumeSpec

if TYPE_CHECKING:
    from ..vfs.vfs import VFS


def build_vfs(name: str, backend: Backend, spec: VolumeSpec, cache_dir: str, transfers: int,
              buffer_size: int) -> VFS:
    """The volume's VFS, with its disk cache (started: an earlier run's uploads resume) unless
    --vfs-cache-mode is off."""
    from ..vfs.cache import Cache  # the VFS layer loads at the first mount, not at start-up
    from ..vfs.vfs import VFS

    v = spec.values
    if v.vfs_cache_mode == "off":
        return VFS(backend, v, spec.explicit, buffer_size=buffer_size)
    holder: list[VFS] = []
    cache = Cache(backend, cache_dir, name, read_ahead=int(v.vfs_read_ahead), buffer_size=buffer_size,
                  write_back=float(v.vfs_write_back), transfers=transfers,
                  max_age=float(v.vfs_cache_max_age), max_size=int(v.vfs_cache_max_size),
                  poll_interval=float(v.vfs_cache_poll_interval) or 60.0,
                  fast_fingerprint=bool(v.vfs_fast_fingerprint), set_modtime=not v.no_modtime,
                  on_uploaded=lambda path, entry: holder[0].uploaded(path, entry) if holder else None)
    vfs = VFS(backend, v, spec.explicit, cache=cache, buffer_size=buffer_size)
    holder.append(vfs)
    cache.start()
    return vfs


def ensure_root(backend: Backend) -> None:
    """The volume's root must be a directory; a missing one is created, as a local mkdir -p."""
    try:
        root = backend.stat("")
    except FileNotFoundError:
        if backend.type_name == "local":
            os.makedirs(backend.root, exist_ok=True)
        else:
            backend.mkdir("")
        return
    if not root.is_dir:
        raise ValueError(f"{backend.root} is a file, not a directory")

