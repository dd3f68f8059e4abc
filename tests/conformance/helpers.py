"""Small helpers of the conformance suite; they use the Backend interface only."""

from __future__ import annotations

import contextlib
import errno
import random
from collections.abc import Iterator

import pytest

from pyclone_docker.backends.base import FEATURE_EMPTY_DIRS, Backend, Entry, read_full

MiB = 1 << 20


def data(n: int, seed: int = 0) -> bytes:
    """n bytes that differ from any other seed's and at every position."""
    return random.Random(seed).randbytes(n)


def put(b: Backend, path: str, content: bytes, mtime_ns: int | None = None, chunk: int = 64 * 1024,
        mode: int | None = None) -> None:
    w = b.open_write(path, len(content), mtime_ns, mode)
    try:
        view = memoryview(content)
        for i in range(0, len(content), chunk):
            part = view[i:i + chunk]
            assert w.write(part) == len(part)
    except BaseException:
        w.abort()
        raise
    w.close()


def get(b: Backend, path: str, offset: int = 0, length: int = -1, chunk: int = 64 * 1024) -> bytes:
    """The bytes a reader opened at `offset` gives until its end, at most `length` of them."""
    r = b.open_read(path, offset, length)
    try:
        return drain(r, chunk, length)
    finally:
        r.close()


def drain(reader, chunk: int = 64 * 1024, limit: int = -1) -> bytes:
    out = bytearray()
    buf = memoryview(bytearray(chunk))
    while limit < 0 or len(out) < limit:
        want = chunk if limit < 0 else min(chunk, limit - len(out))
        n = reader.readinto(buf[:want])
        if not n:
            break
        out += buf[:n]
    return bytes(out)


def read_exact(b: Backend, path: str, size: int) -> bytes:
    r = b.open_read(path)
    try:
        buf = bytearray(size)
        n = read_full(r, memoryview(buf))
        return bytes(buf[:n])
    finally:
        r.close()


def listing(b: Backend, path: str = "") -> dict[str, Entry]:
    entries = b.list(path)
    by_name = {e.name: e for e in entries}
    assert len(by_name) == len(entries), f"duplicate names in {path!r}: {[e.name for e in entries]}"
    return by_name


@contextlib.contextmanager
def raises(*errnos: int) -> Iterator[pytest.ExceptionInfo[OSError]]:
    """The block raises an OSError whose errno is one of `errnos`."""
    import errno as errno_mod

    with pytest.raises(OSError) as info:
        yield info
    got = info.value.errno
    want = ", ".join(errno_mod.errorcode.get(e, str(e)) for e in errnos)
    assert got in errnos, f"errno {errno_mod.errorcode.get(got or 0, got)} ({info.value}), expected {want}"


def gone_or_empty(backend: Backend, path: str) -> None:
    """A directory emptied: still there and empty on a backend with empty directories, gone
    (ENOENT) from an object store, where a directory lives only while objects lie below it."""
    if FEATURE_EMPTY_DIRS in backend.features:
        assert backend.list(path) == []
        return
    with raises(errno.ENOENT):
        backend.list(path)
    with raises(errno.ENOENT):
        backend.stat(path)
