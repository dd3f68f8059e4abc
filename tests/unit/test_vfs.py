"""The VFS and its FUSE adapter without a mount: rclone's per-mode open table, handles that
follow renames, the caller as the owner of new nodes, statfs, the permission policy and the
adapter's readdir offsets. A local backend in a temp dir stands behind them."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pyclone_docker.backends.base import FEATURE_CHMOD, FEATURE_CHOWN, Entry
from pyclone_docker.backends.local import LocalBackend
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.cache import Cache
from pyclone_docker.vfs.handles import CachedHandle, ReadHandle, WriteHandle
from pyclone_docker.vfs.perms import Perms
from pyclone_docker.vfs.vfs import VFS

R, W, RW = os.O_RDONLY, os.O_WRONLY, os.O_RDWR


def make(tmp_path: Path, mode: str = "off", **opts: str) -> VFS:
    remote = tmp_path / "remote"
    remote.mkdir(exist_ok=True)
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.set("vfs_cache_mode", mode)
    for key, value in opts.items():
        values.set(key, value)
    backend = LocalBackend("local", str(remote), {})
    cache = None if mode == "off" else Cache(backend, str(tmp_path / "cache"), "v", write_back=3600)
    return VFS(backend, values, frozenset(opts), cache=cache)


# rclone's File.Open table (vfs/file.go openRW/openRead/openWrite): the handle each open gets
@pytest.mark.parametrize("mode, flags, kind", [
    ("off", R, "read"), ("off", W | os.O_TRUNC, "write"), ("off", RW | os.O_TRUNC, "write"),
    ("minimal", R, "read"), ("minimal", W | os.O_TRUNC, "write"), ("minimal", RW, "cached"),
    ("writes", R, "read"), ("writes", W, "cached"), ("writes", RW, "cached"), ("writes", R | os.O_TRUNC, "cached"),
    ("full", R, "cached"), ("full", W, "cached"),
])
def test_the_open_table(tmp_path: Path, mode: str, flags: int, kind: str) -> None:
    vfs = make(tmp_path, mode)
    (tmp_path / "remote" / "f").write_bytes(b"x")
    assert vfs.open_kind("f", flags) == kind
    if vfs.cache is not None:
        vfs.cache.shutdown(1)


def test_mode_off_refuses_read_write_of_an_existing_file(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off")
    (tmp_path / "remote" / "f").write_bytes(b"x")
    with pytest.raises(OSError) as e:
        vfs.open("/f", RW)
    assert e.value.errno == errno.EPERM


def test_a_file_written_here_is_read_from_the_cache(tmp_path: Path) -> None:
    """minimal/writes: a read-only open of a file with local changes, or one the cache holds
    whole, gets a cached handle."""
    vfs = make(tmp_path, "writes")
    handle = vfs.create("/new", 0o644, W)
    assert isinstance(handle, CachedHandle)
    handle.write_from(memoryview(b"local bytes"), 0)
    vfs.release(handle)
    assert vfs.open_kind("new", R) == "cached"  # dirty: the remote does not have it yet
    reader = vfs.open("/new", R)
    buf = bytearray(32)
    assert bytes(buf[:reader.read_into(memoryview(buf), 0)]) == b"local bytes"
    vfs.release(reader)
    assert vfs.cache is not None and vfs.cache.writeback.flush(5)
    # uploaded and closed, and still in the cache: read from it (rclone's File.Open: the
    # cache has it), not from the remote; a file the cache does not hold whole is streamed
    assert vfs.open_kind("new", R) == "cached"
    (tmp_path / "remote" / "other").write_bytes(b"remote bytes")
    assert vfs.open_kind("other", R) == "read"
    vfs.cache.shutdown(1)


def test_streamed_readers_follow_a_rename(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off")
    (tmp_path / "remote" / "d").mkdir()
    (tmp_path / "remote" / "d" / "f").write_bytes(b"abc")
    reader = vfs.open("/d/f", R)
    assert isinstance(reader, ReadHandle)
    assert vfs.rename("/d", "/e") == ("d", "e")
    assert reader.path == "e/f"  # a later reopen of the stream asks for the new name
    buf = bytearray(3)
    assert reader.read_into(memoryview(buf), 0) == 3 and bytes(buf) == b"abc"
    vfs.release(reader)
    assert vfs.open_files() == 0


def test_writers_follow_a_rename_and_show_their_size(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off")
    writer = vfs.create("/a", 0o644, W)
    assert isinstance(writer, WriteHandle)
    writer.write_from(memoryview(b"12345"), 0)
    vfs.rename("/a", "/b")
    assert vfs.stat("/b").size == 5  # the open writer's size, before it is committed
    vfs.release(writer)
    assert (tmp_path / "remote" / "b").read_bytes() == b"12345"
    assert not (tmp_path / "remote" / "a").exists()


class _PartialUploads(LocalBackend):
    """A local backend that writes to a hidden name and renames it at close (as ftp), and
    keeps no permissions."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.features = frozenset(self.features - {FEATURE_CHMOD, FEATURE_CHOWN})

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None, mode: int | None = None):
        inner = super().open_write(f".{path}.partial", size, mtime_ns, mode)
        backend = self

        class Writer:
            def write(self, view: memoryview) -> int:
                return inner.write(view)

            def close(self) -> None:
                inner.close()
                backend.move(f".{path}.partial", path)

            def abort(self) -> None:
                inner.abort()

        return Writer()

    def list(self, path: str) -> list[Entry]:
        return [e for e in super().list(path) if not e.name.endswith(".partial")]


def test_a_file_being_written_stays_listed_when_the_listing_expires(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.set("dir_cache_time", "0s")  # every lookup lists again
    vfs = VFS(_PartialUploads("local", str(tmp_path / "remote"), {}), values, frozenset())
    writer = vfs.create("/new", 0o644, W)
    writer.write_from(memoryview(b"abc"), 0)
    assert vfs.stat("/new").size == 3 and "new" in vfs.list_dir("")  # not on the remote under its name yet
    vfs.release(writer)
    assert (tmp_path / "remote" / "new").read_bytes() == b"abc" and vfs.stat("/new").size == 3


def test_the_caller_owns_special_nodes(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off")
    assert vfs.mknod("/fifo", stat.S_IFIFO | 0o640, 0, (1234, 5678, 1)) is None
    node = vfs.stat("/fifo")
    assert (node.special, node.mode, node.uid, node.gid) == (stat.S_IFIFO, 0o640, 1234, 5678)
    assert not (tmp_path / "remote" / "fifo").exists()  # kept by the VFS, never on the remote
    with pytest.raises(FileExistsError):
        vfs.mknod("/fifo", stat.S_IFIFO | 0o640, 0, (0, 0, 1))
    handle = vfs.mknod("/file", stat.S_IFREG | 0o600, 0, (0, 0, 1))  # a regular file: created
    assert handle is not None
    vfs.release(handle)
    assert (tmp_path / "remote" / "file").exists()


def test_statfs_takes_the_configured_total(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off", vfs_disk_space_total_size="1G")
    total, free = vfs.statfs()
    assert total == 1 << 30 and 0 <= free <= total


def test_the_permission_policy() -> None:
    values = OptionValues.defaults(VOLUME_OPTIONS)
    real = Perms(values, frozenset(), can_chmod=True, can_chown=True)
    stored = Entry("f", False, mode=0o640, uid=7, gid=8)
    assert real.mode(stored) == stat.S_IFREG | 0o640  # the backend's own mode
    assert real.mode(Entry("g", False)) == real.file_mode  # none stored: --file-perms
    values.set("file_perms", "0600")
    forced = Perms(values, frozenset({"file_perms"}), can_chmod=True, can_chown=True)
    assert forced.mode(stored) == stat.S_IFREG | (0o600 & ~int(values.umask))  # the flag wins
    assert not forced.uid_explicit and forced.use_real_uid


def test_the_adapter_snapshots_a_listing_for_its_offsets(tmp_path: Path) -> None:
    vfs = make(tmp_path, "off")
    for name in ("a", "b", "c"):
        (tmp_path / "remote" / name).write_bytes(b"")
    ops = FuseOps(vfs)
    fh = ops.opendir("/")
    first = list(ops.readdir_with_offset("/", 0, fh))
    names = [name for name, _attrs, _off in first]
    assert names[:2] == [".", ".."] and sorted(names[2:]) == ["a", "b", "c"]
    assert [off for _n, _a, off in first] == [1, 2, 3, 4, 5]
    (tmp_path / "remote" / "d").write_bytes(b"")
    vfs.forget_all()
    rest = list(ops.readdir_with_offset("/", 3, fh))  # a later call keeps the snapshot
    assert [name for name, _a, _o in rest] == names[3:]
    assert ops.releasedir("/", fh) == 0
    assert ops.getattr("/a")["st_mode"] & stat.S_IFREG


def test_the_adapter_answers_ebadf_for_an_unknown_handle(tmp_path: Path) -> None:
    ops = FuseOps(make(tmp_path, "off"))
    with pytest.raises(OSError) as e:
        ops.getattr(None, 12345)
    assert e.value.errno == errno.EBADF
