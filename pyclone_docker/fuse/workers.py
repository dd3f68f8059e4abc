"""libfuse's worker threads as Python sees them: a thread state each keeps while its mount
lives, and the request buffer each gives back after big writes. Called from the vendored
binding (tools/vendor_mfusepy.py, edit 8).

Thread states. A ctypes callback on a thread Python did not start creates a Python thread
state and destroys it on return: allocations and an mmap/munmap pair for every FUSE request,
five requests per small file created. Instead the first callback on a libfuse worker takes
one more PyGILState_Ensure, so the state outlives the callback, and records it with its
mount. When the mount's loop has ended, libfuse has joined all its workers; `release` then
clears and deletes their states. (Not from a pthread key destructor: glibc clears Python's
own thread-state key before running destructors, so Python cannot find the state there.)
Python 3.12+ also forgets the deleting thread's own state while doing so, so deletion runs
on a short-lived thread of its own.

Request buffers. Each worker reads requests into its own buffer (1 MiB + header on libfuse3),
and a big WRITE leaves those pages resident for the worker's life. The worker remembers where
the data was and gives the pages back (MADV_DONTNEED) at its next small request. Only that
worker may: while it runs a callback the kernel is not filling its buffer, and any other
worker's buffer may be being filled. The memory is per thread (thread-local data lives in
the kept thread state), so a record can never outlive its worker. Write data is in the
worker's own buffer only while splice reads are off, which `init` makes sure of. The first
page after the data's start is kept: the current small request (a header and at most a
name) lies before it.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

BIG_WRITE = 64 * 1024  # smaller writes leave too few pages to be worth a syscall
# callbacks (the binding's method names) whose request is a header and at most a name
SMALL_REQUESTS = frozenset({"getattr", "getattr_fuse_3", "read", "release", "flush", "open", "opendir", "readdir",
                            "readdir_fuse_3", "releasedir", "statfs", "access"})
FUSE_CAP_SPLICE_READ = 1 << 9  # the same bit in libfuse 2 and 3
# libfuse >= 3.12 never runs more than 10 workers per mount, and mount.py lets none of them end
# early; libfuse 2 and older 3.x start more under load and end those above 10 idle, whose kept
# states then wait for the unmount. This bounds them; later workers go without.
MAX_KEPT_STATES = 16
MADV_DONTNEED = 4  # the same on x86 and ARM
PAGE = os.sysconf("SC_PAGE_SIZE")  # 16 KiB on some arm64 kernels (Raspberry Pi 5)


class _Worker(threading.local):
    done = False  # this thread needs nothing more (its state is kept, or it is Python's own)
    big_write: tuple[int, int] | None = None  # (address, size) of a write still resident


worker = _Worker()
_api: Any = None  # None: not set up yet; False: unavailable
_libc: Any = None
_python_threads: dict[int, Any] | None = getattr(threading, "_active", None)


def init(conn: Any) -> None:
    """FUSE init: no splice reads, so write data arrives in the worker's own buffer."""
    if conn is None:
        return
    conn.want &= ~FUSE_CAP_SPLICE_READ
    if hasattr(conn, "want_ext"):
        conn.want_ext &= ~FUSE_CAP_SPLICE_READ


def enter(states: list[int], callback: str) -> None:
    """The first callback on a thread, or one with a big write to give back."""
    w = worker
    if not w.done:
        _keep_state(w, states, callback)
    span = w.big_write
    if span is not None and callback in SMALL_REQUESTS:
        w.big_write = None
        start = (span[0] + 2 * PAGE - 1) & ~(PAGE - 1)
        end = (span[0] + span[1]) & ~(PAGE - 1)
        if end > start:
            _libc.madvise(start, end - start, MADV_DONTNEED)


def note_write(address: int, size: int) -> None:
    if size >= BIG_WRITE:
        w = worker
        if w.done:  # lost with the callback's state otherwise, which is right: nothing to give back
            w.big_write = (address, size)


def release(states: list[int]) -> None:
    """Delete the thread states kept by a mount's workers, once libfuse has joined them all."""
    if not states:
        return
    kept = states[:]
    states.clear()
    t = threading.Thread(target=_delete_states, args=(kept,), name="fuse-worker-states", daemon=True)
    t.start()
    t.join()


def _keep_state(w: _Worker, states: list[int], callback: str) -> None:
    if callback == "destroy" or _python_threads is None or threading.get_ident() in _python_threads:
        w.done = True  # a thread Python started (libfuse calls destroy on the mount thread)
        return
    if len(states) >= MAX_KEPT_STATES or not _setup():
        return
    w.done = True
    held = _api.PyGILState_Ensure()
    if held != 0:  # not PyGILState_LOCKED: not inside a ctypes callback after all
        _api.PyGILState_Release(held)
        return
    states.append(_api.PyGILState_GetThisThreadState())


def _delete_states(states: list[int]) -> None:
    for state in states:
        _api.PyThreadState_Clear(state)
        _api.PyThreadState_Delete(state)


def _setup() -> bool:
    global _api, _libc
    if _api is None:
        try:
            api = ctypes.pythonapi
            api.PyGILState_Ensure.restype = ctypes.c_int
            api.PyGILState_Release.argtypes = [ctypes.c_int]
            api.PyGILState_GetThisThreadState.restype = ctypes.c_void_p
            api.PyThreadState_Clear.argtypes = [ctypes.c_void_p]
            api.PyThreadState_Delete.argtypes = [ctypes.c_void_p]
            from ..lib.libc import libc_handle

            libc = libc_handle()
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _api, _libc = api, libc
        except (AttributeError, OSError):
            _api = False
    return bool(_api)
