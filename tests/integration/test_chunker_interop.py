"""chunker both ways with the real rclone 1.75.2, on one local directory (chunk_size 100 KiB).

- rclone writes (0 B, 1 B, one chunk exactly, one chunk + 1, several chunks) and we list the
  same names and sizes, read them byte for byte, whole and across chunk boundaries, and hash
  them where the hash type stores one;
- we write the same files and the directory holds what rclone's own copy leaves (chunk names
  and sizes, metadata byte for byte); rclone lsf/cat/check read them, md5sum/sha1sum agree;
- a rename moves every chunk, both ways;
- crypt over chunker, both ways (the password in a 0600 rclone.conf, never in argv);
- through a real plugin mount, cache modes off (streamed writes) and writes.

hash_type md5 (the default), sha1all (metadata for every file: local hashes slowly) and none.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend, read_full
from pyclone_docker.obscure import obscure
from tests import rclone_ref

from .conftest import Plugin

GUARD = 180.0
CHUNK = 100 * 1024
SIZES = {"zero": 0, "one": 1, "chunk": CHUNK, "chunk+1": CHUNK + 1, "several": 3 * CHUNK + 12345}
HASH_TYPES = ["md5", "sha1all", "none"]
PASSWORD = "chunker pässword"


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def spec(root: Path, hash_type: str) -> str:
    return f":chunker,remote={root},chunk_size=100Ki,hash_type={hash_type}:"


class Rclone:
    def __init__(self, home: Path) -> None:
        self.binary = rclone_ref.require()
        self.home = home
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "RCLONE_CONFIG": "/dev/null", "TZ": "UTC"}

    def with_config(self, lines: list[str]) -> None:
        conf = self.home / "rclone.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env["RCLONE_CONFIG"] = str(conf)

    def run(self, *args: str) -> bytes:
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, timeout=GUARD, check=False,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"rclone {args[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}"
        return p.stdout


@pytest.fixture
def rc(tmp_path: Path) -> Rclone:
    home = tmp_path / "home"
    home.mkdir()
    return Rclone(home)


def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name, size in SIZES.items():
        (src / name).write_bytes(content(name, size))
    return src


def get(b: Backend, path: str, offset: int = 0, length: int = -1) -> bytes:
    r = b.open_read(path, offset, length)
    try:
        buf = bytearray(b.stat(path).size + 1)
        return bytes(buf[:read_full(r, memoryview(buf))])
    finally:
        r.close()


def put(b: Backend, path: str, data: bytes, known_size: bool = True) -> None:
    w = b.open_write(path, len(data) if known_size else -1)
    for i in range(0, len(data), 32 * 1024):
        w.write(memoryview(data[i:i + 32 * 1024]))
    w.close()


def disk(root: Path) -> dict[str, bytes | int]:
    """The directory as stored: metadata objects (small, not chunks) by bytes, the rest by size."""
    out: dict[str, bytes | int] = {}
    for p in sorted(root.iterdir()):
        out[p.name] = p.read_bytes() if p.name in SIZES and p.stat().st_size < 256 else p.stat().st_size
    return out


@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_rclone_writes_we_read(rc: Rclone, tmp_path: Path, hash_type: str) -> None:
    src, root = sources(tmp_path), tmp_path / "chunked"
    rc.run("copy", str(src), spec(root, hash_type))
    assert any(".rclone_chunk." in n for n in os.listdir(root))
    b = fsmod.new_fs(spec(root, hash_type), fsmod.FsContext())
    assert sorted((e.name, e.size) for e in b.list("")) == sorted(SIZES.items())
    for name, size in SIZES.items():
        data = content(name, size)
        assert b.stat(name).size == size
        assert get(b, name) == data, name
        for off, n in ((CHUNK - 3, 10), (2 * CHUNK - 1, 2), (CHUNK, CHUNK + 7), (size - 1, 5)):
            if 0 <= off < size:
                assert get(b, name, off, n) == data[off:off + n], (name, off, n)
        for kind in b.hashes:
            assert b.hash(name, kind) == hashlib.new(kind, data).hexdigest()
    assert b.hashes == {"md5": ("md5",), "sha1all": ("sha1",), "none": ()}[hash_type]


@pytest.mark.parametrize("known_size", [True, False], ids=["sized", "streamed"])
@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_we_write_rclone_reads(rc: Rclone, tmp_path: Path, hash_type: str, known_size: bool) -> None:
    src, ours, theirs = sources(tmp_path), tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    b = fsmod.new_fs(spec(ours, hash_type), fsmod.FsContext())
    for name, size in SIZES.items():
        put(b, name, content(name, size), known_size)
    rc.run("copy", str(src), spec(theirs, hash_type))
    assert disk(ours) == disk(theirs)  # the same chunk names and sizes, the same metadata bytes
    listed = rc.run("lsf", "--format", "ps", "--separator", "|", spec(ours, hash_type)).decode().split()
    assert sorted(listed) == sorted(f"{n}|{s}" for n, s in SIZES.items())
    for name, size in SIZES.items():
        assert rc.run("cat", spec(ours, hash_type) + name) == content(name, size)
    rc.run("check", "--download", str(src), spec(ours, hash_type))
    if hash_type != "none":
        rc.run("check", str(src), spec(ours, hash_type))  # by the hashes the metadata stores
        kind = "md5" if hash_type == "md5" else "sha1"
        sums = rc.run(f"{kind}sum", spec(ours, hash_type)).decode().splitlines()
        want = {f"{hashlib.new(kind, content(n, s)).hexdigest()}  {n}" for n, s in SIZES.items()}
        assert set(sums) == want


def test_rename_moves_every_chunk(rc: Rclone, tmp_path: Path) -> None:
    root = tmp_path / "chunked"
    root.mkdir()
    b = fsmod.new_fs(spec(root, "md5"), fsmod.FsContext())
    data = content("several", SIZES["several"])
    put(b, "old name", data)
    b.move("old name", "new name")
    assert sorted(os.listdir(root)) == ["new name"] + [f"new name.rclone_chunk.00{i}" for i in (1, 2, 3, 4)]
    assert rc.run("lsf", spec(root, "md5")).decode().split("\n")[:-1] == ["new name"]
    assert rc.run("cat", spec(root, "md5") + "new name") == data
    rc.run("moveto", spec(root, "md5") + "new name", spec(root, "md5") + "third")
    assert [e.name for e in b.list("")] == ["third"]
    assert get(b, "third") == data


def _crypt_over_chunker(rc: Rclone, root: Path) -> tuple[str, Backend]:
    inner = f":chunker,remote={root},chunk_size=100Ki:"
    rc.with_config(["[cc]", "type = crypt", f"remote = {inner}", f"password = {obscure(PASSWORD)}"])
    ours = fsmod.new_fs(f':crypt,remote="{inner}",password={obscure(PASSWORD)}:', fsmod.FsContext())
    return "cc:", ours


def test_crypt_over_chunker_both_ways(rc: Rclone, tmp_path: Path) -> None:
    src, root = sources(tmp_path), tmp_path / "chunked"
    root.mkdir()
    remote, b = _crypt_over_chunker(rc, root)
    rc.run("copy", str(src), remote + "theirs")
    assert sorted((e.name, e.size) for e in b.list("theirs")) == sorted(SIZES.items())
    for name, size in SIZES.items():
        data = content(name, size)
        assert get(b, f"theirs/{name}") == data
        if size > CHUNK:
            assert get(b, f"theirs/{name}", CHUNK - 40, 100) == data[CHUNK - 40:CHUNK + 60]
    b.mkdir("ours")
    for name, size in SIZES.items():
        put(b, f"ours/{name}", content(name, size))
    rc.run("check", "--download", str(src), remote + "ours")
    for name, size in SIZES.items():
        assert rc.run("cat", f"{remote}ours/{name}") == content(name, size)
    # the ciphertext is chunked underneath: 3 full chunks + 1 for the largest file
    enc_dirs = [p for p in root.iterdir() if p.is_dir()]
    assert len(enc_dirs) == 2 and all(sum(".rclone_chunk." in n for n in os.listdir(d)) >= 4 for d in enc_dirs)


def test_name_format_and_start_from_both_ways(rc: Rclone, tmp_path: Path) -> None:
    src, ours, theirs = sources(tmp_path), tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    opts = "name_format=*.part#####,start_from=0"
    b = fsmod.new_fs(f":chunker,remote={ours},chunk_size=100Ki,{opts}:", fsmod.FsContext())
    for name, size in SIZES.items():
        put(b, name, content(name, size))
    rc.run("copy", str(src), f":chunker,remote={theirs},chunk_size=100Ki,{opts}:")
    assert disk(ours) == disk(theirs)
    assert "several.part00003" in disk(ours) and "several.part00004" not in disk(ours)
    rc.run("check", "--download", str(src), f":chunker,remote={ours},chunk_size=100Ki,{opts}:")
    theirs_b = fsmod.new_fs(f":chunker,remote={theirs},chunk_size=100Ki,{opts}:", fsmod.FsContext())
    for name, size in SIZES.items():
        assert get(theirs_b, name) == content(name, size)


@pytest.mark.parametrize("cache_mode", ["off", "writes"])
def test_a_mount_reads_and_writes_what_rclone_does(plugin: Plugin, rc: Rclone, tmp_path: Path, cache_mode: str) -> None:
    src, root = sources(tmp_path), tmp_path / "chunked"
    rc.run("copy", str(src), spec(root, "md5"))
    opts = {"type": "chunker", "chunker-remote": str(root), "chunker-chunk-size": "100Ki",
            "vfs-cache-mode": cache_mode, "vfs-write-back": "0.2s"}
    plugin.client.ok("VolumeDriver.Create", {"Name": "k", "Opts": opts})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": "k", "ID": "t"})["Mountpoint"])
    written = content("written", 250_000)
    try:
        assert sorted(os.listdir(mp)) == sorted(SIZES)
        for name, size in SIZES.items():
            assert (mp / name).stat().st_size == size
            assert (mp / name).read_bytes() == content(name, size), name
        with (mp / "several").open("rb") as f:
            f.seek(CHUNK - 5)
            assert f.read(10) == content("several", SIZES["several"])[CHUNK - 5:CHUNK + 5]
        (mp / "new dir").mkdir()
        (mp / "new dir" / "written.bin").write_bytes(written)
        os.rename(mp / "several", mp / "renamed")
    finally:
        plugin.client.ok("VolumeDriver.Unmount", {"Name": "k", "ID": "t"})
        plugin.client.ok("VolumeDriver.Remove", {"Name": "k"})
    assert rc.run("cat", spec(root, "md5") + "new dir/written.bin") == written
    assert sorted(os.listdir(root / "new dir")) == ["written.bin", "written.bin.rclone_chunk.001",
                                                    "written.bin.rclone_chunk.002", "written.bin.rclone_chunk.003"]
    listed = rc.run("lsf", spec(root, "md5")).decode().split()
    assert "renamed" in listed and "several" not in listed
    assert rc.run("cat", spec(root, "md5") + "renamed") == content("several", SIZES["several"])
    rc.run("md5sum", spec(root, "md5") + "new dir")
