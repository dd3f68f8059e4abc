"""The crypt keys from the passwords, as rclone's Cipher.Key (backend/crypt/cipher.go).

scrypt(password, salt, N=16384, r=8, p=1) gives 80 bytes: the secretbox key for the file
contents (32), the AES-256 key for the names (32) and the EME tweak (16). The salt is the
revealed password2 as UTF-8, or rclone's fixed default salt when password2 is empty. An
empty password gives 80 zero bytes without scrypt, as rclone (its tests use it).

The passwords come in revealed (plain text), not obscured: revealing is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

# rclone's defaultSalt: used when password2 is not set
DEFAULT_SALT = bytes.fromhex("a80df43a8fbd0308a7cab83e581f86b1")
SCRYPT_N = 16384
SCRYPT_R = 8
SCRYPT_P = 1
DATA_KEY_SIZE = 32
NAME_KEY_SIZE = 32
NAME_TWEAK_SIZE = 16
KEY_SIZE = DATA_KEY_SIZE + NAME_KEY_SIZE + NAME_TWEAK_SIZE


@dataclass(frozen=True, repr=False)
class Keys:
    """The three keys of one crypt remote. The repr names none of them."""

    data_key: bytes
    name_key: bytes
    name_tweak: bytes

    def __post_init__(self) -> None:
        if (len(self.data_key), len(self.name_key), len(self.name_tweak)) != (
                DATA_KEY_SIZE, NAME_KEY_SIZE, NAME_TWEAK_SIZE):
            raise ValueError("crypt keys must be 32, 32 and 16 bytes long")

    def __repr__(self) -> str:
        return "Keys(<secret>)"

    __str__ = __repr__


def _scrypt(password: bytes, salt: bytes) -> bytes:
    # Cryptodome's scrypt measured faster here than hashlib's (OpenSSL): about 29 ms against 36 ms (medians of 10)
    from Cryptodome.Protocol.KDF import scrypt

    key = scrypt(password, salt, KEY_SIZE, N=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    assert isinstance(key, bytes)
    return key


def _utf8(text: str) -> bytes:
    # revealed passwords may carry bytes that are not UTF-8 (obscure.reveal keeps them as
    # surrogate escapes): give scrypt the very bytes rclone gives it
    return text.encode("utf-8", "surrogateescape")


def derive_keys(password: str, password2: str = "") -> Keys:
    """rclone's keys for `password` (revealed) and the salt `password2` (revealed, "" for none)."""
    if password == "":
        key = bytes(KEY_SIZE)
    else:
        salt = _utf8(password2) if password2 != "" else DEFAULT_SALT
        key = _scrypt(_utf8(password), salt)
    return Keys(data_key=key[:DATA_KEY_SIZE],
                name_key=key[DATA_KEY_SIZE:DATA_KEY_SIZE + NAME_KEY_SIZE],
                name_tweak=key[DATA_KEY_SIZE + NAME_KEY_SIZE:])
