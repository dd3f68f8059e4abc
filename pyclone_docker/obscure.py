"""rclone's reversible password obscuring (`rclone obscure` / `rclone reveal`).

AES-256-CTR with a fixed, public key, the random IV in front, base64url without padding.
It only keeps passwords from being read at a glance; it is not encryption.
"""

from __future__ import annotations

import base64
import os

# rclone's fixed key: obscured values are interchangeable with real rclone
_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_IV_SIZE = 16


def _crypt(iv: bytes, data: bytes) -> bytes:
    # Go's cipher.NewCTR counts with the whole IV as one 128-bit big-endian number
    from Cryptodome.Cipher import AES  # lazily: most starts never need it

    return AES.new(_KEY, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data)


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _corrupt(offset: int) -> ValueError:
    return ValueError("base64 decode failed when revealing password - is it obscured?: "
                      f"illegal base64 data at input byte {offset}")


def _b64url_decode(text: str) -> bytes:
    """base64.RawURLEncoding.DecodeString, with Go's error offsets (newlines are skipped)."""
    values = []
    for pos, ch in enumerate(text):
        if ch in "\r\n":
            continue
        value = _DECODE.get(ch)
        if value is None:
            raise _corrupt(pos)
        values.append(value)
    if len(values) % 4 == 1:
        raise _corrupt(len(text) - 1)
    bits = 0
    for value in values:
        bits = (bits << 6) | value
    nbytes = len(values) * 6 // 8
    bits >>= len(values) * 6 - nbytes * 8  # unused low bits are ignored, as Go does
    return bits.to_bytes(nbytes, "big")


def obscure(plaintext: str, iv: bytes | None = None) -> str:
    """Obscure a value as `rclone obscure` does; iv is for tests (16 bytes)."""
    if iv is None:
        iv = os.urandom(_IV_SIZE)
    if len(iv) != _IV_SIZE:
        raise ValueError("iv must be 16 bytes")
    data = plaintext.encode("utf-8", "surrogateescape")
    return _b64url_encode(iv + _crypt(iv, data))


def reveal(obscured: str) -> str:
    """Undo obscure(); raises ValueError with rclone's texts for values that aren't obscured."""
    raw = _b64url_decode(obscured)
    if len(raw) < _IV_SIZE:
        raise ValueError("input too short when revealing password - is it obscured?")
    plain = _crypt(raw[:_IV_SIZE], raw[_IV_SIZE:])
    # Go strings hold any bytes; surrogateescape keeps them round-trippable
    return plain.decode("utf-8", "surrogateescape")

