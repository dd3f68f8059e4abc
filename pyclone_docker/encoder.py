"""rclone's file name encoding (the `encoding` backend option, rclone's lib/encoder), in Python.

A backend stores a name under an encoding: characters the remote cannot hold are swapped for
look-alike runes (mostly the FULLWIDTH forms, U+FF01..U+FF5E, and the SYMBOL FOR ... runes,
U+2400..U+2421), and a name that already holds such a rune gets it quoted with U+201B (SINGLE
HIGH-REVERSED-9 QUOTATION MARK, `‛`), so decoding gives back exactly the original name.

    enc = parse_encoding("Slash,Del,Ctl,Dot")   # sftp's default
    enc.encode("a/b\\x01.")  == "a／b␁."
    enc.decode("a／b␁.")    == "a/b\\x01."
    enc.encode_path("dir/..") == "dir/．．"  # per segment; the '/' between segments stays

`parse_encoding` takes rclone's syntax: flag names joined by ',' (case-sensitive, spaces around
a name are ignored), the aliases "Raw" (no change at all) and "None" (only NUL, U+2400 and the
quote rune), and numbers in Go syntax ("0x2000002", "0o17", "017", "1_024"). rclone 1.75.2 has
no "Base", "Standard", "Display" or "Win" names (`--local-encoding Base` fails there too); they
are constants in its code only: `BASE`, `STANDARD` here. `DEFAULTS` holds some backends'
defaults.

Invalid UTF-8: names here are `str` from os/FUSE with `surrogateescape`, so an undecodable
byte 0xNN is the lone surrogate U+DC00+0xNN. With the InvalidUtf8 flag each such byte becomes
"‛NN" (two upper-case hex digits), as in rclone; without it the surrogate passes through (rclone
passes the raw byte). Decoding "‛NN" gives that byte back, and bytes that form valid UTF-8
together (rclone works on bytes) come back as the character: decode("‛C3‛A9") == "é".

Fast path: a name with nothing the encoding handles is returned as is after one compiled regex
search and two look-ups for its ends (no per-character Python work).

Where this differs from rclone 1.75.2, on purpose: rclone's Decode takes a trailing symbol (␠,
．, ␉␊␋␍ under Right*) as quoted whenever one `‛` precedes it; its Encode writes a literal `‛`
as "‛‛", so for the name "‛ " under RightSpace it writes "‛‛␠" and then decodes that as "‛␠".
Here a trailing symbol is quoted when an odd run of `‛` precedes it, so decode(encode(x)) == x
always; names with an even run of two or more `‛` before such a symbol decode differently
from rclone (it does not get its own names back for them either).
"""

from __future__ import annotations

import functools
import re

__all__ = ["BASE", "DEFAULTS", "FLAGS", "QUOTE", "STANDARD", "Encoder", "parse_encoding"]

QUOTE = "\u201b"  # ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK
_SYM = 0x2400  # ␀ SYMBOL FOR NULL; control character c is U+2400+c
_FULL = 0xFEE0  # printable ASCII c + this is its FULLWIDTH form

# rclone's flag bits (1 << n), in rclone's order; "None" is 0 and "Raw" is bit 0.
FLAGS: dict[str, int] = {name: 1 << i for i, name in enumerate((
    "Raw", "Slash", "LtGt", "DoubleQuote", "SingleQuote", "BackQuote", "Dollar", "Colon",
    "Question", "Asterisk", "Pipe", "Hash", "Percent", "BackSlash", "CrLf", "Del", "Ctl",
    "LeftSpace", "LeftPeriod", "LeftTilde", "LeftCrLfHtVt", "RightSpace", "RightPeriod",
    "RightCrLfHtVt", "InvalidUtf8", "Dot", "SquareBracket", "Semicolon", "Exclamation"))}
_ALIASES: dict[str, int] = {"Raw": FLAGS["Raw"], "None": 0, **{k: v for k, v in FLAGS.items() if k != "Raw"}}
_VALID = ", ".join(sorted(_ALIASES))
_RAW = FLAGS["Raw"]

# the flags that swap a character for its FULLWIDTH form anywhere in a name
_FULLWIDTH: dict[str, str] = {
    "Slash": "/", "LtGt": "<>", "DoubleQuote": '"', "SingleQuote": "'", "BackQuote": "`",
    "Dollar": "$", "Colon": ":", "Question": "?", "Asterisk": "*", "Pipe": "|", "Hash": "#",
    "Percent": "%", "BackSlash": "\\", "SquareBracket": "[]", "Semicolon": ";", "Exclamation": "!"}
# the flags that swap control characters for SYMBOL FOR ... anywhere in a name
_SYMBOLS: dict[str, str] = {"CrLf": "\r\n", "Del": "\x7f", "Ctl": "".join(map(chr, range(1, 0x20)))}
_SPACES = "\t\n\v\r"
# first (Left*) or last (Right*) character only: flag -> (raw characters, their symbols)
_LEFT: dict[str, tuple[str, str]] = {
    "LeftSpace": (" ", "␠"), "LeftPeriod": (".", "．"), "LeftTilde": ("~", "～"),
    "LeftCrLfHtVt": (_SPACES, "".join(chr(_SYM + ord(c)) for c in _SPACES))}
_RIGHT: dict[str, tuple[str, str]] = {
    "RightSpace": (" ", "␠"), "RightPeriod": (".", "．"),
    "RightCrLfHtVt": (_SPACES, "".join(chr(_SYM + ord(c)) for c in _SPACES))}
# Dot: these whole names only
_DOT_ENC = {".": "．", "..": "．．", "．": QUOTE + "．", "．．": QUOTE + "．" + QUOTE + "．"}
_DOT_DEC = {v: k for k, v in _DOT_ENC.items()}
# Go's unicode.IsSpace, for strings.TrimSpace
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
# strconv.ParseUint(s, 0, 0): Go integer literal syntax, no sign
_GO_UINT = re.compile(r"0[xX]_?[0-9a-fA-F](?:_?[0-9a-fA-F])*|0[oO]_?[0-7](?:_?[0-7])*"
                      r"|0[bB]_?[01](?:_?[01])*|0(?:_?[0-7])*|[1-9](?:_?[0-9])*")


def _sym(c: str) -> str:
    return chr(_SYM + ord(c)) if c != "\x7f" else "␡"


def _charclass(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(set(chars))) + "]"


class _Tables:
    """Everything an Encoder needs for one mask, built once per mask."""

    def __init__(self, mask: int) -> None:
        def on(name: str) -> bool:
            return bool(mask & FLAGS[name])

        enc: dict[str, str] = {"\x00": "␀", "␀": QUOTE + "␀", QUOTE: QUOTE + QUOTE}
        for name, chars in _FULLWIDTH.items():
            if on(name):
                for c in chars:
                    enc[c] = chr(ord(c) + _FULL)
        for name, chars in _SYMBOLS.items():
            if on(name):
                for c in chars:
                    enc[c] = _sym(c)
        dec = {v: k for k, v in enc.items() if len(v) == 1}  # encoded rune -> raw character
        for v in dec:
            enc[v] = QUOTE + v
        self.invalid_utf8 = on("InvalidUtf8")
        if self.invalid_utf8:
            for b in range(0x80, 0x100):
                enc[chr(0xDC00 + b)] = f"{QUOTE}{b:02X}"
        self.enc_table = str.maketrans(enc)
        self.dec = dec
        self.dot = on("Dot")
        self.left_enc = {r: s for n, (raw, sym) in _LEFT.items() if on(n) for r, s in zip(raw, sym, strict=True)}
        self.right_enc = {r: s for n, (raw, sym) in _RIGHT.items() if on(n) for r, s in zip(raw, sym, strict=True)}
        self.left_dec = {s: r for r, s in self.left_enc.items()}
        self.right_dec = {s: r for r, s in self.right_enc.items()}
        # the fast path: one search for the characters anywhere, two look-ups for the ends
        self.enc_any = re.compile(_charclass("".join(enc)))
        self.enc_ends = ({**self.left_enc, **self.left_dec}, {**self.right_enc, **self.right_dec})
        specials = "".join(dec)
        self.dec_any = re.compile(_charclass(specials + QUOTE))
        hexpart = "|(?P<h>[0-9A-Fa-f]{2})" if self.invalid_utf8 else ""
        self.dec_token = re.compile(
            f"{QUOTE}(?:(?P<q>{_charclass(specials + QUOTE)}){hexpart})?|(?P<s>{_charclass(specials)})")


@functools.lru_cache(maxsize=64)
def _tables(mask: int) -> _Tables:
    return _Tables(mask)


def _renormalise(s: str) -> str:
    """Bytes decoded from "‛NN" are surrogates: join those that form UTF-8 (rclone works on bytes)."""
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no undecodable byte gave: leave it
        return s


class Encoder:
    """One rclone encoding (a MultiEncoder mask): encode/decode names and '/'-joined paths."""

    __slots__ = ("_t", "mask")

    def __init__(self, mask: int) -> None:
        if not 0 <= mask < 1 << 64:
            raise ValueError(f"encoding mask out of range: {mask}")
        self.mask = mask
        self._t = None if mask == _RAW else _tables(mask)

    def has(self, flag: str) -> bool:
        """True if the named flag ("Slash", "Dot", ...) is set."""
        return bool(self.mask & FLAGS[flag])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoder) and other.mask == self.mask

    def __hash__(self) -> int:
        return hash(self.mask)

    def __repr__(self) -> str:
        return f"parse_encoding({str(self)!r})"

    def __str__(self) -> str:
        """rclone's text for the mask: an alias if one is exact, else flag names in bit order."""
        for name, bits in _ALIASES.items():
            if bits == self.mask:
                return name
        names = {v: k for k, v in FLAGS.items()}
        return ",".join(names.get(1 << i, f"0x{1 << i:X}") for i in range(64) if self.mask >> i & 1)

    def encode(self, name: str) -> str:
        """The stored form of one file name (no '/' handling: Slash encodes it)."""
        t = self._t
        if t is None or not name:
            return name
        if t.dot and name in _DOT_ENC:
            return _DOT_ENC[name]
        if name[0] not in t.enc_ends[0] and name[-1] not in t.enc_ends[1] and t.enc_any.search(name) is None:
            return name
        prefix = suffix = ""
        first = name[0]
        if first in t.left_enc:
            prefix, name = t.left_enc[first], name[1:]
        elif first in t.left_dec:
            prefix, name = QUOTE + first, name[1:]
        if name:
            last = name[-1]
            if last in t.right_enc:
                suffix, name = t.right_enc[last], name[:-1]
            elif last in t.right_dec:
                suffix, name = QUOTE + last, name[:-1]
        return prefix + name.translate(t.enc_table) + suffix

    def decode(self, name: str) -> str:
        """The original form of one stored file name; undoes `encode`."""
        t = self._t
        if t is None or not name:
            return name
        if t.dot and name in _DOT_DEC:
            return _DOT_DEC[name]
        if name[0] not in t.left_dec and name[-1] not in t.right_dec and t.dec_any.search(name) is None:
            return name
        prefix = suffix = ""
        first = name[0]
        if first in t.left_dec:
            prefix, name = t.left_dec[first], name[1:]
        elif first == QUOTE and len(name) > 1 and name[1] in t.left_dec:
            prefix, name = name[1], name[2:]
        if name and name[-1] in t.right_dec:
            last, name = name[-1], name[:-1]
            run = len(name) - len(name.rstrip(QUOTE))
            if run % 2:  # the last of an odd run of quotes quotes the symbol
                suffix, name = last, name[:-1]
            else:
                suffix = t.right_dec[last]
        raw_bytes = False

        def token(m: re.Match[str]) -> str:
            nonlocal raw_bytes
            kind = m.lastgroup
            if kind == "s":  # an encoded rune, not quoted
                return t.dec[m.group("s")]
            if kind == "q":  # a quoted rune stands for itself
                return m.group("q")
            if kind == "h":  # an undecodable byte, "‛NN"
                b = int(m.group("h"), 16)
                if b < 0x80:
                    return chr(b)
                raw_bytes = True
                return chr(0xDC00 + b)
            return QUOTE  # a quote before nothing it quotes stays

        body = t.dec_token.sub(token, name)
        out = prefix + body + suffix
        return _renormalise(out) if raw_bytes else out

    def encode_path(self, path: str) -> str:
        """`encode` each '/'-separated segment."""
        if self._t is None or "/" not in path:
            return self.encode(path)
        return "/".join(map(self.encode, path.split("/")))

    def decode_path(self, path: str) -> str:
        """`decode` each '/'-separated segment."""
        if self._t is None or "/" not in path:
            return self.decode(path)
        return "/".join(map(self.decode, path.split("/")))


def _go_quote(s: str) -> str:
    """Go's %q (strconv.Quote) for the error text, close enough for names people type."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
             '"': '\\"', "\\": "\\\\"}
    out = []
    for c in s:
        o = ord(c)
        if c in named:
            out.append(named[c])
        elif c.isprintable() or c == " ":
            out.append(c)
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


def _go_uint(text: str) -> int | None:
    """strconv.ParseUint(text, 0, 64): Go literal syntax (a leading 0 is octal), no sign; None if bad."""
    if not _GO_UINT.fullmatch(text):
        return None
    digits = text.replace("_", "")
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567":
        digits = "0o" + digits[1:]
    value = int(digits, 0)
    return value if value < 1 << 64 else None


def parse_encoding(text: str) -> Encoder:
    """An Encoder from rclone's `encoding` syntax; ValueError with rclone's text if a part is bad."""
    mask = 0
    for part in text.split(","):
        part = part.strip(_GO_SPACE)
        if part in _ALIASES:
            mask |= _ALIASES[part]
        elif (number := _go_uint(part)) is not None:
            mask |= number
        else:
            raise ValueError(f"bad encoding {_go_quote(part)}: possible values are: {_VALID}")
    return Encoder(mask)


BASE = Encoder(FLAGS["Slash"] | FLAGS["Dot"])  # rclone's encoder.Base; the local backend's default on Linux
STANDARD = Encoder(FLAGS["Slash"] | FLAGS["Ctl"] | FLAGS["Del"] | FLAGS["Dot"])  # encoder.Standard (= Display)
# some backends' defaults in rclone 1.75.2, in rclone's syntax (`rclone help flags`); webdav's is
# no encoding at all (its code skips the encoder when the mask is 0) except for vendor sharepoint-ntlm
DEFAULTS: dict[str, str] = {
    "local": "Slash,Dot",
    "sftp": "Slash,Del,Ctl,Dot",
    "ftp": "Slash,Del,Ctl,RightSpace,Dot",
    "smb": "Slash,LtGt,DoubleQuote,Colon,Question,Asterisk,Pipe,BackSlash,Ctl,RightSpace,RightPeriod,InvalidUtf8,Dot",
    "webdav": "Raw",
    "webdav-sharepoint-ntlm": "Slash,LtGt,DoubleQuote,Colon,Question,Asterisk,Pipe,Hash,Percent,BackSlash,Del,Ctl,"
                              "LeftSpace,LeftTilde,RightSpace,RightPeriod,InvalidUtf8",
}
