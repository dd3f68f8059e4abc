"""crypt file-name encryption (pyclone_docker.crypt.names) against rclone_formats.md 2.3 (every
row checked with the real rclone there) and rclone's own cipher_test.go tables (all-zero keys),
plus round trips over random names for every mode and encoding."""

from __future__ import annotations

import logging
import random

import pytest

from pyclone_docker.crypt.keys import derive_keys
from pyclone_docker.crypt.names import NameCipher, UndecryptableName, remove_version, split_ext

ZERO = derive_keys("")
HORSE = derive_keys("correct horse battery staple")
PEPPER = derive_keys("correct horse battery staple", "pepper")
ENCODINGS = ("base32", "base64", "base32768")

# rclone_formats.md 2.3: password "correct horse battery staple"
# plaintext -> (base32, base64, base32768, obfuscate)
TABLE = [
    ("hello.txt", "2hg60qedesor3egoruk7j32r54", "FGBgac13MbG6GN-oeYxbKQ", "⠰㹚怎饻㐐觞睓⬛㬿", "162.CzGGJ.OSO"),
    ("a", "ec246hukqi06hebpl4i8l4e250", "cwRDR9TUgGi5eakkipHCKA", "忢㜑ꄺ湦氫贄潵㠂㪿", "97.g"),
    ("0123456789abcde", "uduvevjfnjhboaki3fo42m0jgg", "8333fm-84rwqkhvwQVgThA", "ꁞꑿ瑗璋螴滏蛢繳棟",
     "252.8901234567lmnop"),
    ("0123456789abcdef", "dja6ahrf0tbnflclagbgncihn0dgaebeg66dbps0mn2brqrgvh30",
     "bNRlR28HV3fVlVQXC7JRuBsFOW6BjNXngLXEvetw_EY", "峊㾑鑀鯗攌箰呷墱艭枮吰㼍喜ᑗ✛釐ꔣɟ", "98.7890123456hijklm"),
    ("Ünïcödé ファイル.txt", "67jhid7lg5r736mpt0nqgc66pb82ktbt1ho3s9bpjrspe5coadpg",
     "MecZNPWBdnGa2egvqDDGytAqdX0McD4leZ75lxWYU3M", "㼳沭䓰㶧Ⲗ踀薰圦诈⢝嘁浣鞋賛馎㯘候ʟ", "146.ðs£hªiý ヾナネ〔.yCy"),
    ("file!with!bangs 123.TXT", "keibnah90690len4uvmamg2ukngs83ptfnr6g1h6ldimf0ea33cg",
     "o6S7qikBkgq65Pfsq0BepeHEDz199mgGJqtlZ4HKGNk", "砲啊殀㽠簷㨟羶暾祐靣踏藆暑䃭焯ሊ⬬ʟ",
     "141.EHKD!!VHSG!!AzMFR 678.sws"),
    ("dir1/sub/big.bin", "h12j3fm0usovenfekbiaibp6hs/8snt7ol4s5ijnlqdca31egqetc/p8jlnsabb6ibl286h1964bcacs",
     "iEUxvsD3Mfdd7qLkqS8mjw/Ry_T4qThZTvXTWKGF0NO6w/yidb8UtZpLqJBohSYi2KZw",
     "檂狏繾饿慏惫澲喆湟/䧗魘竼㲓蔚寪⫮榮鱟/譳絜俋䂋窨䁡䬄只婟", "112.yDM4/74.ACj/153.nus.nuz"),
    ("€uro ÿ 9Zz", "vjgqjo0rfdnsbc12v1ijhqdh9g", "_OGp4Bt7b8WwIvhlOOmxTA", "ꕰ郘ᓯ嵜叡⪁烑逑䲿", "78.‐GDA Î 4lL"),
]
COLUMNS = [("standard", "base32"), ("standard", "base64"), ("standard", "base32768"), ("obfuscate", "base32")]


@pytest.mark.parametrize("column", range(4), ids=["base32", "base64", "base32768", "obfuscate"])
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_rclone_checked_names(row: tuple[str, ...], column: int) -> None:
    mode, encoding = COLUMNS[column]
    cipher = NameCipher(HORSE, mode=mode, encoding=encoding)
    plain, expected = row[0], row[1 + column]
    assert cipher.encrypt_path(plain) == expected
    assert cipher.decrypt_path(expected) == plain
    if "/" in plain:  # every segment of a directory path is encrypted in the same way
        assert cipher.encrypt_dir(plain) == expected
        assert cipher.decrypt_dir(expected) == plain
    else:
        assert cipher.encrypt_name(plain) == expected
        assert cipher.decrypt_name(expected) == plain
        assert cipher.encrypt_name(plain, is_dir=True) == expected


def test_password2_pepper() -> None:
    cipher = NameCipher(PEPPER)
    assert cipher.encrypt_name("hello.txt") == "66929haqma6b07p9veimhaop2s"
    assert cipher.encrypt_path("dir1/sub/big.bin") == (
        "8nn1u8qe153n1tsl57sgim6bj4/4ep6kbcbvtvvbb3s2tufhslkvk/fd3k72j3oojctdo74jq6ilp914")
    assert cipher.decrypt_path("8nn1u8qe153n1tsl57sgim6bj4/4ep6kbcbvtvvbb3s2tufhslkvk/fd3k72j3oojctdo74jq6ilp914") == (
        "dir1/sub/big.bin")
    # another salt: the names of the other keys do not decrypt
    with pytest.raises(UndecryptableName):
        cipher.decrypt_name("2hg60qedesor3egoruk7j32r54")


def test_directory_names_not_encrypted() -> None:
    cipher = NameCipher(HORSE, dir_names=False)
    assert cipher.encrypt_path("dir1/sub/big.bin") == "dir1/sub/p8jlnsabb6ibl286h1964bcacs"
    assert cipher.decrypt_path("dir1/sub/p8jlnsabb6ibl286h1964bcacs") == "dir1/sub/big.bin"
    assert cipher.encrypt_dir("dir1/sub") == "dir1/sub"
    assert cipher.decrypt_dir("dir1/sub") == "dir1/sub"
    assert cipher.encrypt_name("sub", is_dir=True) == "sub"
    assert cipher.decrypt_name("sub", is_dir=True) == "sub"
    assert cipher.case_insensitive
    assert not NameCipher(HORSE).case_insensitive


def test_off_mode() -> None:
    cipher = NameCipher(HORSE, mode="off")
    assert cipher.encrypt_name("hello.txt") == "hello.txt.bin"
    assert cipher.encrypt_path("dir1/hello.txt") == "dir1/hello.txt.bin"
    assert cipher.encrypt_dir("dir1/sub") == "dir1/sub"
    assert cipher.decrypt_path("dir1/hello.txt.bin") == "dir1/hello.txt"
    assert cipher.case_insensitive
    for bad in ("hello.txt", ".bin", "hello.bix"):
        with pytest.raises(UndecryptableName, match=r"^not an encrypted file - does not match suffix$"):
            cipher.decrypt_name(bad)


def test_long_names() -> None:
    cipher = NameCipher(HORSE)
    enc = cipher.encrypt_name("x" * 143)
    assert len(enc) == 231
    assert cipher.decrypt_name(enc) == "x" * 143
    assert len(cipher.encrypt_name("x" * 144)) == 256
    assert cipher.max_plain_length() == 143
    assert NameCipher(HORSE, encoding="base64").max_plain_length() == 175
    assert len(NameCipher(HORSE, encoding="base64").encrypt_name("x" * 175)) == 235
    assert len(NameCipher(HORSE, encoding="base64").encrypt_name("x" * 176)) == 256
    b32768 = NameCipher(HORSE, encoding="base32768")
    n = b32768.max_plain_length()
    assert len(b32768.encrypt_name("x" * n)) <= 255 < len(b32768.encrypt_name("x" * (n + 1)))
    for c in (cipher, b32768, NameCipher(HORSE, encoding="base64")):
        for size in range(0, 300, 7):
            assert len(c.encrypt_name("y" * size)) == c.encrypted_length(size)
    assert NameCipher(HORSE, mode="off").max_plain_length() == 251
    # EME takes 128 blocks at most: rclone's decryptSegment refuses more than 2048 bytes
    with pytest.raises(UndecryptableName, match=r"^too long after base32 decode$"):
        cipher.decrypt_name("a" * 3328)


def test_version_suffix() -> None:
    cipher = NameCipher(HORSE)
    assert cipher.encrypt_name("report.txt") == "e4s7s4t84jmp7u3gugi5l420vo"
    versioned = "e4s7s4t84jmp7u3gugi5l420vo-v2023-01-02-150405-000"
    assert cipher.encrypt_name("report-v2023-01-02-150405-000.txt") == versioned
    assert cipher.decrypt_name(versioned) == "report-v2023-01-02-150405-000.txt"
    # only the last segment; only a time that parses (month 13 does not)
    first, last = cipher.encrypt_path("d-v2023-01-02-150405-000/report.txt").split("/")
    assert "-v" not in first and last == "e4s7s4t84jmp7u3gugi5l420vo"
    assert cipher.decrypt_path(f"{first}/{last}") == "d-v2023-01-02-150405-000/report.txt"
    assert cipher.encrypt_dir("d-v2023-01-02-150405-000").endswith("-v2023-01-02-150405-000")
    bad = "report-v2023-13-02-150405-000.txt"
    assert "-v" not in cipher.encrypt_name(bad)
    assert cipher.decrypt_name(cipher.encrypt_name(bad)) == bad
    # the off mode keeps the version in the name and refuses a bare version
    off = NameCipher(HORSE, mode="off")
    assert off.decrypt_name("a-v2001-02-03-040506-123.bin") == "a-v2001-02-03-040506-123"
    with pytest.raises(UndecryptableName):
        off.decrypt_name("-v2001-02-03-040506-123.bin")


@pytest.mark.parametrize(("name", "expected"), [
    ("a-v2001-02-03-040506-123", ("a", "-v2001-02-03-040506-123")),
    ("a-v2001-02-03-040506-123.txt", ("a.txt", "-v2001-02-03-040506-123")),
    ("a-v2000-02-29-235959-999", ("a", "-v2000-02-29-235959-999")),   # a leap year
    ("a-v0000-02-29-000000-000", ("a", "-v0000-02-29-000000-000")),   # Go's year 0 is one too
    ("a-v1900-02-29-000000-000", None),
    ("a-v2001-02-03-240506-123", None),
    ("a-v2001-02-03-046006-123", None),
    ("a-v2001-00-03-040506-123", None),
    ("a-v2001-04-31-040506-123", None),
    ("a-v2001-02-03-040506-123x", None),
    ("a-v2001-02-03-040506-12", None),
    ("a-v２００１-02-03-040506-123", None),  # Go's \d is ASCII only
])
def test_remove_version(name: str, expected: tuple[str, str] | None) -> None:
    assert remove_version(name) == expected


def test_split_ext() -> None:
    assert split_ext("a.txt") == ("a", ".txt")
    assert split_ext(".bashrc") == (".bashrc", "")
    assert split_ext("a.b.c") == ("a.b", ".c")
    assert split_ext("dir.x/file") == ("dir.x/file", "")
    assert split_ext("noext") == ("noext", "")


# ---------------------------------------------------------------------------------------------
# rclone's cipher_test.go, all-zero keys (password revealed as "")

SEGMENTS = ["1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890",
            "12345678901", "123456789012", "1234567890123", "12345678901234", "123456789012345", "1234567890123456"]
UPSTREAM = {
    "base32": ["p0e52nreeaj0a5ea7s64m4j72s", "l42g6771hnv3an9cgc8cr2n1ng", "qgm4avr35m5loi1th53ato71v0",
               "8ivr2e9plj3c3esisjpdisikos", "rh9vu63q3o29eqmj4bg6gg7s44", "bn717l3alepn75b2fb2ejmi4b4",
               "n6bo9jmb1qe3b1ogtj5qkf19k8", "u9t24j7uaq94dh5q53m3s4t9ok", "37hn305g6j12d1g0kkrl7ekbs4",
               "ot8d91eplaglb62k2b1trm2qv0", "h168vvrgb53qnrtvvmb378qrcs", "s3hsdf9e29ithrqbjqu01t8q2s",
               "cf3jimlv1q2oc553mv7s3mh3eo", "moq0uqdlqrblrc5pa5u5c7hq9g", "eeam3li4rnommi3a762h5n7meg",
               "mijbj0frqf6ms7frcr6bd9h0env53jv96pjaaoirk7forcgpt70g"],
    "base64": ["yBxRX25ypgUVyj8MSxJnFw", "qQUDHOGN_jVdLIMQzYrhvA", "1CxFf2Mti1xIPYlGruDh-A",
               "RL-xOTmsxsG7kuTy2XJUxw", "3FP_GHoeBJdq0yLgaED8IQ", "Xc4T1Gqrs3OVYnrE6dpEWQ",
               "uZeEzssOnDWHEOzLqjwpog", "8noiTP5WkkbEuijsPhOpxQ", "GeNxgLA0wiaGAKU3U7qL4Q",
               "x1DUhdmqoVWYVBLD3dha-A", "iEyP_3BZR6vvv_2WM6NbZw", "4OPGvS4SZdjvS568APUaFw",
               "Y8c5Wr8OhYYUo7fPwdojdg", "tjQPabXW112wuVF8Vh46TA", "c5Vh1kTd8WtIajmFEtz2dA",
               "tKa5gfvTzW4d-2bMtqYgdf5Rz-k2ZqViW6HfjbIZ6cE"],
    "base32768": ["詮㪗鐮僀伎作㻖㢧⪟", "竢朧䉱虃光塬䟛⣡蓟", "遶㞟鋅缕袡鲅ⵝ蝁ꌟ", "䢟銮䵵狌㐜燳谒颴詟",
                  "钉Ꞇ㖃蚩憶狫朰杜㜿", "啇ᚵⵕ憗䋫➫➓肤卟", "茫螓翁連劘樓㶔抉矟", "龝☳䘊辄岅較络㧩襟",
                  "ⲱ苀㱆犂媐Ꮤ锇惫靟", "計宁憕偵匢皫╛纺ꌟ", "檆䨿鑫㪺藝ꡖ勇䦛婟", "雑頏䰂䲝淚哚鹡魺⪟",
                  "塃璶繁躸圅㔟䗃肃懟", "腺ᕚ崚鏕鏥讥鼌䑺䲿", "怪绕滻蕶肣但⠥荖惟",
                  "肳哀旚挶靏鏻㾭䱠慟㪳ꏆ賊兲铧敻塹魀ʟ"],
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_upstream_segments(encoding: str) -> None:
    """TestEncryptSegment*: 17 per encoding with the empty one, 51 in all."""
    cipher = NameCipher(ZERO, encoding=encoding)
    assert cipher.encrypt_name("") == "" and cipher.decrypt_name("") == ""
    for plain, expected in zip(SEGMENTS, UPSTREAM[encoding], strict=True):
        assert cipher.encrypt_name(plain) == expected
        assert cipher.decrypt_name(expected) == plain
        if encoding == "base32":
            assert cipher.decrypt_name(expected.upper()) == plain


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_upstream_file_and_dir_names(encoding: str) -> None:
    """TestStandardEncryptFileName*, TestStandardDecryptFileName*, *DirName*."""
    s1, s12, s123 = UPSTREAM[encoding][:3]
    v = "-v2001-02-03-040506-123"
    on = NameCipher(ZERO, encoding=encoding)
    off = NameCipher(ZERO, encoding=encoding, dir_names=False)
    cases_on = [("1", s1), ("1/12", f"{s1}/{s12}"), ("1/12/123", f"{s1}/{s12}/{s123}"), ("1" + v, s1 + v),
                ("1/12" + v, f"{s1}/{s12}{v}")]
    cases_off = [("1", s1), ("1/12", f"1/{s12}"), ("1/12/123", f"1/12/{s123}"), ("1" + v, s1 + v),
                 ("1/12" + v, f"1/{s12}{v}")]
    for plain, enc in cases_on:
        assert on.encrypt_path(plain) == enc
        assert on.decrypt_path(enc) == plain
    for plain, enc in cases_off:
        assert off.encrypt_path(plain) == enc
        assert off.decrypt_path(enc) == plain
    one = on.encoding.encode(b"1")
    for plain, enc in cases_on[:3]:
        assert on.encrypt_dir(plain) == enc
        assert on.decrypt_dir(enc) == plain
        assert off.encrypt_dir(plain) == plain
        assert off.decrypt_dir(enc) == enc
        with pytest.raises(UndecryptableName, match=r"^not a multiple of blocksize$"):
            on.decrypt_path(one + enc)
        with pytest.raises(UndecryptableName, match=r"^not a multiple of blocksize$"):
            on.decrypt_dir(one + enc)
    assert NameCipher(ZERO, mode="off", encoding=encoding).encrypt_dir("1/12/123") == "1/12/123"


def test_upstream_nonstandard_encrypt() -> None:
    """TestNonStandardEncryptFileName."""
    assert NameCipher(ZERO, mode="off").encrypt_path("1/12/123") == "1/12/123.bin"
    assert NameCipher(ZERO, mode="off", suffix=".jpg").encrypt_path("1/12/123") == "1/12/123.jpg"
    assert NameCipher(ZERO, mode="off", suffix="none").encrypt_path("1/12/123") == "1/12/123"
    obf = NameCipher(ZERO, mode="obfuscate")
    assert obf.encrypt_path("1/12/123/!hello") == "49.6/99.23/150.890/53.!!lipps"
    assert obf.encrypt_path("1/12/123/!hello-v2001-02-03-040506-123") == (
        "49.6/99.23/150.890/53-v2001-02-03-040506-123.!!lipps")
    assert obf.encrypt_path("1/12/123/hello-v2001-02-03-040506-123.txt") == (
        "49.6/99.23/150.890/162.uryyB-v2001-02-03-040506-123.GKG")
    assert obf.encrypt_path("\u00a1") == "161.\u00e4"
    assert obf.encrypt_path("\u03a0") == "160.\u03c2"
    obf_nodir = NameCipher(ZERO, mode="obfuscate", dir_names=False)
    assert obf_nodir.encrypt_path("1/12/123/!hello") == "1/12/123/53.!!lipps"
    assert obf_nodir.encrypt_path("1/12/123/!hello-v2001-02-03-040506-123") == (
        "1/12/123/53-v2001-02-03-040506-123.!!lipps")
    assert obf_nodir.encrypt_path("\u00a1") == "161.\u00e4"
    assert obf_nodir.encrypt_path("\u03a0") == "160.\u03c2"
    # rclone_formats.md: obfuscate "Hello 123" with the all-zero key
    assert obf.encrypt_name("Hello 123") == "170.czGGJ 012"


NONSTANDARD_DECRYPT = [
    ("off", True, "1/12/123.bin", "1/12/123", None, ".bin"),
    ("off", True, "1/12/123.bix", None, "not an encrypted file - does not match suffix", ".bin"),
    ("off", True, ".bin", None, "not an encrypted file - does not match suffix", ".bin"),
    ("off", True, "1/12/123-v2001-02-03-040506-123.bin", "1/12/123-v2001-02-03-040506-123", None, ".bin"),
    ("off", True, "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.bin",
     "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123", None, ".bin"),
    ("off", True, "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.txt.bin",
     "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.txt", None, ".bin"),
    ("off", True, "1/12/123.jpg", "1/12/123", None, ".jpg"),
    ("off", True, "1/12/123", "1/12/123", None, "none"),
    ("obfuscate", True, "!.hello", "hello", None, ".bin"),
    ("obfuscate", True, "hello", None, "not an encrypted file - does not match suffix", ".bin"),
    ("obfuscate", True, "161.\u00e4", "\u00a1", None, ".bin"),
    ("obfuscate", True, "160.\u03c2", "\u03a0", None, ".bin"),
    ("obfuscate", False, "1/12/123/53.!!lipps", "1/12/123/!hello", None, ".bin"),
    ("obfuscate", False, "1/12/123/53-v2001-02-03-040506-123.!!lipps", "1/12/123/!hello-v2001-02-03-040506-123",
     None, ".bin"),
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("mode", "dir_names", "name", "expected", "error", "suffix"), NONSTANDARD_DECRYPT)
def test_upstream_nonstandard_decrypt(encoding: str, mode: str, dir_names: bool, name: str, expected: str | None,
                                      error: str | None, suffix: str) -> None:
    cipher = NameCipher(ZERO, mode=mode, encoding=encoding, dir_names=dir_names, suffix=suffix)
    if error is None:
        assert cipher.decrypt_path(name) == expected
    else:
        with pytest.raises(UndecryptableName) as info:
            cipher.decrypt_path(name)
        assert str(info.value) == error


def test_upstream_nonstandard_dir_names() -> None:
    off = NameCipher(ZERO, mode="off")
    for name in ("1/12/123.bin", "1/12/123", ".bin"):
        assert off.decrypt_dir(name) == name


@pytest.mark.parametrize(("encoding", "long_name"), [("base32", "a" * 3328), ("base64", "a" * 2816),
                                                     ("base32768", "怪" * 1280)])
def test_upstream_decrypt_segment_errors(encoding: str, long_name: str) -> None:
    """TestDecryptSegment*: the errors, with rclone's texts."""
    cipher = NameCipher(ZERO, encoding=encoding)
    enc = cipher.encoding.encode
    cases = [
        (long_name, "too long after base32 decode"),
        (enc(b"a"), "not a multiple of blocksize"),
        (enc(b"123456789abcdef"), "not a multiple of blocksize"),
        (enc(b"123456789abcdef0"), "bad PKCS#7 padding - too long"),
        ({"base32": "!", "base64": "!", "base32768": "!"}[encoding], f"illegal {encoding} data at input byte 0"),
    ]
    if encoding == "base32":
        cases.append(("64=", "bad base32 filename encoding"))
    for name, message in cases:
        with pytest.raises(UndecryptableName) as info:
            cipher.decrypt_name(name)
        assert str(info.value) == message, name


def test_padding_errors() -> None:
    cipher = NameCipher(ZERO)
    eme = cipher._eme
    assert eme is not None
    for padded, message in [(b"x" * 15 + b"\x00", "bad PKCS#7 padding - too short"),
                            (b"x" * 14 + b"\x01\x02", "bad PKCS#7 padding - not all the same"),
                            (b"x" * 15 + b"\x11", "bad PKCS#7 padding - too long")]:
        name = cipher.encoding.encode(eme.encrypt(ZERO.name_tweak, padded))
        with pytest.raises(UndecryptableName, match=f"^{message}$"):
            cipher.decrypt_name(name)
    # a whole block of padding is a valid empty name inside a path... but never produced
    full = cipher.encoding.encode(eme.encrypt(ZERO.name_tweak, b"\x10" * 16))
    assert cipher.decrypt_name(full) == ""


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("mode", ["standard", "off", "obfuscate"])
def test_upstream_enc_dec_matches(mode: str, encoding: str) -> None:
    cipher = NameCipher(ZERO, mode=mode, encoding=encoding)
    names = ["1/2/3/4"] + (["1/2/3/4/!hello\u03a0", "Avatar The Last Airbender"] if mode == "obfuscate" else [])
    for name in names:
        assert cipher.decrypt_path(cipher.encrypt_path(name)) == name


# ---------------------------------------------------------------------------------------------
# options

def test_option_errors_and_case() -> None:
    with pytest.raises(ValueError, match=r'^unknown file name encryption mode "potato"$'):
        NameCipher(ZERO, mode="Potato")
    with pytest.raises(ValueError, match=r'^unknown file name encoding mode "base16"$'):
        NameCipher(ZERO, encoding="base16")
    # the encoding is checked in every mode, as rclone's newCipherForConfig
    with pytest.raises(ValueError, match="unknown file name encoding mode"):
        NameCipher(ZERO, mode="off", encoding="nope")
    c = NameCipher(ZERO, mode="STANDARD", encoding="Base64")
    assert (c.mode, c.encoding.name) == ("standard", "base64")


def test_suffix(caplog: pytest.LogCaptureFixture) -> None:
    assert NameCipher(ZERO, mode="off", suffix="NONE").suffix == ""
    assert NameCipher(ZERO, mode="off").suffix == ".bin"
    with caplog.at_level(logging.ERROR, logger="pyclone.crypt"):
        c = NameCipher(ZERO, mode="off", suffix="jpg")
    assert c.suffix == ".jpg"
    assert "crypt: bad suffix: suffix config setting should include a '.'" in caplog.text
    assert c.encrypt_name("a") == "a.jpg" and c.decrypt_name("a.jpg") == "a"
    none = NameCipher(ZERO, mode="off", suffix="none")
    assert none.encrypt_name("a") == "a" and none.decrypt_name("a") == "a"
    with pytest.raises(UndecryptableName):
        none.decrypt_name("")


def test_repr_shows_no_key() -> None:
    text = repr(NameCipher(HORSE))
    assert HORSE.name_key.hex() not in text and "standard" in text


# ---------------------------------------------------------------------------------------------
# obfuscate corners, as Go computes them

def test_obfuscate_invalid_utf8_is_quoted() -> None:
    obf = NameCipher(ZERO, mode="obfuscate")
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert obf.encrypt_name(name) == "!." + name
    assert obf.decrypt_name("!." + name) == name


def test_deobfuscate_odd_prefixes() -> None:
    obf = NameCipher(HORSE, mode="obfuscate")
    for bad in ("x.abc", "1 .abc", "٣.abc", "99999999999999999999.a", "noprefix"):
        with pytest.raises(UndecryptableName):
            obf.decrypt_name(bad)
    # Go's Atoi takes a sign; a name made by hand still decrypts to something
    assert obf.decrypt_name("+162.CzGGJ.OSO") == "hello.txt"
    assert isinstance(obf.decrypt_name("-9000.abc"), str)


# ---------------------------------------------------------------------------------------------
# round trips

def _random_name(rng: random.Random) -> str:
    pools = ["abcxyzABCXYZ0123456789", " !#$%&'()+,-.;=@[]^_`{}~", "äöüßÿ¡éÀ", "€‐ファイル名中文한국어",
             "😀🎉𝄞", "\u0301\u200b\ufeff"]
    out = []
    for _ in range(rng.randint(1, 40)):
        pool = rng.choice(pools)
        out.append(rng.choice(pool))
    if rng.random() < 0.1:
        out.append(bytes([rng.randint(0x80, 0xFF)]).decode("utf-8", "surrogateescape"))
    if rng.random() < 0.1:
        out.append("-v2021-12-31-235959-999" + rng.choice(["", ".txt"]))
    return "".join(out).replace("/", "")


@pytest.mark.parametrize("dir_names", [True, False])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("mode", ["standard", "obfuscate", "off"])
def test_round_trips(mode: str, encoding: str, dir_names: bool) -> None:
    rng = random.Random(f"{mode}{encoding}{dir_names}")
    cipher = NameCipher(HORSE, mode=mode, encoding=encoding, dir_names=dir_names)
    uncached = NameCipher(HORSE, mode=mode, encoding=encoding, dir_names=dir_names, cache_size=0)
    for _ in range(300):
        name = _random_name(rng)
        enc = cipher.encrypt_name(name)
        assert uncached.encrypt_name(name) == enc
        assert cipher.decrypt_name(enc) == name
        assert "/" not in enc
        if mode == "standard":
            assert enc != name
        path = "/".join(_random_name(rng) for _ in range(rng.randint(1, 4)))
        assert cipher.decrypt_path(cipher.encrypt_path(path)) == path
        assert cipher.decrypt_dir(cipher.encrypt_dir(path)) == path
        assert cipher.encrypt_path(path).count("/") == path.count("/")


def test_same_name_same_ciphertext_and_prefixes_differ() -> None:
    cipher = NameCipher(HORSE)
    a, b = cipher.encrypt_name("common-prefix-1"), cipher.encrypt_name("common-prefix-2")
    assert a[:4] != b[:4]
    assert NameCipher(HORSE).encrypt_name("common-prefix-1") == a
