"""The test-only latency and fault wrapper (tests/support/faulty.py) over a real local backend.

Timings are lower bounds (a sleep never ends early) or generous upper bounds and ratios,
never exact sleeps.
"""

from __future__ import annotations

import ast
import errno
import threading
import time
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import FEATURE_RANDOM_READ, Backend, read_full
from pyclone_docker.backends.local import LocalBackend
from tests.support.faulty import FaultyBackend, FaultyRandomReader, FaultyReader, wrap_new_fs

REPO = Path(__file__).resolve().parents[2]
DATA = bytes(range(256)) * 4  # 1 KiB, every byte's position visible
EPS = 0.002  # clock granularity allowance on the lower bounds


@pytest.fixture
def inner(tmp_path: Path) -> LocalBackend:
    b = LocalBackend("local", str(tmp_path / "root"), {})
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "f").write_bytes(DATA)
    return b


def put(b: Backend, path: str, data: bytes) -> None:
    w = b.open_write(path)
    w.write(memoryview(data))
    w.close()


def read_all(reader, chunk: int = 64) -> bytes:
    out = bytearray()
    buf = bytearray(chunk)
    while n := reader.readinto(memoryview(buf)):
        out += buf[:n]
    return bytes(out)


def test_mirrors_the_inner_backend(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    assert isinstance(b, Backend)
    assert (b.name, b.root, b.type_name, b.config) == (inner.name, inner.root, inner.type_name, inner.config)
    assert b.features == inner.features and b.hashes == inner.hashes
    assert [e.name for e in b.list("")] == ["f"]
    assert b.stat("f").size == len(DATA)
    r = b.open_read("f", 10)
    assert read_all(r) == DATA[10:]
    r.close()
    assert b.hash("f", "md5") == inner.hash("f", "md5")


def test_delay_applies_to_every_method(inner: LocalBackend) -> None:
    delay = 0.03
    b = FaultyBackend(inner, delay=delay)
    b.mkdir("d")
    put(b, "d/x", b"abc")
    b.stat("d/x")
    b.list("d")
    b.open_read("d/x").close()
    b.set_modtime("d/x", 10**18)
    b.chmod("d/x", 0o600)
    b.truncate("d/x", 1)
    b.hash("d/x", "md5")
    b.hash_written("d/x", "md5", "0" * 32)
    b.about()
    b.move("d/x", "d/y")
    b.delete("d/y")
    b.rmdir("d")
    b.change_notify(lambda p: None, 1.0)
    b.shutdown()
    methods = {"mkdir", "open_write", "stat", "list", "open_read", "set_modtime", "chmod", "truncate", "hash",
               "hash_written", "about", "move", "delete", "rmdir", "change_notify", "shutdown"}
    timed = {m: end - start for m, _, start, end in b.events if not m.startswith(("reader.", "writer."))}
    assert set(timed) == methods
    slow = {m: t for m, t in timed.items() if t < delay - EPS}
    assert not slow, slow
    # Reader and Writer calls are not delayed by `delay`: they have read_delay / delay_for
    assert b.calls["writer.write"] == 1 and b.calls["writer.close"] == 1 and b.calls["reader.close"] == 1


def test_delay_for_overrides_delay(inner: LocalBackend) -> None:
    b = FaultyBackend(inner, delay=5.0)
    b.delay_for["stat"] = 0.0
    b.delay_for["list"] = 0.05
    t0 = time.monotonic()
    b.stat("f")
    t_stat = time.monotonic() - t0
    t0 = time.monotonic()
    b.list("")
    t_list = time.monotonic() - t0
    assert t_stat < 2.5  # not the 5 s of `delay`
    assert 0.05 - EPS <= t_list < 2.5


def test_knobs_change_at_any_time(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    r = b.open_read("f")
    assert r.readinto(memoryview(bytearray(10))) == 10
    b.read_delay = 0.05
    t0 = time.monotonic()
    assert r.readinto(memoryview(bytearray(10))) == 10
    assert time.monotonic() - t0 >= 0.05 - EPS
    b.short_read_at = 25  # the open stream ends early from now on
    assert r.readinto(memoryview(bytearray(10))) == 5
    assert r.readinto(memoryview(bytearray(10))) == 0
    r.close()
    b.delay = 0.04
    t0 = time.monotonic()
    b.stat("f")
    assert time.monotonic() - t0 >= 0.04 - EPS


def test_read_delay_per_read_call_not_per_open(inner: LocalBackend) -> None:
    b = FaultyBackend(inner, read_delay=0.02)
    t0 = time.monotonic()
    r = b.open_read("f")
    opened = time.monotonic() - t0
    buf = memoryview(bytearray(100))
    t0 = time.monotonic()
    for _ in range(5):
        assert r.readinto(buf) == 100
    streamed = time.monotonic() - t0
    assert isinstance(r, FaultyRandomReader)
    t0 = time.monotonic()
    for i in range(5):
        assert r.pread_into(buf, i * 100) == 100
    positional = time.monotonic() - t0
    r.close()
    assert streamed >= 5 * 0.02 - EPS and positional >= 5 * 0.02 - EPS
    assert opened < streamed  # opening is not a read: read_delay is not added there
    reads = [end - start for m, _, start, end in b.events if m in ("reader.readinto", "reader.pread_into")]
    assert len(reads) == 10 and min(reads) >= 0.02 - EPS


def test_fail_nth_call(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    b.fail_nth["stat"] = {2, 4}
    b.stat("f")
    with pytest.raises(OSError) as e:
        b.stat("f")
    assert e.value.errno == errno.EIO
    b.stat("f")
    with pytest.raises(OSError):
        b.stat("f")
    b.stat("f")
    assert b.calls["stat"] == 5
    assert len([ev for ev in b.events if ev[0] == "stat"]) == 5
    # open_read's failure opens nothing; a read's failure leaves the stream usable
    b.fail_nth["open_read"] = {1}
    with pytest.raises(OSError) as e:
        b.open_read("f")
    assert e.value.errno == errno.EIO and not b.streams
    b.fail_nth["reader.readinto"] = {2}
    r = b.open_read("f")
    buf = memoryview(bytearray(4))
    assert r.readinto(buf) == 4
    with pytest.raises(OSError) as e:
        r.readinto(buf)
    assert e.value.errno == errno.EIO
    assert r.readinto(buf) == 4 and bytes(buf) == DATA[4:8]
    r.close()


def test_failed_call_does_not_run(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    b.fail_nth["delete"] = {1}
    with pytest.raises(OSError):
        b.delete("f")
    assert inner.stat("f").size == len(DATA)  # still there
    b.delete("f")
    with pytest.raises(FileNotFoundError):
        inner.stat("f")


def test_fail_reads_after_bytes(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    b.fail_reads_after = 100
    r = b.open_read("f", 50)
    got = bytearray()
    buf = memoryview(bytearray(30))
    with pytest.raises(OSError) as e:
        while True:
            n = r.readinto(buf)
            assert n, "the stream ended instead of failing"
            got += buf[:n]
    assert e.value.errno == errno.EIO
    assert bytes(got) == DATA[50:150]  # exactly 100 bytes, then the error
    # positional reads fail at the same byte: past opening offset + 100
    assert isinstance(r, FaultyRandomReader)
    assert r.pread_into(buf, 140) == 10 and bytes(buf[:10]) == DATA[140:150]
    with pytest.raises(OSError):
        r.pread_into(buf, 150)
    r.close()
    with pytest.raises(OSError):
        read_full(b.open_read("f"), memoryview(bytearray(200)))


def test_short_read_at(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    b.short_read_at = 100
    r = b.open_read("f", 10)
    assert read_all(r, 64) == DATA[10:110]
    assert r.readinto(memoryview(bytearray(8))) == 0  # and it stays ended
    buf = memoryview(bytearray(30))
    assert r.pread_into(buf, 100) == 10  # positions past 10 + 100 read as the end
    assert r.pread_into(buf, 110) == 0
    r.close()
    b.short_read_at = 0
    assert read_all(b.open_read("f")) == b""
    b.short_read_at = None
    assert read_all(b.open_read("f")) == DATA


def test_hold_blocks_until_set(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    gate = threading.Event()
    b.hold["open_read"] = gate
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(b.open_read("f")))
    t.start()
    assert b.wait_calls("open_read", 1, timeout=5)
    t.join(0.2)
    assert t.is_alive() and not out  # held: a fetch in progress, for as long as the test wants
    b.stat("f")  # other methods are not held
    gate.set()
    t.join(5)
    assert not t.is_alive() and isinstance(out[0], FaultyReader)
    out[0].close()  # type: ignore[attr-defined]
    held = [end - start for m, _, start, end in b.events if m == "open_read"]
    assert held and held[0] >= 0.2 - EPS


def test_hold_times_out_with_an_error(inner: LocalBackend) -> None:
    b = FaultyBackend(inner, hold_timeout=0.05)
    b.hold["list"] = threading.Event()
    with pytest.raises(OSError) as e:
        b.list("")
    assert e.value.errno == errno.ETIMEDOUT


def test_parallel_calls_are_not_serialised(inner: LocalBackend) -> None:
    delay = 0.2
    b = FaultyBackend(inner, delay=delay)
    threads = [threading.Thread(target=b.stat, args=("f",)) for _ in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert delay - EPS <= elapsed < 8 * delay / 2  # serialised calls would take 8 x delay


def test_counters_are_thread_safe(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)

    def work() -> None:
        for _ in range(300):
            b.stat("f")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.calls["stat"] == 2400
    assert len(b.events) == 2400
    assert all(start <= end for _, _, start, end in b.events)


def test_events_and_streams(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    put(b, "g", b"x" * 50)
    b.move("g", "h")
    r = b.open_read("h", 7, 20)
    assert read_all(r) == b"x" * 20  # a ranged stream ends at its length
    r.close()
    assert [(m, p) for m, p, _, _ in b.events if not m.startswith(("reader.", "writer."))] == [
        ("open_write", "g"), ("move", "g"), ("open_read", "h")]
    (s,) = b.streams
    assert (s.path, s.offset, s.length, s.delivered) == ("h", 7, 20, 20)
    assert s.closed is not None and s.closed >= s.opened
    b.reset()
    assert not b.calls and not b.events and not b.streams


def test_writer_faults(inner: LocalBackend) -> None:
    b = FaultyBackend(inner)
    b.fail_nth["writer.write"] = {2}
    b.delay_for["writer.close"] = 0.05
    w = b.open_write("w")
    w.write(memoryview(b"one"))
    with pytest.raises(OSError) as e:
        w.write(memoryview(b"two"))
    assert e.value.errno == errno.EIO
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 >= 0.05 - EPS
    assert inner.stat("w").size == 3
    w = b.open_write("w2")
    w.abort()
    assert b.calls["writer.abort"] == 1


def test_random_reads_only_where_the_inner_reader_has_them(tmp_path: Path) -> None:
    class StreamOnly:
        def __init__(self, r) -> None:
            self.r = r

        def readinto(self, view: memoryview) -> int:
            return self.r.readinto(view)

        def close(self) -> None:
            self.r.close()

    class StreamingLocal(LocalBackend):
        def __init__(self, *a) -> None:
            super().__init__(*a)
            self.features = self.features - {FEATURE_RANDOM_READ}

        def open_read(self, path: str, offset: int = 0, length: int = -1):  # type: ignore[override]
            return StreamOnly(super().open_read(path, offset, length))

    (tmp_path / "f").write_bytes(DATA)
    b = FaultyBackend(StreamingLocal("local", str(tmp_path), {}))
    r = b.open_read("f")
    assert FEATURE_RANDOM_READ not in b.features
    assert not hasattr(r, "pread_into")
    assert read_all(r) == DATA
    r.close()
    r = FaultyBackend(LocalBackend("local", str(tmp_path), {})).open_read("f")
    assert hasattr(r, "pread_into")
    r.close()


def test_extra_methods_are_forwarded_and_counted(tmp_path: Path) -> None:
    class ExtraWriter:
        def __init__(self, w) -> None:
            self.w = w

        def write(self, view: memoryview) -> int:
            return self.w.write(view)

        def close(self) -> None:
            self.w.close()

        def abort(self) -> None:
            self.w.abort()

        def written_by(self) -> str:
            return "extra writer"

    class ExtraLocal(LocalBackend):
        flavour = "extra"

        def server_side_copy(self, src: str, dst: str) -> None:
            put(self, dst, get_bytes(self, src))

        def open_write(self, path: str, size: int = -1, mtime_ns: int | None = None,  # type: ignore[override]
                       mode: int | None = None):
            return ExtraWriter(super().open_write(path, size, mtime_ns, mode))

    def get_bytes(b: Backend, path: str) -> bytes:
        r = b.open_read(path)
        try:
            return read_all(r)
        finally:
            r.close()

    (tmp_path / "f").write_bytes(DATA)
    b = FaultyBackend(ExtraLocal("local", str(tmp_path), {}), delay=0.02)
    b.server_side_copy("f", "g")  # a backend's own extra method
    assert b.calls["server_side_copy"] == 1
    (_, path, start, end), = [e for e in b.events if e[0] == "server_side_copy"]
    assert path == "f" and end - start >= 0.02 - EPS
    assert (tmp_path / "g").read_bytes() == DATA
    assert b.flavour == "extra"  # plain attributes too
    w = b.open_write("p")
    assert w.written_by() == "extra writer"  # the writer's extras too
    w.close()
    with pytest.raises(AttributeError):
        b.no_such_method  # noqa: B018


def test_wrap_new_fs_wraps_each_volume_backend_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(DATA)
    made, undo = wrap_new_fs(delay=0.01)
    try:
        local = fsmod.new_fs(f":local:{tmp_path}/d", fsmod.FsContext())
        alias = fsmod.new_fs(f":alias,remote='{tmp_path}':d", fsmod.FsContext())
    finally:
        undo()
    assert made == [local, alias]
    assert isinstance(alias, FaultyBackend) and not isinstance(alias.inner, FaultyBackend)
    assert alias.stat("f").size == len(DATA) and alias.calls["stat"] == 1
    plain = fsmod.new_fs(f":local:{tmp_path}/d", fsmod.FsContext())
    assert not isinstance(plain, FaultyBackend)  # undone


def test_nothing_in_the_package_imports_tests() -> None:
    bad = []
    for path in (REPO / "pyclone_docker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.relative_to(REPO)}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert not bad
