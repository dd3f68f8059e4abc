"""Conformance of a Backend: listing, stat, reads, writes, directories, moves, errors, metadata.

Every test runs once per backend in conftest.CASES; see conftest.py for how to add one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from pyclone_docker.backends import base
from pyclone_docker.backends.base import (
    FEATURE_ABOUT,
    FEATURE_CHMOD,
    FEATURE_CHOWN,
    FEATURE_DIR_MOVE,
    FEATURE_EMPTY_DIRS,
    FEATURE_MODTIME,
    FEATURE_MOVE,
    FEATURE_RANDOM_READ,
    Backend,
)

from .case import BackendCase
from .helpers import MiB, data, drain, get, gone_or_empty, listing, put, raises

UPLOAD_BLOCK = 1 * MiB  # the VFS cache's upload block (vfs/cache.py)
T1 = 1_700_000_000_123_456_789  # a modtime with every digit of its nanoseconds set
T2 = 1_500_000_000_987_654_321


def posix(case: BackendCase, want: int, *fallback: int) -> tuple[int, ...]:
    """The errno a POSIX backend gives, plus what a backend without that distinction may."""
    return (want,) if case.posix_errors else (want, errno.ENOENT, *fallback)


def assert_mtime(case: BackendCase, got_ns: int, want_ns: int) -> None:
    assert abs(got_ns - want_ns) < case.modtime_precision_ns, \
        f"modtime {got_ns} is not {want_ns} within {case.modtime_precision_ns} ns"


# --- list and stat ------------------------------------------------------------------------

def test_root_is_an_empty_directory(backend: Backend) -> None:
    assert backend.stat("").is_dir
    assert backend.list("") == []


def test_list_files_and_directories(backend: Backend) -> None:
    put(backend, "a", b"abc")
    put(backend, "b", b"")
    backend.mkdir("d")
    put(backend, "d/e", b"12345")
    top = listing(backend)
    assert sorted(top) == ["a", "b", "d"]
    assert (top["a"].is_dir, top["a"].size) == (False, 3)
    assert (top["b"].is_dir, top["b"].size) == (False, 0)
    assert top["d"].is_dir
    sub = listing(backend, "d")
    assert list(sub) == ["e"] and sub["e"].size == 5 and not sub["e"].is_dir


def test_list_entry_agrees_with_stat(backend: Backend) -> None:
    put(backend, "d/f", data(1000), mtime_ns=T1 if FEATURE_MODTIME in backend.features else None)
    listed, st = listing(backend, "d")["f"], backend.stat("d/f")
    assert st.name == "f"
    assert listed.size == st.size == 1000
    assert listed.mtime_ns == st.mtime_ns and not listed.is_dir and not st.is_dir
    d = backend.stat("d")
    assert d.is_dir and d.name == "d"


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_missing_names_are_enoent(backend: Backend) -> None:
    backend.mkdir("d")
    for path in ("nope", "d/nope", "nope/deeper"):
        with raises(errno.ENOENT):
            backend.stat(path)
        with raises(errno.ENOENT):
            backend.list(path)
        with raises(errno.ENOENT):
            backend.open_read(path).close()
        with raises(errno.ENOENT):
            backend.delete(path)
        with raises(errno.ENOENT):
            backend.rmdir(path)
    assert sorted(listing(backend)) == ["d"]


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_missing_names_are_enoent_on_an_object_store(backend: Backend) -> None:
    put(backend, "d/f", b"x")
    for path in ("nope", "d/nope", "nope/deeper"):
        with raises(errno.ENOENT):
            backend.stat(path)
        with raises(errno.ENOENT):
            backend.list(path)
        with raises(errno.ENOENT):
            backend.open_read(path).close()
        with raises(errno.ENOENT):
            backend.delete(path)
        try:
            backend.rmdir(path)  # an object store may answer that nothing was there to remove
        except FileNotFoundError:
            pass
    assert sorted(listing(backend)) == ["d"] and get(backend, "d/f") == b"x"


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_a_file_is_not_a_directory(backend: Backend, case: BackendCase) -> None:
    put(backend, "f", b"x")
    with raises(*posix(case, errno.ENOTDIR)):
        backend.list("f")
    with raises(*posix(case, errno.ENOTDIR)):
        backend.stat("f/x")
    with raises(*posix(case, errno.ENOTDIR)):
        backend.mkdir("f/x")
    with raises(*posix(case, errno.ENOTDIR, errno.EEXIST)):
        put(backend, "f/x", b"y")
    with raises(*posix(case, errno.ENOTDIR)):
        backend.rmdir("f")
    assert get(backend, "f") == b"x"


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_an_object_is_not_a_prefix(backend: Backend) -> None:
    # a key "f/x" beside an object "f" is legal on an object store: only reads are checked
    put(backend, "f", b"x")
    with raises(errno.ENOTDIR, errno.ENOENT):
        backend.list("f")
    with raises(errno.ENOTDIR, errno.ENOENT):
        backend.stat("f/x")
    assert get(backend, "f") == b"x" and not backend.stat("f").is_dir


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_a_directory_is_not_a_file(backend: Backend, case: BackendCase) -> None:
    backend.mkdir("d")
    with raises(*posix(case, errno.EISDIR, errno.EEXIST)):
        put(backend, "d", b"x")
    with raises(*posix(case, errno.EISDIR, errno.EPERM)):
        backend.delete("d")
    with raises(*posix(case, errno.EISDIR)):
        get(backend, "d")  # at the open or at the first read
    assert backend.stat("d").is_dir and listing(backend)["d"].is_dir


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_a_prefix_is_not_an_object(backend: Backend) -> None:
    put(backend, "d/f", b"x")
    with raises(errno.EISDIR, errno.EPERM, errno.ENOENT):
        backend.delete("d")
    with raises(errno.EISDIR, errno.ENOENT):
        get(backend, "d")
    assert backend.stat("d").is_dir and listing(backend)["d"].is_dir and get(backend, "d/f") == b"x"


def test_paths_cannot_climb_out_of_the_root(backend: Backend, case: BackendCase) -> None:
    put(backend, "inside", b"x")
    for path in ("..", "../inside", "a/../../escape", "./../escape", "inside/../../escape"):
        with raises(*posix(case, errno.EINVAL)):
            backend.stat(path)
        with raises(*posix(case, errno.EINVAL)):
            put(backend, path + "/inside-w", b"x")
        with raises(*posix(case, errno.EINVAL)):
            backend.mkdir(path + "/escape-d")
    assert sorted(listing(backend)) == ["inside"]
    if backend.type_name == "local":
        root = Path(backend.root)
        assert not any(p.name.startswith(("escape", "inside-w")) for p in root.parent.iterdir())


# --- reads --------------------------------------------------------------------------------

def test_streaming_read_in_small_pieces(backend: Backend) -> None:
    content = data(100_000, 1)
    put(backend, "f", content)
    assert get(backend, "f", chunk=997) == content
    assert get(backend, "f", chunk=1 << 20) == content


@pytest.mark.parametrize(("offset", "length"), [
    (0, 10), (5, 1), (99_999, 1), (1000, 5000), (65_535, 65_537), (99_990, 100), (0, -1), (12_345, -1),
    (0, 100_000), (0, 0),
])
def test_ranged_reads(backend: Backend, offset: int, length: int) -> None:
    content = data(100_000, 2)
    put(backend, "f", content)
    want = content[offset:] if length < 0 else content[offset:offset + length]
    assert get(backend, "f", offset, length) == want


def test_ranged_stream_ends_at_length(backend: Backend) -> None:
    """A reader opened for (offset, length) ends after `length` bytes, as a ranged GET does."""
    content = data(10_000, 3)
    put(backend, "f", content)
    r = backend.open_read("f", 100, 1000)
    try:
        assert drain(r, 4096) == content[100:1100]
    finally:
        r.close()


def test_reads_at_and_past_the_end(backend: Backend) -> None:
    content = data(5000, 4)
    put(backend, "f", content)
    assert get(backend, "f", 5000) == b""
    assert get(backend, "f", 5000, 10) == b""
    assert get(backend, "f", 9000) == b""
    assert get(backend, "f", 4990, 1000) == content[4990:]  # a length past the end stops at it


def test_two_readers_are_independent(backend: Backend) -> None:
    content = data(200_000, 5)
    put(backend, "f", content)
    r1, r2 = backend.open_read("f"), backend.open_read("f", 150_000)
    try:
        a, b = bytearray(), bytearray()
        buf = memoryview(bytearray(1000))
        for _ in range(20):
            a += buf[:r1.readinto(buf)]
            b += buf[:r2.readinto(buf)]
        a += drain(r1, limit=1000)
        b += drain(r2)
    finally:
        r1.close()
        r2.close()
    assert bytes(a) == content[:len(a)] and len(a) >= 1000
    assert bytes(b) == content[150_000:]


def test_reader_close_is_idempotent(backend: Backend) -> None:
    put(backend, "f", b"abc")
    r = backend.open_read("f")
    r.close()
    r.close()


@pytest.mark.needs(FEATURE_RANDOM_READ)
def test_positional_reads(backend: Backend) -> None:
    content = data(300_000, 6)
    put(backend, "f", content)
    r = backend.open_read("f")
    try:
        buf = memoryview(bytearray(4096))
        assert r.readinto(buf[:10]) == 10
        for off in (0, 1, 4095, 100_000, 299_000, 296_000):
            n = r.pread_into(buf, off)  # type: ignore[attr-defined]
            assert bytes(buf[:n]) == content[off:off + 4096] and n == min(4096, 300_000 - off)
        assert r.pread_into(buf, 300_000) == 0  # type: ignore[attr-defined]
        assert r.pread_into(buf, 400_000) == 0  # type: ignore[attr-defined]
        assert r.readinto(buf[:10]) == 10 and bytes(buf[:10]) == content[10:20]  # the stream did not move
    finally:
        r.close()


@pytest.mark.needs(FEATURE_RANDOM_READ)
def test_positional_reads_from_many_threads(backend: Backend) -> None:
    content = data(2 * MiB, 7)
    put(backend, "f", content)
    r = backend.open_read("f")
    bad: list[int] = []

    def work(k: int) -> None:
        buf = memoryview(bytearray(65_536))
        for i in range(k, 32, 8):
            off = i * 65_536
            n = r.pread_into(buf, off)  # type: ignore[attr-defined]
            if bytes(buf[:n]) != content[off:off + 65_536]:
                bad.append(off)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.close()
    assert not bad


# --- writes -------------------------------------------------------------------------------

def test_write_then_stat_and_read(backend: Backend) -> None:
    content = data(12_345, 8)
    w = backend.open_write("f", len(content))
    view = memoryview(content)
    assert w.write(view[:5000]) == 5000
    assert w.write(view[5000:]) == len(content) - 5000
    w.close()
    assert backend.stat("f").size == len(content)
    assert get(backend, "f") == content


def test_empty_file(backend: Backend) -> None:
    backend.open_write("e", 0).close()
    assert backend.stat("e").size == 0 and not backend.stat("e").is_dir
    assert listing(backend)["e"].size == 0
    assert get(backend, "e") == b""
    for kind in backend.hashes:
        assert backend.hash("e", kind) == hashlib.new(kind, b"").hexdigest()


def test_file_larger_than_an_upload_block(backend: Backend) -> None:
    size = 3 * UPLOAD_BLOCK + 12_345
    content = data(size, 9)
    w = backend.open_write("big", size)
    view, pos = memoryview(content), 0
    for step in (UPLOAD_BLOCK + 1, 7, UPLOAD_BLOCK - 8, 2 * UPLOAD_BLOCK):  # uneven pieces
        pos += w.write(view[pos:pos + step])
    w.close()
    assert pos == size
    assert backend.stat("big").size == size
    assert hashlib.sha256(get(backend, "big", chunk=MiB)).digest() == hashlib.sha256(content).digest()
    edge = UPLOAD_BLOCK - 100
    assert get(backend, "big", edge, 200) == content[edge:edge + 200]  # across a block boundary
    assert get(backend, "big", 3 * UPLOAD_BLOCK) == content[3 * UPLOAD_BLOCK:]
    for kind in backend.hashes:
        assert backend.hash("big", kind) == hashlib.new(kind, content).hexdigest()


def test_overwrite_with_shorter_and_longer(backend: Backend) -> None:
    put(backend, "f", data(1000, 10))
    short = data(10, 11)
    put(backend, "f", short)
    assert get(backend, "f") == short and backend.stat("f").size == 10
    long = data(5000, 12)
    put(backend, "f", long)
    assert get(backend, "f") == long and backend.stat("f").size == 5000
    assert list(listing(backend)) == ["f"]


def test_write_makes_the_parent_directories(backend: Backend) -> None:
    put(backend, "p/q/r.txt", b"deep")
    assert listing(backend)["p"].is_dir
    assert listing(backend, "p")["q"].is_dir
    assert get(backend, "p/q/r.txt") == b"deep"


def test_abort_new_file_leaves_no_object(backend: Backend) -> None:
    w = backend.open_write("aborted", 10_000)
    w.write(memoryview(data(4000, 13)))
    w.abort()
    with raises(errno.ENOENT):
        backend.stat("aborted")
    assert "aborted" not in listing(backend)


def test_abort_overwrite_leaves_old_object_or_none(backend: Backend) -> None:
    old = data(3000, 14)
    put(backend, "f", old)
    w = backend.open_write("f", 10_000)
    w.write(memoryview(data(1000, 15)))
    w.abort()
    try:
        left = get(backend, "f")
    except FileNotFoundError:
        return
    assert left == old, f"an aborted upload left {len(left)} bytes that are not the old object"


@pytest.mark.needs(FEATURE_CHMOD)
def test_write_with_mode(backend: Backend) -> None:
    put(backend, "f", b"x", mode=0o640)
    mode = backend.stat("f").mode
    if mode is None:
        pytest.skip("this backend reports no permission bits")
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o640 & ~umask


# --- directories --------------------------------------------------------------------------

@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_mkdir_and_rmdir_of_an_empty_directory(backend: Backend) -> None:
    backend.mkdir("d")
    assert backend.stat("d").is_dir and listing(backend)["d"].is_dir
    assert backend.list("d") == []
    backend.mkdir("d/e")
    backend.rmdir("d/e")
    backend.rmdir("d")
    assert backend.list("") == []
    with raises(errno.ENOENT):
        backend.stat("d")


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_mkdir_on_an_object_store_stores_nothing_or_an_empty_directory(backend: Backend) -> None:
    backend.mkdir("d")  # nothing at all, or a directory marker
    try:
        assert backend.list("d") == []
    except FileNotFoundError:
        assert backend.list("") == []  # nothing stored: the name is not listed either
    else:
        assert list(listing(backend)) == ["d"]
    backend.mkdir("d/e")
    backend.rmdir("d/e")
    backend.rmdir("d")
    assert backend.list("") == []
    with raises(errno.ENOENT):
        backend.stat("d")


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_a_directory_lives_while_an_object_is_below_it(backend: Backend) -> None:
    put(backend, "a/b/f", b"1")
    put(backend, "a/b/g", b"2")
    assert backend.stat("a").is_dir and backend.stat("a/b").is_dir
    assert list(listing(backend)) == ["a"] and list(listing(backend, "a")) == ["b"]
    backend.mkdir("a")  # of a directory that exists: no error, or EEXIST; the objects stay
    backend.delete("a/b/f")
    assert list(listing(backend, "a/b")) == ["g"]
    backend.delete("a/b/g")  # the last object: the directories above it vanish with it
    gone_or_empty(backend, "a/b")
    gone_or_empty(backend, "a")
    assert backend.list("") == []


@pytest.mark.needs_not(FEATURE_EMPTY_DIRS)
def test_rmdir_of_a_prefix_with_objects(backend: Backend) -> None:
    put(backend, "d/f", b"x")
    put(backend, "e/sub/g", b"y")
    for path in ("d", "e", "e/sub"):
        with raises(errno.ENOTEMPTY, errno.EEXIST):
            backend.rmdir(path)
    assert get(backend, "d/f") == b"x" and get(backend, "e/sub/g") == b"y"
    assert sorted(listing(backend)) == ["d", "e"]


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_mkdir_of_an_existing_name(backend: Backend) -> None:
    backend.mkdir("d")
    put(backend, "d/f", b"keep")
    put(backend, "f", b"x")
    with raises(errno.EEXIST):
        backend.mkdir("d")
    with raises(errno.EEXIST):
        backend.mkdir("f")
    assert get(backend, "d/f") == b"keep" and get(backend, "f") == b"x"


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_mkdir_under_a_missing_parent(backend: Backend) -> None:
    with raises(errno.ENOENT):
        backend.mkdir("no/such")
    assert backend.list("") == []


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_rmdir_of_a_non_empty_directory(backend: Backend) -> None:
    put(backend, "d/f", b"x")
    backend.mkdir("e")
    backend.mkdir("e/sub")
    with raises(errno.ENOTEMPTY, errno.EEXIST):
        backend.rmdir("d")
    with raises(errno.ENOTEMPTY, errno.EEXIST):
        backend.rmdir("e")
    assert get(backend, "d/f") == b"x" and backend.stat("e/sub").is_dir


@pytest.mark.needs(FEATURE_EMPTY_DIRS)
def test_rmdir_of_a_missing_directory(backend: Backend) -> None:
    with raises(errno.ENOENT):
        backend.rmdir("gone")


def test_delete(backend: Backend) -> None:
    put(backend, "f", b"x")
    put(backend, "g", b"y")
    backend.delete("f")
    assert sorted(listing(backend)) == ["g"]
    with raises(errno.ENOENT):
        backend.stat("f")
    with raises(errno.ENOENT):
        backend.delete("f")


# --- moves --------------------------------------------------------------------------------

@pytest.mark.needs(FEATURE_MOVE)
def test_move_file(backend: Backend) -> None:
    content = data(777, 16)
    put(backend, "a", content, mtime_ns=T1 if FEATURE_MODTIME in backend.features else None)
    before = backend.stat("a")
    backend.move("a", "b")
    assert sorted(listing(backend)) == ["b"]
    assert get(backend, "b") == content
    after = backend.stat("b")
    assert (after.size, after.mtime_ns) == (before.size, before.mtime_ns)  # a move keeps the modtime


@pytest.mark.needs(FEATURE_MOVE)
def test_move_file_across_directories(backend: Backend) -> None:
    content = data(500, 17)
    put(backend, "x/a", content)
    backend.mkdir("y")
    backend.mkdir("y/z")
    backend.move("x/a", "y/z/b")
    gone_or_empty(backend, "x")
    assert list(listing(backend, "y/z")) == ["b"]
    assert get(backend, "y/z/b") == content


@pytest.mark.needs(FEATURE_MOVE)
def test_move_file_over_an_existing_file(backend: Backend) -> None:
    new = data(300, 18)
    put(backend, "d/old", data(3000, 19))
    put(backend, "src", new)
    backend.move("src", "d/old")
    assert list(listing(backend, "d")) == ["old"]
    assert "src" not in listing(backend)
    assert get(backend, "d/old") == new and backend.stat("d/old").size == 300


@pytest.mark.needs(FEATURE_MOVE)
def test_move_of_a_missing_file(backend: Backend) -> None:
    backend.mkdir("d")
    with raises(errno.ENOENT):
        backend.move("gone", "d/x")
    gone_or_empty(backend, "d")


@pytest.mark.needs(FEATURE_MOVE)
def test_move_file_over_a_directory(backend: Backend, case: BackendCase) -> None:
    put(backend, "f", b"x")
    put(backend, "d/keep", b"k")
    with raises(*posix(case, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY)):
        backend.move("f", "d")
    assert get(backend, "f") == b"x" and get(backend, "d/keep") == b"k"


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_directory(backend: Backend) -> None:
    files = {"t/a": data(10, 20), "t/s/b": data(20, 21), "t/s/u/c": b""}
    for path, content in files.items():
        put(backend, path, content)
    backend.mkdir("t/empty")  # moves along where empty directories exist
    backend.move("t", "n")
    assert sorted(listing(backend)) == ["n"]
    empty = ["empty"] if FEATURE_EMPTY_DIRS in backend.features else []
    assert sorted(listing(backend, "n")) == sorted(["a", "s", *empty])
    for path, content in files.items():
        assert get(backend, "n" + path[1:]) == content


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_directory_across_directories(backend: Backend) -> None:
    put(backend, "p/t/f", b"f")
    backend.mkdir("q")
    backend.move("p/t", "q/t2")
    gone_or_empty(backend, "p")
    assert get(backend, "q/t2/f") == b"f"
    with raises(errno.ENOENT):
        backend.stat("p/t")


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_directory_over_a_non_empty_directory(backend: Backend) -> None:
    put(backend, "a/f", b"a")
    put(backend, "b/g", b"b")
    with raises(errno.ENOTEMPTY, errno.EEXIST):
        backend.move("a", "b")
    assert get(backend, "a/f") == b"a" and get(backend, "b/g") == b"b"
    assert "f" not in listing(backend, "b")


@pytest.mark.needs(FEATURE_DIR_MOVE)
def test_move_directory_into_itself(backend: Backend, case: BackendCase) -> None:
    put(backend, "a/f", b"a")
    with raises(*posix(case, errno.EINVAL, errno.EEXIST)):
        backend.move("a", "a/sub")
    assert get(backend, "a/f") == b"a" and sorted(listing(backend, "a")) == ["f"]


# --- metadata -----------------------------------------------------------------------------

@pytest.mark.needs(FEATURE_MODTIME)
def test_set_modtime_of_a_file(backend: Backend, case: BackendCase) -> None:
    put(backend, "f", b"x")
    backend.set_modtime("f", T1)
    assert_mtime(case, backend.stat("f").mtime_ns, T1)
    assert_mtime(case, listing(backend)["f"].mtime_ns, T1)
    backend.set_modtime("f", T2)  # earlier than the first
    assert_mtime(case, backend.stat("f").mtime_ns, T2)
    assert get(backend, "f") == b"x"


@pytest.mark.needs(FEATURE_MODTIME)
def test_modtime_given_at_upload(backend: Backend, case: BackendCase) -> None:
    put(backend, "f", data(2 * UPLOAD_BLOCK, 22), mtime_ns=T1)
    assert_mtime(case, backend.stat("f").mtime_ns, T1)
    put(backend, "e", b"", mtime_ns=T2)
    assert_mtime(case, backend.stat("e").mtime_ns, T2)


@pytest.mark.needs(FEATURE_MODTIME)
def test_set_modtime_of_a_directory(backend: Backend, case: BackendCase) -> None:
    if not case.dir_modtime:
        pytest.skip(f"{case.id} keeps no directory modtimes")
    backend.mkdir("d")
    backend.set_modtime("d", T1)
    assert_mtime(case, backend.stat("d").mtime_ns, T1)


@pytest.mark.needs(FEATURE_MODTIME)
def test_set_modtime_of_a_missing_file(backend: Backend) -> None:
    with raises(errno.ENOENT):
        backend.set_modtime("gone", T1)


def test_upload_without_a_modtime_is_stamped_now(backend: Backend, case: BackendCase) -> None:
    slack = max(case.modtime_precision_ns, 2 * 10**9)  # clocks of a remote differ a little
    before = time.time_ns()
    put(backend, "f", b"x")
    after = time.time_ns()
    assert before - slack <= backend.stat("f").mtime_ns <= after + slack


@pytest.mark.needs(FEATURE_CHMOD)
def test_chmod(backend: Backend) -> None:
    put(backend, "f", b"x")
    backend.mkdir("d")
    backend.chmod("f", 0o604)
    backend.chmod("d", 0o711)
    if backend.stat("f").mode is None:
        pytest.skip("this backend reports no permission bits")
    assert backend.stat("f").mode == 0o604 and backend.stat("d").mode == 0o711
    assert listing(backend)["f"].mode == 0o604


@pytest.mark.needs(FEATURE_CHOWN)
def test_chown(backend: Backend) -> None:
    put(backend, "f", b"x")
    uid, gid = (4242, 4343) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    backend.chown("f", uid, gid)
    st = backend.stat("f")
    if st.uid is None:
        pytest.skip("this backend reports no owners")
    assert (st.uid, st.gid) == (uid, gid)


def test_truncate(backend: Backend, case: BackendCase) -> None:
    content = data(5000, 23)
    put(backend, "f", content)
    try:
        backend.truncate("f", 1000)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            pytest.skip(f"{case.id} cannot truncate in place")
        raise
    assert backend.stat("f").size == 1000 and get(backend, "f") == content[:1000]
    backend.truncate("f", 1500)
    assert get(backend, "f") == content[:1000] + bytes(500)
    with raises(errno.ENOENT):
        backend.truncate("gone", 0)


def test_about(backend: Backend) -> None:
    a = backend.about()
    for name in ("total", "used", "free"):
        value = getattr(a, name)
        assert value == -1 or value >= 0, (name, value)  # -1: unknown
    if FEATURE_ABOUT not in backend.features:
        return
    assert a.total > 0 and 0 <= a.free <= a.total and 0 <= a.used <= a.total
    assert a.used + a.free <= a.total


def test_features_are_known(backend: Backend) -> None:
    known = {v for k, v in vars(base).items() if k.startswith("FEATURE_")}
    assert backend.features <= known, backend.features - known


# --- hashes -------------------------------------------------------------------------------

def test_hash_matches_hashlib(backend: Backend, case: BackendCase) -> None:
    if not backend.hashes:
        pytest.skip(f"{case.id} has no hashes")
    for i, content in enumerate((b"", b"abc", data(UPLOAD_BLOCK + 3, 24))):
        put(backend, f"f{i}", content)
        for kind in backend.hashes:
            assert backend.hash(f"f{i}", kind) == hashlib.new(kind, content).hexdigest(), (kind, len(content))


def test_hash_follows_an_overwrite_of_the_same_size_and_modtime(backend: Backend, case: BackendCase) -> None:
    if not backend.hashes:
        pytest.skip(f"{case.id} has no hashes")
    stamp = T1 if FEATURE_MODTIME in backend.features else None
    a, b = data(4096, 25), data(4096, 26)
    put(backend, "f", a, mtime_ns=stamp)
    for kind in backend.hashes:
        assert backend.hash("f", kind) == hashlib.new(kind, a).hexdigest()
        backend.hash_written("f", kind, hashlib.new(kind, a).hexdigest())
    put(backend, "f", b, mtime_ns=stamp)
    for kind in backend.hashes:
        assert backend.hash("f", kind) == hashlib.new(kind, b).hexdigest(), kind


def test_hash_errors(backend: Backend, case: BackendCase) -> None:
    put(backend, "f", b"x")
    with raises(errno.ENOTSUP, errno.EINVAL):
        backend.hash("f", "no-such-hash")
    if backend.hashes:
        with raises(errno.ENOENT):
            backend.hash("gone", backend.hashes[0])
