"""crypt interop with rclone 1.75.2 both ways, on one local directory (issue 13).

For every filename_encryption x filename_encoding x directory_name_encryption combination
(and with a password2): rclone writes a tree (0 B, 1 B, 64 KiB - 1, 64 KiB, 64 KiB + 1, a few
MiB, unicode and long names) and our backend lists it with the same names and sizes and reads
it byte for byte, also at offsets across block boundaries; we write the tree and `rclone
lsf`, `cat` and `check` read the same. Through a real plugin mount for the default setup.
Tamper tests: a flipped byte, a truncated file, two swapped blocks: EIO, never wrong bytes.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import subprocess
from pathlib import Path

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker import obscure
from pyclone_docker.backends.base import Backend, read_full
from tests import rclone_ref

from .conftest import Plugin

KiB, MiB = 1 << 10, 1 << 20
PASSWORD, PASSWORD2 = "interop password", "interop salt"
FILES = {
    "empty": 0,
    "one.bin": 1,
    "block-1.bin": 64 * KiB - 1,
    "block.bin": 64 * KiB,
    "block+1.bin": 64 * KiB + 1,
    "big.bin": 3 * MiB + 17,
    "dir/sub/Grüße ☃ 日本語.txt": 1000,
    "dir/" + "n" * 120 + ".txt": 10,  # long, within every encoding's budget for 255 bytes
    "dir/space name .txt": 5,
}
COMBOS = [(mode, enc, dirs) for mode in ("standard", "obfuscate", "off") for enc in ("base32", "base64", "base32768")
          for dirs in (True, False) if not (mode != "standard" and enc != "base32")]


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def crypt_spec(root: Path, mode: str = "standard", encoding: str = "base32", dirs: bool = True,
               password2: str = "") -> str:
    spec = (f":crypt,remote='{root}',password={obscure.obscure(PASSWORD)},filename_encryption={mode},"
            f"filename_encoding={encoding},directory_name_encryption={str(dirs).lower()}")
    if password2:
        spec += f",password2={obscure.obscure(password2)}"
    return spec + ":"


def rclone(*args: str, input: bytes | None = None) -> bytes:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RCLONE_CONFIG": "/dev/null", "HOME": "/tmp"}
    p = subprocess.run([rclone_ref.require(), *args], capture_output=True, env=env, timeout=300, input=input,
                       check=False)
    assert p.returncode == 0, f"rclone {args[0]}: {p.stderr.decode(errors='replace')}"
    return p.stdout


def make_tree(root: Path) -> None:
    for rel, size in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content(rel, size))


def read_all(b: Backend, path: str, offset: int = 0, length: int = -1) -> bytes:
    r = b.open_read(path, offset, length)
    try:
        out = bytearray()
        buf = bytearray(100_000)  # not a multiple of the block size
        while n := read_full(r, memoryview(buf)):
            out += buf[:n]
        return bytes(out)
    finally:
        r.close()


def walk(b: Backend, path: str = "") -> dict[str, int]:
    out = {}
    for e in b.list(path):
        p = f"{path}/{e.name}" if path else e.name
        if e.is_dir:
            out.update(walk(b, p))
        else:
            out[p] = e.size
    return out


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain")
    make_tree(root)
    return root


@pytest.mark.parametrize(("mode", "encoding", "dirs"), COMBOS)
def test_what_rclone_encrypted_reads_back_here(tmp_path: Path, src: Path, mode: str, encoding: str,
                                               dirs: bool) -> None:
    spec = crypt_spec(tmp_path / "enc", mode, encoding, dirs)
    rclone("copy", str(src), spec)
    b = fsmod.new_fs(spec, fsmod.FsContext())
    assert walk(b) == FILES
    for rel, size in FILES.items():
        assert read_all(b, rel) == content(rel, size), rel
    data = content("big.bin", FILES["big.bin"])
    for off, n in ((0, 10), (65530, 20), (65536, 65536), (131000, 70000), (len(data) - 1, 5), (len(data), 5)):
        assert read_all(b, "big.bin", off, n) == data[off:off + n], (off, n)


@pytest.mark.parametrize(("mode", "encoding", "dirs"), COMBOS)
def test_what_we_encrypted_rclone_reads(tmp_path: Path, src: Path, mode: str, encoding: str, dirs: bool) -> None:
    spec = crypt_spec(tmp_path / "enc", mode, encoding, dirs)
    b = fsmod.new_fs(spec, fsmod.FsContext())
    for rel, size in FILES.items():
        w = b.open_write(rel, size)
        w.write(memoryview(content(rel, size)))
        w.close()
    listed = rclone("lsf", "-R", "--files-only", "--format", "ps", "--separator", "|", spec).decode()
    assert dict(line.rsplit("|", 1) for line in listed.splitlines()) == {k: str(v) for k, v in FILES.items()}
    assert rclone("cat", spec + "dir/sub/Grüße ☃ 日本語.txt") == content("dir/sub/Grüße ☃ 日本語.txt", 1000)
    rclone("check", str(src), spec)  # decrypts every file and compares it with the source


def test_a_password2_salts_both_ways(tmp_path: Path, src: Path) -> None:
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    rclone("copy", str(src), crypt_spec(theirs, password2=PASSWORD2))
    b = fsmod.new_fs(crypt_spec(theirs, password2=PASSWORD2), fsmod.FsContext())
    assert walk(b) == FILES and read_all(b, "block+1.bin") == content("block+1.bin", FILES["block+1.bin"])
    assert fsmod.new_fs(crypt_spec(theirs), fsmod.FsContext()).list("") == []  # without it: nothing decrypts
    w = fsmod.new_fs(crypt_spec(ours, password2=PASSWORD2), fsmod.FsContext()).open_write("f", 3)
    w.write(memoryview(b"abc"))
    w.close()
    assert rclone("cat", crypt_spec(ours, password2=PASSWORD2) + "f") == b"abc"


def _one_file(tmp_path: Path, size: int) -> tuple[Backend, Path]:
    spec = crypt_spec(tmp_path / "enc", mode="off")  # names.bin: the object is easy to find
    b = fsmod.new_fs(spec, fsmod.FsContext())
    w = b.open_write("f", size)
    w.write(memoryview(content("f", size)))
    w.close()
    return b, tmp_path / "enc" / "f.bin"


def _eio(b: Backend, path: str, offset: int = 0) -> None:
    with pytest.raises(OSError) as e:
        read_all(b, path, offset)
    assert e.value.errno == errno.EIO, e.value


def test_a_flipped_byte_is_eio(tmp_path: Path) -> None:
    b, obj = _one_file(tmp_path, 200_000)
    raw = bytearray(obj.read_bytes())
    raw[32 + 65552 + 100] ^= 1  # inside block 1
    obj.write_bytes(raw)
    assert read_all(b, "f", 0, 65536) == content("f", 200_000)[:65536]  # block 0 is intact
    _eio(b, "f")
    _eio(b, "f", 70_000)


def test_a_truncated_file_is_eio(tmp_path: Path) -> None:
    b, obj = _one_file(tmp_path, 200_000)
    raw = obj.read_bytes()
    obj.write_bytes(raw[:-10])  # the last block loses its end
    _eio(b, "f", 131072)
    obj.write_bytes(raw[:32 + 65552 + 8])  # a block cut inside its tag
    _eio(b, "f")


def test_two_swapped_blocks_are_eio(tmp_path: Path) -> None:
    b, obj = _one_file(tmp_path, 3 * 65536)
    raw = obj.read_bytes()
    blocks = [raw[32 + i * 65552:32 + (i + 1) * 65552] for i in range(3)]
    obj.write_bytes(raw[:32] + blocks[1] + blocks[0] + blocks[2])
    _eio(b, "f")


def _big_reads(b: Backend, path: str, offset: int = 0) -> tuple[bytes, OSError | None]:
    """What 1 MiB reads (the VFS's read-ahead size: the batched, two-thread path) give, and the
    error that ended them."""
    r = b.open_read(path, offset, -1)
    out, buf = bytearray(), bytearray(1 << 20)
    try:
        while n := r.readinto(memoryview(buf)):
            out += buf[:n]
    except OSError as e:
        return bytes(out), e
    finally:
        r.close()
    return bytes(out), None


@pytest.mark.parametrize("offset", [0, 1000, 65536 + 7])
def test_large_reads_give_every_byte(tmp_path: Path, offset: int) -> None:
    size = 10 * 65536 + 123  # batches of 8 blocks, then 3 (the last short)
    b, _ = _one_file(tmp_path, size)
    got, err = _big_reads(b, "f", offset)
    assert err is None and got == content("f", size)[offset:]


def test_large_reads_stop_at_a_bad_block_with_the_good_bytes_first(tmp_path: Path) -> None:
    b, obj = _one_file(tmp_path, 10 * 65536)
    raw = bytearray(obj.read_bytes())
    raw[32 + 5 * 65552 + 100] ^= 1  # inside block 5, in the first batch's second half
    obj.write_bytes(raw)
    got, err = _big_reads(b, "f")
    assert got == content("f", 10 * 65536)[:5 * 65536]  # blocks 0-4, never block 5's bytes
    assert err is not None and err.errno == errno.EIO and "block 5" in str(err)
    raw[32 + 5 * 65552 + 100] ^= 1
    raw[32 + 1 * 65552 + 100] ^= 1  # block 1: in the half the worker thread opens
    obj.write_bytes(raw)
    got, err = _big_reads(b, "f")
    assert got == content("f", 10 * 65536)[:65536] and err is not None and err.errno == errno.EIO


def test_large_reads_with_pass_bad_blocks_give_zeros_for_the_bad_block(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    size = 10 * 65536
    _, obj = _one_file(tmp_path, size)
    raw = bytearray(obj.read_bytes())
    raw[32 + 6 * 65552 + 100] ^= 1
    obj.write_bytes(raw)
    b = fsmod.new_fs(crypt_spec(tmp_path / "enc", mode="off")[:-1] + ",pass_bad_blocks=true:", fsmod.FsContext())
    with caplog.at_level(logging.ERROR, logger="pyclone"):
        got, err = _big_reads(b, "f")
    want = bytearray(content("f", size))
    want[6 * 65536:7 * 65536] = bytes(65536)
    assert err is None and got == bytes(want)
    assert [r for r in caplog.records if "block 6" in r.getMessage()], caplog.text


def test_a_cut_last_block_ends_large_reads_with_eio(tmp_path: Path) -> None:
    b, obj = _one_file(tmp_path, 9 * 65536 + 50)
    raw = obj.read_bytes()
    obj.write_bytes(raw[:32 + 9 * 65552 + 10])  # block 9 cut inside its tag
    got, err = _big_reads(b, "f", 8 * 65536)
    assert got == content("f", 9 * 65536)[8 * 65536:] and err is not None and err.errno == errno.EIO


def test_a_mount_reads_and_writes_what_rclone_does(plugin: Plugin, tmp_path: Path, src: Path) -> None:
    enc = tmp_path / "enc"
    enc.mkdir()
    rclone("copy", str(src), crypt_spec(enc))
    opts = {"type": "crypt", "crypt-remote": str(enc), "crypt-password": obscure.obscure(PASSWORD),
            "vfs-cache-mode": "writes", "vfs-write-back": "0.2s"}
    plugin.client.ok("VolumeDriver.Create", {"Name": "c", "Opts": opts})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": "c", "ID": "t"})["Mountpoint"])
    try:
        for rel, size in FILES.items():
            assert (mp / rel).read_bytes() == content(rel, size), rel
            assert (mp / rel).stat().st_size == size
        (mp / "new dir").mkdir()
        (mp / "new dir" / "written.bin").write_bytes(content("written", 300_000))
    finally:
        plugin.client.ok("VolumeDriver.Unmount", {"Name": "c", "ID": "t"})
    assert rclone("cat", crypt_spec(enc) + "new dir/written.bin") == content("written", 300_000)
