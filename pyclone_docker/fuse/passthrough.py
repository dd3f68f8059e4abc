"""FUSE passthrough: the kernel serves a wholly cached file from its cache file.

In cache modes writes and full, an open of a file whose bytes are all in the cache can be
handed to the kernel (Linux >= 6.9): its reads and writes go straight to the cache file,
through that file's own page cache, and no request reaches the plugin. Re-reads then run at
the speed of the disk's page cache instead of the FUSE page cache's (4 KiB folios, an LRU
activation each), and writes cost the plugin nothing. Which opens qualify, and what the cache
does about writes it does not see, is CacheItem.open_passthrough's business.

libfuse learned passthrough in 3.16; Debian 12 ships 3.14. The kernel needs only fields that
older libfuse leaves zero: FUSE_PASSTHROUGH and max_stack_depth in the INIT reply, and
FOPEN_PASSTHROUGH and a backing id in an OPEN or CREATE reply. libfuse >= 3.14 lets a
filesystem write its replies itself (fuse_session_custom_io), so `install` takes over the
reply path and sets those fields on the way out; requests are still read by libfuse with
read(2) itself. Backing ids come from the FUSE_DEV_IOC_BACKING_OPEN ioctl on /dev/fuse,
which only root may use. Wherever a piece is missing (libfuse 2 or < 3.14, an older kernel,
no CAP_SYS_ADMIN) the first ioctl fails and every file is served the usual way.

An open in passthrough is marked by `grant` on the worker thread that will send its reply:
libfuse sends the reply on that thread right after the open callback returns.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import threading
from typing import Any

log = logging.getLogger("pyclone.fuse")

# include/uapi/linux/fuse.h (protocol 7.40)
FUSE_INIT_EXT = 1 << 30
FUSE_PASSTHROUGH_FLAGS2 = 1 << (37 - 32)  # FUSE_PASSTHROUGH is bit 37: bit 5 of flags2
FOPEN_DIRECT_IO = 1 << 0
FOPEN_NOFLUSH = 1 << 5
FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6
FOPEN_PASSTHROUGH = 1 << 7
# the only open flags the kernel accepts beside FOPEN_PASSTHROUGH (else the open is EIO);
# FOPEN_KEEP_CACHE, which libfuse's auto_cache sets, is not among them
PASSTHROUGH_OPEN_FLAGS = FOPEN_DIRECT_IO | FOPEN_NOFLUSH | FOPEN_PARALLEL_DIRECT_WRITES
INIT_OUT_SIZE = 64  # struct fuse_init_out: flags at 12, flags2 at 32, max_stack_depth at 36
OPEN_OUT_SIZE = 16  # struct fuse_open_out: fh, open_flags at 8, backing_id at 12
ENTRY_OUT_SIZE = 128  # a CREATE reply is fuse_entry_out then fuse_open_out
HEADER_ERROR = 4  # struct fuse_out_header: len, error, unique
# _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t): the same on x86 and ARM
FUSE_DEV_IOC_BACKING_OPEN = 0x4010E501
FUSE_DEV_IOC_BACKING_CLOSE = 0x4004E502
# the cache file may itself sit on a stacked filesystem (overlayfs) no deeper than this
MAX_STACK_DEPTH = 1


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _CustomIo(ctypes.Structure):
    _fields_ = [("writev", ctypes.c_void_p), ("read", ctypes.c_void_p),
                ("splice_receive", ctypes.c_void_p), ("splice_send", ctypes.c_void_p)]


class _BackingMap(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int32), ("flags", ctypes.c_uint32), ("padding", ctypes.c_uint64)]


# The iovec array comes in as a bare address: cheaper per call than a ctypes pointer object.
# use_errno: libfuse reads errno after the reply (ENOENT: the request was interrupted, and an
# open must then be released); ctypes carries writev's errno out of the callback.
_WRITEV = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                           use_errno=True)


class Passthrough:
    """One mount's passthrough: the reply hook and its backing ids.

    A Python callback per reply would cost every request of the mount a few microseconds
    (about 10% of a small file's CPU time). So the hook is on libfuse's reply path only while
    a reply needs marking, the INIT reply or a granted open's, and libc's own writev is there
    the rest of the time. libfuse keeps the custom io in a struct the session points to; the
    pointer's place is checked before it is used (else the hook simply stays on).
    """

    def __init__(self, libfuse: Any) -> None:
        self.libfuse = libfuse
        self.fd = -1  # the mount's /dev/fuse descriptor, while its loop runs
        self.usable = True  # False once the kernel has refused a backing file outright
        self._init_reply_due = False
        self._writev_cb = _WRITEV(self._writev)  # referenced here for as long as libfuse may call it
        self._hook = ctypes.cast(self._writev_cb, ctypes.c_void_p).value
        from ..lib.libc import libc_handle

        libc = libc_handle()  # use_errno: writev's and ioctl's errno are read after the call
        self._libc_writev = ctypes.cast(libc.writev, ctypes.c_void_p).value
        self._libc_read = ctypes.cast(libc.read, ctypes.c_void_p).value
        self._sys_writev = libc.writev
        self._sys_writev.restype = ctypes.c_ssize_t
        self._sys_writev.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        self._ioctl = libc.ioctl
        self._io: _CustomIo | None = None  # libfuse's copy of the custom io, when found
        self._granted = 0  # granted opens whose reply has not passed yet
        # backing id by native thread id: the reply follows the open callback on its thread, but
        # a thread-local would not survive between the two on a worker without a kept Python
        # thread state (fuse_workers.py)
        self._grants: dict[int, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def supported(libfuse: Any) -> bool:
        return _custom_io_function(libfuse) is not None and hasattr(libfuse, "fuse_get_session")

    def install(self) -> bool:
        """From the FUSE init callback, before libfuse sends the INIT reply."""
        lib = self.libfuse
        fuse_ptr = lib.fuse_get_context().contents.fuse
        lib.fuse_get_session.restype = ctypes.c_void_p
        lib.fuse_get_session.argtypes = [ctypes.c_void_p]
        lib.fuse_session_fd.argtypes = [ctypes.c_void_p]
        custom_io = _custom_io_function(lib)
        custom_io.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        session = lib.fuse_get_session(fuse_ptr)
        if not session:
            return False
        fd = lib.fuse_session_fd(session)
        io_field = _io_pointer_field(session, fd)
        io = _CustomIo(self._hook, self._libc_read, None, None)
        if fd < 0 or custom_io(session, ctypes.byref(io), fd) != 0:  # libfuse copies io
            return False
        if io_field is not None and io_field.value:
            copy = _CustomIo.from_address(io_field.value)
            if copy.writev == self._hook and copy.read == self._libc_read:
                self._io = copy
        self.fd = fd
        self._init_reply_due = True
        log.debug("FUSE passthrough: reply hook installed (%s)",
                  "switched off between replies" if self._io is not None else "on every reply: libfuse's io not found")
        return True

    def grant(self, backing_id: int) -> None:
        """The open being answered on this thread goes to the kernel with this backing id."""
        with self._lock:
            self._grants[threading.get_native_id()] = backing_id
            self._granted += 1
            if self._io is not None:
                self._io.writev = self._hook  # before this thread's reply reads it

    def _replied(self, granted: int) -> None:
        with self._lock:
            self._granted -= granted
            if not self._granted and self._io is not None:
                self._io.writev = self._libc_writev

    def uninstall(self) -> None:
        """The mount's loop has ended: its descriptor is closed (and its number may be reused)
        and libfuse has freed its copy of the custom io."""
        with self._lock:
            self.fd = -1
            self._io = None

    def open_backing(self, fd: int) -> int:
        """Register an open cache file with the kernel; its backing id, or 0 (serve it here)."""
        if self.fd < 0 or not self.usable:
            return 0
        arg = _BackingMap(fd, 0, 0)
        backing_id = self._ioctl(self.fd, FUSE_DEV_IOC_BACKING_OPEN, ctypes.byref(arg))
        if backing_id > 0:
            return backing_id
        err = ctypes.get_errno()
        if err in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            return 0  # short of resources now: this file the usual way
        # the kernel, the process (no CAP_SYS_ADMIN) or the cache directory's filesystem
        # (ELOOP: overlayfs) cannot do it, for any file: stop asking
        self.usable = False
        why = "the cache directory is on a stacked filesystem" if err == errno.ELOOP else errno.errorcode.get(err, err)
        log.info("FUSE passthrough unavailable (%s): files are served through the plugin", why)
        return 0

    def close_backing(self, backing_id: int) -> None:
        """Forget a backing id; files the kernel opened with it keep working until closed."""
        if self.fd >= 0 and backing_id > 0:
            self._ioctl(self.fd, FUSE_DEV_IOC_BACKING_CLOSE, ctypes.byref(ctypes.c_uint32(backing_id)))

    def _writev(self, fd: int, iov_address: int, count: int, _userdata: Any) -> int:
        # replies pass here while one needs marking (all of them where _io is unknown); the
        # writev comes last, so libfuse reads its errno, and nothing may keep it from running:
        # an exception here would make ctypes answer 0 and the reply would be lost
        try:
            if self._grants:
                with self._lock:
                    backing_id = self._grants.pop(threading.get_native_id(), 0)
                if backing_id:
                    try:
                        _mark_open_reply((_IoVec * count).from_address(iov_address), count, backing_id)
                    finally:
                        self._replied(1)
            if self._init_reply_due:
                self._init_reply_due = False
                try:
                    _mark_init_reply((_IoVec * count).from_address(iov_address), count)
                finally:
                    self._replied(0)
        except BaseException:
            log.exception("FUSE passthrough: cannot mark a reply")
        return self._sys_writev(fd, iov_address, count)


def _custom_io_function(libfuse: Any) -> Any:
    """fuse_session_custom_io with its 3.14 signature (se, io, fd), or None. libfuse 3.17 gave
    the plain name a struct-size argument and kept the old one as fuse_session_custom_io_30."""
    for name in ("fuse_session_custom_io_30", "fuse_session_custom_io"):
        try:
            return getattr(libfuse, name)
        except AttributeError:
            continue
    return None


def _io_pointer_field(session: int, fd: int) -> Any:
    """struct fuse_session's `io` pointer, still NULL before custom io is set, or None when
    the layout is not one known. 3.14-3.17 begin: char *mountpoint; int exited; int fd;
    struct fuse_custom_io *io. Later ones drop `exited`. The descriptor's place confirms it."""
    word = ctypes.sizeof(ctypes.c_void_p)
    for fd_offset in (word + 4, word):
        io_offset = (fd_offset + 4 + word - 1) & ~(word - 1)
        io_field = ctypes.c_void_p.from_address(session + io_offset)
        if ctypes.c_int.from_address(session + fd_offset).value == fd and not io_field.value:
            return io_field
    return None


def _mark_init_reply(iov: Any, count: int) -> None:
    if count != 2 or iov[1].len < INIT_OUT_SIZE:
        return  # an older protocol's short reply: that kernel has no passthrough
    base = iov[1].base
    if not ctypes.c_uint32.from_address(base + 12).value & FUSE_INIT_EXT:
        return  # the kernel offered no second flags word
    ctypes.c_uint32.from_address(base + 32).value |= FUSE_PASSTHROUGH_FLAGS2
    depth = ctypes.c_uint32.from_address(base + 36)
    if depth.value == 0:
        depth.value = MAX_STACK_DEPTH


def _mark_open_reply(iov: Any, count: int, backing_id: int) -> None:
    if count != 2 or ctypes.c_int32.from_address(iov[0].base + HEADER_ERROR).value != 0:
        return  # an error reply: nothing was opened
    size = iov[1].len
    if size not in (OPEN_OUT_SIZE, ENTRY_OUT_SIZE + OPEN_OUT_SIZE):
        return
    out = iov[1].base + size - OPEN_OUT_SIZE
    flags = ctypes.c_uint32.from_address(out + 8)
    flags.value = (flags.value & PASSTHROUGH_OPEN_FLAGS) | FOPEN_PASSTHROUGH
    ctypes.c_int32.from_address(out + 12).value = backing_id
