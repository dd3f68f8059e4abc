"""rclone's fs.Fingerprint: what tells a cached copy from a changed remote object."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ...backends.base import FEATURE_MODTIME, FEATURE_SLOW_HASH, FEATURE_SLOW_MODTIME, Backend, Entry

log = logging.getLogger("pyclone.vfs.cache")


def fingerprint(entry: Entry, backend: Backend, fast: bool, path: str, with_hash: bool = True) -> str:
    """Size, then modtime and hash where the backend has them; --vfs-fast-fingerprint leaves
    out whichever of the two is slow on this backend. May call the backend (the hash)."""
    parts = [str(entry.size)]
    if FEATURE_MODTIME in backend.features and not (fast and FEATURE_SLOW_MODTIME in backend.features):
        secs, ns = divmod(entry.mtime_ns, 10**9)
        stamp = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        frac = f".{ns:09d}".rstrip("0").rstrip(".")
        parts.append(f"{stamp}{frac} +0000 UTC")
    kind = fingerprint_hash(backend, fast) if with_hash else ""
    if kind:
        try:
            parts.append(backend.hash(path, kind))
        except OSError as e:  # as rclone: a hash that can't be had is left out
            log.debug("%s: no %s hash for the fingerprint: %s", path, kind, e)
    return ",".join(parts)


def refingerprint(old: str, entry: Entry, backend: Backend, fast: bool, path: str) -> str:
    """The fingerprint of an object whose times alone we just changed: size and modtime from
    the remote's entry now, the hash carried over (the bytes are the same, and hashing them
    again would read the whole object)."""
    new = fingerprint(entry, backend, fast, path, with_hash=False)
    if fingerprint_hash(backend, fast):
        parts = old.split(",")
        if len(parts) == new.count(",") + 2:  # the old one has a hash (it may have been left out)
            new += "," + parts[-1]
    return new


def fingerprint_hash(backend: Backend, fast: bool) -> str:
    """The hash a fingerprint includes on this backend ("" for none): rclone's Hashes().GetOne()."""
    if not backend.hashes or (fast and FEATURE_SLOW_HASH in backend.features):
        return ""
    return backend.hashes[0]


def new_hash(kind: str):
    import hashlib  # lazily: OpenSSL costs ~4 MB of RSS, and mode off never needs it

    return hashlib.new(kind, usedforsecurity=False)
