"""FUSE passthrough in cache mode full (fuse_passthrough.py) on real mounts.

A wholly cached file opened read-only is served by the kernel straight from its cache file.
Shown by changing the cache file under the plugin: only a kernel reading that file sees it
(the plugin's own path would answer from the FUSE page cache the first read filled).
"""

from __future__ import annotations

import ctypes
import errno
import gzip
import hashlib
import mmap
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyclone_docker import backends
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse.mount import FuseMount
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.cache import KERNEL_WRITE_SENTINEL_NS, Cache
from pyclone_docker.vfs.vfs import VFS

from .conftest import Plugin
from .test_cache_modes import mount, unmount, wait_for


def _passthrough_here() -> str:
    """'' when this kernel and libfuse can do passthrough, else why not."""
    release = os.uname().release.split("-")[0].split(".")
    if tuple(int(x) for x in release[:2] if x.isdigit()) < (6, 9):
        return "kernel older than 6.9"
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            if "CONFIG_FUSE_PASSTHROUGH=y" not in f.read():
                return "kernel built without CONFIG_FUSE_PASSTHROUGH"
    except OSError:
        pass  # no config to read: the kernel version decides
    for name in ("libfuse.so.3", "libfuse3.so.3"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return "" if hasattr(lib, "fuse_session_custom_io") else "libfuse3 older than 3.14"
    return "no libfuse3"


pytestmark = pytest.mark.skipif(bool(_passthrough_here()), reason=_passthrough_here() or "n/a")


def _full(plugin: Plugin, data: Path, name: str) -> Path:
    return mount(plugin, data, name, **{"vfs-cache-mode": "full", "vfs-write-back": "0.2s"})


def _cache_file(plugin: Plugin, volume: str, name: str) -> Path:
    return plugin.cache / "vfs" / volume / name


def _served_by_kernel(plugin: Plugin, mp: Path, volume: str, name: str) -> bool:
    return _kernel_reads(mp / name, _cache_file(plugin, volume, name))


def _kernel_reads(path: Path, cache_file: Path, flags: int = os.O_RDONLY) -> bool:
    """Read through one open file, change the cache file behind the plugin's back, read
    again: the kernel reading the cache file sees the change, the FUSE page cache does not."""
    fd = os.open(path, flags)
    try:
        first = os.pread(fd, 4096, 0)
        raw = os.open(cache_file, os.O_WRONLY)
        try:
            os.pwrite(raw, bytes(b ^ 0xFF for b in first[:4]), 0)
            again = os.pread(fd, 4096, 0)
            os.pwrite(raw, first[:4], 0)  # put it back
        finally:
            os.close(raw)
    finally:
        os.close(fd)
    return again != first


def _open_served_by_kernel(path: Path, cache_file: Path, timeout: float = 5) -> int:
    """An fd of `path` that the kernel serves. A close's RELEASE reaches the plugin after
    close(2) returns, and until it has, the file still counts as open elsewhere and an open
    is served by the plugin: such an fd is closed and the open tried again."""
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDONLY)
        first = os.pread(fd, 4096, 0)
        raw = os.open(cache_file, os.O_WRONLY)
        try:
            os.pwrite(raw, bytes(b ^ 0xFF for b in first[:4]), 0)
            served = os.pread(fd, 4096, 0) != first
            os.pwrite(raw, first[:4], 0)
        finally:
            os.close(raw)
        if served:
            return fd
        os.close(fd)
        assert time.monotonic() < deadline, f"{path}: no open was served by the kernel"
        time.sleep(0.05)


def test_a_cached_file_is_read_by_the_kernel(plugin: Plugin, data_dir: Path) -> None:
    mp = _full(plugin, data_dir, "pt")
    try:
        blob = os.urandom(1 << 20)
        (mp / "f").write_bytes(blob)  # written here: every byte is in the cache
        # (a close's RELEASE reaches the plugin after close(2) returns: until then the writer
        # still counts as open, and the kernel may not have the file)
        assert wait_for(lambda: _served_by_kernel(plugin, mp, "pt", "f"), timeout=5)
        assert (mp / "f").read_bytes() == blob
        with open(mp / "f", "rb") as f:  # mmap of a passthrough file maps the cache file
            m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            try:
                assert m[:] == blob
            finally:
                m.close()
        assert "passthrough unavailable" not in plugin.log_text()
    finally:
        unmount(plugin, "pt")


def test_without_passthrough_the_plugin_serves_it(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory(env={"PYCLONE_NO_PASSTHROUGH": "1"})
    mp = _full(p, data_dir, "nopt")
    try:
        (mp / "f").write_bytes(os.urandom(1 << 20))
        assert not _served_by_kernel(p, mp, "nopt", "f")  # the probe tells the two apart
    finally:
        unmount(p, "nopt")


def test_a_file_partly_cached_is_served_here_and_mixed_opens_work(plugin: Plugin, data_dir: Path) -> None:
    blob = os.urandom(3 << 20)
    (data_dir / "cold").write_bytes(blob)
    mp = _full(plugin, data_dir, "mix")
    try:
        with open(mp / "cold", "rb") as a:  # not cached yet: served by the plugin
            assert a.read(10) == blob[:10]
            with open(mp / "cold", "rb") as b:  # while a is open the kernel forbids passthrough: no EIO
                assert b.read() == blob
        assert wait_for(lambda: _served_by_kernel(plugin, mp, "mix", "cold"), timeout=5)  # whole now
        # a plugin-served open held while others come and go, and the other way round
        with open(mp / "cold", "rb") as held:
            with open(mp / "cold", "r+b") as w:
                w.seek(0, os.SEEK_END)
                w.write(b"tail")
            assert held.read() == blob + b"tail"
    finally:
        unmount(plugin, "mix")
    assert (data_dir / "cold").read_bytes() == blob + b"tail"


def test_a_writer_joining_kernel_readers_is_tracked(plugin: Plugin, data_dir: Path) -> None:
    mp = _full(plugin, data_dir, "wr")
    try:
        blob = os.urandom(1 << 20)
        (mp / "f").write_bytes(blob)
        assert wait_for(lambda: (data_dir / "f").exists() and (data_dir / "f").stat().st_size == len(blob))
        with open(mp / "f", "rb") as reader:  # the kernel's now, so the writer must be too
            assert reader.read(4) == blob[:4]
            assert wait_for(lambda: _served_by_kernel(plugin, mp, "wr", "f"), timeout=5)
            with open(mp / "f", "r+b") as w:
                assert os.stat(_cache_file(plugin, "wr", "f")).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
                w.seek(0, os.SEEK_END)
                w.write(b"appended")
                w.flush()
                # the kernel wrote the cache file without the plugin: stat must still be right
                assert os.stat(mp / "f").st_size == len(blob) + 8
                os.fsync(w.fileno())
            reader.seek(0)
            assert reader.read() == blob + b"appended"
        assert os.stat(mp / "f").st_size == len(blob) + 8
        assert wait_for(lambda: (data_dir / "f").read_bytes() == blob + b"appended")
        # a utime after the writes stays
        with open(mp / "f", "rb"), open(mp / "f", "r+b") as w:
            w.write(b"X")
            w.flush()
            os.utime(mp / "f", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        assert os.stat(mp / "f").st_mtime_ns == 1_600_000_000_000_000_000
        assert wait_for(lambda: (data_dir / "f").read_bytes()[:1] == b"X"
                        and (data_dir / "f").stat().st_mtime_ns == 1_600_000_000_000_000_000)
    finally:
        unmount(plugin, "wr")


def test_truncating_open_and_unlink_of_a_kernel_served_file(plugin: Plugin, data_dir: Path) -> None:
    mp = _full(plugin, data_dir, "tr")
    try:
        (mp / "f").write_bytes(b"old contents")
        with open(mp / "f", "rb") as reader:
            assert reader.read() == b"old contents"
            assert wait_for(lambda: _served_by_kernel(plugin, mp, "tr", "f"), timeout=5)
            with open(mp / "f", "wb") as w:  # O_TRUNC while the kernel serves the reader
                w.write(b"new")
            reader.seek(0)
            assert reader.read() == b"new"
            os.unlink(mp / "f")
            reader.seek(0)
            assert reader.read() == b"new"  # an unlinked open file stays readable
            with pytest.raises(OSError) as e:
                os.stat(mp / "f")
            assert e.value.errno == errno.ENOENT
        assert wait_for(lambda: not (data_dir / "f").exists())
    finally:
        unmount(plugin, "tr")


def test_sigkill_with_a_kernel_written_file_loses_nothing(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory()
    c = p.client
    mp = mount(p, data_dir, "ptcrash", "live", **{"vfs-cache-mode": "full", "vfs-write-back": "1h"})
    blob = os.urandom(1 << 20)
    (mp / "f").write_bytes(blob)
    reader = _open_served_by_kernel(mp / "f", _cache_file(p, "ptcrash", "f"))
    writer = os.open(mp / "f", os.O_RDWR)  # must join the kernel's reader
    try:
        assert os.stat(_cache_file(p, "ptcrash", "f")).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
        os.pwrite(writer, b"late", len(blob))  # written by the kernel, the plugin never sees it
    finally:
        os.close(writer)
    p.stop(signal.SIGKILL)
    os.close(reader)
    assert not (data_dir / "f").exists()  # nothing uploaded yet (write-back 1h)
    p.start()  # same flags: remounts for the live ID and uploads what the cache holds
    want = hashlib.sha256(blob + b"late").hexdigest()
    assert wait_for(lambda: (data_dir / "f").exists()
                    and hashlib.sha256((data_dir / "f").read_bytes()).hexdigest() == want, timeout=30)
    c.ok("VolumeDriver.Unmount", {"Name": "ptcrash", "ID": "live"})


def test_the_reply_hook_is_off_the_path_between_opens(tmp_path: Path) -> None:
    """In-process mount: libfuse's writev is its own between granted opens, so the other
    replies of the mount cost no Python callback."""
    remote, mountpoint, cache_dir = tmp_path / "remote", tmp_path / "mnt", tmp_path / "cache"
    for d in (remote, mountpoint, cache_dir):
        d.mkdir()
    values = OptionValues.defaults(VOLUME_OPTIONS)
    values.vfs_cache_mode = "full"
    info = backends.find("local")
    assert info.factory is not None
    backend = info.factory(":local", str(remote), {})
    cache = Cache(backend, str(cache_dir), "inproc")
    cache.start()
    vfs = VFS(backend, values, cache=cache)
    mount = FuseMount(str(mountpoint), FuseOps(vfs), values, "test")
    mount.start()
    try:
        passthrough = mount.ops.passthrough
        assert passthrough is not None and passthrough._io is not None  # libfuse's io struct found
        blob = os.urandom(256 << 10)
        (mountpoint / "f").write_bytes(blob)
        assert wait_for(lambda: _kernel_reads(mountpoint / "f", cache_dir / "vfs" / "inproc" / "f"), timeout=5)
        assert (mountpoint / "f").read_bytes() == blob
        assert passthrough._io.writev == passthrough._libc_writev
        assert passthrough._granted == 0
    finally:
        mount.unmount()
    assert passthrough.fd == -1



def test_new_files_are_written_by_the_kernel(plugin: Plugin, data_dir: Path) -> None:
    mp = _full(plugin, data_dir, "nw")
    cache_file = _cache_file(plugin, "nw", "new")
    try:
        fd = os.open(mp / "new", os.O_WRONLY | os.O_CREAT, 0o644)  # wholly cached: it is empty
        try:
            # the kernel's writer: the data file carries the mark no write can leave
            # (CacheItem._start_kernel_writes)
            assert os.stat(cache_file).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
            os.write(fd, b"0123456789")
            assert os.stat(mp / "new").st_size == 10  # stat learns the size from the cache file
            os.pwrite(fd, b"abc", 20)
            assert os.stat(mp / "new").st_size == 23
        finally:
            os.close(fd)
        assert wait_for(lambda: (data_dir / "new").exists()
                        and (data_dir / "new").read_bytes() == b"0123456789" + bytes(10) + b"abc")
        # a writer that can read could map the file shared and write it after close: it
        # starts on the plugin's path
        fd = os.open(mp / "new", os.O_RDWR)
        try:
            assert os.stat(cache_file).st_mtime_ns != KERNEL_WRITE_SENTINEL_NS
            os.pwrite(fd, b"9", 0)
        finally:
            os.close(fd)
        assert wait_for(lambda: (data_dir / "new").read_bytes()[:2] == b"91")
    finally:
        unmount(plugin, "nw")


def test_a_writer_that_writes_nothing_uploads_nothing(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "f").write_bytes(b"remote bytes")
    os.utime(data_dir / "f", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    mp = _full(plugin, data_dir, "nothing")
    try:
        assert (mp / "f").read_bytes() == b"remote bytes"  # cached whole now
        assert wait_for(lambda: _served_by_kernel(plugin, mp, "nothing", "f"), timeout=5)
        with open(mp / "f", "r+b") as f:  # as sqlite opens a database it only reads
            assert f.read() == b"remote bytes"
        time.sleep(1.0)  # write-back is 0.2 s
        assert os.stat(mp / "f").st_mtime_ns == 1_500_000_000_000_000_000
        assert (data_dir / "f").stat().st_mtime_ns == 1_500_000_000_000_000_000  # no upload
        # and one that writes at once, same size, is uploaded
        with open(mp / "f", "r+b") as f:
            f.write(b"R")
        assert wait_for(lambda: (data_dir / "f").read_bytes() == b"Remote bytes")
    finally:
        unmount(plugin, "nothing")


def test_writes_mode_new_files_go_to_the_kernel_and_streams_keep_it_away(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "remote.txt").write_bytes(b"streamed from the remote")
    mp = mount(plugin, data_dir, "wm", **{"vfs-cache-mode": "writes", "vfs-write-back": "3s"})
    try:
        fd = os.open(mp / "new", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            assert os.stat(_cache_file(plugin, "wm", "new")).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
            os.write(fd, b"kernel")
            assert os.stat(mp / "new").st_size == 6
        finally:
            os.close(fd)
        # while it is not uploaded yet, the cached copy is what opens get: the kernel's
        assert wait_for(lambda: _kernel_reads(mp / "new", _cache_file(plugin, "wm", "new")), timeout=2)
        assert wait_for(lambda: (data_dir / "new").exists() and (data_dir / "new").read_bytes() == b"kernel")
        # a read-only open of a clean file streams it from the remote through the plugin; a
        # writer meanwhile must not start passthrough (the kernel would refuse it: EIO)
        with open(mp / "remote.txt", "rb") as stream:
            assert stream.read(8) == b"streamed"
            with open(mp / "remote.txt", "wb") as w:
                w.write(b"rewritten")
            os.rename(mp / "remote.txt", mp / "moved.txt")
            with open(mp / "moved.txt", "ab") as w:  # the stream moved with the file
                w.write(b"+")
            stream.seek(0)
            assert stream.read(1)  # reads after a rename reopen the remote under its new name
        assert wait_for(lambda: (data_dir / "moved.txt").exists()
                        and (data_dir / "moved.txt").read_bytes() == b"rewritten+")
    finally:
        unmount(plugin, "wm")


def test_writes_mode_a_rename_over_a_streamed_name(plugin: Plugin, data_dir: Path) -> None:
    """The streams of a file a rename replaces no longer stand for the file of that name."""
    (data_dir / "a").write_bytes(b"old a, streamed")
    mp = mount(plugin, data_dir, "ro", **{"vfs-cache-mode": "writes", "vfs-write-back": "0.2s"})
    try:
        with open(mp / "a", "rb") as stream:
            assert stream.read(3) == b"old"
            with open(mp / "b", "wb") as w:  # new: written by the kernel
                w.write(b"new b")
                w.flush()
                os.rename(mp / "b", mp / "a")
                with open(mp / "a", "rb") as r:  # b's file, open in passthrough: must join (no EIO)
                    assert r.read() == b"new b"
        assert wait_for(lambda: (data_dir / "a").read_bytes() == b"new b")
        # an unlinked name is free too: a new file there goes to the kernel beside the old stream
        with open(mp / "a", "rb") as stream:
            assert stream.read(3) == b"new"
            os.unlink(mp / "a")
            with open(mp / "a", "wb") as w:
                assert os.stat(_cache_file(plugin, "ro", "a")).st_mtime_ns == KERNEL_WRITE_SENTINEL_NS
                w.write(b"third")
        assert wait_for(lambda: (data_dir / "a").exists() and (data_dir / "a").read_bytes() == b"third")
    finally:
        unmount(plugin, "ro")


def test_ftruncate_and_touch_of_kernel_written_files(plugin: Plugin, data_dir: Path) -> None:
    mp = _full(plugin, data_dir, "ft")
    try:
        fd = os.open(mp / "log", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"x" * 4096)
            os.ftruncate(fd, 0)  # as logrotate's copytruncate: the plugin must see the 4 KiB first
            assert os.fstat(fd).st_size == 0
            os.write(fd, b"after")
        finally:
            os.close(fd)
        assert wait_for(lambda: (data_dir / "log").exists()
                        and (data_dir / "log").read_bytes() == bytes(4096) + b"after")
        # touch opens the file for writing and sets its times: a time change, not an upload
        assert wait_for(lambda: "uploaded log " in plugin.log_text())  # logged after the bytes land
        uploads = plugin.log_text().count("uploaded log ")
        subprocess.run(["touch", "-d", "2020-01-01 00:00:00 UTC", str(mp / "log")], check=True)
        assert wait_for(lambda: (data_dir / "log").stat().st_mtime_ns == 1_577_836_800_000_000_000)
        time.sleep(0.6)  # write-back is 0.2 s
        assert plugin.log_text().count("uploaded log ") == uploads
        assert os.stat(mp / "log").st_mtime_ns == 1_577_836_800_000_000_000
    finally:
        unmount(plugin, "ft")


def test_a_shared_mapping_written_after_close_is_uploaded(plugin: Plugin, data_dir: Path) -> None:
    """The kernel serves a file; a writer that can read joins (it must), maps it shared, closes
    it and keeps writing through the mapping. Where the mapping holds the cache file instead
    of the FUSE file, the plugin hears of the close at once and must keep checking the file
    (CacheItem.maybe_mapped; unit-tested in tests/unit/test_cache_passthrough.py); Linux 6.18
    sends it at the munmap. Either way the bytes must reach the remote."""
    mp = _full(plugin, data_dir, "mm")
    blob = os.urandom(64 << 10)
    (mp / "f").write_bytes(blob)
    assert wait_for(lambda: (data_dir / "f").exists() and (data_dir / "f").read_bytes() == blob)
    reader = os.open(mp / "f", os.O_RDONLY)
    try:
        assert wait_for(lambda: _served_by_kernel(plugin, mp, "mm", "f"), timeout=5)
        fd = os.open(mp / "f", os.O_RDWR)
        m = mmap.mmap(fd, 0)
        os.close(fd)
    finally:
        os.close(reader)
    time.sleep(0.5)  # both RELEASEs reach the plugin
    m[:4] = b"MMAP"
    m.flush()
    m.close()
    unmount(plugin, "mm")
    assert (data_dir / "f").read_bytes() == b"MMAP" + blob[4:]


def test_a_rename_over_a_cached_open_file(plugin: Plugin, data_dir: Path) -> None:
    """The cached copy of a file renamed over is the replaced file's, not the new one's."""
    (data_dir / "b").write_bytes(b"b, never cached")
    mp = _full(plugin, data_dir, "rn")
    try:
        (mp / "a").write_bytes(b"a, cached here")
        assert wait_for(lambda: (data_dir / "a").exists())
        with open(mp / "a", "rb") as old_a:  # the kernel serves it from a's cache file
            assert old_a.read() == b"a, cached here"
            os.rename(mp / "b", mp / "a")
            assert (mp / "a").read_bytes() == b"b, never cached"
            old_a.seek(0)
            assert old_a.read() == b"a, cached here"  # as an unlinked open file
        assert (mp / "a").read_bytes() == b"b, never cached"
    finally:
        unmount(plugin, "rn")
    assert (data_dir / "a").read_bytes() == b"b, never cached"
