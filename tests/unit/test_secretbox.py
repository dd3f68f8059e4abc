"""XSalsa20-Poly1305 secretbox: NaCl HSalsa20 vectors, rclone crypt vectors, real rclone."""

from __future__ import annotations

import random

import pytest

from pyclone_docker.obscure import obscure
from pyclone_docker.secretbox import OVERHEAD, hsalsa20, open_, seal

# data key of crypt password "correct horse battery staple" (scrypt N=16384 r=8 p=1, rclone's
# default salt; checked with rclone)
HORSE_KEY = bytes.fromhex("7c88752cf3db1a2ea4835274f5dee9a3c01f8ca0d78fb307c824e364941ff47b")
HORSE_PASSWORD = "correct horse battery staple"
MAGIC = b"RCLONE\x00\x00"
BLOCK = 65536


def test_hsalsa20_nacl_vectors():
    # crypto_core_hsalsa20 tests from NaCl (core1, core2)
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    first = hsalsa20(shared, bytes(16))
    assert first.hex() == "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"
    second = hsalsa20(first, bytes.fromhex("69696ee955b62b73cd62bda875fc73d6"))
    assert second.hex() == "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4"


@pytest.mark.parametrize(("plain", "box"), [
    (b"", ""),
    (b"\x01", "095b446cd6237bbcb08d09fb524ce565aa"),
    (bytes(range(1, 17)), "b9c4552a2710062918960a3e608c29b9aa8a5e1e165b6d075de4e9bb367fd6d4"),
])
def test_upstream_crypt_vectors(plain, box):
    # rclone cipher_test.go: all-zero key, nonce 01..18; an empty file has no block at all
    nonce = bytes(range(1, 25))
    if plain:
        assert seal(plain, nonce, bytes(32)).hex() == box
        assert open_(bytes.fromhex(box), nonce, bytes(32)) == plain


def test_quick_brown_fox_vector():
    nonce = bytes(range(24))
    box = seal(b"The quick brown fox\n", nonce, HORSE_KEY)
    assert box.hex() == ("3948ce90cff6dfd8e98d39edb09ed599"
                         "22f037d7d3b2f49003ccc5026aa63599b0aab860")
    assert open_(box, nonce, HORSE_KEY) == b"The quick brown fox\n"


def test_rclone_written_hello_file():
    # written by real rclone (rclone cat of a crypt remote's file): header, nonce, one block
    raw = bytes.fromhex(
        "52434c4f4e450000f6688288e1fdf7ffd220639fd12d77eaa8aeff9f2e67645b"
        "e7aecc2d639f7a361ecd2d33d57c487f27c986efa1bf2862faa77f2d324be4e1"
        "1d33ca2f3e")
    assert raw[:8] == MAGIC
    assert open_(raw[32:], raw[8:32], HORSE_KEY) == b"Hello, rclone crypt!\n"


def test_round_trip_and_overhead():
    rng = random.Random(7)
    key, nonce = rng.randbytes(32), rng.randbytes(24)
    for size in (0, 1, 31, 32, 33, 63, 64, 65, 1000, BLOCK):
        msg = rng.randbytes(size)
        box = seal(msg, nonce, key)
        assert len(box) == size + OVERHEAD
        assert open_(box, nonce, key) == msg


def test_forgeries_are_rejected():
    nonce = bytes(24)
    box = bytearray(seal(b"attack at dawn", nonce, HORSE_KEY))
    for index in (0, 15, 16, len(box) - 1):
        bad = bytearray(box)
        bad[index] ^= 1
        with pytest.raises(ValueError, match="authentication failed"):
            open_(bytes(bad), nonce, HORSE_KEY)
    with pytest.raises(ValueError, match="authentication failed"):
        open_(bytes(box), b"\x01" + bytes(23), HORSE_KEY)
    with pytest.raises(ValueError, match="authentication failed"):
        open_(bytes(box), nonce, bytes(32))
    with pytest.raises(ValueError, match="too short"):
        open_(bytes(box[:15]), nonce, HORSE_KEY)


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="key"):
        seal(b"x", bytes(24), bytes(16))
    with pytest.raises(ValueError, match="nonce"):
        seal(b"x", bytes(8), bytes(32))


# --- crypt files with real rclone ----------------------------------------------------

def _nonce_add(nonce: bytes, n: int) -> bytes:
    """rclone increments the 24-byte nonce as a little-endian number."""
    value = (int.from_bytes(nonce, "little") + n) % (1 << 192)
    return value.to_bytes(24, "little")


def _decrypt_file(raw: bytes, key: bytes) -> bytes:
    assert raw[:8] == MAGIC
    nonce, body = raw[8:32], raw[32:]
    step = BLOCK + OVERHEAD
    return b"".join(open_(body[i:i + step], _nonce_add(nonce, n), key)
                    for n, i in enumerate(range(0, len(body), step)))


def _encrypt_file(plain: bytes, nonce: bytes, key: bytes) -> bytes:
    blocks = [seal(plain[i:i + BLOCK], _nonce_add(nonce, n), key)
              for n, i in enumerate(range(0, len(plain), BLOCK))]
    return MAGIC + nonce + b"".join(blocks)


def test_nonce_carries():
    assert _nonce_add(b"\xff" * 24, 1) == bytes(24)
    assert _nonce_add(b"\xfe" + b"\xff" * 7 + bytes(16), 2) == bytes(8) + b"\x01" + bytes(15)


def _crypt_remote(enc_dir) -> str:
    return f":crypt,remote={enc_dir},password={obscure(HORSE_PASSWORD)},filename_encryption=off:"


@pytest.mark.rclone
def test_we_open_what_rclone_seals(run_rclone, tmp_path):
    src, enc = tmp_path / "src", tmp_path / "enc"
    src.mkdir()
    data = random.Random(3).randbytes(2 * BLOCK + 100)  # three blocks, the last one short
    (src / "big.bin").write_bytes(data)
    res = run_rclone("copy", "--config", "/dev/null", str(src), _crypt_remote(enc))
    assert res.returncode == 0, res.stderr
    raw = (enc / "big.bin.bin").read_bytes()
    assert len(raw) == 32 + 2 * (BLOCK + OVERHEAD) + OVERHEAD + 100
    assert _decrypt_file(raw, HORSE_KEY) == data


@pytest.mark.rclone
def test_rclone_opens_what_we_seal(run_rclone, tmp_path):
    enc = tmp_path / "enc"
    enc.mkdir()
    data = random.Random(4).randbytes(BLOCK + 5000)
    # a nonce whose low 8 bytes overflow between the blocks
    nonce = b"\xff" * 8 + bytes(range(16))
    (enc / "ours.bin.bin").write_bytes(_encrypt_file(data, nonce, HORSE_KEY))
    res = run_rclone("cat", "--config", "/dev/null", _crypt_remote(enc) + "ours.bin", binary=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == data
