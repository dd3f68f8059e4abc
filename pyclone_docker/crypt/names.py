"""rclone crypt's file-name encryption (backend/crypt/cipher.go), byte for byte.

A path is split on "/" and each segment handled on its own (an empty segment stays empty):

* `standard`: PKCS#7 padding to a multiple of 16 bytes (always 1 to 16 bytes of it), EME over
  AES-256 with the name key and tweak, then the filename_encoding (base32, base64, base32768).
* `obfuscate`: rclone's rotation of digits, letters, Latin-1 and the rest of Unicode by an
  amount from the name and the name key, behind "<sum of code points % 256>.".
* `off`: file names get the suffix (default ".bin", "none" for no suffix); directories stay.

Files (`encrypt_path`, rclone's EncryptFileName): every segment, or with
directory_name_encryption false only the last. Directories (`encrypt_dir`, EncryptDirName):
every segment, or none when directory names are not encrypted or the mode is off. A version
suffix `-vYYYY-MM-DD-HHMMSS-mmm` (b2/--backup versions) on the last segment stays outside the
encryption: it is taken off the base name before the extension and put back after.

Names are str; bytes that are not UTF-8 travel as surrogate escapes (as the FUSE layer hands
them over), so a name is the same bytes rclone sees. Encrypted and decrypted segments are
cached (bounded LRU): a lookup encrypts the same names again and again.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from .eme import EME, MAX_BLOCKS
from .encodings import Encoding, go_quote, lookup
from .keys import Keys

log = logging.getLogger("pyclone.crypt")

MODES = ("standard", "obfuscate", "off")
CACHE_SIZE = 4096
BLOCK = 16

# rclone's error texts (cipher.go, pkcs7)
ERR_NOT_A_MULTIPLE = "not a multiple of blocksize"
ERR_TOO_SHORT = "too short after base32 decode"
ERR_TOO_LONG = "too long after base32 decode"
ERR_NOT_ENCRYPTED = "not an encrypted file - does not match suffix"
ERR_PAD_TOO_LONG = "bad PKCS#7 padding - too long"
ERR_PAD_TOO_SHORT = "bad PKCS#7 padding - too short"
ERR_PAD_NOT_SAME = "bad PKCS#7 padding - not all the same"
ERR_SUFFIX_DOT = "suffix config setting should include a '.'"

_QUOTE = "!"


class UndecryptableName(ValueError):
    """A name that does not decrypt; the message is rclone's."""


def parse_mode(mode: str) -> str:
    """A filename_encryption value (case-insensitive), as rclone's NewNameEncryptionMode."""
    key = mode.lower()
    if key not in MODES:
        raise ValueError(f"unknown file name encryption mode {go_quote(key)}")
    return key


def parse_suffix(suffix: str) -> str:
    """The suffix option as rclone's setEncryptedSuffix: "none" (any case) is no suffix; a
    suffix without the leading dot gets one, with an error logged."""
    if suffix.lower() == "none":
        return ""
    if not suffix.startswith("."):
        log.error("crypt: bad suffix: %s", ERR_SUFFIX_DOT)
        suffix = "." + suffix
    return suffix


# ---------------------------------------------------------------------------------------------
# version suffixes (lib/version)

_VERSION_MATCH = re.compile(r"-v[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6}-[0-9]{3}")
_VERSION_TAIL = re.compile(r"-v([0-9]{4})-([0-9]{2})-([0-9]{2})-([0-9]{2})([0-9]{2})([0-9]{2})-[0-9]{3}")
_VERSION_LEN = len("-v2006-01-02-150405.000")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def split_ext(name: str) -> tuple[str, str]:
    """lib/version's splitExt: Go's path.Ext, with ".file" as a base, not an extension."""
    dot = name.rfind(".")
    ext = name[dot:] if dot >= 0 and "/" not in name[dot:] else ""
    base = name[:len(name) - len(ext)]
    if ext and not base:
        return ext, ""
    return base, ext


def _valid_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bool:
    """What Go's time.Parse accepts for the layout 2006-01-02-150405 (proleptic Gregorian,
    year 0000 included and a leap year)."""
    if not 1 <= month <= 12 or hour >= 24 or minute >= 60 or second >= 60:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _DAYS[month - 1] + (1 if month == 2 and leap else 0)


def remove_version(name: str) -> tuple[str, str] | None:
    """(the name without its version, the version text) as lib/version's Remove; None when
    the name carries no version that parses."""
    if not _VERSION_MATCH.search(name):
        return None
    base, ext = split_ext(name)
    tail = base[-_VERSION_LEN:]
    if len(tail) < _VERSION_LEN:
        return None
    m = _VERSION_TAIL.fullmatch(tail)
    if m is None or not _valid_time(*(int(g) for g in m.groups())):
        return None
    return base[:-_VERSION_LEN] + ext, tail


def add_version(name: str, version: str) -> str:
    """lib/version's Add: the version goes before the extension."""
    base, ext = split_ext(name)
    return base + version + ext


# ---------------------------------------------------------------------------------------------
# Go helpers for obfuscate


def _go_mod(a: int, b: int) -> int:
    """Go's % (truncated): the sign of the dividend."""
    r = abs(a) % b
    return -r if a < 0 else r


def _go_rune(n: int) -> str:
    """Go's WriteRune: an invalid code point is written as U+FFFD."""
    if 0 <= n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF:
        return chr(n)
    return "\ufffd"


_ATOI = re.compile(r"[+-]?[0-9]+")


def _go_atoi(text: str) -> int | None:
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------


class NameCipher:
    """Encrypts and decrypts names as one rclone crypt remote does.

    `mode` is filename_encryption, `encoding` filename_encoding, `dir_names`
    directory_name_encryption and `suffix` the off-mode suffix. Bad option values raise
    ValueError with rclone's texts; names that do not decrypt raise UndecryptableName.
    """

    def __init__(self, keys: Keys, mode: str = "standard", encoding: str = "base32", dir_names: bool = True,
                 suffix: str = ".bin", cache_size: int = CACHE_SIZE) -> None:
        self.mode = parse_mode(mode)
        self.encoding: Encoding = lookup(encoding)
        self.dir_names = dir_names
        self.suffix = parse_suffix(suffix)
        self._tweak = keys.name_tweak
        self._key_sum = sum(keys.name_key)
        self._eme = EME(keys.name_key) if self.mode == "standard" else None
        raw_enc: Callable[[str], str]
        raw_dec: Callable[[str], str]
        if self.mode == "standard":
            raw_enc, raw_dec = self._encrypt_segment, self._decrypt_segment
        else:
            raw_enc, raw_dec = self._obfuscate_segment, self._deobfuscate_segment
        self._enc = functools.lru_cache(maxsize=cache_size)(raw_enc)
        self._dec = functools.lru_cache(maxsize=cache_size)(raw_dec)

    def __repr__(self) -> str:
        return (f"NameCipher(mode={self.mode!r}, encoding={self.encoding.name!r}, dir_names={self.dir_names!r}, "
                f"suffix={self.suffix!r})")

    @property
    def case_insensitive(self) -> bool:
        """rclone's crypt feature: set when directory names are plain or the mode is off."""
        return not self.dir_names or self.mode == "off"

    # -- one segment ----------------------------------------------------------------------

    def encrypt_name(self, segment: str, is_dir: bool = False) -> str:
        """One file name (or with is_dir one directory name), as the last segment of a path."""
        if self.mode == "off":
            return segment if is_dir else segment + self.suffix
        if is_dir and not self.dir_names:
            return segment
        return self._encrypt_last(segment)

    def decrypt_name(self, segment: str, is_dir: bool = False) -> str:
        """The plain name of one encrypted file name (or directory name); UndecryptableName."""
        if self.mode == "off":
            return segment if is_dir else self._decrypt_off(segment)
        if is_dir and not self.dir_names:
            return segment
        return self._decrypt_last(segment)

    # -- paths ----------------------------------------------------------------------------

    def encrypt_path(self, path: str) -> str:
        """A file's path, as rclone's EncryptFileName."""
        if self.mode == "off":
            return path + self.suffix
        return self._encrypt_segments(path)

    def decrypt_path(self, path: str) -> str:
        """A file's encrypted path back, as rclone's DecryptFileName."""
        if self.mode == "off":
            return self._decrypt_off(path)
        return self._decrypt_segments(path)

    def encrypt_dir(self, path: str) -> str:
        """A directory's path, as rclone's EncryptDirName."""
        if self.mode == "off" or not self.dir_names:
            return path
        return self._encrypt_segments(path)

    def decrypt_dir(self, path: str) -> str:
        """A directory's encrypted path back, as rclone's DecryptDirName."""
        if self.mode == "off" or not self.dir_names:
            return path
        return self._decrypt_segments(path)

    # -- lengths --------------------------------------------------------------------------

    def encrypted_length(self, plain_bytes: int) -> int:
        """The length of the encrypted name of a plain name of `plain_bytes` UTF-8 bytes, in
        characters (base32768: UTF-16 units; the others are ASCII, so bytes). Obfuscate: the
        longest prefix ("255.") and no "!" in the name (each "!" adds one)."""
        if self.mode == "off":
            return plain_bytes + len(self.suffix)
        if plain_bytes == 0:  # an empty segment stays empty
            return 0
        if self.mode == "obfuscate":
            return plain_bytes + 4
        padded = BLOCK * (plain_bytes // BLOCK + 1)
        per = {"base32": (8, 5), "base64": (4, 3), "base32768": (8, 15)}[self.encoding.name]
        return -(-padded * per[0] // per[1])

    def max_plain_length(self, limit: int = 255) -> int:
        """The longest plain name (UTF-8 bytes) whose encrypted name fits in `limit` characters
        (see encrypted_length), e.g. 143 for standard/base32 and 255; -1 if none fits."""
        if self.mode != "standard":
            return max(-1, limit - (len(self.suffix) if self.mode == "off" else 4))
        best = -1
        n = BLOCK - 1
        while self.encrypted_length(n) <= limit and n < MAX_BLOCKS * BLOCK:
            best = n
            n += BLOCK
        return best

    # -- internals ------------------------------------------------------------------------

    def _encrypt_last(self, segment: str) -> str:
        if "-v" in segment:
            split = remove_version(segment)
            if split is not None:
                return add_version(self._enc(split[0]) if split[0] else "", split[1])
        return self._enc(segment) if segment else ""

    def _decrypt_last(self, segment: str) -> str:
        if "-v" in segment:
            split = remove_version(segment)
            if split is not None:
                return add_version(self._dec(split[0]) if split[0] else "", split[1])
        return self._dec(segment) if segment else ""

    def _encrypt_segments(self, path: str) -> str:
        segments = path.split("/")
        last = len(segments) - 1
        for i in range(last if self.dir_names else 0):
            if segments[i]:
                segments[i] = self._enc(segments[i])
        segments[last] = self._encrypt_last(segments[last])
        return "/".join(segments)

    def _decrypt_segments(self, path: str) -> str:
        segments = path.split("/")
        last = len(segments) - 1
        for i in range(last if self.dir_names else 0):
            if segments[i]:
                segments[i] = self._dec(segments[i])
        segments[last] = self._decrypt_last(segments[last])
        return "/".join(segments)

    def _decrypt_off(self, name: str) -> str:
        remaining = len(name) - len(self.suffix)
        if remaining == 0 or not name.endswith(self.suffix):
            raise UndecryptableName(ERR_NOT_ENCRYPTED)
        plain = name[:remaining]
        if "-v" in plain:
            split = remove_version(plain)
            if split is not None and split[0] == "":
                raise UndecryptableName(ERR_NOT_ENCRYPTED)
        return plain

    # standard: PKCS#7 + EME + encoding

    def _encrypt_segment(self, plain: str) -> str:
        assert self._eme is not None
        if not plain:
            return ""
        raw = plain.encode("utf-8", "surrogateescape")
        pad = BLOCK - len(raw) % BLOCK
        return self.encoding.encode(self._eme.encrypt(self._tweak, raw + bytes((pad,)) * pad))

    def _decrypt_segment(self, cipher: str) -> str:
        assert self._eme is not None
        if not cipher:
            return ""
        try:
            raw = self.encoding.decode(cipher)
        except ValueError as e:
            raise UndecryptableName(str(e)) from None
        if len(raw) % BLOCK:
            raise UndecryptableName(ERR_NOT_A_MULTIPLE)
        if not raw:
            raise UndecryptableName(ERR_TOO_SHORT)
        if len(raw) > MAX_BLOCKS * BLOCK:
            raise UndecryptableName(ERR_TOO_LONG)
        padded = self._eme.decrypt(self._tweak, raw)
        pad = padded[-1]
        if pad > BLOCK:
            raise UndecryptableName(ERR_PAD_TOO_LONG)
        if pad == 0:
            raise UndecryptableName(ERR_PAD_TOO_SHORT)
        if padded[-pad:] != bytes((pad,)) * pad:
            raise UndecryptableName(ERR_PAD_NOT_SAME)
        return padded[:-pad].decode("utf-8", "surrogateescape")

    # obfuscate

    def _obfuscate_segment(self, plain: str) -> str:
        if not plain:
            return ""
        if not _is_utf8(plain):
            return "!." + plain
        codes = [ord(c) for c in plain]
        d = sum(codes) % 256
        out = [str(d), "."]
        d += self._key_sum
        d9, d25, d95, d127 = d % 9 + 1, d % 25 + 1, d % 95 + 1, d % 127 + 1
        for r in codes:
            if r == 0x21:  # "!"
                out.append("!!")
            elif 0x30 <= r <= 0x39:
                out.append(chr(0x30 + (r - 0x30 + d9) % 10))
            elif 0x41 <= r <= 0x5A or 0x61 <= r <= 0x7A:
                pos = r - 0x41
                if pos >= 26:
                    pos -= 6
                pos = (pos + d25) % 52
                if pos >= 26:
                    pos += 6
                out.append(chr(0x41 + pos))
            elif 0xA0 <= r <= 0xFF:
                out.append(chr(0xA0 + (r - 0xA0 + d95) % 96))
            elif r >= 0x100:
                base = r - r % 256
                n = base + (r - base + d127) % 256
                if n > 0x10FFFF or 0xD800 <= n <= 0xDFFF:
                    out.append(_QUOTE + chr(r))
                else:
                    out.append(chr(n))
            else:
                out.append(chr(r))
        return "".join(out)

    def _deobfuscate_segment(self, cipher: str) -> str:
        if not cipher:
            return ""
        num, dot, after = cipher.partition(".")
        if not dot:
            raise UndecryptableName(ERR_NOT_ENCRYPTED)
        if num == "!":
            return after
        d = _go_atoi(num)
        if d is None:
            raise UndecryptableName(ERR_NOT_ENCRYPTED)
        d += self._key_sum
        d9, d25, d95, d127 = _go_mod(d, 9) + 1, _go_mod(d, 25) + 1, _go_mod(d, 95) + 1, _go_mod(d, 127) + 1
        out = []
        in_quote = False
        for ch in after:
            r = ord(ch)
            if 0xD800 <= r <= 0xDFFF:  # a byte that is not UTF-8: Go reads U+FFFD
                r, ch = 0xFFFD, "\ufffd"
            if in_quote:
                out.append(ch)
                in_quote = False
            elif r == 0x21:
                in_quote = True
            elif 0x30 <= r <= 0x39:
                n = r - d9
                if n < 0x30:
                    n += 10
                out.append(_go_rune(n))
            elif 0x41 <= r <= 0x5A or 0x61 <= r <= 0x7A:
                pos = r - 0x41
                if pos >= 26:
                    pos -= 6
                pos -= d25
                if pos < 0:
                    pos += 52
                if pos >= 26:
                    pos += 6
                out.append(_go_rune(0x41 + pos))
            elif 0xA0 <= r <= 0xFF:
                n = r - d95
                if n < 0xA0:
                    n += 96
                out.append(_go_rune(n))
            elif r >= 0x100:
                base = r - r % 256
                n = r - d127
                if n < base:
                    n += 256
                out.append(_go_rune(n))
            else:
                out.append(ch)
        return "".join(out)
