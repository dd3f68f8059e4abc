"""Directories on a backend that cannot hold empty ones, through a real FUSE mount.

An in-process mount (FuseMount over FuseOps over a VFS) of tests/support/flatstore.py, an
object store over a local directory: `mkdir` stores nothing there, and a directory exists
only while an object lies below it. The VFS keeps the directories made through the mount
(vfs/virtualdirs.py), as rclone's VFS keeps its "virtual" entries. --dir-cache-time is
0.1 s, so that the listings really expire between the steps (each step that needs an
expiry sleeps past it first).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse.mount import FuseMount
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.cache import Cache
from pyclone_docker.vfs.vfs import VFS
from tests.support.flatstore import FlatStore

from .test_cache_modes import wait_for

DIR_CACHE_TIME = 0.1


def expire() -> None:
    """Let every cached listing of the VFS expire."""
    time.sleep(3 * DIR_CACHE_TIME)


@dataclass
class Mounted:
    mp: Path
    vfs: VFS
    store: FlatStore

    def disk(self) -> list[str]:
        """Everything stored on the flat store's disk, as relative paths."""
        root = Path(self.store.disk(""))
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@contextlib.contextmanager
def mounted(tmp_path: Path, mode: str, *, attr_timeout: float = 0.0, write_back: float = 3600.0) -> Iterator[Mounted]:
    remote, mp, cache_dir = tmp_path / "remote", tmp_path / "mnt", tmp_path / "cache"
    for d in (remote, mp, cache_dir):
        d.mkdir()
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.set("vfs_cache_mode", mode)
    values.set("dir_cache_time", f"{DIR_CACHE_TIME}s")
    values.set("attr_timeout", f"{attr_timeout}s")
    store = FlatStore(LocalBackend("local", str(remote), {}))
    holder: list[VFS] = []
    cache = None
    if mode != "off":
        cache = Cache(store, str(cache_dir), "virt", write_back=write_back,
                      on_uploaded=lambda path, entry: holder[0].uploaded(path, entry) if holder else None)
        cache.start()
    vfs = VFS(store, values, cache=cache)
    holder.append(vfs)
    mount = FuseMount(str(mp), FuseOps(vfs), values, "virt")
    mount.start()
    try:
        yield Mounted(mp, vfs, store)
    finally:
        mount.unmount()
        if cache is not None:
            cache.shutdown(1)


def errno_of(fn: Callable[..., object], *args: object) -> int | None:
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


MODES = ["off", "writes"]


@pytest.mark.parametrize("mode", MODES)
def test_a_tree_made_here_outlives_its_listings(tmp_path: Path, mode: str) -> None:
    with mounted(tmp_path, mode) as m:
        os.makedirs(m.mp / "a" / "b" / "c")
        assert m.disk() == []  # nothing stored for an empty directory
        expire()
        assert os.listdir(m.mp) == ["a"]
        assert os.listdir(m.mp / "a") == ["b"] and os.listdir(m.mp / "a" / "b") == ["c"]
        assert os.listdir(m.mp / "a" / "b" / "c") == []
        expire()
        assert os.stat(m.mp / "a" / "b" / "c").st_mode & 0o170000 == 0o040000
        os.mkdir(m.mp / "a" / "b" / "c" / "d")
        assert errno_of(os.mkdir, m.mp / "a" / "b") == errno.EEXIST
        expire()
        assert os.listdir(m.mp / "a" / "b" / "c") == ["d"]
        assert errno_of(os.rmdir, m.mp / "a" / "b") == errno.ENOTEMPTY
        for d in ("a/b/c/d", "a/b/c", "a/b", "a"):
            os.rmdir(m.mp / d)
        expire()
        assert os.listdir(m.mp) == [] and not m.vfs.virtuals and m.disk() == []
        assert errno_of(os.stat, m.mp / "a") == errno.ENOENT


@pytest.mark.parametrize("mode", MODES)
def test_a_virtual_directory_outlives_its_only_file(tmp_path: Path, mode: str) -> None:
    # a long attr-timeout: the kernel keeps its entries, so no lookup lists a/b (which would
    # show c for real while f is on the store) between the create and the unlink
    with mounted(tmp_path, mode, attr_timeout=30) as m:
        os.makedirs(m.mp / "a" / "b" / "c")
        expire()
        (m.mp / "a" / "b" / "c" / "f").write_bytes(b"x")
        if mode == "off":
            assert m.disk() == ["a", "a/b", "a/b/c", "a/b/c/f"]  # uploaded at the close
        assert "a/b/c" in m.vfs.virtuals
        os.unlink(m.mp / "a" / "b" / "c" / "f")
        assert m.disk() == []
        expire()
        assert os.listdir(m.mp / "a" / "b") == ["c"] and os.listdir(m.mp / "a" / "b" / "c") == []
        os.rmdir(m.mp / "a" / "b" / "c")
        assert os.listdir(m.mp / "a" / "b") == []


@pytest.mark.parametrize("mode", MODES)
def test_a_directory_listed_for_real_lives_with_its_objects(tmp_path: Path, mode: str) -> None:
    with mounted(tmp_path, mode, write_back=0.1) as m:
        os.mkdir(m.mp / "d")
        (m.mp / "d" / "f").write_bytes(b"x\n")
        assert wait_for(lambda: m.disk() == ["d", "d/f"])  # uploaded
        expire()
        assert os.listdir(m.mp) == ["d"] and "d" not in m.vfs.virtuals  # real now
        assert (m.mp / "d" / "f").read_bytes() == b"x\n"
        os.unlink(m.mp / "d" / "f")
        expire()
        assert os.listdir(m.mp) == []  # gone with its last object, as rclone accepts


def test_rmdir_of_a_directory_with_a_pending_upload(tmp_path: Path) -> None:
    with mounted(tmp_path, "writes") as m:
        os.mkdir(m.mp / "d")
        (m.mp / "d" / "f").write_bytes(b"pending")
        expire()
        assert os.listdir(m.mp / "d") == ["f"] and m.disk() == []  # not uploaded yet
        assert errno_of(os.rmdir, m.mp / "d") == errno.ENOTEMPTY
        assert (m.mp / "d" / "f").read_bytes() == b"pending"
        os.unlink(m.mp / "d" / "f")
        os.rmdir(m.mp / "d")
        expire()
        assert os.listdir(m.mp) == [] and m.disk() == []


@pytest.mark.parametrize("mode", MODES)
def test_rename_of_a_virtual_tree(tmp_path: Path, mode: str) -> None:
    with mounted(tmp_path, mode) as m:
        os.makedirs(m.mp / "t" / "a" / "b")
        os.makedirs(m.mp / "t" / "e")
        (m.mp / "t" / "a" / "f").write_bytes(b"moved")
        os.mkdir(m.mp / "u")  # empty: the rename may replace it
        os.rename(m.mp / "t", m.mp / "u")
        expire()
        assert os.listdir(m.mp) == ["u"] and sorted(os.listdir(m.mp / "u")) == ["a", "e"]
        assert sorted(os.listdir(m.mp / "u" / "a")) == ["b", "f"] and os.listdir(m.mp / "u" / "e") == []
        assert (m.mp / "u" / "a" / "f").read_bytes() == b"moved"
        assert errno_of(os.stat, m.mp / "t") == errno.ENOENT
        if mode == "off":
            assert m.disk() == ["u", "u/a", "u/a/f"]  # the object moved; the rest is virtual
        os.mkdir(m.mp / "v")
        os.rename(m.mp / "u" / "e", m.mp / "v" / "e2")  # a virtual directory alone
        expire()
        assert os.listdir(m.mp / "v") == ["e2"] and os.listdir(m.mp / "u") == ["a"]
        assert errno_of(os.rename, m.mp / "v", m.mp / "u") == errno.ENOTEMPTY
