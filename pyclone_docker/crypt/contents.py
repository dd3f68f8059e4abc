"""rclone crypt's file contents, byte for byte (backend/crypt/cipher.go).

An encrypted file is a 32-byte header (the magic ``RCLONE\\x00\\x00`` and a 24-byte random
nonce) and then blocks of 65536 plaintext bytes, each sealed with NaCl secretbox
(XSalsa20-Poly1305: the 16-byte tag first, then the ciphertext). Block *i* is sealed with the
nonce ``(nonce0 + i) mod 2**192``, the nonce read as a little-endian integer. The last block
holds the remaining 1..65536 bytes; a 0-byte file is the header alone.

The secretbox here is pyclone_docker.secretbox's, made fast for 64 KiB blocks: the XSalsa20
subkey (HSalsa20) comes from one Salsa20 block of pycryptodomex (HSalsa20's output words are
that block's words minus the input words it added), the XOR runs in C into the caller's
buffer and Poly1305 runs in C over a memoryview. It is checked against the pure-Python
HSalsa20 once per process; if the check fails it falls back to secretbox.py.
"""

from __future__ import annotations

import ctypes
import hmac
import os
import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from pyclone_docker import secretbox

MAGIC = b"RCLONE\x00\x00"
NONCE_SIZE = 24
HEADER_SIZE = len(MAGIC) + NONCE_SIZE  # 32
TAG_SIZE = 16  # secretbox.Overhead: the Poly1305 tag that opens every block
BLOCK_DATA = 65536
BLOCK_SIZE = TAG_SIZE + BLOCK_DATA  # 65552

ERR_TOO_SHORT = "file is too short to be encrypted"
ERR_BAD_HEADER = "file has truncated block header"
ERR_BAD_MAGIC = "not an encrypted file - bad magic string"
ERR_BAD_BLOCK = "failed to authenticate decrypted block - bad password?"

_NONCE_MOD = 1 << (8 * NONCE_SIZE)
_MASK = 0xFFFFFFFF
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_ZERO32 = bytes(32)
_ZERO64 = bytes(64)
_memmove = ctypes.memmove
_unpack16 = struct.Struct("<16I").unpack
_unpack4 = struct.Struct("<4I").unpack
_pack8 = struct.Struct("<8I").pack


class ContentError(ValueError):
    """The encrypted contents are not what rclone writes; the message is rclone's."""


class BadMagic(ContentError):
    def __init__(self) -> None:
        super().__init__(ERR_BAD_MAGIC)


class Truncated(ContentError):
    """ERR_TOO_SHORT (less than a header) or ERR_BAD_HEADER (a block of at most 16 bytes)."""


class BadBlock(ContentError):
    """A block failed authentication: tampered, truncated inside its data, swapped or the wrong key."""

    def __init__(self, index: int) -> None:
        super().__init__(ERR_BAD_BLOCK)
        self.index = index


# ---- sizes and offsets -----------------------------------------------------------------------


def encrypted_size(plain: int) -> int:
    """The size on the remote of a `plain`-byte file (Cipher.EncryptedSize)."""
    blocks, residue = divmod(plain, BLOCK_DATA)
    return HEADER_SIZE + blocks * BLOCK_SIZE + (TAG_SIZE + residue if residue else 0)


def decrypted_size(enc: int) -> int:
    """The plaintext size of an `enc`-byte object (Cipher.DecryptedSize); Truncated if impossible."""
    enc -= HEADER_SIZE
    if enc < 0:
        raise Truncated(ERR_TOO_SHORT)
    blocks, residue = divmod(enc, BLOCK_SIZE)
    if residue:
        residue -= TAG_SIZE
        if residue <= 0:
            raise Truncated(ERR_BAD_HEADER)
    return blocks * BLOCK_DATA + residue


class Underlying(NamedTuple):
    """What to read from the encrypted object for a plaintext range (calculateUnderlying)."""

    first_block: int  # the block the range starts in: its nonce is nonce0 + first_block
    discard: int  # plaintext bytes to drop from the start of that block
    enc_offset: int  # where that block starts in the encrypted object (header included)
    enc_length: int  # whole blocks to read from there; -1: to the end


def underlying_range(offset: int, length: int = -1, enc_size: int | None = None) -> Underlying:
    """The encrypted bytes covering plaintext [offset, offset+length); length -1 reads to the end.

    Whole blocks, as rclone's calculateUnderlying (a length of 0 still covers one block). With
    `enc_size` (the object's size) the length is clamped to the object: never -1, and 0 when
    the offset lies past the last block.
    """
    if offset < 0:
        raise ValueError("negative offset")
    first_block, discard = divmod(offset, BLOCK_DATA)
    enc_offset = HEADER_SIZE + first_block * BLOCK_SIZE
    enc_length = -1
    if length >= 0:
        beyond = length - (BLOCK_DATA - discard)  # bytes wanted past the first block
        blocks = 1 + (-(-beyond // BLOCK_DATA) if beyond > 0 else 0)
        enc_length = blocks * BLOCK_SIZE
    if enc_size is not None:
        left = max(0, enc_size - enc_offset)
        enc_length = left if enc_length < 0 else min(enc_length, left)
    return Underlying(first_block, discard, enc_offset, enc_length)


# ---- nonces ----------------------------------------------------------------------------------


def nonce_add(nonce: bytes, n: int) -> bytes:
    """(nonce + n) mod 2**192, the nonce a little-endian integer: nonce.add and nonce.increment."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("crypt nonce must be 24 bytes")
    return ((int.from_bytes(nonce, "little") + n) % _NONCE_MOD).to_bytes(NONCE_SIZE, "little")


def header_bytes(nonce: bytes) -> bytes:
    if len(nonce) != NONCE_SIZE:
        raise ValueError("crypt nonce must be 24 bytes")
    return MAGIC + nonce


def parse_header(header: bytes | bytearray | memoryview) -> bytes:
    """The nonce of a file header; Truncated (shorter than 32 bytes) or BadMagic."""
    if len(header) < HEADER_SIZE:
        raise Truncated(ERR_TOO_SHORT)
    if bytes(header[: len(MAGIC)]) != MAGIC:
        raise BadMagic()
    return bytes(header[len(MAGIC) : HEADER_SIZE])


# ---- the secretbox, fast ---------------------------------------------------------------------

Buffer = bytes | bytearray | memoryview


def _state_address(cipher: object) -> int:
    """The address of a Cryptodome Salsa20 object's C state (cffi or ctypes backend)."""
    ptr = cipher._state.get()  # type: ignore[attr-defined]
    if isinstance(ptr, ctypes.c_void_p):
        return int(ptr.value or 0)
    return int(_cffi_cast("uintptr_t", ptr))


def _cffi_cast(ctype: str, ptr: object) -> object:
    global _cffi_cast
    from Cryptodome.Util._raw_api import ffi  # type: ignore[attr-defined]  # the cffi backend

    _cffi_cast = ffi.cast
    return ffi.cast(ctype, ptr)


def _state_matches(addr: int, key: bytes, nonce8: bytes) -> bool:
    """Does the C state start with Salsa20's 16 input words (counter 0), as the poke assumes?"""
    k = struct.unpack("<8I", key)
    n = struct.unpack("<2I", nonce8)
    want = struct.pack("<16I", _SIGMA[0], *k[:4], _SIGMA[1], *n, 0, 0, _SIGMA[2], *k[4:], _SIGMA[3])
    return ctypes.string_at(addr, 64) == want


def _hsalsa20_c(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20 from one Salsa20 keystream block at counter nonce16[8:16] (poked into the state)."""
    from Cryptodome.Cipher import Salsa20

    cipher = Salsa20.new(key=key, nonce=nonce16[:8])
    # input words 8 and 9 (the block counter) sit at bytes 32..39 of the fresh state; no
    # keystream has been made yet, so the first block uses them
    _memmove(_state_address(cipher) + 32, nonce16[8:16], 8)
    w = _unpack16(cipher.encrypt(_ZERO64))
    n = _unpack4(nonce16)
    return _pack8(
        (w[0] - _SIGMA[0]) & _MASK, (w[5] - _SIGMA[1]) & _MASK,
        (w[10] - _SIGMA[2]) & _MASK, (w[15] - _SIGMA[3]) & _MASK,
        (w[6] - n[0]) & _MASK, (w[7] - n[1]) & _MASK, (w[8] - n[2]) & _MASK, (w[9] - n[3]) & _MASK,
    )


_hsalsa20: Callable[[bytes, bytes], bytes] | None = None


def _pick_hsalsa20() -> Callable[[bytes, bytes], bytes]:
    """_hsalsa20_c if the C state is laid out as assumed and it agrees with secretbox.hsalsa20."""
    global _hsalsa20
    if _hsalsa20 is None:
        chosen: Callable[[bytes, bytes], bytes] = secretbox.hsalsa20
        try:
            from Cryptodome.Cipher import Salsa20

            key, nonce8 = bytes(range(1, 33)), bytes(range(40, 48))
            probe = Salsa20.new(key=key, nonce=nonce8)  # held: its state is read below
            if _state_matches(_state_address(probe), key, nonce8):
                probes = [bytes(range(100, 116)), b"\xff" * 16, bytes(8) + b"\xff" * 8]
                if all(_hsalsa20_c(key, p) == secretbox.hsalsa20(key, p) for p in probes):
                    chosen = _hsalsa20_c
        except Exception:  # any surprise in Cryptodome's internals: the slow path
            chosen = secretbox.hsalsa20
        _hsalsa20 = chosen
    return _hsalsa20


def fast_path() -> bool:
    """True when HSalsa20 runs through Cryptodome's C Salsa20 (False: pure Python)."""
    return _pick_hsalsa20() is _hsalsa20_c


class SecretBox:
    """secretbox.Seal/Open for one key, writing into the caller's buffers."""

    def __init__(self, key: bytes) -> None:
        if len(key) != secretbox.KEY_SIZE:
            raise ValueError("secretbox key must be 32 bytes")
        from Cryptodome.Cipher import Salsa20
        from Cryptodome.Hash.Poly1305 import Poly1305_MAC

        self._key = bytes(key)
        self._salsa20 = Salsa20.new
        self._poly1305 = Poly1305_MAC
        self._hsalsa20 = _pick_hsalsa20()

    def _cipher(self, nonce: bytes) -> tuple[object, bytes]:
        """(a Salsa20 keyed with the XSalsa20 subkey at keystream byte 32, the Poly1305 key)."""
        if len(nonce) != NONCE_SIZE:
            raise ValueError("secretbox nonce must be 24 bytes")
        cipher = self._salsa20(key=self._hsalsa20(self._key, nonce[:16]), nonce=nonce[16:])
        return cipher, cipher.encrypt(_ZERO32)

    def seal_into(self, nonce: bytes, plain: Buffer, out: bytearray | memoryview) -> None:
        """out[:16+len(plain)] = tag || ciphertext; `out` is writable, at least that long."""
        cipher, otk = self._cipher(nonce)
        body = memoryview(out)[TAG_SIZE : TAG_SIZE + len(plain)]
        cipher.encrypt(plain, output=body)  # type: ignore[attr-defined]
        memoryview(out)[:TAG_SIZE] = self._poly1305(otk[:16], otk[16:], body).digest()

    def seal(self, nonce: bytes, plain: Buffer) -> bytearray:
        out = bytearray(TAG_SIZE + len(plain))
        self.seal_into(nonce, plain, out)
        return out

    def open_into(self, nonce: bytes, box: Buffer, out: bytearray | memoryview) -> bool:
        """out[:len(box)-16] = the plaintext if the tag is right: True; False (out untouched) if not."""
        if len(box) < TAG_SIZE:
            return False
        cipher, otk = self._cipher(nonce)
        view = memoryview(box)
        body = view[TAG_SIZE:]
        tag = self._poly1305(otk[:16], otk[16:], body).digest()
        if not hmac.compare_digest(tag, bytes(view[:TAG_SIZE])):
            return False
        cipher.encrypt(body, output=memoryview(out)[: len(body)])  # type: ignore[attr-defined]
        return True


# ---- streaming encryption --------------------------------------------------------------------

OutWrite = Callable[[bytearray], object]


class Encrypter:
    """One file's encryption: header(), then write() plaintext in any sizes, then finish().

    Each finished block goes to `out_write` as a fresh bytearray (16-byte tag + data) that the
    callee may keep: nothing here reuses it. Blocks come out in order; a 0-byte file is the
    header alone.
    """

    def __init__(self, data_key: bytes, nonce: bytes | None = None) -> None:
        self.nonce = bytes(nonce) if nonce is not None else os.urandom(NONCE_SIZE)
        if len(self.nonce) != NONCE_SIZE:
            raise ValueError("crypt nonce must be 24 bytes")
        self._box = SecretBox(data_key)
        self._next = int.from_bytes(self.nonce, "little")
        self._pending = bytearray()  # less than a block of plaintext, waiting for more
        self._finished = False
        self.plain_size = 0  # plaintext bytes taken so far

    def header(self) -> bytes:
        return header_bytes(self.nonce)

    def _seal(self, plain: Buffer, out_write: OutWrite) -> None:
        nonce = self._next.to_bytes(NONCE_SIZE, "little")
        self._next = (self._next + 1) % _NONCE_MOD
        out_write(self._box.seal(nonce, plain))

    def write(self, data: Buffer, out_write: OutWrite) -> None:
        """Take plaintext; every block it completes is sealed and handed to out_write."""
        if self._finished:
            raise ValueError("crypt encrypter already finished")
        view = memoryview(data).cast("B")
        self.plain_size += len(view)
        if self._pending:
            take = min(BLOCK_DATA - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < BLOCK_DATA:
                return
            self._seal(self._pending, out_write)
            self._pending = bytearray()
        whole = len(view) - len(view) % BLOCK_DATA
        for start in range(0, whole, BLOCK_DATA):  # straight from the caller's buffer
            self._seal(view[start : start + BLOCK_DATA], out_write)
        if whole < len(view):
            self._pending = bytearray(view[whole:])

    def finish(self, out_write: OutWrite) -> None:
        """Seal the last partial block, if any. The file is complete after this."""
        if self._finished:
            return
        self._finished = True
        if self._pending:
            self._seal(self._pending, out_write)
            self._pending = bytearray()


def encrypt_bytes(data_key: bytes, plain: Buffer, nonce: bytes | None = None) -> bytes:
    """A whole encrypted file, header included."""
    enc = Encrypter(data_key, nonce)
    parts: list[Buffer] = [enc.header()]
    enc.write(plain, parts.append)
    enc.finish(parts.append)
    return b"".join(parts)


# ---- decryption ------------------------------------------------------------------------------


class Decrypter:
    """One file's decryption from its 32-byte header; blocks are opened by index (random access).

    With pass_bad_blocks a block that fails authentication decrypts to zeros of its length, as
    rclone's --crypt-pass-bad-blocks; `bad_blocks` counts them and `last_block_bad` tells the
    caller to log the one just returned. One Decrypter per reader (those two fields are its
    state); the SecretBox inside holds only the key and may be shared between threads.
    """

    def __init__(self, data_key: bytes, header: Buffer, pass_bad_blocks: bool = False) -> None:
        self.nonce = parse_header(header)
        self._nonce0 = int.from_bytes(self.nonce, "little")
        self._box = SecretBox(data_key)
        self.pass_bad_blocks = pass_bad_blocks
        self.bad_blocks = 0
        self.last_block_bad = False

    def block_nonce(self, index: int) -> bytes:
        return ((self._nonce0 + index) % _NONCE_MOD).to_bytes(NONCE_SIZE, "little")

    def decrypt_block_into(self, index: int, block: Buffer, out: bytearray | memoryview) -> int:
        """Open block `index` (tag + 1..65536 bytes) into `out`; the plaintext length.

        Truncated for a block of at most 16 bytes, BadBlock when it fails authentication (with
        pass_bad_blocks: zeros, counted).
        """
        self.last_block_bad = False
        size, ok = self.open_block_into(index, block, out)
        if ok:
            return size
        if not self.pass_bad_blocks:
            raise BadBlock(index)
        memoryview(out)[:size] = bytes(size)
        self.bad_blocks += 1
        self.last_block_bad = True
        return size

    def open_block_into(self, index: int, block: Buffer, out: bytearray | memoryview) -> tuple[int, bool]:
        """Open block `index` into `out`: (plaintext length, authentic). No state is touched
        (no pass_bad_blocks, no counters), so threads may open blocks of one file at once."""
        if len(block) <= TAG_SIZE:
            raise Truncated(ERR_BAD_HEADER)
        if len(block) > BLOCK_SIZE:
            raise ValueError("crypt block longer than 65552 bytes")
        return len(block) - TAG_SIZE, self._box.open_into(self.block_nonce(index), block, out)

    def decrypt_block(self, index: int, block: Buffer) -> bytearray:
        out = bytearray(max(0, len(block) - TAG_SIZE))
        self.decrypt_block_into(index, block, out)
        return out

    def iter_plain(self, read: Callable[[int], Buffer], first_block: int = 0, discard: int = 0,
                   length: int = -1) -> Iterator[memoryview]:
        """Plaintext from an encrypted stream positioned at block `first_block` (after
        underlying_range): `read(n)` returns up to n bytes, b"" at the end. Drops `discard`
        bytes, stops after `length` (-1: at the end). A cut or forged block raises; nothing
        unauthenticated is ever yielded.
        """
        index = first_block
        while length != 0:
            block = _read_full(read, BLOCK_SIZE)
            if not block:
                return
            plain = memoryview(self.decrypt_block(index, block))
            if discard:
                if discard > len(plain):
                    raise ValueError("Seek beyond end of file")
                plain, discard = plain[discard:], 0
            if 0 <= length < len(plain):
                plain = plain[:length]
            if length > 0:
                length -= len(plain)
            if plain:
                yield plain
            if len(block) < BLOCK_SIZE:
                return
            index += 1


def _read_full(read: Callable[[int], Buffer], n: int) -> Buffer:
    """Up to n bytes from `read`, short only at the end of the stream."""
    first = read(n)
    if len(first) in (0, n):
        return first
    parts = bytearray(first)
    while len(parts) < n:
        more = read(n - len(parts))
        if not more:
            break
        parts += more
    return parts


def decrypt_bytes(data_key: bytes, enc: Buffer, pass_bad_blocks: bool = False) -> bytes:
    """The plaintext of a whole encrypted file; ContentError if it is cut or forged."""
    view = memoryview(enc)
    dec = Decrypter(data_key, view[:HEADER_SIZE], pass_bad_blocks)
    decrypted_size(len(view))  # a cut inside a tag fails here, before any work
    out = bytearray()
    for index, start in enumerate(range(HEADER_SIZE, len(view), BLOCK_SIZE)):
        out += dec.decrypt_block(index, view[start : start + BLOCK_SIZE])
    return bytes(out)
