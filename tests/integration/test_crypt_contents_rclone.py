"""crypt file contents both ways with the real rclone 1.75.2 (pyclone_docker/crypt/contents.py):
rclone writes through a crypt remote over a local directory and we decrypt the objects from disk,
whole and at random offsets; we encrypt objects into the directory and rclone cat/check/lsl read
them. With and without password2. filename_encryption=off, so an object is `<name>.bin` and no
name cipher is involved.

The crypt remote is a section of a private rclone.conf (mode 0600), so no password is put in a
child's argv or environment.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
from pathlib import Path

import pytest

from pyclone_docker.crypt import contents as c
from pyclone_docker.obscure import obscure
from tests import rclone_ref

GUARD = 180.0
DEFAULT_SALT = bytes.fromhex("a80df43a8fbd0308a7cab83e581f86b1")
B = c.BLOCK_DATA
SIZES = {"zero": 0, "one": 1, "block-1": B - 1, "block": B, "block+1": B + 1, "ten-mib": 10 << 20}
PASSWORD = "interop pässword"


def data_key(password: str, password2: str | None) -> bytes:
    salt = password2.encode() if password2 else DEFAULT_SALT
    return hashlib.scrypt(password.encode(), salt=salt, n=16384, r=8, p=1, dklen=80, maxmem=64 << 20)[:32]


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


class Rclone:
    def __init__(self, binary: str, home: Path, enc_dir: Path, password2: str | None) -> None:
        self.binary = binary
        conf = home / "rclone.conf"
        lines = ["[c]", "type = crypt", f"remote = {enc_dir}", f"password = {obscure(PASSWORD)}",
                 "filename_encryption = off"]
        if password2:
            lines.append(f"password2 = {obscure(password2)}")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "RCLONE_CONFIG": str(conf), "TZ": "UTC"}

    def run(self, *args: str, input: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        p = subprocess.run([self.binary, *args], env=self.env, input=input, capture_output=True, timeout=GUARD,
                           check=False, stdin=None if input is not None else subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, f"rclone {args[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}"
        return p


@pytest.fixture(params=[None, "a second pässword"], ids=["password", "password2"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Rclone, Path, bytes]:
    enc_dir = tmp_path / "enc"
    enc_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    rc = Rclone(rclone_ref.require(), home, enc_dir, request.param)
    return rc, enc_dir, data_key(PASSWORD, request.param)


def read_range(path: Path, key: bytes, offset: int, length: int) -> bytes:
    """Plaintext [offset, offset+length) of an encrypted file, reading only the blocks covering it."""
    size = path.stat().st_size
    with path.open("rb") as f:
        dec = c.Decrypter(key, f.read(c.HEADER_SIZE))
        r = c.underlying_range(offset, length, size)
        f.seek(r.enc_offset)
        piece = f.read(r.enc_length)
    assert len(piece) == r.enc_length
    return b"".join(dec.iter_plain(io.BytesIO(piece).read, r.first_block, r.discard, length))


def test_we_read_what_rclone_wrote(setup: tuple[Rclone, Path, bytes], tmp_path: Path):
    rc, enc_dir, key = setup
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    for name, size in SIZES.items():
        (plain_dir / name).write_bytes(content(name, size))
    rc.run("copy", str(plain_dir), "c:")
    rc.run("rcat", "c:streamed", input=content("streamed", 3 * B + 11))  # rcat: rclone's streaming upload
    wanted = {**SIZES, "streamed": 3 * B + 11}
    assert sorted(p.name for p in enc_dir.iterdir()) == sorted(f"{n}.bin" for n in wanted)
    for name, size in wanted.items():
        obj = enc_dir / f"{name}.bin"
        enc = obj.read_bytes()
        plain = content(name, size)
        assert len(enc) == c.encrypted_size(size) and c.decrypted_size(len(enc)) == size
        assert enc[:8] == c.MAGIC
        assert c.decrypt_bytes(key, enc) == plain, name
        # our encrypter with rclone's nonce gives rclone's bytes
        assert c.encrypt_bytes(key, plain, enc[8:32]) == enc, name
        for offset in (0, 65530, 65536, 131000, size - 1):
            if 0 <= offset < size:
                for length in (1, 12, 70000, -1):
                    want = plain[offset:] if length < 0 else plain[offset : offset + length]
                    assert read_range(obj, key, offset, length) == want, (name, offset, length)


def test_rclone_reads_what_we_wrote(setup: tuple[Rclone, Path, bytes], tmp_path: Path):
    rc, enc_dir, key = setup
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    files = {**SIZES, "carry-ff": 3 * B + 5, "carry-byte8": 3 * B + 5}
    nonces = {"carry-ff": b"\xff" * 24, "carry-byte8": b"\xfe" + b"\xff" * 7 + bytes(16)}
    for name, size in files.items():
        plain = content(name, size)
        (plain_dir / name).write_bytes(plain)
        enc = c.Encrypter(key, nonces.get(name))
        with (enc_dir / f"{name}.bin").open("wb") as f:
            f.write(enc.header())
            for pos in range(0, size, 10_000):  # odd write sizes, as a mount's writes would be
                enc.write(memoryview(plain)[pos : pos + 10_000], f.write)
            enc.finish(f.write)
    listed = {}
    for line in rc.run("lsf", "--format", "ps", "--separator", "|", "c:").stdout.decode().splitlines():
        name, size = line.split("|")
        listed[name] = int(size)
    assert listed == files
    for name, size in files.items():
        assert rc.run("cat", f"c:{name}").stdout == content(name, size), name
    # random access through rclone's own seek path
    plain = content("ten-mib", SIZES["ten-mib"])
    for offset, count in ((0, 10), (65530, 12), (65536, 1), (131000, 70000), (len(plain) - 1, 1)):
        out = rc.run("cat", "--offset", str(offset), "--count", str(count), "c:ten-mib").stdout
        assert out == plain[offset : offset + count], (offset, count)
    res = rc.run("check", "--download", str(plain_dir), "c:")
    assert b"0 differences found" in res.stderr


def test_rclone_refuses_what_we_tampered(setup: tuple[Rclone, Path, bytes]):
    rc, enc_dir, key = setup
    enc = bytearray(c.encrypt_bytes(key, content("t", 2 * B)))
    enc[32 + c.BLOCK_SIZE + 40] ^= 1  # inside block 1
    (enc_dir / "t.bin").write_bytes(enc)
    p = rc.run("cat", "c:t", ok=False)
    assert p.returncode != 0 and c.ERR_BAD_BLOCK.encode() in p.stderr
    assert len(p.stdout) <= B  # at most the good block 0 came out
    with pytest.raises(c.BadBlock):
        c.decrypt_bytes(key, enc)
