"""The crypt name encodings and EME (pyclone_docker.crypt.encodings, .eme): upstream vectors
from rclone's cipher_test.go and rfjakob/eme's tests, Go's decoding quirks, and round trips
against plain bit-string references."""

from __future__ import annotations

import hashlib
import random

import pytest

from pyclone_docker.crypt import encodings
from pyclone_docker.crypt.eme import EME
from pyclone_docker.crypt.encodings import BASE32, BASE64, BASE32768, lookup

PLAIN = ["", "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890",
         "12345678901", "123456789012", "1234567890123", "12345678901234", "123456789012345", "1234567890123456"]

# cipher_test.go TestEncodeFileNameBase32 / Base64 / Base32768
ENCODED = {
    "base32": ["", "64", "64p0", "64p36", "64p36d0", "64p36d1l", "64p36d1l6o", "64p36d1l6org", "64p36d1l6orjg",
               "64p36d1l6orjge8", "64p36d1l6orjge9g", "64p36d1l6orjge9g64", "64p36d1l6orjge9g64p0",
               "64p36d1l6orjge9g64p36", "64p36d1l6orjge9g64p36d0", "64p36d1l6orjge9g64p36d1l",
               "64p36d1l6orjge9g64p36d1l6o"],
    "base64": ["", "MQ", "MTI", "MTIz", "MTIzNA", "MTIzNDU", "MTIzNDU2", "MTIzNDU2Nw", "MTIzNDU2Nzg",
               "MTIzNDU2Nzg5", "MTIzNDU2Nzg5MA", "MTIzNDU2Nzg5MDE", "MTIzNDU2Nzg5MDEy", "MTIzNDU2Nzg5MDEyMw",
               "MTIzNDU2Nzg5MDEyMzQ", "MTIzNDU2Nzg5MDEyMzQ1", "MTIzNDU2Nzg5MDEyMzQ1Ng"],
    "base32768": ["", "㼿", "㻙ɟ", "㻙ⲿ", "㻙ⲍƟ", "㻙ⲍ⍟", "㻙ⲍ⍆ʏ", "㻙ⲍ⍆觟", "㻙ⲍ⍆觓ɧ", "㻙ⲍ⍆觓栯", "㻙ⲍ⍆觓栩ɣ",
                  "㻙ⲍ⍆觓栩朧", "㻙ⲍ⍆觓栩朤ʅ", "㻙ⲍ⍆觓栩朤談", "㻙ⲍ⍆觓栩朤諆ɔ", "㻙ⲍ⍆觓栩朤諆媕", "㻙ⲍ⍆觓栩朤諆媕䆿"],
}


@pytest.mark.parametrize("name", ["base32", "base64", "base32768"])
def test_upstream_encoding_vectors(name: str) -> None:
    enc = lookup(name)
    for plain, expected in zip(PLAIN, ENCODED[name], strict=True):
        assert enc.encode(plain.encode()) == expected, plain
        assert enc.decode(expected) == plain.encode(), expected
        if name == "base32":  # decoding upper-cases first, as rclone's
            assert enc.decode(expected.upper()) == plain.encode()


@pytest.mark.parametrize(("enc", "text", "message"), [
    # cipher_test.go TestDecodeFileName*
    (BASE32, "64=", "bad base32 filename encoding"),
    (BASE32, "!", "illegal base32 data at input byte 0"),
    (BASE32, "hello=hello", "illegal base32 data at input byte 5"),
    (BASE64, "64=", "illegal base64 data at input byte 2"),
    (BASE64, "!", "illegal base64 data at input byte 0"),
    (BASE64, "Hello=Hello", "illegal base64 data at input byte 5"),
    (BASE64, "6H=", "illegal base64 data at input byte 2"),
    (BASE32768, "㼿c", "illegal base32768 data at input byte 2"),   # CorruptInputError(1), printed x2
    (BASE32768, "!", "illegal base32768 data at input byte 0"),
    (BASE32768, "㻙ⲿ=㻙ⲿ", "illegal base32768 data at input byte 4"),
    (BASE32768, "怪=", "illegal base32768 data at input byte 2"),
    # Go's padding rules: 1, 3 or 6 characters in the last quantum cannot be a whole byte
    (BASE32, "a", "illegal base32 data at input byte 1"),
    (BASE32, "abc", "illegal base32 data at input byte 3"),
    (BASE32, "12345678abcdef", "illegal base32 data at input byte 14"),
    (BASE32, "ab==cdef", "illegal base32 data at input byte 3"),
    (BASE32, "w", "illegal base32 data at input byte 0"),
    (BASE32, "é", "illegal base32 data at input byte 0"),
    (BASE64, "MTIzN", "illegal base64 data at input byte 4"),
    (BASE64, "MT+z", "illegal base64 data at input byte 2"),
    (BASE64, "MT/z", "illegal base64 data at input byte 2"),
    (BASE32768, "a", "illegal base32768 data at input byte 0"),
    (BASE32768, "㻙😀", "illegal base32768 data at input byte 2"),
])
def test_decode_errors_are_gos(enc: encodings.Encoding, text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        enc.decode(text)
    assert str(info.value) == message


def test_newlines_are_skipped_as_go_does() -> None:
    assert BASE64.decode("MTIz\nNDU2") == b"123456"
    assert BASE64.decode("MT\r\nIz") == b"123"
    assert BASE32768.decode("㻙ⲍ\n⍆ʏ") == b"123456"
    # base32: rclone pads for the length with the newline, Go then drops it: "64P36D1L" + 7 "="
    with pytest.raises(ValueError, match=r"^illegal base32 data at input byte 8$"):
        BASE32.decode("64p36d1l\n")


def test_base32_takes_gos_upper_case() -> None:
    # Go's ToUpper turns the dotless i and the long s into I and S
    assert BASE32.decode("\u0131\u0131\u0131\u0131\u0131\u0131\u0131\u0131") == BASE32.decode("iiiiiiii")
    assert BASE32.decode("\u017f" * 8) == BASE32.decode("ssssssss")


def test_unused_bits_are_not_checked() -> None:
    # as Go's decoders: "65" and "64" are both "1"; "MR" and "MQ" too
    assert BASE32.decode("65") == b"1"
    assert BASE64.decode("MR") == b"1"


def test_unknown_encoding() -> None:
    with pytest.raises(ValueError, match=r'^unknown file name encoding mode "base16"$'):
        lookup("Base16")
    assert lookup("BASE32768") is BASE32768


def _bits(data: bytes) -> str:
    return "".join(f"{b:08b}" for b in data)


def test_base32768_alphabet() -> None:
    alphabet = encodings._SAFE_ALPHABET
    assert len(alphabet) == 1028 == len(set(alphabet))
    assert all(ord(c) % 32 == 0 and ord(c) < 0x10000 for c in alphabet)
    assert [hex(c) for c in encodings._TABLE_B] == ["0x180", "0x240", "0x260", "0x280"]
    # digests of Max-Sum/base32768's safeAlphabet as written in its Go source, and sorted
    assert hashlib.sha256(alphabet.encode()).hexdigest() == (
        "8897399869a5489eeca1edbef899cfbb444d455e29a0e6306f8c234555721b02")
    assert hashlib.sha256(",".join(str(c) for c in encodings._SORTED).encode()).hexdigest() == (
        "b4775e3da3b30b7f4a7cb488a7fd208162b987042ddf2b153e9c282a7655f8a6")


def _reference_base32768(data: bytes) -> str:
    """The format as rclone_formats.md 2.3 words it: 15-bit chunks of the big-endian bit
    string, the tail padded with 1-bits to 7 (table B) or 15 (table A)."""
    a, b = encodings._TABLE_A, encodings._TABLE_B
    bits = _bits(data)
    out = []
    while len(bits) >= 15:
        v = int(bits[:15], 2)
        bits = bits[15:]
        out.append(chr(a[v >> 5] | (v & 31)))
    if bits:
        if len(bits) <= 7:
            v = int(bits.ljust(7, "1"), 2)
            out.append(chr(b[v >> 5] | (v & 31)))
        else:
            v = int(bits.ljust(15, "1"), 2)
            out.append(chr(a[v >> 5] | (v & 31)))
    return "".join(out)


def test_round_trips_against_references() -> None:
    rng = random.Random(13)
    import base64

    for n in list(range(0, 70)) + [rng.randrange(70, 2049) for _ in range(30)]:
        data = rng.randbytes(n)
        b32 = BASE32.encode(data)
        assert b32 == base64.b32hexencode(data).decode().rstrip("=").lower()
        assert BASE32.decode(b32) == data
        b64 = BASE64.encode(data)
        assert b64 == base64.urlsafe_b64encode(data).decode().rstrip("=")
        assert BASE64.decode(b64) == data
        b32768 = BASE32768.encode(data)
        assert b32768 == _reference_base32768(data)
        assert len(b32768) == (8 * n + 14) // 15
        assert BASE32768.decode(b32768) == data


# ---------------------------------------------------------------------------------------------
# EME: rfjakob/eme's eme_test.go and eme32_test.go (the EME-32 draft vectors), as digests

def test_eme_16_bytes() -> None:
    eme = EME(bytes(32))
    out = eme.encrypt(bytes(16), bytes(16))
    assert out.hex() == "f1b9ce8ca15a4ba9fb476905434b9fd3"
    assert eme.decrypt(bytes(16), out) == bytes(16)


def test_eme_2048_bytes() -> None:
    eme = EME(bytes(32))
    out = eme.encrypt(bytes(16), bytes(2048))
    assert out[:16].hex() == "630500884158a8d41216aaa6351e92ea"
    assert hashlib.sha256(out).hexdigest() == "44ea4ab31f9e4c83420f1bfe7782ded2e2421c92ac416a830cf46f3ea4cb5ff1"
    assert eme.decrypt(bytes(16), out) == bytes(2048)


def test_eme32_draft_vectors() -> None:
    eme = EME(bytes(32))
    enc512 = eme.encrypt(bytes(16), bytes(512))  # buf9F2E
    assert enc512[:16].hex() == "9f2e6c3daecae79e8839b0588ff378cd"
    assert hashlib.sha256(enc512).hexdigest() == "7db861e039925bcce41a7dd1d8c3af62a4c114a0d906904929f6f2aadf11898f"
    dec512 = eme.decrypt(bytes(16), bytes(512))  # buf0809
    assert dec512[:16].hex() == "080905dee8ebcc89f68bd1af635db3f5"
    assert hashlib.sha256(dec512).hexdigest() == "2cf26c1331659aa00d5b8ea6b1d1111ee9d07eed733d858c6edbb512d1a5d4be"
    # 100 times over, key and tweak being the first 32 and next 16 bytes of those buffers
    out = enc512
    eme1 = EME(enc512[:32])
    for _ in range(100):
        out = eme1.encrypt(enc512[32:48], out)
    assert hashlib.sha256(out).hexdigest() == "c370a1d1913779657e9806eb084535b4c339b1995b5f81ce2e7d8b12d3dd85ea"
    out = dec512
    eme2 = EME(dec512[:32])
    for _ in range(100):
        out = eme2.decrypt(dec512[32:48], out)
    assert hashlib.sha256(out).hexdigest() == "f2e583b911bcb72673e32cab161503efcff2ceb5826b263247160510e6247be7"


def test_eme_round_trips_every_length() -> None:
    rng = random.Random(7)
    eme = EME(rng.randbytes(32))
    tweak = rng.randbytes(16)
    for m in range(1, 129):
        data = rng.randbytes(16 * m)
        out = eme.encrypt(tweak, data)
        assert len(out) == len(data) and out != data
        assert eme.decrypt(tweak, out) == data
        # wide block: one changed byte anywhere changes every block
        flipped = bytearray(data)
        flipped[-1] ^= 1
        other = eme.encrypt(tweak, bytes(flipped))
        assert all(out[i:i + 16] != other[i:i + 16] for i in range(0, len(out), 16))


@pytest.mark.parametrize("size", [0, 15, 17, 2064])
def test_eme_refuses_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError):
        EME(bytes(32)).encrypt(bytes(16), bytes(size))
    with pytest.raises(ValueError):
        EME(bytes(32)).encrypt(bytes(15), bytes(16))
