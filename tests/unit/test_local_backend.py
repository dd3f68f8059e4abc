"""The local backend's own logic, on a temp directory (no FUSE, no root)."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from pyclone_docker.backends import local as localmod
from pyclone_docker.backends.base import FEATURE_MODTIME, BackendContext, read_full
from pyclone_docker.backends.local import INFO, LocalBackend


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "root"
    d.mkdir()
    (d / "f.txt").write_bytes(b"0123456789")
    (d / "dir").mkdir()
    os.symlink("f.txt", d / "link")
    return d


def write(b: LocalBackend, path: str, data: bytes, **kw) -> None:
    w = b.open_write(path, len(data), **kw)
    w.write(memoryview(data))
    w.close()


def test_options_are_read_with_the_flag_parsers(root: Path) -> None:
    assert LocalBackend("local", str(root), {"copy_links": "T"}).copy_links is True
    assert LocalBackend("local", str(root), {"copy_links": "0"}).copy_links is False
    assert LocalBackend("local", str(root), {}).copy_links is False
    with pytest.raises(ValueError, match=r'"no_set_modtime" = "yes" as bool'):
        LocalBackend("local", str(root), {"no_set_modtime": "yes"})  # was silently false before
    assert LocalBackend.options is INFO.options and INFO.factory is LocalBackend


def test_root_and_context(root: Path) -> None:
    b = LocalBackend("local", str(root) + "/dir/..", {})
    assert b.root == str(root)
    assert LocalBackend("local", "", {}).root == "/"
    ctx = BackendContext(timeout=1.0)
    assert LocalBackend("local", str(root), {}, ctx).ctx is ctx
    assert LocalBackend("local", str(root), {}).ctx == BackendContext()


def test_paths_never_climb_out(root: Path) -> None:
    b = LocalBackend("local", str(root), {})
    for bad in ("/etc/passwd", "../x", "dir/../../x", ".."):
        with pytest.raises(OSError) as ei:
            b.stat(bad)
        assert ei.value.errno == errno.EINVAL
    assert b.stat("").is_dir and b.stat("dir/.").is_dir


def test_symlinks_are_hidden_unless_copy_links(root: Path) -> None:
    plain = LocalBackend("local", str(root), {})
    assert sorted(e.name for e in plain.list("")) == ["dir", "f.txt"]
    with pytest.raises(FileNotFoundError):
        plain.stat("link")
    follow = LocalBackend("local", str(root), {"copy_links": "true"})
    entries = {e.name: e for e in follow.list("")}
    assert entries["link"].size == 10 and not entries["link"].is_link
    assert follow.stat("link").size == 10
    os.symlink("missing", root / "dangling")
    assert "dangling" not in {e.name for e in follow.list("")}  # vanished target: skipped


def test_entries_carry_posix_metadata(root: Path) -> None:
    os.chmod(root / "f.txt", 0o640)
    st = os.stat(root / "f.txt")
    e = LocalBackend("local", str(root), {}).stat("f.txt")
    assert (e.name, e.is_dir, e.size, e.mode, e.uid, e.gid, e.mtime_ns, e.ctime_ns) == \
        ("f.txt", False, 10, 0o640, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_ctime_ns)


def test_reads_stream_and_pread(root: Path) -> None:
    b = LocalBackend("local", str(root), {})
    r = b.open_read("f.txt", 3)
    buf = bytearray(4)
    assert read_full(r, memoryview(buf)) == 4 and bytes(buf) == b"3456"
    assert r.pread_into(memoryview(buf), 0) == 4 and bytes(buf) == b"0123"
    r.close()
    r.close()  # twice is harmless
    assert r.fd == -1


def test_writes_make_parents_set_mtime_and_mode(root: Path) -> None:
    b = LocalBackend("local", str(root), {})
    old = os.umask(0o022)
    try:
        write(b, "new/deeper/g.bin", b"abc", mtime_ns=1_500_000_000_123_456_789, mode=0o600)
    finally:
        os.umask(old)
    st = os.stat(root / "new/deeper/g.bin")
    assert (root / "new/deeper/g.bin").read_bytes() == b"abc"
    assert st.st_mtime_ns == 1_500_000_000_123_456_789 and st.st_mode & 0o777 == 0o600
    write(b, "f.txt", b"x")  # a replacement truncates
    assert (root / "f.txt").read_bytes() == b"x"
    w = b.open_write("aborted", 1)
    w.write(memoryview(b"y"))
    w.abort()
    w.close()  # after abort: nothing left to do
    assert not (root / "aborted").exists()  # rclone's local removes a partly written file on error


def test_no_set_modtime(root: Path) -> None:
    b = LocalBackend("local", str(root), {"no_set_modtime": "true"})
    assert FEATURE_MODTIME not in b.features
    before = os.stat(root / "f.txt").st_mtime_ns
    b.set_modtime("f.txt", 10**18)
    assert os.stat(root / "f.txt").st_mtime_ns == before
    write(b, "m", b"1", mtime_ns=10**18)
    assert os.stat(root / "m").st_mtime_ns != 10**18
    assert FEATURE_MODTIME in LocalBackend("local", str(root), {}).features


def test_namespace_operations(root: Path) -> None:
    b = LocalBackend("local", str(root), {})
    b.mkdir("d2")
    b.move("f.txt", "d2/f")
    b.truncate("d2/f", 4)
    b.chmod("d2/f", 0o604)
    st = os.stat(root / "d2/f")
    assert st.st_size == 4 and st.st_mode & 0o777 == 0o604
    b.chown("d2/f", os.getuid(), os.getgid())  # to oneself: allowed without root
    b.set_modtime("d2/f", 10**18)
    assert os.stat(root / "d2/f").st_mtime_ns == 10**18
    with pytest.raises(OSError) as ei:
        b.rmdir("d2")
    assert ei.value.errno == errno.ENOTEMPTY
    b.delete("d2/f")
    b.rmdir("d2")
    with pytest.raises(FileNotFoundError):
        b.list("d2")
    a = b.about()
    assert a.total > 0 and 0 <= a.free <= a.total and 0 <= a.used <= a.total


def test_hashes_are_remembered_until_the_file_changes(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = LocalBackend("local", str(root), {})
    want = hashlib.md5(b"0123456789").hexdigest()
    assert b.hash("f.txt", "md5") == want
    assert b.hash("f.txt", "sha1") == hashlib.sha1(b"0123456789").hexdigest()
    with pytest.raises(OSError) as ei:
        b.hash("f.txt", "crc32")
    assert ei.value.errno == errno.ENOTSUP
    # remembered: the file is not hashed again while its ctime says it is unchanged
    made: list[str] = []
    real_new = hashlib.new
    monkeypatch.setattr(hashlib, "new", lambda kind, **kw: (made.append(kind), real_new(kind, **kw))[1])
    assert b.hash("f.txt", "md5") == want and made == []
    with open(root / "f.txt", "r+b") as f:  # same size, mtime put back: only the ctime tells
        st = os.fstat(f.fileno())
        f.write(b"9")
    os.utime(root / "f.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert b.hash("f.txt", "md5") == hashlib.md5(b"9123456789").hexdigest() and made == ["md5"]


def test_hash_written_is_trusted_and_the_memo_is_bounded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localmod, "_HASH_MEMO", 2)
    b = LocalBackend("local", str(root), {})
    b.hash_written("f.txt", "md5", "from-the-upload")
    assert b.hash("f.txt", "md5") == "from-the-upload"
    b.hash_written("missing", "md5", "x")  # gone already: ignored
    b.hash_written("f.txt", "crc32", "x")  # not one of ours: ignored
    for name in ("a", "b", "c"):
        write(b, name, name.encode())
        b.hash(name, "md5")
    assert len(b._hashes) == 2 and ("f.txt", "md5") not in b._hashes  # the oldest went first
