"""A latency and fault wrapper around any Backend, for tests and benchmarks only.

`FaultyBackend(inner, delay=0.05)` is `inner` as a network remote would look: every backend
call takes 50 ms longer, and a test can make chosen calls fail, block, or streams end early.
Every knob is a plain attribute a test may change at any time; each call reads it when it
runs:

- `delay`: seconds added to every backend method call (open_read and open_write included);
- `delay_for[method]`: overrides `delay` for one method; it also names Reader/Writer calls
  ("reader.readinto", "reader.pread_into", "reader.close", "writer.write", "writer.close",
  "writer.abort"), which by default take `read_delay` (reads) or nothing (the rest);
- `read_delay`: seconds added to each Reader.readinto / pread_into call;
- `fail_nth[method]`: 1-based call numbers of that method (counted as in `calls`) that raise
  OSError(EIO) instead of running (after their hold and delay, as a remote would);
- `fail_reads_after`: a Reader raises OSError(EIO) once it has delivered this many bytes;
- `short_read_at`: a Reader ends early (returns 0) once it has delivered this many bytes: a
  remote object shorter than announced;
- `hold[method]`: a call to that method blocks until the event is set (at most
  `hold_timeout` seconds, then OSError(ETIMEDOUT), so a broken test cannot hang for ever).

For pread_into, "delivered" means positions past the Reader's opening offset: a positional
read beyond `offset + short_read_at` returns 0 and beyond `offset + fail_reads_after` raises,
so a streamed and a positional read of one object fail at the same byte.

Observations, all thread safe:
- `calls`: a Counter of calls per method (counted when the call starts, before its hold);
- `events`: (method, path, start, end) per finished call, times from time.monotonic();
- `streams`: one `Stream` per Reader handed out (path, offset, length, bytes delivered).
`wait_calls(method, n)` blocks until `n` calls of `method` have started; `reset()` clears the
observations (not the knobs).

name, root, config, type_name, features and hashes are the inner backend's. Other
attributes are forwarded to it (a callable one is counted and delayed like a method).
"""

from __future__ import annotations

import collections
import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyclone_docker.backends.base import About, Backend, Entry, Reader, Writer

T = TypeVar("T")


@dataclass
class Stream:
    """One Reader a FaultyBackend handed out."""

    path: str
    offset: int
    length: int
    opened: float  # time.monotonic() when open_read was called
    delivered: int = 0  # bytes it returned so far (readinto and pread_into together)
    closed: float | None = None


class FaultyBackend(Backend):
    """`inner`, slowed down and made to fail on demand (see the module docstring)."""

    def __init__(self, inner: Backend, *, delay: float = 0.0, read_delay: float = 0.0,
                 hold_timeout: float = 60.0) -> None:
        super().__init__(inner.name, inner.root, inner.config)
        self.inner = inner
        if "ctx" in vars(inner):
            self.ctx = inner.ctx  # the global backend flags, where the Backend has them
        self.type_name = inner.type_name  # type: ignore[misc]  # mirrors the inner's ClassVar
        self.features = inner.features
        self.hashes = inner.hashes
        self.delay = delay
        self.delay_for: dict[str, float] = {}
        self.read_delay = read_delay
        self.fail_nth: dict[str, set[int]] = {}
        self.fail_reads_after: int | None = None
        self.short_read_at: int | None = None
        self.hold: dict[str, threading.Event] = {}
        self.hold_timeout = hold_timeout
        self.calls: collections.Counter[str] = collections.Counter()
        self.events: list[tuple[str, str, float, float]] = []
        self.streams: list[Stream] = []
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"FaultyBackend({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes this class lacks (a backend's extra methods)
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            path = args[0] if args and isinstance(args[0], str) else ""
            return self._run(name, path, attr, *args, **kwargs)

        return call

    # --- observations ------------------------------------------------------------------

    def wait_calls(self, method: str, n: int = 1, timeout: float = 10.0) -> bool:
        """True once `n` calls of `method` have started (False after `timeout` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.calls[method] >= n, timeout)

    def reset(self) -> None:
        with self._cond:
            self.calls.clear()
            self.events.clear()
            self.streams.clear()

    # --- the wrapper ---------------------------------------------------------------------

    def _run(self, method: str, path: str, fn: Callable[..., T], *args: Any,
             default_delay: float | None = None, **kwargs: Any) -> T:
        start = time.monotonic()
        with self._cond:
            self.calls[method] += 1
            n = self.calls[method]
            self._cond.notify_all()
        try:
            event = self.hold.get(method)
            if event is not None and not event.wait(self.hold_timeout):
                raise OSError(errno.ETIMEDOUT, f"faulty: {method} held for over {self.hold_timeout} s", path)
            pause = self.delay_for.get(method, self.delay if default_delay is None else default_delay)
            if pause > 0:
                time.sleep(pause)
            if n in self.fail_nth.get(method, ()):
                raise OSError(errno.EIO, f"faulty: call {n} of {method} fails", path)
            return fn(*args, **kwargs)
        finally:
            end = time.monotonic()
            with self._cond:
                self.events.append((method, path, start, end))

    def _delivered(self, stream: Stream, n: int) -> None:
        with self._cond:
            stream.delivered += n

    def _allowed(self, done: int, want: int, path: str) -> int:
        """How many of `want` bytes a Reader `done` bytes into its object may deliver now."""
        short, fail = self.short_read_at, self.fail_reads_after
        if short is not None:
            want = min(want, max(0, short - done))
            if want == 0:
                return 0  # the remote's object ends here
        if fail is not None:
            if done >= fail and want > 0:
                raise OSError(errno.EIO, f"faulty: read fails after {fail} bytes", path)
            want = min(want, max(0, fail - done))
        return want

    # --- Backend ---------------------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        return self._run("list", path, self.inner.list, path)

    def stat(self, path: str) -> Entry:
        return self._run("stat", path, self.inner.stat, path)

    def open_read(self, path: str, offset: int = 0, length: int = -1) -> FaultyReader:
        opened = time.monotonic()
        reader = self._run("open_read", path, self.inner.open_read, path, offset, length)
        stream = Stream(path, offset, length, opened)
        with self._cond:
            self.streams.append(stream)
        cls = FaultyRandomReader if hasattr(reader, "pread_into") else FaultyReader
        return cls(self, reader, stream)

    def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,
                   mode: int | None = None) -> FaultyWriter:
        writer = self._run("open_write", path, self.inner.open_write, path, size, mtime_ns, mode)
        return FaultyWriter(self, writer, path)

    def mkdir(self, path: str) -> None:
        self._run("mkdir", path, self.inner.mkdir, path)

    def rmdir(self, path: str) -> None:
        self._run("rmdir", path, self.inner.rmdir, path)

    def delete(self, path: str) -> None:
        self._run("delete", path, self.inner.delete, path)

    def move(self, src: str, dst: str) -> None:
        self._run("move", src, self.inner.move, src, dst)

    def set_modtime(self, path: str, mtime_ns: int) -> None:
        self._run("set_modtime", path, self.inner.set_modtime, path, mtime_ns)

    def chmod(self, path: str, mode: int) -> None:
        self._run("chmod", path, self.inner.chmod, path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._run("chown", path, self.inner.chown, path, uid, gid)

    def truncate(self, path: str, size: int) -> None:
        self._run("truncate", path, self.inner.truncate, path, size)

    def about(self) -> About:
        return self._run("about", "", self.inner.about)

    def hash(self, path: str, kind: str) -> str:
        return self._run("hash", path, self.inner.hash, path, kind)

    def hash_written(self, path: str, kind: str, digest: str) -> None:
        self._run("hash_written", path, self.inner.hash_written, path, kind, digest)

    def change_notify(self, callback: Callable[[str], None], interval: float) -> None:
        self._run("change_notify", "", self.inner.change_notify, callback, interval)

    def shutdown(self) -> None:
        self._run("shutdown", "", self.inner.shutdown)


class FaultyReader:
    """A streaming Reader of the inner backend, with the wrapper's read delay and faults."""

    __slots__ = ("backend", "inner", "stream")

    def __init__(self, backend: FaultyBackend, inner: Reader, stream: Stream) -> None:
        self.backend = backend
        self.inner = inner
        self.stream = stream

    def readinto(self, view: memoryview) -> int:
        b = self.backend
        return b._run("reader.readinto", self.stream.path, self._readinto, view, default_delay=b.read_delay)

    def _readinto(self, view: memoryview) -> int:
        want = self.backend._allowed(self.stream.delivered, len(view), self.stream.path)
        if want == 0 and len(view):
            return 0
        got = self.inner.readinto(view[:want])
        self.backend._delivered(self.stream, got)
        return got

    def close(self) -> None:
        self.backend._run("reader.close", self.stream.path, self._close, default_delay=0.0)

    def _close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self.stream.closed is None:
                self.stream.closed = time.monotonic()


class FaultyRandomReader(FaultyReader):
    """A Reader whose inner one has pread_into (FEATURE_RANDOM_READ)."""

    __slots__ = ()

    def pread_into(self, view: memoryview, offset: int) -> int:
        b = self.backend
        return b._run("reader.pread_into", self.stream.path, self._pread_into, view, offset,
                      default_delay=b.read_delay)

    def _pread_into(self, view: memoryview, offset: int) -> int:
        done = max(0, offset - self.stream.offset)
        want = self.backend._allowed(done, len(view), self.stream.path)
        if want == 0 and len(view):
            return 0
        got = self.inner.pread_into(view[:want], offset)  # type: ignore[attr-defined]
        self.backend._delivered(self.stream, got)
        return got


class FaultyWriter:
    """A Writer of the inner backend; its calls are counted, and can be delayed, held or failed."""

    __slots__ = ("backend", "inner", "path")

    def __init__(self, backend: FaultyBackend, inner: Writer, path: str) -> None:
        self.backend = backend
        self.inner = inner
        self.path = path

    def __getattr__(self, name: str) -> Any:  # a backend writer's extra methods
        if name.startswith("_") or name in FaultyWriter.__slots__:
            raise AttributeError(name)
        return getattr(self.inner, name)

    def write(self, view: memoryview) -> int:
        return self.backend._run("writer.write", self.path, self.inner.write, view, default_delay=0.0)

    def close(self) -> None:
        self.backend._run("writer.close", self.path, self.inner.close, default_delay=0.0)

    def abort(self) -> None:
        self.backend._run("writer.abort", self.path, self.inner.abort, default_delay=0.0)


def wrap_new_fs(**knobs: Any) -> tuple[list[FaultyBackend], Callable[[], None]]:
    """Make `pyclone_docker.fs.new_fs` return its backend wrapped in FaultyBackend(**knobs),
    in this process only (the bench's slow plugin). An alias's inner remote, built through
    the same function, is not wrapped again. Returns the list that collects the wrappers made
    and a function that puts the original back."""
    from pyclone_docker import fs as fsmod

    original = fsmod.new_fs
    made: list[FaultyBackend] = []
    inside = threading.local()

    def new_fs(*args: Any, **kwargs: Any) -> Backend:
        if getattr(inside, "depth", 0):
            return original(*args, **kwargs)
        inside.depth = 1
        try:
            inner = original(*args, **kwargs)
        finally:
            inside.depth = 0
        wrapped = FaultyBackend(inner, **knobs)
        made.append(wrapped)
        return wrapped

    def undo() -> None:
        fsmod.new_fs = original

    fsmod.new_fs = new_fs
    return made, undo
