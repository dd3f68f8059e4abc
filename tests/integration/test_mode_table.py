"""Seed 001's table of what each --vfs-cache-mode allows, run on real mounts: one row per
operation, one column per mode, each cell the outcome (the data seen, or the errno)."""

from __future__ import annotations

import errno
import faulthandler
import mmap
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .. import rclone_ref
from .conftest import Plugin

MODES = ("off", "minimal", "writes", "full")
ORIGINAL = b"0123456789"


def outcome(action: Callable[[Path], bytes | None], mp: Path, name: str) -> str:
    """Run one row in a child process: a mapping over a broken read is SIGBUS, which must be a
    cell of the table, not the end of the test run. Each row has its own file, made before
    the mount (the directory cache would hide it)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the row, write the cell, leave without cleanup
        code = 0
        faulthandler.disable()  # pytest's: a SIGBUS here is an expected cell, not a crash report
        try:
            os.close(rfd)
            try:
                seen = action(mp / name)
                cell = (seen if seen is not None else (mp / name).read_bytes()).decode()
            except OSError as e:
                cell = errno.errorcode.get(e.errno or 0, str(e.errno))
            os.write(wfd, cell.encode())
        except BaseException:
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        cell = r.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return cell


def rw_open(p: Path) -> bytes:
    fd = os.open(p, os.O_RDWR)
    try:
        os.pwrite(fd, b"AB", 2)
        return os.pread(fd, 10, 0)
    finally:
        os.close(fd)


def rw_create_new(p: Path) -> bytes:
    """`open(name, "w+")` of a new file: written, then read back through the same descriptor."""
    new = p.with_name(p.name + "-new")
    fd = os.open(new, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"new")
        try:
            back = os.pread(fd, 3, 0).decode()
        except OSError as e:
            back = errno.errorcode.get(e.errno or 0, str(e.errno))
    finally:
        os.close(fd)
    return f"{back}|{new.read_text()}".encode()


def write_only_seek(p: Path) -> None:
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"abcd")
        os.pwrite(fd, b"Z", 8)  # a seek past what was written
    finally:
        os.close(fd)


def write_only_existing_no_trunc(p: Path) -> None:
    fd = os.open(p, os.O_WRONLY)
    try:
        os.write(fd, b"new")
    finally:
        os.close(fd)


def append(p: Path) -> None:
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"++")
    finally:
        os.close(fd)


def read_only_with_trunc(p: Path) -> None:
    os.close(os.open(p, os.O_RDONLY | os.O_TRUNC))


def mmap_read(p: Path) -> bytes:
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        return m[:]


def mmap_shared_write(p: Path) -> None:
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[0:2] = b"MM"
        m.flush()


# row -> expected cell per mode: rclone's VFS rules (its --vfs-cache-mode docs) as rclone's mount
# applies them (1.60 and 1.75.2 alike)
# (test_rclone_mount_gives_the_same_table checks every cell against it)
TABLE: dict[str, tuple[Callable[[Path], bytes | None], dict[str, str]]] = {
    # off: "Files can't be opened for both read AND write"; minimal and up cache such opens
    "open O_RDWR, write, read back": (rw_open, {"off": "EPERM", "minimal": "01AB456789",
                                                "writes": "01AB456789", "full": "01AB456789"}),
    # off opens a new file's read+write as write only ("hope the user doesn't want to read")
    "O_CREAT|O_RDWR of a new file, write, read back": (rw_create_new, {"off": "EPERM|new", "minimal": "new|new",
                                                                       "writes": "new|new", "full": "new|new"}),
    # off and minimal: "Files opened for write (only) can't be seeked"
    "O_WRONLY|O_TRUNC, then a seek": (write_only_seek, {"off": "ESPIPE", "minimal": "ESPIPE",
                                                        "writes": "abcd\0\0\0\0Z", "full": "abcd\0\0\0\0Z"}),
    # off and minimal: "Existing files opened for write must have O_TRUNC set"
    "O_WRONLY on an existing file": (write_only_existing_no_trunc, {"off": "EPERM", "minimal": "EPERM",
                                                                    "writes": "new3456789",
                                                                    "full": "new3456789"}),
    # O_APPEND implies reading: read+write, which minimal caches and off refuses
    "O_WRONLY|O_APPEND": (append, {"off": "EPERM", "minimal": "0123456789++", "writes": "0123456789++",
                                   "full": "0123456789++"}),
    # "Files open for read with O_TRUNC will be opened write only" (so: truncated)
    "O_RDONLY|O_TRUNC": (read_only_with_trunc, {"off": "", "minimal": "", "writes": "", "full": ""}),
    "mmap for reading": (mmap_read, {m: "0123456789" for m in MODES}),
    # a shared writable mapping needs a read+write open (rclone's off mode: SIGBUS, see below)
    "mmap MAP_SHARED, write": (mmap_shared_write, {"off": "EPERM", "minimal": "MM23456789",
                                                   "writes": "MM23456789", "full": "MM23456789"}),
}

# Where we differ from rclone (1.60 and 1.75.2) on purpose: a clean error instead of a dead process.
RCLONE_DIFFERS = {("off", "mmap MAP_SHARED, write"): "SIGBUS"}


@pytest.mark.parametrize("mode", MODES)
def test_what_each_cache_mode_allows(plugin: Plugin, data_dir: Path, mode: str) -> None:
    c = plugin.client
    for i in range(len(TABLE)):
        (data_dir / f"f{i}").write_bytes(ORIGINAL)
    opts = {"type": "local", "path": str(data_dir), "vfs-cache-mode": mode, "vfs-write-back": "0s",
            "vfs-write-wait": "0s"}
    c.ok("VolumeDriver.Create", {"Name": f"t-{mode}", "Opts": opts})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": f"t-{mode}", "ID": "t"})["Mountpoint"])
    try:
        got = {row: outcome(action, mp, f"f{i}") for i, (row, (action, _)) in enumerate(TABLE.items())}
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": f"t-{mode}", "ID": "t"})
    want = {row: cells[mode] for row, (_, cells) in TABLE.items()}
    assert got == want


@pytest.mark.parametrize("mode", MODES)
def test_rclone_mount_gives_the_same_table(tmp_path: Path, mode: str) -> None:
    """The reference: the same rows on `rclone mount` (rclone 1.75.2, tests/rclone_ref.py) in the same mode."""
    rclone = rclone_ref.require()
    data, mp, cache = tmp_path / "data", tmp_path / "mp", tmp_path / "cache"
    for d in (data, mp, cache):
        d.mkdir()
    for i in range(len(TABLE)):
        (data / f"f{i}").write_bytes(ORIGINAL)
    proc = subprocess.Popen([rclone, "mount", f":local:{data}", str(mp), "--vfs-cache-mode", mode,
                             "--cache-dir", str(cache), "--vfs-write-back", "0s", "--vfs-write-wait", "0s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mp):
            assert proc.poll() is None and time.monotonic() < deadline, "rclone mount did not come up"
            time.sleep(0.05)
        got = {row: outcome(action, mp, f"f{i}") for i, (row, (action, _)) in enumerate(TABLE.items())}
    finally:
        subprocess.run(["fusermount", "-uz", str(mp)], check=False, capture_output=True)
        proc.terminate()
        proc.wait(20)
    want = {row: RCLONE_DIFFERS.get((mode, row), cells[mode]) for row, (_, cells) in TABLE.items()}
    assert got == want


@pytest.mark.parametrize("mode", MODES)
def test_mknod_makes_regular_files_on_the_remote_and_fifos_in_memory(plugin: Plugin, data_dir: Path,
                                                                    mode: str) -> None:
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": f"n-{mode}", "Opts": {"type": "local", "path": str(data_dir),
                                                              "vfs-cache-mode": mode}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": f"n-{mode}", "ID": "t"})["Mountpoint"])
    try:
        os.mknod(mp / "plain", stat.S_IFREG | 0o640)
        assert stat.S_IMODE((mp / "plain").stat().st_mode) == 0o640 and (mp / "plain").read_bytes() == b""
        os.mkfifo(mp / "fifo")  # kept by the VFS while mounted (test_special_files.py)
        assert stat.S_ISFIFO((mp / "fifo").stat().st_mode)
        with pytest.raises(FileExistsError):
            os.mknod(mp / "plain", stat.S_IFREG | 0o600)
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": f"n-{mode}", "ID": "t"})
    assert (data_dir / "plain").is_file() and stat.S_IMODE((data_dir / "plain").stat().st_mode) == 0o640
    assert not (data_dir / "fifo").exists()


@pytest.mark.parametrize("mode", MODES)
def test_utimensat_omit_and_now(plugin: Plugin, data_dir: Path, mode: str) -> None:
    """`touch -a` sends UTIME_OMIT for the mtime (it must stay), plain `touch` UTIME_NOW."""
    old = 1_600_000_000_000_000_000
    for name in ("a", "b"):
        (data_dir / name).write_bytes(b"x")
        os.utime(data_dir / name, ns=(old, old))
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": f"u-{mode}", "Opts": {"type": "local", "path": str(data_dir),
                                                              "vfs-cache-mode": mode}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": f"u-{mode}", "ID": "t"})["Mountpoint"])
    try:
        subprocess.run(["touch", "-a", str(mp / "a")], check=True)
        assert (mp / "a").stat().st_mtime_ns == old
        before = time.time_ns()
        subprocess.run(["touch", str(mp / "b")], check=True)
        assert before - 10**9 <= (mp / "b").stat().st_mtime_ns <= time.time_ns() + 10**9
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": f"u-{mode}", "ID": "t"})
    assert (data_dir / "a").stat().st_mtime_ns == old
    assert (data_dir / "b").stat().st_mtime_ns >= before - 10**9


@pytest.mark.parametrize("mode", MODES)
def test_chmod_and_chown_move_the_ctime(plugin: Plugin, data_dir: Path, mode: str) -> None:
    (data_dir / "c").write_bytes(b"x")
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": f"c-{mode}", "Opts": {"type": "local", "path": str(data_dir),
                                                              "vfs-cache-mode": mode, "vfs-write-back": "1h"}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": f"c-{mode}", "ID": "t"})["Mountpoint"])
    try:
        (mp / "new").write_bytes(b"y")  # in the cache modes: not uploaded yet
        for name in ("c", "new"):
            before = (mp / name).stat()
            time.sleep(0.02)
            os.chmod(mp / name, 0o600)
            after_chmod = (mp / name).stat()
            assert after_chmod.st_ctime_ns > before.st_ctime_ns, name
            assert after_chmod.st_mtime_ns == before.st_mtime_ns  # only the change time moves
            time.sleep(0.02)
            os.chown(mp / name, 1234, 5678)
            assert (mp / name).stat().st_ctime_ns > after_chmod.st_ctime_ns, name
    finally:
        c.ok("VolumeDriver.Unmount", {"Name": f"c-{mode}", "ID": "t"})


@pytest.mark.parametrize("mode", MODES)
def test_created_files_get_exactly_the_mode_asked_for(plugin: Plugin, data_dir: Path, mode: str) -> None:
    """Whether set by open(2) itself or by a chmod after it (bits the plugin's umask would take)."""
    c = plugin.client
    c.ok("VolumeDriver.Create", {"Name": f"m-{mode}", "Opts": {"type": "local", "path": str(data_dir),
                                                              "vfs-cache-mode": mode}})
    mp = Path(c.ok("VolumeDriver.Mount", {"Name": f"m-{mode}", "ID": "t"})["Mountpoint"])
    old_umask = os.umask(0)
    try:
        for name, bits in (("a", 0o640), ("b", 0o666), ("c", 0o2750)):
            os.close(os.open(mp / name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, bits))
            assert stat.S_IMODE((mp / name).stat().st_mode) == bits, name
    finally:
        os.umask(old_umask)
        c.ok("VolumeDriver.Unmount", {"Name": f"m-{mode}", "ID": "t"})
    for name, bits in (("a", 0o640), ("b", 0o666), ("c", 0o2750)):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == bits, name
