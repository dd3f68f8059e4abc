"""NaCl secretbox (XSalsa20-Poly1305), as Go's x/crypto/nacl/secretbox lays it out.

Output of seal() is the 16-byte Poly1305 tag followed by the ciphertext. Used by the
encrypted rclone.conf and by crypt file contents. pycryptodomex has Salsa20 with 8-byte
nonces and Poly1305 but no XSalsa20: the 24-byte nonce is reduced with HSalsa20 here.
"""

from __future__ import annotations

import struct

KEY_SIZE = 32
NONCE_SIZE = 24
OVERHEAD = 16  # the Poly1305 tag

_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def _quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
    # Salsa20's quarter-round on words a, b, c, d
    x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
    x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
    x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
    x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """The XSalsa20 subkey: 20 Salsa20 rounds over key and nonce, no final addition."""
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]
    for _ in range(10):
        # column round, then row round
        _quarter(x, 0, 4, 8, 12)
        _quarter(x, 5, 9, 13, 1)
        _quarter(x, 10, 14, 2, 6)
        _quarter(x, 15, 3, 7, 11)
        _quarter(x, 0, 1, 2, 3)
        _quarter(x, 5, 6, 7, 4)
        _quarter(x, 10, 11, 8, 9)
        _quarter(x, 15, 12, 13, 14)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def _check(nonce: bytes, key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError("secretbox key must be 32 bytes")
    if len(nonce) != NONCE_SIZE:
        raise ValueError("secretbox nonce must be 24 bytes")


def _xsalsa20(data: bytes, nonce: bytes, key: bytes) -> tuple[bytes, bytes]:
    """(one-time Poly1305 key, data XOR keystream[32:])."""
    from Cryptodome.Cipher import Salsa20  # lazily: native code, loaded on first use

    cipher = Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])
    out = cipher.encrypt(bytes(32) + data)
    return out[:32], out[32:]


def _tag(otk: bytes, ciphertext: bytes) -> bytes:
    from Cryptodome.Hash.Poly1305 import Poly1305_MAC

    return Poly1305_MAC(otk[:16], otk[16:], ciphertext).digest()


def seal(msg: bytes, nonce: bytes, key: bytes) -> bytes:
    """secretbox.Seal(nil, msg, nonce, key): tag || ciphertext."""
    _check(nonce, key)
    otk, ciphertext = _xsalsa20(msg, nonce, key)
    return _tag(otk, ciphertext) + ciphertext


def open_(box: bytes, nonce: bytes, key: bytes) -> bytes:
    """secretbox.Open: the plaintext, or ValueError if the box is short or forged."""
    _check(nonce, key)
    if len(box) < OVERHEAD:
        raise ValueError("secretbox: message too short")
    tag, ciphertext = box[:OVERHEAD], box[OVERHEAD:]
    from Cryptodome.Cipher import Salsa20  # lazily: native code, loaded on first use

    cipher = Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])
    otk = cipher.encrypt(bytes(32))
    import hmac

    if not hmac.compare_digest(_tag(otk, ciphertext), tag):
        raise ValueError("secretbox: message authentication failed")
    return cipher.encrypt(ciphertext)  # continues the keystream at byte 32
