"""Virtual directories (vfs/virtualdirs.py): the bookkeeping alone, then a VFS (no mount)
over tests/support/flatstore.py, an object store over a local directory."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pyclone_docker.backends.base import Entry
from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.vfs.cache import Cache
from pyclone_docker.vfs.vfs import VFS
from pyclone_docker.vfs.virtualdirs import VirtualDirs
from tests.support.flatstore import FlatStore


def names(entries: list[Entry]) -> dict[str, bool]:
    return {e.name: e.is_dir for e in entries}


# --- the bookkeeping ----------------------------------------------------------------------

def test_empty_bookkeeping_changes_no_listing() -> None:
    v = VirtualDirs()
    listed = [Entry("f", False)]
    assert not v and v.merge("", listed) is listed and not v.keeps("") and not v.keeps("a")


def test_a_virtual_directory_and_its_parents_are_listed() -> None:
    v = VirtualDirs()
    v.add("a", 111)
    v.add("a/b", 222)
    v.add("a/b/c", 333)
    assert v.paths() == ["a", "a/b", "a/b/c"] and "a/b" in v and "a/x" not in v
    assert names(v.merge("", [])) == {"a": True}
    assert names(v.merge("a", [])) == {"b": True}
    assert names(v.merge("a/b", [Entry("f", False)])) == {"f": False, "c": True}
    assert v.merge("a/b/c", []) == []
    assert [e.mtime_ns for e in v.merge("a/b", [])] == [333]
    assert v.keeps("a") and v.keeps("a/b/c") and not v.keeps("a/b/c/d") and not v.keeps("z")


def test_a_listing_that_shows_a_directory_makes_it_real() -> None:
    v = VirtualDirs()
    v.add("d", 1)
    v.add("e", 2)
    assert names(v.merge("", [Entry("d", True)])) == {"d": True, "e": True}
    assert v.paths() == ["e"]  # d is on the remote now: it lives with its objects
    assert names(v.merge("", [])) == {"e": True}


def test_a_real_parent_stays_shown_while_a_virtual_directory_lies_below_it() -> None:
    v = VirtualDirs()
    v.add("a", 1)
    v.add("a/b", 2)
    v.merge("", [Entry("a", True)])  # a real now (an object below it, since deleted)
    assert v.paths() == ["a/b"]
    assert names(v.merge("", [])) == {"a": True} and v.keeps("a")
    assert [e.mtime_ns for e in v.merge("", [])] == [1]  # the time it was made, still


def test_remove_forgets_the_tree_and_the_counts_of_its_parents() -> None:
    v = VirtualDirs()
    for p in ("a", "a/b", "a/b/c", "a/x"):
        v.add(p, 0)
    v.remove("a/b")
    assert v.paths() == ["a", "a/x"] and names(v.merge("a", [])) == {"x": True}
    v.remove("a")
    assert not v and v.merge("", []) == [] and not v.keeps("a")


def test_move_takes_the_tree_along_and_replaces_an_empty_target() -> None:
    v = VirtualDirs()
    for p in ("a", "a/b", "a/b/c", "t"):
        v.add(p, 5)
    v.move("a/b", "t")  # over the empty directory t
    assert v.paths() == ["a", "t", "t/c"]
    assert names(v.merge("", [])) == {"a": True, "t": True} and names(v.merge("t", [])) == {"c": True}
    assert v.merge("a", []) == [] and [e.mtime_ns for e in v.merge("t", [])] == [5]
    v.move("nothing", "else")
    assert v.paths() == ["a", "t", "t/c"]


def test_a_name_like_a_prefix_is_another_directory() -> None:
    v = VirtualDirs()
    v.add("ab", 0)
    v.add("a", 0)
    v.remove("a")
    assert v.paths() == ["ab"]
    v.move("ab", "a")
    assert v.paths() == ["a"]


def test_lister_reads_a_missing_virtual_directory_as_empty() -> None:
    v = VirtualDirs()
    v.add("d", 0)

    def remote(path: str) -> list[Entry]:
        raise FileNotFoundError(errno.ENOENT, "none", path)

    list_ = v.lister(remote)
    assert list_("d") == []
    with pytest.raises(FileNotFoundError):
        list_("other")


def test_adds_from_many_threads_keep_the_counts() -> None:
    v = VirtualDirs()

    def work(i: int) -> None:
        for j in range(200):
            v.add(f"t{i}/d{j}", 0)
        for j in range(0, 200, 2):
            v.remove(f"t{i}/d{j}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(v.paths()) == 8 * 100
    assert sorted(e.name for e in v.merge("", [])) == [f"t{i}" for i in range(8)]
    assert len(v.merge("t3", [])) == 100
    for i in range(8):
        v.remove(f"t{i}")
    assert not v and v.merge("", []) == [] and v._below == {} and v._times == {}


# --- a VFS over an object store (no mount) ---------------------------------------------------

def make(tmp_path: Path, mode: str = "off") -> tuple[VFS, FlatStore]:
    remote = tmp_path / "remote"
    remote.mkdir(exist_ok=True)
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.set("vfs_cache_mode", mode)
    values.set("dir_cache_time", "0s")  # every lookup lists again: nothing hides in the cache
    store = FlatStore(LocalBackend("local", str(remote), {}))
    cache = None if mode == "off" else Cache(store, str(tmp_path / "cache"), "v", write_back=3600)
    return VFS(store, values, cache=cache), store


def write(vfs: VFS, path: str, data: bytes) -> None:
    h = vfs.create(path, 0o644, os.O_WRONLY)
    h.write_from(memoryview(data), 0)
    vfs.release(h)


def errno_of(fn: Callable[..., object], *args: object) -> int | None:
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


def test_a_backend_with_empty_directories_keeps_no_virtual_ones(tmp_path: Path) -> None:
    values = OptionValues.defaults(VOLUME_OPTIONS)
    vfs = VFS(LocalBackend("local", str(tmp_path), {}), values)
    assert vfs.virtuals is None
    vfs.mkdir("/d", 0o755)
    assert (tmp_path / "d").is_dir()


def test_mkdir_stores_nothing_and_the_directory_is_shown(tmp_path: Path) -> None:
    vfs, store = make(tmp_path)
    vfs.mkdir("/a", 0o755)
    vfs.mkdir("/a/b", 0o755)
    assert os.listdir(store.disk("")) == []  # nothing stored
    assert vfs.stat("/a/b").is_dir and list(vfs.list_dir("a")) == ["b"] and vfs.list_dir("a/b") == {}
    assert errno_of(vfs.mkdir, "/a", 0o755) == errno.EEXIST
    assert errno_of(vfs.mkdir, "/no/such", 0o755) == errno.ENOENT
    write(vfs, "/f", b"x")
    assert errno_of(vfs.mkdir, "/f", 0o755) == errno.EEXIST
    assert errno_of(vfs.mkdir, "/f/sub", 0o755) == errno.ENOTDIR


def test_a_directory_listed_for_real_vanishes_with_its_last_object(tmp_path: Path) -> None:
    vfs, _store = make(tmp_path)
    vfs.mkdir("/d", 0o755)
    write(vfs, "/d/f", b"x")
    assert list(vfs.list_dir("")) == ["d"]  # listed for real: no longer virtual
    assert "d" not in vfs.virtuals
    vfs.unlink("/d/f")
    assert vfs.list_dir("") == {} and errno_of(vfs.stat, "/d") == errno.ENOENT


def test_a_virtual_directory_outlives_its_last_object(tmp_path: Path) -> None:
    vfs, store = make(tmp_path)
    vfs.mkdir("/d", 0o755)
    write(vfs, "/d/f", b"x")
    vfs.unlink("/d/f")  # no listing of the root between: d is still virtual
    assert list(vfs.list_dir("")) == ["d"] and vfs.list_dir("d") == {}
    assert not os.path.exists(store.disk("d"))


def test_rmdir(tmp_path: Path) -> None:
    vfs, _store = make(tmp_path)
    for d in ("/a", "/a/b", "/e"):
        vfs.mkdir(d, 0o755)
    write(vfs, "/e/f", b"x")
    assert errno_of(vfs.rmdir, "/a") == errno.ENOTEMPTY  # a virtual directory in it
    assert errno_of(vfs.rmdir, "/e") == errno.ENOTEMPTY  # an object in it
    assert errno_of(vfs.rmdir, "/gone") == errno.ENOENT
    vfs.rmdir("/a/b")
    vfs.rmdir("/a")
    assert list(vfs.list_dir("")) == ["e"] and not vfs.virtuals


def test_rename_of_a_virtual_tree(tmp_path: Path) -> None:
    vfs, store = make(tmp_path)
    for d in ("/a", "/a/b", "/a/b/c", "/a/o", "/t"):
        vfs.mkdir(d, 0o755)
    write(vfs, "/a/o/f", b"object")
    vfs.rename("/a", "/t")  # over an empty virtual directory
    assert list(vfs.list_dir("")) == ["t"] and sorted(vfs.list_dir("t")) == ["b", "o"]
    assert list(vfs.list_dir("t/b")) == ["c"] and list(vfs.list_dir("t/o")) == ["f"]
    with open(store.disk("t/o/f"), "rb") as f:
        assert f.read() == b"object"
    vfs.mkdir("/u", 0o755)
    vfs.mkdir("/u/v", 0o755)
    assert errno_of(vfs.rename, "/t", "/u") == errno.ENOTEMPTY
    assert errno_of(vfs.rename, "/t/o/f", "/u/v") == errno.EISDIR
    assert errno_of(vfs.rename, "/u", "/u/v/w") == errno.EINVAL
    assert errno_of(vfs.rename, "/u", "/no/where") == errno.ENOENT
    # t and t/o were listed for real (an object lies below them): no longer virtual
    assert vfs.virtuals.paths() == ["t/b", "t/b/c", "u", "u/v"]


def test_cached_writes_in_a_virtual_directory(tmp_path: Path) -> None:
    vfs, store = make(tmp_path, "writes")
    assert vfs.cache is not None
    try:
        vfs.mkdir("/d", 0o755)
        write(vfs, "/d/f", b"pending")
        assert list(vfs.list_dir("d")) == ["f"] and vfs.stat("/d/f").size == 7
        assert errno_of(vfs.rmdir, "/d") == errno.ENOTEMPTY
        vfs.rename("/d", "/e")
        assert list(vfs.list_dir("")) == ["e"] and list(vfs.list_dir("e")) == ["f"]
        assert os.listdir(store.disk("")) == []  # not uploaded yet
        vfs.unlink("/e/f")
        vfs.rmdir("/e")
        assert vfs.list_dir("") == {}
    finally:
        vfs.cache.shutdown(1)
