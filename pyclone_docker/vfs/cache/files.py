"""The cache's files on disk: layout, metadata encoding and writes, directory bookkeeping.

Per volume, so two volumes never collide:

    <cache-dir>/vfs/<volume>/<path>       data (sparse, 0600)
    <cache-dir>/vfsMeta/<volume>/<path>   metadata (rclone's vfsMeta JSON)
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from ...lib.atomic import TEMP_NAME, atomic_write
from ...lib.timefmt import format_created, parse_created
from .ranges import RangeSet

log = logging.getLogger("pyclone.vfs.cache")

DATA_DIR = "vfs"
META_DIR = "vfsMeta"
REMOVED_DIR = "removed"  # a removed volume's changes never uploaded are kept here
SPARSE_PROBE = ".sparse-check-"


def volume_roots(cache_dir: str, volume: str) -> tuple[str, str]:
    """The data and metadata roots of one volume's cache."""
    return os.path.join(cache_dir, DATA_DIR, volume), os.path.join(cache_dir, META_DIR, volume)


# --- metadata ------------------------------------------------------------------------------

def encode_meta(modtime_ns: int, atime_ns: int, size: int, ranges: RangeSet, fp: str, dirty: bool) -> bytes:
    meta = {
        "ModTime": format_created(modtime_ns),
        "ATime": format_created(atime_ns),
        "Size": size,
        "Rs": ranges.to_rclone(),
        "Fingerprint": fp,
        "Dirty": dirty,
    }
    return (json.dumps(meta, indent="\t") + "\n").encode()


def read_meta(path: str) -> dict[str, Any]:
    """A metadata file as plain values (ModTime/ATime in ns, Rs as a RangeSet). Raises
    OSError, or ValueError/KeyError/TypeError for a file that cannot be parsed."""
    with open(path, "rb") as f:
        meta = json.load(f)
    return {
        "ModTime": parse_created(meta["ModTime"]),
        "ATime": parse_created(meta["ATime"]),
        "Size": int(meta["Size"]),
        "Rs": RangeSet.from_rclone(meta.get("Rs")),
        "Fingerprint": meta.get("Fingerprint") or "",
        "Dirty": bool(meta.get("Dirty")),
    }


def write_meta(path: str, data: bytes, *, exists: bool, in_place: bool, sync: bool) -> None:
    """Save a metadata file: created with one write if there was none (`exists` False),
    rewritten in place where a torn file loses nothing (`in_place`: a clean item, whose data
    is on the remote), else atomically (a Dirty record must be whole after any kill)."""
    if not exists:
        _write_new(path, data)
    elif in_place and not sync:
        _overwrite(path, data)
    else:
        atomic_write(path, data, mode=0o600, sync=sync)


def _write_new(path: str, data: bytes) -> None:
    """A first save needs no temp file and rename: there is nothing to replace, and one
    small write is whole after a killed process. Saves one file creation per cached file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        atomic_write(path, data, mode=0o600, sync=False)
        return
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _overwrite(path: str, data: bytes) -> None:
    """A clean item's metadata is rewritten in place: torn by a killed process, it fails to
    load and the item is dropped and fetched again, which loses nothing (its data is on the
    remote). Saves a file creation and a rename per upload. No O_TRUNC: ext4 would start
    writeback at close for a file truncated to zero (auto_da_alloc)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        pwrite_all(fd, memoryview(data), 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


# --- data ----------------------------------------------------------------------------------

def pwrite_all(fd: int, view: memoryview, offset: int) -> int:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def check_sparse(directory: str) -> bool:
    """rclone logs an ERROR when the cache filesystem cannot hold sparse files."""
    probe = os.path.join(directory, f"{SPARSE_PROBE}{os.getpid()}")
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, 16 << 20)
            sparse = os.fstat(fd).st_blocks * 512 < (16 << 20)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        log.error("cache dir %s is not usable: %s", directory, e)
        return False
    if not sparse:
        log.error("cache dir %s does not support sparse files: the cache will perform very badly", directory)
    return sparse


def walk(root: str) -> list[str]:
    """Every cached file's relative path under `root`, sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(SPARSE_PROBE) or TEMP_NAME.match(name):
                continue  # our own probes and half-written metadata
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


# --- directories -----------------------------------------------------------------------------

class Dirs:
    """The cache directories one Cache made or found, so that each cached file costs no stat
    per directory level. One per Cache: a removed volume's tree never leaves a stale entry for
    the next volume of that name. Making, pruning and the memo change under one lock."""

    def __init__(self) -> None:
        self._made: set[str] = set()
        self._lock = threading.Lock()

    def make(self, path: str) -> None:
        if path in self._made:  # a set lookup is atomic: the hot path takes no lock
            return
        with self._lock:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self._made.add(path)

    def forget(self, path: str) -> None:
        """`path` and everything below it may be gone (removed from outside the memo)."""
        prefix = path + os.sep
        with self._lock:
            self._made = {d for d in self._made if d != path and not d.startswith(prefix)}

    def prune(self, path: str) -> None:
        """Remove the empty directories of the tree at `path` (files keep theirs)."""
        with self._lock:
            if not os.path.isdir(path) or os.path.islink(path):
                return
            for dirpath, _dirs, _files in os.walk(path, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    continue  # not empty: a cached file still lives there
            prefix = path + os.sep
            self._made = {d for d in self._made if d != path and not d.startswith(prefix)}

    def move_files(self, pairs: list[tuple[str, str]]) -> None:
        """os.replace each (src, dst) that exists; on a failure, put back what was moved."""
        done: list[tuple[str, str]] = []
        try:
            for a, b in pairs:
                if os.path.exists(a):
                    self.make(os.path.dirname(b))
                    os.replace(a, b)
                    done.append((a, b))
        except OSError:
            for a, b in reversed(done):
                os.replace(b, a)
            raise
