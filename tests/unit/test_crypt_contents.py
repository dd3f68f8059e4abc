"""crypt file contents (pyclone_docker/crypt/contents.py): rclone's vectors, sizes, nonces,
random access, and every way a file can be cut or forged. The fast secretbox is proved against
secretbox.py on random inputs."""

from __future__ import annotations

import hashlib
import io
import random
import re

import pytest

from pyclone_docker import secretbox
from pyclone_docker.crypt import contents as c
from pyclone_docker.obscure import reveal

ZERO_KEY = bytes(32)
UPSTREAM_NONCE = bytes(range(1, 25))  # cipher_test.go's nonce 01 02 .. 18
DEFAULT_SALT = bytes.fromhex("a80df43a8fbd0308a7cab83e581f86b1")
HORSE_KEY = hashlib.scrypt(b"correct horse battery staple", salt=DEFAULT_SALT, n=16384, r=8, p=1,
                           dklen=80, maxmem=64 << 20)[:32]
B = c.BLOCK_DATA


def _exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def _plain(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


# ---- vectors -------------------------------------------------------------------------------


def test_constants():
    assert (c.MAGIC, c.HEADER_SIZE, c.BLOCK_DATA, c.BLOCK_SIZE) == (b"RCLONE\x00\x00", 32, 65536, 65552)
    # rclone's error texts (cipher.go), which the backend shows
    assert c.ERR_TOO_SHORT == "file is too short to be encrypted"
    assert c.ERR_BAD_HEADER == "file has truncated block header"
    assert c.ERR_BAD_MAGIC == "not an encrypted file - bad magic string"
    assert c.ERR_BAD_BLOCK == "failed to authenticate decrypted block - bad password?"


def test_horse_key_is_the_reports_data_key():
    assert HORSE_KEY.hex() == "7c88752cf3db1a2ea4835274f5dee9a3c01f8ca0d78fb307c824e364941ff47b"


@pytest.mark.parametrize(("plain", "body"), [
    (b"", ""),
    (b"\x01", "095b446cd6237bbcb08d09fb524ce565" "aa"),
    (bytes(range(1, 17)), "b9c4552a2710062918960a3e608c29b9" "aa8a5e1e165b6d075de4e9bb367fd6d4"),
])
def test_upstream_zero_key_vectors(plain: bytes, body: str):
    header = "52434c4f4e4500000102030405060708090a0b0c0d0e0f101112131415161718"
    enc = c.encrypt_bytes(ZERO_KEY, plain, UPSTREAM_NONCE)
    assert enc.hex() == header + body
    assert c.decrypt_bytes(ZERO_KEY, enc) == plain


def test_horse_vector_68_bytes():
    want = bytes.fromhex("52434c4f4e450000" "000102030405060708090a0b0c0d0e0f1011121314151617"
                         "3948ce90cff6dfd8e98d39edb09ed599" "22f037d7d3b2f49003ccc5026aa63599b0aab860")
    enc = c.encrypt_bytes(HORSE_KEY, b"The quick brown fox\n", bytes(range(24)))
    assert enc == want and len(enc) == 68
    assert c.decrypt_bytes(HORSE_KEY, want) == b"The quick brown fox\n"


# hello.txt as real rclone wrote it (rclone_formats.md 2.2), password given obscured
RCLONE_HELLO = bytes.fromhex(
    "5243 4c4f 4e45 0000 f668 8288 e1fd f7ff d220 639f d12d 77ea a8ae ff9f 2e67 645b"
    "e7ae cc2d 639f 7a36 1ecd 2d33 d57c 487f 27c9 86ef a1bf 2862 faa7 7f2d 324b e4e1"
    "1d33 ca2f 3e".replace(" ", ""))


def test_file_real_rclone_wrote_69_bytes():
    password = reveal("Kcy8PRrIkU0OUS6dZrFivL8E0SSA8KhMu02_8vaMBK-VelzRTQw6cjj7_FA")
    key = hashlib.scrypt(password.encode(), salt=DEFAULT_SALT, n=16384, r=8, p=1, dklen=80, maxmem=64 << 20)
    assert key[:32] == HORSE_KEY
    assert len(RCLONE_HELLO) == 69 and c.decrypted_size(69) == 21
    assert c.decrypt_bytes(HORSE_KEY, RCLONE_HELLO) == b"Hello, rclone crypt!\n"
    # the same nonce gives the same bytes: our encrypter is rclone's
    assert c.encrypt_bytes(HORSE_KEY, b"Hello, rclone crypt!\n", RCLONE_HELLO[8:32]) == RCLONE_HELLO


def test_hsalsa20_nacl_vectors_through_the_c_path():
    assert c.fast_path()  # the C-derived HSalsa20 is in use here
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    first = c._hsalsa20_c(shared, bytes(16))
    assert first.hex() == "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"
    second = c._hsalsa20_c(first, bytes.fromhex("69696ee955b62b73cd62bda875fc73d6"))
    assert second.hex() == "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4"


def test_fast_secretbox_equals_secretbox_py_on_random_inputs():
    rng = random.Random(7)
    edge = [b"\xff" * 24, b"\x00" * 24, bytes(8) + b"\xff" * 8 + bytes(8), b"\xff" * 16 + bytes(8)]
    for i in range(60):
        key = rng.randbytes(32)
        nonce = edge[i] if i < len(edge) else rng.randbytes(24)
        msg = rng.randbytes(rng.choice([0, 1, 15, 16, 17, 63, 64, 65, 1000, B - 1, B]))
        assert c._hsalsa20_c(key, nonce[:16]) == secretbox.hsalsa20(key, nonce[:16])
        box = c.SecretBox(key)
        sealed = box.seal(nonce, msg)
        assert bytes(sealed) == secretbox.seal(msg, nonce, key)
        out = bytearray(len(msg))
        assert box.open_into(nonce, sealed, out) and out == msg
        assert box.open_into(nonce, memoryview(bytes(sealed)), out)  # read-only views too
        forged = bytearray(sealed)
        forged[rng.randrange(len(forged))] ^= 1 << rng.randrange(8)
        keep = bytearray(out)
        assert not box.open_into(nonce, forged, out) and out == keep


# ---- sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("plain", "enc"), [
    (0, 32), (1, 32 + 16 + 1), (B - 1, 32 + 16 + B - 1), (B, 32 + 16 + B), (B + 1, 32 + 16 + B + 16 + 1),
    (1 << 20, 32 + 16 * (16 + B)), ((1 << 20) + 65535, 32 + 16 * (16 + B) + 16 + 65535),
    (10 << 20, 32 + 160 * (16 + B)), (1 << 30, 32 + 16384 * (16 + B)),
    ((1 << 40) + 1, 32 + 16777216 * (16 + B) + 16 + 1),
])
def test_sizes(plain: int, enc: int):
    assert c.encrypted_size(plain) == enc
    assert c.decrypted_size(enc) == plain


@pytest.mark.parametrize(("enc", "message"), [
    (0, c.ERR_TOO_SHORT), (1, c.ERR_TOO_SHORT), (31, c.ERR_TOO_SHORT),
    (33, c.ERR_BAD_HEADER), (48, c.ERR_BAD_HEADER), (32 + 16 + B + 1, c.ERR_BAD_HEADER),
    (32 + 16 + B + 16, c.ERR_BAD_HEADER),
])
def test_impossible_sizes(enc: int, message: str):
    with pytest.raises(c.Truncated, match=_exact(message)):
        c.decrypted_size(enc)


@pytest.mark.parametrize("n", [0, 1, B - 1, B, B + 1, 10 << 20])
def test_round_trip_and_size_for(n: int):
    plain = _plain(n)
    enc = c.encrypt_bytes(HORSE_KEY, plain)
    assert len(enc) == c.encrypted_size(n) and c.decrypted_size(len(enc)) == n
    assert c.decrypt_bytes(HORSE_KEY, enc) == plain


# ---- nonces ------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "add", "want"), [
    (bytes(24), 1, b"\x01" + bytes(23)),
    (b"\xff" + bytes(23), 1, b"\x00\x01" + bytes(22)),
    (b"\xff" * 8 + bytes(16), 1, bytes(8) + b"\x01" + bytes(15)),  # increment carries into byte 8
    (b"\xff" * 23 + b"\x00", 1, bytes(23) + b"\x01"),
    (b"\xff" * 24, 1, bytes(24)),  # wraps round, as rclone's carry does
    (b"\xff" + bytes(23), 0xFF, b"\xfe\x01" + bytes(22)),
    (b"\xff" * 8 + bytes(16), 0xFFFFFFFFFFFFFFFF, b"\xfe" + b"\xff" * 7 + b"\x01" + bytes(15)),
    (b"\xff" * 9 + bytes(15), 0xFFFFFFFFFFFFFFFF, b"\xfe" + b"\xff" * 7 + b"\x00\x01" + bytes(14)),
    (b"\xfe" + b"\xff" * 7 + bytes(16), 2, bytes(8) + b"\x01" + bytes(15)),
])
def test_nonce_add(start: bytes, add: int, want: bytes):
    assert c.nonce_add(start, add) == want


@pytest.mark.parametrize("nonce0", [b"\xff" * 24, b"\xfe" + b"\xff" * 7 + bytes(16), b"\xff" * 23 + b"\x7f"])
def test_blocks_use_nonce0_plus_index_across_carries(nonce0: bytes):
    plain = _plain(3 * B + 5)
    enc = c.encrypt_bytes(HORSE_KEY, plain, nonce0)
    for i in range(4):
        block = enc[32 + i * c.BLOCK_SIZE : 32 + (i + 1) * c.BLOCK_SIZE]
        want = plain[i * B : (i + 1) * B]
        assert secretbox.open_(block, c.nonce_add(nonce0, i), HORSE_KEY) == want
    assert c.decrypt_bytes(HORSE_KEY, enc) == plain


# ---- streaming ---------------------------------------------------------------------------


def test_encrypter_any_write_sizes_same_bytes():
    plain = _plain(3 * B + 123)
    nonce = bytes(range(24))
    want = c.encrypt_bytes(HORSE_KEY, plain, nonce)
    rng = random.Random(3)
    for _ in range(5):
        enc = c.Encrypter(HORSE_KEY, nonce)
        out: list[bytes] = []
        keep = out.append
        pos = 0
        while pos < len(plain):
            step = rng.choice([1, 7, 4096, B - 1, B, B + 1, 3 * B])
            enc.write(memoryview(plain)[pos : pos + step], lambda b, keep=keep: keep(bytes(b)))
            pos += step
        enc.finish(lambda b, keep=keep: keep(bytes(b)))
        assert enc.header() + b"".join(out) == want
        assert all(len(b) == c.BLOCK_SIZE for b in out[:-1]) and len(out) == 4
        assert enc.plain_size == len(plain)


def test_encrypter_blocks_are_not_reused():
    enc = c.Encrypter(ZERO_KEY)
    out: list[bytearray] = []
    enc.write(_plain(2 * B), out.append)
    assert out[0] is not out[1] and bytes(out[0]) != bytes(out[1])
    assert enc.header()[:8] == c.MAGIC and enc.header()[8:] == enc.nonce


def test_empty_file_is_the_header_only_and_nonces_are_random():
    enc = c.Encrypter(HORSE_KEY)
    out: list[bytearray] = []
    enc.write(b"", out.append)
    enc.finish(out.append)
    assert out == [] and len(enc.header()) == 32
    assert c.Encrypter(HORSE_KEY).nonce != enc.nonce
    with pytest.raises(ValueError):
        enc.write(b"x", out.append)


def test_iter_plain_streams_the_whole_file():
    plain = _plain(2 * B + 999)
    enc = c.encrypt_bytes(HORSE_KEY, plain)
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    stream = io.BytesIO(enc[32:])
    assert b"".join(dec.iter_plain(stream.read)) == plain
    # a reader that hands out odd-sized pieces
    pieces = io.BytesIO(enc[32:])
    assert b"".join(dec.iter_plain(lambda n: pieces.read(min(n, 1000)))) == plain


# ---- random access -----------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "limit", "want"), [
    (0, -1, (0, 0, 32, -1)), (1, -1, (0, 1, 32, -1)), (B - 1, -1, (0, B - 1, 32, -1)),
    (B, -1, (1, 0, 32 + 65552, -1)), (B + 1, -1, (1, 1, 32 + 65552, -1)),
    (0, 0, (0, 0, 32, 65552)), (0, 1, (0, 0, 32, 65552)), (B - 1, 1, (0, B - 1, 32, 65552)),
    (B - 1, 100, (0, B - 1, 32, 2 * 65552)), (B, 100, (1, 0, 32 + 65552, 65552)),
    (0, B, (0, 0, 32, 65552)), (1, B, (0, 1, 32, 2 * 65552)), (B + 1, B, (1, 1, 32 + 65552, 2 * 65552)),
    (0, B + 1, (0, 0, 32, 2 * 65552)), (B, B + 1, (1, 0, 32 + 65552, 2 * 65552)),
])
def test_underlying_range_is_calculate_underlying(offset: int, limit: int, want: tuple[int, int, int, int]):
    assert tuple(c.underlying_range(offset, limit)) == want


def test_underlying_range_clamped_to_the_object():
    size = c.encrypted_size(2 * B + 100)  # 32 + 2 blocks + 116
    assert c.underlying_range(0, -1, size) == (0, 0, 32, size - 32)
    assert c.underlying_range(2 * B + 5, 10, size) == (2, 5, 32 + 2 * 65552, 116)
    assert c.underlying_range(3 * B, 10, size).enc_length == 0


PLAIN_SIZE = 131172  # as rclone_formats.md's big.bin: 2 full blocks and 100 bytes


@pytest.mark.parametrize(("offset", "length"), [
    (0, 10), (65530, 12), (65536, 1), (131000, 172), (PLAIN_SIZE - 1, 1), (PLAIN_SIZE - 1, -1),
    (0, -1), (65530, -1), (0, PLAIN_SIZE), (5, 0),
])
def test_random_access_reads(offset: int, length: int):
    plain = _plain(PLAIN_SIZE, seed=9)
    enc = c.encrypt_bytes(HORSE_KEY, plain)
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    r = c.underlying_range(offset, length, len(enc))
    piece = enc[r.enc_offset : r.enc_offset + r.enc_length]
    got = b"".join(dec.iter_plain(io.BytesIO(piece).read, r.first_block, r.discard, length))
    want = plain[offset:] if length < 0 else plain[offset : offset + length]
    assert got == want


def test_decrypt_block_by_index():
    plain = _plain(2 * B + 7)
    enc = c.encrypt_bytes(HORSE_KEY, plain)
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    last = enc[32 + 2 * c.BLOCK_SIZE :]
    assert dec.decrypt_block(2, last) == plain[2 * B :]
    out = bytearray(B)
    assert dec.decrypt_block_into(1, memoryview(enc)[32 + c.BLOCK_SIZE : 32 + 2 * c.BLOCK_SIZE], out) == B
    assert out == plain[B : 2 * B]


# ---- integrity ---------------------------------------------------------------------------


def test_bad_magic_and_short_header():
    enc = c.encrypt_bytes(HORSE_KEY, b"abc")
    with pytest.raises(c.BadMagic, match=_exact(c.ERR_BAD_MAGIC)):
        c.Decrypter(HORSE_KEY, b"RCLONX\x00\x00" + enc[8:32])
    with pytest.raises(c.Truncated, match=_exact(c.ERR_TOO_SHORT)):
        c.Decrypter(HORSE_KEY, enc[:31])


@pytest.mark.parametrize(("pos", "block"), [
    (8, 0), (31, 0),  # the header's nonce
    (32, 0), (32 + 15, 0), (32 + 16, 0), (32 + 17, 0), (32 + c.BLOCK_SIZE - 1, 0),  # block 0: tag, data
    (32 + c.BLOCK_SIZE + 3, 1), (-1, 1),  # block 1 (the last, 50 bytes)
])
def test_flipped_byte_is_an_error(pos: int, block: int):
    enc = bytearray(c.encrypt_bytes(HORSE_KEY, _plain(B + 50)))
    enc[pos] ^= 0x20
    with pytest.raises(c.BadBlock, match=_exact(c.ERR_BAD_BLOCK)) as e:
        c.decrypt_bytes(HORSE_KEY, enc)
    assert e.value.index == block
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    with pytest.raises(c.BadBlock):
        b"".join(dec.iter_plain(io.BytesIO(enc[32:]).read))


def test_wrong_key_is_a_bad_block():
    enc = c.encrypt_bytes(HORSE_KEY, b"secret")
    with pytest.raises(c.BadBlock):
        c.decrypt_bytes(ZERO_KEY, enc)


@pytest.mark.parametrize("cut", [1, 10, 16, 17, 50])  # bytes cut off the last block (16 tag + 100 data)
def test_truncated_last_block_is_an_error(cut: int):
    plain = _plain(B + 100)
    enc = c.encrypt_bytes(HORSE_KEY, plain)[:-cut]
    left = 116 - cut  # what remains of the last block
    err = c.Truncated if left <= 16 else c.BadBlock
    with pytest.raises(err):
        c.decrypt_bytes(HORSE_KEY, enc)
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    got = bytearray()
    with pytest.raises(err):
        for piece in dec.iter_plain(io.BytesIO(enc[32:]).read):
            got += piece
    assert got == plain[:B]  # the good first block, nothing of the cut one


@pytest.mark.parametrize("cut", [1, 16, 40000])
def test_truncated_full_block_is_an_error(cut: int):
    enc = c.encrypt_bytes(HORSE_KEY, _plain(2 * B))[:-cut]
    dec = c.Decrypter(HORSE_KEY, enc[:32])
    with pytest.raises(c.BadBlock):
        b"".join(dec.iter_plain(io.BytesIO(enc[32:]).read))


def test_swapped_blocks_fail_authentication():
    plain = _plain(3 * B)
    enc = c.encrypt_bytes(HORSE_KEY, plain)
    blocks = [enc[32 + i * c.BLOCK_SIZE : 32 + (i + 1) * c.BLOCK_SIZE] for i in range(3)]
    swapped = enc[:32] + blocks[1] + blocks[0] + blocks[2]
    with pytest.raises(c.BadBlock) as e:
        c.decrypt_bytes(HORSE_KEY, swapped)
    assert e.value.index == 0
    # the same block from another file with another nonce does not open either
    other = c.encrypt_bytes(HORSE_KEY, plain)
    with pytest.raises(c.BadBlock):
        c.decrypt_bytes(HORSE_KEY, enc[:32] + other[32:])


def test_pass_bad_blocks_gives_zeros_and_a_flag():
    plain = _plain(2 * B + 10)
    enc = bytearray(c.encrypt_bytes(HORSE_KEY, plain))
    enc[32 + c.BLOCK_SIZE + 100] ^= 1  # block 1
    dec = c.Decrypter(HORSE_KEY, enc[:32], pass_bad_blocks=True)
    parts = []
    flags = []
    for piece in dec.iter_plain(io.BytesIO(enc[32:]).read):
        parts.append(bytes(piece))
        flags.append(dec.last_block_bad)
    assert parts == [plain[:B], bytes(B), plain[2 * B :]]
    assert flags == [False, True, False] and dec.bad_blocks == 1
    assert c.decrypt_bytes(HORSE_KEY, enc, pass_bad_blocks=True) == plain[:B] + bytes(B) + plain[2 * B :]
    # a block too short to hold a tag is still an error, as in rclone
    with pytest.raises(c.Truncated, match=_exact(c.ERR_BAD_HEADER)):
        dec.decrypt_block(0, enc[32:40])


def test_random_nonce_is_fresh_per_file():
    nonces = {c.Encrypter(ZERO_KEY).nonce for _ in range(50)}
    assert len(nonces) == 50 and all(len(n) == 24 for n in nonces)


def test_pure_python_fallback_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch):
    # what runs if Cryptodome's Salsa20 state ever stops looking as _hsalsa20_c assumes
    monkeypatch.setattr(c, "_hsalsa20", secretbox.hsalsa20)
    assert not c.fast_path()
    enc = c.encrypt_bytes(HORSE_KEY, b"The quick brown fox\n", bytes(range(24)))
    assert enc.hex().endswith("3948ce90cff6dfd8e98d39edb09ed599" "22f037d7d3b2f49003ccc5026aa63599b0aab860")
    assert c.decrypt_bytes(HORSE_KEY, RCLONE_HELLO) == b"Hello, rclone crypt!\n"
