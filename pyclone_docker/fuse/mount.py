"""FUSE mounts served by threads of this process, and the mount table helpers around them.

Facts this module is built on: libfuse2 needs
`big_writes` or every write is 4 KiB; libfuse3 rejects `big_writes`/`max_write`/`max_read`;
several mounts in one process need Python's signal handlers installed before the first
mount; libfuse3 chdirs to /; a mount must be checked to have really appeared.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..flags import OptionValues
from ..lib.libc import libc_handle, trim_malloc
from .passthrough import Passthrough

if TYPE_CHECKING:
    from .ops import FuseOps

log = logging.getLogger("pyclone.mount")

MNT_DETACH = 2
FUSE_SUBTYPE = "rclone"  # fstype fuse.rclone, as rclone's own mounts, so tools keep working

_fuse_lock = threading.Lock()
_fuse_module: Any = None


class MountError(Exception):
    pass


def fuse_binding() -> Any:
    """Import the vendored binding on first use: it costs ~40 ms and start-up must stay fast."""
    global _fuse_module
    with _fuse_lock:
        if _fuse_module is None:
            try:
                from .._vendor import mfusepy
            except OSError as e:
                raise MountError(f"libfuse not found ({e}): install fuse3 (or libfuse2)") from None
            logging.getLogger("fuse").setLevel(logging.WARNING)
            _fuse_module = mfusepy
        return _fuse_module


def umount(path: str, lazy: bool = False) -> None:
    """umount2(2) directly when root; fusermount otherwise. Raises OSError."""
    if os.geteuid() == 0:
        libc = libc_handle()
        if libc.umount2(os.fsencode(path), MNT_DETACH if lazy else 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return
    import shutil
    import subprocess

    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        raise OSError(errno.ENOENT, "fusermount3 not found: install fuse3", path)
    res = subprocess.run([tool, "-uz" if lazy else "-u", path], capture_output=True, text=True)
    if res.returncode:
        raise OSError(errno.EBUSY if "busy" in res.stderr else errno.EINVAL, res.stderr.strip(), path)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) + 1 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_table() -> list[tuple[str, str]]:
    """(mountpoint, fstype) of every mount this process can see."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if len(fields) >= 5 and right:
                out.append((_unescape(fields[4]), right.split()[0]))
    return out


def fuse_mounts_under(base: str) -> list[str]:
    base = base.rstrip("/") + "/"
    return [mp for mp, fstype in mount_table() if fstype.startswith("fuse") and mp.startswith(base)]


def is_mountpoint(path: str) -> bool:
    return any(mp == path for mp, _ in mount_table())


def clean_stale_mounts(base: str) -> list[str]:
    """Lazily unmount FUSE mounts left under `base` by a previous (killed) run."""
    cleaned = []
    for mp in fuse_mounts_under(base):
        try:
            umount(mp, lazy=True)
            cleaned.append(mp)
            log.warning("removed stale FUSE mount %s", mp)
        except OSError as e:
            log.error("could not remove stale mount %s: %s", mp, e)
    return cleaned


def fuse_options(opts: OptionValues, devname: str, major: int) -> dict[str, Any]:
    """libfuse -o options for this libfuse major version, from rclone's mount flags."""
    o: dict[str, Any] = {
        "foreground": True,
        "fsname": devname.replace(",", "_"),
        "subtype": FUSE_SUBTYPE,
        "hard_remove": True,  # unlink of an open file must not leave .fuse_hidden files
        "attr_timeout": float(opts.attr_timeout),
        "entry_timeout": float(opts.attr_timeout),
        "debug": bool(opts.debug_fuse),
    }
    if opts.allow_other:
        o["allow_other"] = True
    if opts.allow_root and major == 2:
        o["allow_root"] = True
    if opts.default_permissions:
        o["default_permissions"] = True
    if opts.read_only:
        o["ro"] = True
    if opts.direct_io:
        o["direct_io"] = True
    else:
        # keep file pages in the kernel across opens unless size or mtime changed: re-reads
        # run at page-cache speed, and a file changed on the remote is still re-read
        o["auto_cache"] = True
    if major == 2:
        o["big_writes"] = True  # else every write arrives as 4 KiB
        o["max_readahead"] = int(opts.max_read_ahead)
        o["async_read" if opts.async_read else "sync_read"] = True
        if opts.allow_non_empty:
            o["nonempty"] = True
    else:
        # Workers never end while the volume is mounted (libfuse's max_threads is 10 too):
        # libfuse starts a thread whenever none is idle, and with fewer idle ones allowed it
        # ended one again for about every file created, each time with a fresh Python thread
        # state. A kept worker keeps its state (fuse/workers.py) and gives back its request
        # buffer's pages after big writes, so RSS stays where ending workers kept it.
        o["max_idle_threads"] = 10
        if not opts.async_read:
            o["sync_read"] = True
    for raw in opts.option or []:
        key, eq, value = raw.partition("=")
        if key:
            o[key.strip()] = value if eq else True
    return o


_serving: set[FuseMount] = set()  # mounts whose libfuse loop (and its workers) still runs


def still_serving() -> bool:
    """True while any libfuse loop of this process runs: its worker threads hold Python
    thread states (fuse/workers.py), which the interpreter's own teardown would free under
    them, so the process must then end with os._exit."""
    return bool(_serving)


class FuseMount:
    """One FUSE filesystem served by a thread of this process."""

    def __init__(self, mountpoint: str, ops: FuseOps, opts: OptionValues, devname: str,
                 on_exit: Callable[[FuseMount], None] | None = None) -> None:
        self.mountpoint = mountpoint
        self.ops = ops
        self.opts = opts
        self.devname = devname
        self.on_exit = on_exit
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self, fuse: Any, kwargs: dict[str, Any]) -> None:
        _serving.add(self)
        try:
            fuse.FUSE(self.ops, self.mountpoint, **kwargs)
        except BaseException as e:
            self.error = e
        finally:
            _serving.discard(self)
            passthrough = self.ops.passthrough
            if passthrough is not None:
                passthrough.uninstall()  # libfuse has closed its descriptor
            trim_malloc()
            if not self._stopping and self.on_exit is not None:
                try:
                    self.on_exit(self)
                except Exception:
                    log.exception("mount exit handler failed")

    def start(self, timeout: float = 30.0) -> None:
        fuse = fuse_binding()
        if not self.opts.allow_non_empty and os.listdir(self.mountpoint):
            raise MountError(f"directory {self.mountpoint} is not empty (use allow-non-empty to mount anyway)")
        kwargs = fuse_options(self.opts, self.devname, fuse.fuse_version_major)
        self.ops.passthrough = self._passthrough(fuse)
        before = os.stat(self.mountpoint).st_dev
        self._thread = threading.Thread(target=self._serve, args=(fuse, kwargs),
                                        name=f"fuse:{os.path.basename(self.mountpoint)}", daemon=True)
        self._thread.start()
        try:
            self._wait_mounted(before, timeout)
            if fuse.fuse_version_major == 3:
                self._set_read_ahead(int(self.opts.max_read_ahead))
        except BaseException:
            if self._thread.is_alive():
                self.unmount(lazy=True)  # never leave a half-started mount behind
            raise

    def _passthrough(self, fuse: Any) -> Passthrough | None:
        """Kernel passthrough for wholly cached files: cache modes writes and full on libfuse
        >= 3.14, as root, unless --direct-io asks for no page cache or PYCLONE_NO_PASSTHROUGH=1
        is set (whether the kernel can is learnt at the first file)."""
        if (self.ops.cache_mode not in ("writes", "full") or self.opts.direct_io or os.geteuid() != 0
                or fuse.fuse_version_major != 3 or not Passthrough.supported(fuse._libfuse)
                or os.environ.get("PYCLONE_NO_PASSTHROUGH", "") not in ("", "0")):
            return None
        return Passthrough(fuse._libfuse)

    def _set_read_ahead(self, size: int) -> None:
        """--max-read-ahead on libfuse3 is the mount's bdi read_ahead_kb (its option was removed).

        The kernel default is 128 KiB, rclone's default too, so only a changed value is written.
        """
        if size == 128 * 1024 or size <= 0 or os.geteuid() != 0:
            return
        dev = os.stat(self.mountpoint).st_dev
        path = f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb"
        try:
            with open(path, "w") as f:
                f.write(str(max(4, size // 1024)))
        except OSError as e:
            log.warning("cannot set --max-read-ahead on %s: %s", self.mountpoint, e)

    def _wait_mounted(self, dev_before: int, timeout: float) -> None:
        assert self._thread is not None
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            if not self._thread.is_alive():
                why = self.error or "it exited at once (was the mount removed from outside?)"
                raise MountError(f"libfuse failed to mount {self.mountpoint}: {why}"
                                 " (the plugin log has libfuse's message)")
            try:
                if os.stat(self.mountpoint).st_dev != dev_before:
                    return
            except OSError as e:
                if e.errno != errno.ENOTCONN:
                    raise MountError(f"mount of {self.mountpoint} is not usable: {e.strerror}") from None
            if time.monotonic() > deadline:
                raise MountError(f"mount of {self.mountpoint} did not appear within {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def unmount(self, lazy: bool = False, timeout: float = 10.0) -> None:
        """Commit open files, unmount, and wait for the serving thread to end."""
        self._stopping = True
        self.ops.close_all()
        try:
            umount(self.mountpoint, lazy=lazy)
        except OSError as e:
            if e.errno == errno.EBUSY and not lazy:
                log.warning("%s is busy; unmounting lazily", self.mountpoint)
                umount(self.mountpoint, lazy=True)
            elif e.errno != errno.EINVAL:  # EINVAL: not mounted any more
                raise
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("FUSE thread for %s did not stop within %.0fs", self.mountpoint, timeout)
