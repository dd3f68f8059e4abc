"""Go's strconv and fmt as rclone's values use them: quoting, floats, integers, booleans, modes."""

from __future__ import annotations

import math
import re

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def _category(ch: str) -> str:
    import unicodedata  # lazily: the table costs RSS the plugin rarely needs

    return unicodedata.category(ch)


_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote_char(ch: str, quote: str) -> str:
    if ch == quote or ch == "\\":
        return "\\" + ch
    if " " <= ch < "\x7f":
        return ch
    named = _NAMED_ESCAPES.get(ch)
    if named:
        return named
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was no UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if _category(ch)[0] in "CZ":  # Go's IsPrint: letters, marks, numbers, punctuation, symbols
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def go_quote(s: str) -> str:
    """Go's %q of a string (strconv.Quote): `"a\\tb"`, `"\\u00a0"`."""
    return '"' + "".join(_quote_char(ch, '"') for ch in s) + '"'


def go_quote_rune(ch: str) -> str:
    """Go's %q of a rune (strconv.QuoteRune): `'x'`, `'\\''`, `'\\t'`."""
    return "'" + _quote_char(ch, "'") + "'"


# ---------------------------------------------------------------------------
# floats

_DIGITS = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_DEC_FLOAT = re.compile(
    rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")
# Go hex floats need the p exponent; "0x10" is a syntax error (checked with rclone)
_HEX_FLOAT = re.compile(
    rf"([+-]?)0[xX]_?((?:{_HEX})?(?:\.(?:{_HEX})?)?)[pP]([+-]?{_DIGITS})")
_SPECIAL_FLOAT = re.compile(r"([+-]?)(inf|infinity)|(nan)", re.IGNORECASE)


def _float_error(s: str, why: str) -> ValueError:
    return ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: {why}")


def parse_go_float(s: str) -> float:
    """strconv.ParseFloat(s, 64): ASCII only, no spaces, `1_000` and `0x1p4` allowed."""
    special = _SPECIAL_FLOAT.fullmatch(s)
    if special:
        if special.group(3):
            return math.nan
        return -math.inf if special.group(1) == "-" else math.inf
    hexm = _HEX_FLOAT.fullmatch(s)
    if hexm:
        mantissa = hexm.group(2).replace("_", "")
        if mantissa in ("", "."):
            raise _float_error(s, "invalid syntax")
        try:
            value = float.fromhex(f"{hexm.group(1)}0x{mantissa}p{hexm.group(3).replace('_', '')}")
        except OverflowError:
            raise _float_error(s, "value out of range") from None
    elif _DEC_FLOAT.fullmatch(s):
        value = float(s.replace("_", ""))
    else:
        raise _float_error(s, "invalid syntax")
    if math.isinf(value):
        raise _float_error(s, "value out of range")
    return value


def float_to_int64(x: float) -> int:
    """Go's int64(float64) on amd64: out of range and NaN become MinInt64."""
    if math.isnan(x) or x >= 2.0**63 or x < -(2.0**63):
        return INT64_MIN
    return int(x)


def format_go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    from decimal import Decimal  # rarely needed; keeps libmpdec out of the plugin's RSS

    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# ---------------------------------------------------------------------------
# integers and file modes

_INT_BASE0 = re.compile(
    r"0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*")


def _go_parse_uint(s: str, bits: int, fn: str, original: str) -> int:
    if not _INT_BASE0.fullmatch(s):
        raise ValueError(f"strconv.{fn}: parsing {go_quote(original)}: invalid syntax")
    digits = s.replace("_", "")
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "xXbBoO":
        value = int(digits, 0)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits, 8)  # a leading 0 means octal in Go's base 0
    else:
        value = int(digits)
    if value >= 1 << bits:
        raise ValueError(f"strconv.{fn}: parsing {go_quote(original)}: value out of range")
    return value


def parse_int(s: str) -> int:
    """strconv.ParseInt(s, 0, 64) as pflag's int flags use it: `022` is octal, `0x12` hex."""
    body, negative = s, False
    if s[:1] in ("+", "-"):
        body, negative = s[1:], s[0] == "-"
    value = _go_parse_uint(body, 64, "ParseInt", s)
    value = -value if negative else value
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return value


def parse_uint32(s: str) -> int:
    """strconv.ParseUint(s, 0, 32), as `--uid`/`--gid` use it (no sign allowed)."""
    return _go_parse_uint(s, 32, "ParseUint", s)


def parse_filemode(s: str) -> int:
    """rclone FileMode: octal digits (`0777`, `777`, `022`); `0o22` is also accepted here."""
    body = s[2:] if s[:2] in ("0o", "0O") else s
    if s[:1] == "+":
        body = s[1:]
    if not body or not all(c in "01234567" for c in body):
        raise ValueError("bad FileMode - must be octal digits: "
                         f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    return int(body, 8)


# ---------------------------------------------------------------------------
# booleans

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(s: str) -> bool:
    """strconv.ParseBool: exactly `1 t T TRUE true True` / `0 f F FALSE false False`."""
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(s)}: invalid syntax")


def parse_tristate(s: str) -> bool | None:
    """rclone Tristate: `''`, `unset`, `null`, `nil` (any case) mean unset."""
    lower = s.lower()
    if lower in ("", "unset", "null", "nil"):
        return None
    return parse_bool(lower)


# fmt's notion of a space, newline excluded (Sscanln stops there)
_SCAN_SPACE = ("\t\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
               "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_SCAN_WORDS = {"t": "rue", "f": "alse"}


def parse_scan_bool(s: str) -> bool:
    """A bool from an rclone 1.60 config file / connection string / env var (fmt.Sscanln).

    Laxer than ParseBool: `tRuE` and any other single character (`y` = false) are
    accepted. An empty string gives false: rclone ignores that parse error.
    """
    if s == "":
        return False
    i = len(s) - len(s.lstrip(_SCAN_SPACE))
    if i == len(s):
        raise ValueError("EOF")
    first, i = s[i], i + 1
    tail = _SCAN_WORDS.get(first.lower()) if first in "tTfF" else None
    # once the second letter matches, the whole word must follow (any case)
    if tail and s[i:i + 1] in (tail[0], tail[0].upper()):
        for k, ch in enumerate(tail):
            if s[i + k:i + k + 1] not in (ch, ch.upper()):
                raise ValueError("syntax error scanning boolean")
        i += len(tail)
    rest = s[i:].lstrip(_SCAN_SPACE)
    if rest and rest[0] != "\n":
        raise ValueError("expected newline")
    return first in "1tT"
