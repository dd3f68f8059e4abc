"""rclone obscure/reveal: vectors made by real rclone, plus live cross-checks with it."""

from __future__ import annotations

import random

import pytest

from pyclone_docker.obscure import obscure, reveal

VECTORS = [
    ("YWFhYWFhYWFhYWFhYWFhYQ", ""),
    ("YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ", "potato"),
    ("YmJiYmJiYmJiYmJiYmJiYp3gcEWbAw", "potato"),
    ("VyNxGMa0Q4rA1zYpH9ev7A", ""),
    ("ccpMPErRuVOpBYFXfTuoOMJHB7L20Q", "potato"),
    ("7ZFsWICcVREJrbTAwYO1Yo1jNyyEDWA", "hunter2"),
    ("ujZseLLEi4DrCgOu01hPxUo5DM-GXNSvjJW-swBuFmYBvVXvujXtpKEJ9Af_nHRLaCA",
     "pässwörd with spaces & ünïcode"),
    ("Kcy8PRrIkU0OUS6dZrFivL8E0SSA8KhMu02_8vaMBK-VelzRTQw6cjj7_FA", "correct horse battery staple"),
    ("AAECAwQFBgcICQoLDA0OD2C_AURuoCzz7U1nC2PAv0NDklk2qaSJ8Yoby-pTUAANRrJofB4RM3TK3ktGAw9GnAv2EkNi",
     "a fairly long password that spans several AES blocks!"),
    ("_____________________5thttMxU_n2xykBP4eeprZ--51SdZ3RtURCNESVpelhqv2duq4VDfE",
     "wrap-around test: 40 bytes of plaintext."),
    ("AAAAAAAAAAAAAAAAAAAAADw", "x"),
]

# the IVs the Python-made and upstream vectors were made with
KNOWN_IVS = {
    "YWFhYWFhYWFhYWFhYWFhYQ": b"a" * 16,
    "YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ": b"a" * 16,
    "YmJiYmJiYmJiYmJiYmJiYp3gcEWbAw": b"b" * 16,
    "AAECAwQFBgcICQoLDA0OD2C_AURuoCzz7U1nC2PAv0NDklk2qaSJ8Yoby-pTUAANRrJofB4RM3TK3ktGAw9GnAv2EkNi":
        bytes(range(16)),
    "_____________________5thttMxU_n2xykBP4eeprZ--51SdZ3RtURCNESVpelhqv2duq4VDfE": b"\xff" * 16,
    "AAAAAAAAAAAAAAAAAAAAADw": bytes(16),
}

DECODE_ERROR = "base64 decode failed when revealing password - is it obscured?: "
TOO_SHORT = "input too short when revealing password - is it obscured?"

REVEAL_ERRORS = [
    ("YWFh=", DECODE_ERROR + "illegal base64 data at input byte 4"),
    ("YWFhYWFhYWFhYWFhYWFhYQ=", DECODE_ERROR + "illegal base64 data at input byte 22"),
    ("YWFhYWFhYWFhYWFhYWFhYQ==", DECODE_ERROR + "illegal base64 data at input byte 22"),
    ("a", DECODE_ERROR + "illegal base64 data at input byte 0"),
    ("ab!c", DECODE_ERROR + "illegal base64 data at input byte 2"),
    ("YWFhYWFhYWFhYWFhYWFhY", DECODE_ERROR + "illegal base64 data at input byte 20"),
    ("YWFhYWFh+WFhYWFhYWFhYQ", DECODE_ERROR + "illegal base64 data at input byte 8"),
    ("YWFhYWFh/WFhYWFhYWFhYQ", DECODE_ERROR + "illegal base64 data at input byte 8"),
    ("plain password", DECODE_ERROR + "illegal base64 data at input byte 5"),
    ("abc", TOO_SHORT),
    ("", TOO_SHORT),
    ("YWFhYWFhYWFhYWFhYWFh", TOO_SHORT),
]


@pytest.mark.parametrize(("obscured", "plain"), VECTORS)
def test_reveal_vectors(obscured, plain):
    assert reveal(obscured) == plain


@pytest.mark.parametrize(("obscured", "iv"), KNOWN_IVS.items())
def test_obscure_with_known_iv(obscured, iv):
    assert obscure(reveal(obscured), iv=iv) == obscured


@pytest.mark.parametrize(("text", "message"), REVEAL_ERRORS)
def test_reveal_errors(text, message):
    with pytest.raises(ValueError) as err:
        reveal(text)
    assert str(err.value) == message


def test_obscure_is_random_and_round_trips():
    first, second = obscure("potato"), obscure("potato")
    assert first != second
    assert reveal(first) == reveal(second) == "potato"
    assert len(obscure("")) == 22
    assert "=" not in obscure("xy")


def test_newlines_are_skipped_like_go():
    assert reveal("YWFhYWFhYWFhYWFh\r\nYWFhYXMaGgIlEQ") == "potato"


def test_bad_iv_length():
    with pytest.raises(ValueError):
        obscure("x", iv=b"short")


def test_non_utf8_bytes_survive():
    # rclone reveals bytes, not text; garbage must round-trip unchanged
    garbage = reveal("AAAAAAAAAAAAAAAAAAAAAP8")
    assert obscure(garbage, iv=bytes(16)) == "AAAAAAAAAAAAAAAAAAAAAP8"


def _random_strings(count: int) -> list[str]:
    rng = random.Random(1234)
    alphabet = "abcXYZ019 !\"#$%&'()*+,-./:;<=>?@[]^_`{|}~äöü€漢字🙂"
    return [''.join(rng.choice(alphabet) for _ in range(rng.randrange(0, 70)))
            for _ in range(count)]


@pytest.mark.rclone
@pytest.mark.parametrize("plain", [*_random_strings(8), "", "x" * 100, "-dash"])
def test_rclone_reveals_ours(run_rclone, plain):
    res = run_rclone("reveal", "--", obscure(plain))  # obscured text may start with "-"
    assert res.returncode == 0, res.stderr
    assert res.stdout.removesuffix("\n") == plain


@pytest.mark.rclone
@pytest.mark.parametrize("plain", [*_random_strings(8), "", "x" * 100])
def test_we_reveal_rclones(run_rclone, plain):
    # `obscure -` reads the first line of stdin, so any leading "-" is safe
    res = run_rclone("obscure", "-", stdin=plain + "\n")
    assert res.returncode == 0, res.stderr
    assert reveal(res.stdout.strip()) == plain


@pytest.mark.rclone
@pytest.mark.parametrize(("text", "message"), [e for e in REVEAL_ERRORS if e[0]])
def test_reveal_errors_match_rclone(run_rclone, text, message):
    res = run_rclone("reveal", "--", text)
    assert res.returncode != 0
    assert res.stderr.strip().endswith("Failed to reveal: " + message)
