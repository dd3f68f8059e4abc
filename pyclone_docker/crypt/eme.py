"""EME (ECB-Mix-ECB), the wide-block mode of Halevi and Rogaway over AES, as rfjakob/eme's
Transform that rclone encrypts file names with.

The input is 1 to 128 AES blocks (16 to 2048 bytes); the output has the same length. The
block work runs in Cryptodome's AES-ECB, one call over all blocks per pass (three passes),
and the XORs and GF(2^128) doublings run on Python ints over the whole buffer. The bytes of
a block are little-endian for the doubling, as in the EME-32 draft: bit 7 of byte j carries
into bit 0 of byte j+1, and bit 7 of byte 15 folds back as 0x87 into byte 0.
"""

from __future__ import annotations

from typing import Any

BLOCK = 16
MAX_BLOCKS = 128
_MASK128 = (1 << 128) - 1


def _double(x: int) -> int:
    """Multiplication by 2 in GF(2^128), the block read as a little-endian int."""
    x <<= 1
    if x >> 128:
        x = (x & _MASK128) ^ 0x87
    return x


class EME:
    """EME over AES-256 with one key; `encrypt`/`decrypt` take the 16-byte tweak and the data."""

    def __init__(self, key: bytes) -> None:
        from Cryptodome.Cipher import AES

        self._aes: Any = AES.new(key, AES.MODE_ECB)
        # L[j] = 2^(j+1) * AES_enc(K, 0), j = 0..127: always encrypted, in both directions
        li = int.from_bytes(self._aes.encrypt(bytes(BLOCK)), "little")
        table = bytearray()
        for _ in range(MAX_BLOCKS):
            li = _double(li)
            table += li.to_bytes(BLOCK, "little")
        self._l_table = bytes(table)
        # the table's first m blocks as one int, for each m: one XOR does the whole buffer
        self._l_ints = [0] + [int.from_bytes(self._l_table[:BLOCK * m], "little") for m in range(1, MAX_BLOCKS + 1)]

    def encrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, self._aes.encrypt)

    def decrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, self._aes.decrypt)

    def _transform(self, tweak: bytes, data: bytes, aes: Any) -> bytes:
        size = len(data)
        if len(tweak) != BLOCK:
            raise ValueError(f"EME: the tweak must be 16 bytes long, is {len(tweak)}")
        if size % BLOCK:
            raise ValueError(f"EME: the data must be a multiple of 16 bytes long, is {size}")
        m = size // BLOCK
        if not 1 <= m <= MAX_BLOCKS:
            raise ValueError(f"EME operates on 1 to {MAX_BLOCKS} block-cipher blocks, you passed {m}")
        l_int = self._l_ints[m]
        t = int.from_bytes(tweak, "little")

        # PPP_j = E(P_j xor L_j)
        ppp_bytes = aes((int.from_bytes(data, "little") ^ l_int).to_bytes(size, "little"))
        ppp = int.from_bytes(ppp_bytes, "little")
        # MP = T xor PPP_0 xor ... xor PPP_(m-1)
        mp = t
        rest = ppp
        for _ in range(m):
            mp ^= rest & _MASK128
            rest >>= 128
        # MC = E(MP); M = MP xor MC
        mc = int.from_bytes(aes(mp.to_bytes(BLOCK, "little")), "little")
        mask = mp ^ mc
        # CCC_j = PPP_j xor 2^j * M for j >= 1; CCC_0 = MC xor T xor CCC_1 xor ... xor CCC_(m-1)
        ccc = ppp >> 128
        if m > 1:
            stream = 0
            for j in range(m - 1):
                mask = _double(mask)
                stream |= mask << (128 * j)
            ccc ^= stream
        ccc0 = mc ^ t
        rest = ccc
        for _ in range(m - 1):
            ccc0 ^= rest & _MASK128
            rest >>= 128
        ccc = (ccc << 128) | ccc0
        # C_j = E(CCC_j) xor L_j
        cc = int.from_bytes(aes(ccc.to_bytes(size, "little")), "little")
        return (cc ^ l_int).to_bytes(size, "little")
