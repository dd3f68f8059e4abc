"""--vfs-cache-mode minimal/writes/full on real mounts: open rules, write-back, crash recovery, eviction."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from .conftest import Plugin


def mount(plugin: Plugin, data: Path, name: str, mount_id: str = "t", **opts: str) -> Path:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": name, "Opts": {"type": "local", "path": str(data), **opts}})
    return Path(c.ok("VolumeDriver.Mount", {"Name": name, "ID": mount_id})["Mountpoint"])


def unmount(plugin: Plugin, name: str) -> None:
    plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})


def wait_for(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_posix_behaviour_with_a_disk_cache(plugin: Plugin, data_dir: Path, mode: str) -> None:
    (data_dir / "existing.txt").write_bytes(b"0123456789")
    mp = mount(plugin, data_dir, f"c-{mode}", **{"vfs-cache-mode": mode, "vfs-write-back": "0.2s"})
    try:
        # read+write open, seeks, overwrite in the middle of an existing file
        with open(mp / "existing.txt", "r+b") as f:
            assert f.read(3) == b"012"
            f.seek(5)
            f.write(b"AB")
            f.seek(0)
            assert f.read() == b"01234AB789"
        # O_APPEND and truncate
        with open(mp / "existing.txt", "ab") as f:
            f.write(b"++")
        os.truncate(mp / "existing.txt", 4)
        assert (mp / "existing.txt").read_bytes() == b"0123"
        # sparse writes far past the end
        fd = os.open(mp / "sparse.bin", os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"end", 1 << 20)
        os.close(fd)
        assert (mp / "sparse.bin").stat().st_size == (1 << 20) + 3
        # two writers on one file
        a = open(mp / "two.txt", "wb")
        b = open(mp / "two.txt", "r+b")
        a.write(b"aaaa")
        a.flush()
        b.seek(2)
        b.write(b"bb")
        a.close()
        b.close()
        assert (mp / "two.txt").read_bytes() == b"aabb"
        # unlink and rename of open files
        f = open(mp / "open-unlinked.txt", "w+b")
        f.write(b"still here")
        os.unlink(mp / "open-unlinked.txt")
        f.close()
        g = open(mp / "before.txt", "wb")
        g.write(b"renamed while open")
        os.rename(mp / "before.txt", mp / "after.txt")
        g.close()
        # sqlite needs random access and fsync
        db = sqlite3.connect(mp / "test.db")
        db.execute("create table t (x)")
        db.executemany("insert into t values (?)", [(i,) for i in range(500)])
        db.commit()
        assert db.execute("select count(*), sum(x) from t").fetchone() == (500, 124750)
        db.close()
        # everything reaches the backend after --vfs-write-back
        assert wait_for(lambda: (data_dir / "existing.txt").read_bytes() == b"0123"
                        and (data_dir / "after.txt").exists())
    finally:
        unmount(plugin, f"c-{mode}")
    assert (data_dir / "after.txt").read_bytes() == b"renamed while open"
    assert not (data_dir / "before.txt").exists()
    assert not (data_dir / "open-unlinked.txt").exists()
    assert (data_dir / "sparse.bin").read_bytes()[-3:] == b"end"
    assert (data_dir / "two.txt").read_bytes() == b"aabb"
    db = sqlite3.connect(data_dir / "test.db")
    assert db.execute("select count(*) from t").fetchone() == (500,)
    db.close()


def test_minimal_mode_caches_only_read_write_opens(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "f.txt").write_bytes(b"abc")
    mp = mount(plugin, data_dir, "min", **{"vfs-cache-mode": "minimal"})
    try:
        with open(mp / "f.txt", "r+b") as f:  # read+write: cached, works
            f.seek(1)
            f.write(b"X")
        fd = os.open(mp / "f.txt", os.O_WRONLY)  # write only without O_TRUNC: as mode off
        try:
            with pytest.raises(PermissionError):
                os.write(fd, b"z")
        finally:
            os.close(fd)
    finally:
        unmount(plugin, "min")
    assert (data_dir / "f.txt").read_bytes() == b"aXc"


def test_unmount_uploads_pending_writes(plugin: Plugin, data_dir: Path) -> None:
    mp = mount(plugin, data_dir, "wb", **{"vfs-cache-mode": "writes", "vfs-write-back": "1h"})
    (mp / "late.txt").write_text("uploaded at unmount")
    assert not (data_dir / "late.txt").exists()  # still waiting for --vfs-write-back
    assert "late.txt" in os.listdir(mp)  # but visible through the mount
    unmount(plugin, "wb")
    assert (data_dir / "late.txt").read_text() == "uploaded at unmount"


def test_full_mode_reads_are_cached_sparse_with_rclone_metadata(plugin: Plugin, data_dir: Path) -> None:
    payload = os.urandom(8 << 20)
    (data_dir / "big.bin").write_bytes(payload)
    mp = mount(plugin, data_dir, "full", **{"vfs-cache-mode": "full"})
    try:
        with open(mp / "big.bin", "rb") as f:
            f.seek(4 << 20)
            assert f.read(1000) == payload[4 << 20:(4 << 20) + 1000]
        meta_path = plugin.cache / "vfsMeta" / "full" / "big.bin"
        assert wait_for(meta_path.exists)  # written when the kernel's RELEASE arrives
        meta = json.loads(meta_path.read_text())
        assert meta["Size"] == len(payload) and meta["Dirty"] is False and meta["Fingerprint"]
        assert len(meta["Rs"]) == 1 and meta["Rs"][0]["Pos"] == 4 << 20
        data = plugin.cache / "vfs" / "full" / "big.bin"
        assert data.stat().st_size == len(payload)
        assert data.stat().st_blocks * 512 < len(payload) // 2  # sparse: only the fetched part
        assert hashlib.sha256((mp / "big.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()
        # a changed remote file invalidates the cached copy (fingerprint: size, modtime)
        (data_dir / "big.bin").write_bytes(b"new content")
        plugin.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: (mp / "big.bin").read_bytes() == b"new content")
    finally:
        unmount(plugin, "full")


def test_eviction_with_tiny_limits(plugin: Plugin, data_dir: Path) -> None:
    for i in range(5):
        (data_dir / f"f{i}").write_bytes(os.urandom(1 << 20))
    mp = mount(plugin, data_dir, "ev", **{"vfs-cache-mode": "full", "vfs-cache-max-size": "1Mi",
                                          "vfs-cache-poll-interval": "0.2s"})
    try:
        for i in range(5):
            (mp / f"f{i}").read_bytes()
        cache = plugin.cache / "vfs" / "ev"
        assert wait_for(lambda: sum(p.stat().st_blocks * 512 for p in cache.iterdir()) <= (1 << 20) + 65536)
        with open(mp / "f0", "rb") as held:  # an open file is never evicted
            held.read(10)
            time.sleep(0.6)
            assert (cache / "f0").exists()
    finally:
        unmount(plugin, "ev")


def test_sigkill_during_write_back_loses_nothing(plugin_factory, data_dir: Path) -> None:
    p = plugin_factory()
    c = p.client
    mp = mount(p, data_dir, "crash", "live", **{"vfs-cache-mode": "writes", "vfs-write-back": "1h"})
    sums = {}
    for i in range(200):
        blob = os.urandom(1000 + i * 37)
        (mp / f"file{i:03d}").write_bytes(blob)
        sums[f"file{i:03d}"] = hashlib.sha256(blob).hexdigest()
    assert not any(data_dir.iterdir())  # nothing uploaded yet
    p.stop(signal.SIGKILL)
    p.start()  # same flags: remounts for the live ID and uploads what the cache holds
    assert wait_for(lambda: len(list(data_dir.iterdir())) == 200, timeout=60)
    got = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data_dir.iterdir()}
    assert got == sums
    c.ok("VolumeDriver.Unmount", {"Name": "crash", "ID": "live"})


def test_case_insensitive_fixup(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "Hello.TXT").write_text("found")
    (data_dir / "Dir").mkdir()
    (data_dir / "Dir" / "Inner").write_text("deep")
    mp = mount(plugin, data_dir, "ci", **{"vfs-case-insensitive": "true"})
    try:
        assert (mp / "hello.txt").read_text() == "found"
        assert (mp / "dir" / "inner").read_text() == "deep"
        assert sorted(os.listdir(mp)) == ["Dir", "Hello.TXT"]  # names keep their case
    finally:
        unmount(plugin, "ci")
    mp2 = mount(plugin, data_dir, "cs")
    try:
        assert not (mp2 / "hello.txt").exists()  # the default is case sensitive on Linux
    finally:
        unmount(plugin, "cs")


def test_statfs_options(plugin: Plugin, data_dir: Path) -> None:
    mp = mount(plugin, data_dir, "df", **{"vfs-disk-space-total-size": "10Gi"})
    try:
        st = os.statvfs(mp)
        assert st.f_blocks * st.f_frsize == 10 << 30
    finally:
        unmount(plugin, "df")
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "f").write_bytes(b"x" * (5 << 20))
    mp = mount(plugin, data_dir, "used", **{"vfs-disk-space-total-size": "1Gi", "vfs-used-is-size": "true"})
    try:
        st = os.statvfs(mp)
        assert (st.f_blocks - st.f_bfree) * st.f_frsize == 5 << 20
    finally:
        unmount(plugin, "used")


@pytest.fixture
def small_cache(tmp_root: Path):
    """A 4 MiB tmpfs as the cache dir: the cache disk fills up."""
    import subprocess

    d = tmp_root / "smallcache"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_cache_disk_is_a_clean_error_not_a_crash(plugin_factory, data_dir: Path, small_cache: Path) -> None:
    big = os.urandom(12 << 20)
    (data_dir / "remote-big.bin").write_bytes(big)
    p = plugin_factory(["--cache-dir", str(small_cache)])
    c = p.client
    c.ok("VolumeDriver.Create", {"Name": "tiny", "Opts": {"type": "local", "path": str(data_dir),
                                                          "vfs-cache-mode": "full"}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": "tiny", "ID": "t"})["Mountpoint"])
    try:
        # reads larger than the cache disk fall back to reading the remote directly
        assert hashlib.sha256((mp / "remote-big.bin").read_bytes()).digest() == hashlib.sha256(big).digest()
        # a write that does not fit is refused with ENOSPC, and the plugin keeps serving
        with pytest.raises(OSError) as ei, open(mp / "too-big.bin", "wb") as f:
            for _ in range(12):
                f.write(os.urandom(1 << 20))
        assert ei.value.errno == 28
        assert p.proc is not None and p.proc.poll() is None
        assert c.ok("VolumeDriver.List", {})["Volumes"]
        os.unlink(mp / "too-big.bin")  # as an application cleans up after ENOSPC
        # a small file still works end to end
        (mp / "small.txt").write_text("fits")
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": "tiny", "ID": "t"})
    assert (data_dir / "small.txt").read_text() == "fits"
    assert (data_dir / "remote-big.bin").read_bytes() == big  # nothing lost on the remote


def test_remove_drops_the_volumes_cache(plugin: Plugin, data_dir: Path) -> None:
    (data_dir / "f").write_bytes(b"cached")
    mp = mount(plugin, data_dir, "gone", **{"vfs-cache-mode": "full"})
    try:
        assert (mp / "f").read_bytes() == b"cached"
    finally:
        unmount(plugin, "gone")
    assert (plugin.cache / "vfs" / "gone").exists()
    plugin.client.ok("VolumeDriver.Remove", {"Name": "gone"})
    assert not (plugin.cache / "vfs" / "gone").exists()
    assert not (plugin.cache / "vfsMeta" / "gone").exists()


def test_no_modtime_leaves_upload_times(plugin: Plugin, data_dir: Path) -> None:
    mp = mount(plugin, data_dir, "nm", **{"vfs-cache-mode": "writes", "no-modtime": "true"})
    try:
        (mp / "f").write_text("x")
        os.utime(mp / "f", ns=(10**18, 10**18))  # accepted, not stored
    finally:
        unmount(plugin, "nm")
    assert (data_dir / "f").read_text() == "x"
    assert (data_dir / "f").stat().st_mtime_ns != 10**18


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_renamed_pending_file_is_visible_at_once(plugin: Plugin, data_dir: Path, mode: str) -> None:
    """A file renamed before its upload must show under its new name straight away (it was
    invisible until the upload landed), and arrive on the remote under that name."""
    mp = mount(plugin, data_dir, f"r-{mode}", **{"vfs-cache-mode": mode, "vfs-write-back": "1h"})
    try:
        (mp / "sub").mkdir()
        (mp / "sub" / "n0").write_bytes(b"pending")
        os.rename(mp / "sub" / "n0", mp / "sub" / "n1")
        assert (mp / "sub" / "n1").read_bytes() == b"pending"
        assert sorted(os.listdir(mp / "sub")) == ["n1"]
        assert not (data_dir / "sub" / "n1").exists()  # still only in the cache
        os.rename(mp / "sub" / "n1", mp / "n2")  # and across directories
        assert (mp / "n2").stat().st_size == 7 and not (mp / "sub" / "n1").exists()
    finally:
        unmount(plugin, f"r-{mode}")  # uploads what is pending
    assert (data_dir / "n2").read_bytes() == b"pending"
    assert os.listdir(data_dir / "sub") == []


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_directories_holding_pending_files(plugin: Plugin, data_dir: Path, mode: str) -> None:
    """Found by pjdfstest: the remote shows such a directory empty, so rmdir and rename over it
    succeeded and orphaned the files; and a removed directory left the cache a directory of
    that name, so a file could not take it (EISDIR)."""
    mp = mount(plugin, data_dir, f"d-{mode}", **{"vfs-cache-mode": mode, "vfs-write-back": "1h"})
    try:
        (mp / "full").mkdir()
        (mp / "full" / "f").write_bytes(b"keep me")
        with pytest.raises(OSError) as ei:
            os.rmdir(mp / "full")
        assert ei.value.errno == errno.ENOTEMPTY
        (mp / "other").mkdir()
        with pytest.raises(OSError) as ei:
            os.rename(mp / "other", mp / "full")
        assert ei.value.errno == errno.ENOTEMPTY
        # a directory that held cached files, then removed: a file takes its name
        (mp / "gone").mkdir()
        (mp / "gone" / "x").write_bytes(b"x")
        os.unlink(mp / "gone" / "x")
        os.rmdir(mp / "gone")
        (mp / "gone").write_bytes(b"now a file")
        # the same after a directory rename
        (mp / "moved").mkdir()
        (mp / "moved" / "y").write_bytes(b"y")
        os.rename(mp / "moved", mp / "there")
        (mp / "moved").write_bytes(b"also a file")
        # a refused name (over NAME_MAX) leaves the pending file where it was
        (mp / "src").write_bytes(b"source")
        with pytest.raises(OSError) as ei:
            os.rename(mp / "src", mp / ("n" * 256))
        assert ei.value.errno == errno.ENAMETOOLONG
        assert (mp / "src").read_bytes() == b"source"
    finally:
        unmount(plugin, f"d-{mode}")
    assert (data_dir / "full" / "f").read_bytes() == b"keep me"
    assert (data_dir / "gone").read_bytes() == b"now a file"
    assert (data_dir / "moved").read_bytes() == b"also a file"
    assert (data_dir / "there" / "y").read_bytes() == b"y"
    assert (data_dir / "src").read_bytes() == b"source"
