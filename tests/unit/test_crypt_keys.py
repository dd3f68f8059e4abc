"""crypt key derivation (pyclone_docker.crypt.keys) against rclone_formats.md 2.1: the upstream
cipher_test.go keys and those checked with the real rclone."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from pyclone_docker import obscure
from pyclone_docker.crypt.keys import DEFAULT_SALT, Keys, derive_keys

# password, password2 -> data_key, name_key, name_tweak
VECTORS = [
    ("potato", "",
     "7455c71ab17c865b8471f47b79acb07eb31d5678b80c7e2eaf4fc8066a9ee468",
     "765da27ab15d77f95796711f7b93ad63bbb484072e7180a8d17a9bbec14270d0",
     "c18d5932f55b2828c5e1e87215520310"),
    ("potato", "sausage",
     "8e9b6b99f8690467a071f9cb92d0aa787f8ff178bec96f999fd5206e644a1b50",
     "3ea95ef681782dc9d9955d225bfd442c6f5d6897b029015c6f462e2a9dae2ce3",
     "f17fd7141d65274f363fc2a04dd2148a"),
    ("correct horse battery staple", "",
     "7c88752cf3db1a2ea4835274f5dee9a3c01f8ca0d78fb307c824e364941ff47b",
     "c017a5d73b8a13da3257bf928cd74c5e801e9989c3b7a0c373298a9b275a307b",
     "bfd82eaeea770b00f282a312d8a8c4c7"),
]


@pytest.mark.parametrize(("password", "password2", "data", "name", "tweak"), VECTORS)
def test_known_keys(password: str, password2: str, data: str, name: str, tweak: str) -> None:
    keys = derive_keys(password, password2)
    assert keys.data_key.hex() == data
    assert keys.name_key.hex() == name
    assert keys.name_tweak.hex() == tweak


def test_empty_password_is_all_zero_without_scrypt() -> None:
    keys = derive_keys("")
    assert keys == Keys(bytes(32), bytes(32), bytes(16))
    # password2 does not matter then: rclone skips scrypt altogether
    assert derive_keys("", "pepper") == keys


def test_default_salt_is_rclones() -> None:
    assert DEFAULT_SALT.hex() == "a80df43a8fbd0308a7cab83e581f86b1"
    key = hashlib.scrypt(b"potato", salt=DEFAULT_SALT, n=16384, r=8, p=1, dklen=80, maxmem=64 << 20)
    keys = derive_keys("potato")
    assert keys.data_key + keys.name_key + keys.name_tweak == key


def test_password2_is_the_salt_as_utf8() -> None:
    key = hashlib.scrypt("pässword".encode(), salt="pëpper".encode(), n=16384, r=8, p=1, dklen=80,
                         maxmem=64 << 20)
    keys = derive_keys("pässword", "pëpper")
    assert keys.data_key + keys.name_key + keys.name_tweak == key


def test_revealed_bytes_that_are_not_utf8_go_to_scrypt_as_they_were() -> None:
    # obscure.reveal keeps bytes that are not UTF-8 as surrogate escapes
    raw = b"pw\xff\xfe"
    revealed = raw.decode("utf-8", "surrogateescape")
    key = hashlib.scrypt(raw, salt=DEFAULT_SALT, n=16384, r=8, p=1, dklen=80, maxmem=64 << 20)
    keys = derive_keys(revealed)
    assert keys.data_key + keys.name_key + keys.name_tweak == key


def test_obscured_round_trip_gives_the_same_keys() -> None:
    password = obscure.reveal(obscure.obscure("potato"))
    assert derive_keys(password).data_key.hex() == VECTORS[0][2]


def test_repr_and_str_show_no_key() -> None:
    keys = derive_keys("potato")
    for text in (repr(keys), str(keys), f"{keys}", repr([keys])):
        assert "Keys" in text
        for part in (keys.data_key, keys.name_key, keys.name_tweak):
            assert part.hex() not in text
            assert repr(part) not in text


def test_keys_are_frozen_and_sized() -> None:
    keys = derive_keys("")
    with pytest.raises(dataclasses.FrozenInstanceError):
        keys.data_key = b"x" * 32  # type: ignore[misc]
    with pytest.raises(ValueError):
        Keys(bytes(31), bytes(32), bytes(16))
    with pytest.raises(ValueError):
        Keys(bytes(32), bytes(32), bytes(15))
