"""The C library this process already has loaded (glibc or musl), and glibc's heap tuning."""

from __future__ import annotations

import ctypes
from typing import Any

_libc: Any = None


def libc_handle() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded (glibc or musl)
    return _libc


def tune_malloc() -> None:
    """Keep glibc from hoarding memory across many FUSE worker threads (the RSS target).

    Every thread would get its own malloc arena, and after the first 1 MiB request buffer
    is freed glibc raises its mmap threshold so later buffers stay resident. A fixed
    threshold and two arenas keep the process near its idle size after heavy I/O.
    """
    libc = libc_handle()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # musl: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_arena_max, 2)
    mallopt(m_mmap_threshold, 128 * 1024)
    mallopt(m_trim_threshold, 256 * 1024)


def trim_malloc() -> None:
    """Give the C heap's free pages back to the kernel (glibc's malloc_trim), after a mount's
    workers are gone: what a big listing or burst left free inside the arenas stays resident
    otherwise. A few milliseconds, once per unmount; nothing on musl."""
    trim = getattr(libc_handle(), "malloc_trim", None)
    if trim is not None:
        trim(0)
