"""rclone's fs.SizeSuffix: `128M` = `128Mi` = `128MiB`, bare numbers are KiB, `off` is -1.

rclone 1.75.2 reads every option through its Option type: a value that does not parse is
reported as `parsing "X" as fs.SizeSuffix failed: <why>`. A flag (or its RCLONE_ variable) is
then printed and read once more (its Option.String()), which turns an overflowing size into
`off` and rounds it to what String() shows (`1234567B` becomes `1.177Mi`, 1234173 bytes). A
config item (a volume option, a connection string, rclone.conf) is read once, as is.
"""

from __future__ import annotations

import math

from .strconv import float_to_int64, go_quote, go_quote_rune, parse_go_float

_SIZE_UNITS = {c: 1 << (10 * (n + 1)) for n, c in enumerate("kmgtpe")}
_SIZE_NAMES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _bad_suffix(byte: str) -> ValueError:
    return ValueError(f"bad suffix {go_quote_rune(byte)}")  # Go quotes the byte as a rune


def _multiplier(byte: str) -> int:
    mult = _SIZE_UNITS.get(byte.lower())
    if mult is None:
        raise _bad_suffix(byte)
    return mult


def _split(b: str) -> tuple[str, int]:
    """Split (one character per byte) into the number and its multiplier: a bare number is KiB."""
    last = b[-1]
    if "0" <= last <= "9" or last == ".":
        return b, 1024
    if last in "bB":
        if len(b) > 2 and b[-2] == "i":
            return b[:-3], _multiplier(b[-3])
        return b[:-1], 1
    if last in "iI":
        if len(b) > 1:
            return b[:-2], _multiplier(b[-2])
        raise _bad_suffix(last)
    return b[:-1], _multiplier(last)


def set_size(s: str) -> int:
    """SizeSuffix.Set: the bytes, or ValueError with Go's reason (`bad suffix 'x'`).

    Go looks at bytes: a non-ASCII suffix is reported as its last UTF-8 byte.
    Out of range (`9E`, `infk`) becomes MinInt64, as Go's float->int64 does on amd64.
    """
    if s == "":
        raise ValueError("empty string")
    if s.lower() == "off":
        return -1
    b = s if s.isascii() else s.encode("utf-8", "surrogateescape").decode("latin-1")
    number, mult = _split(b)
    if b is not s:
        number = number.encode("latin-1").decode("utf-8", "surrogateescape")
    value = parse_go_float(number)
    if value < 0:
        raise ValueError(f"size can't be negative {go_quote(number)}")
    return float_to_int64(value * mult)


def parse_size(s: str, *, as_flag: bool = True) -> int:
    """An fs.SizeSuffix option as rclone 1.75.2 reads it: as a flag, or (as_flag=False) a config item."""
    try:
        n = set_size(s)
    except ValueError as e:
        raise ValueError(f"parsing {go_quote(s)} as fs.SizeSuffix failed: {e}") from None
    return set_size(option_size_string(n)) if as_flag else n


def format_size(n: int) -> str:
    """SizeSuffix.String(): `off`, `0`, `1Ki`, `10.100Gi`."""
    if n < 0:
        return "off"
    if n == 0:
        return "0"
    exp = min((n.bit_length() - 1) // 10, len(_SIZE_NAMES) - 1)
    scaled = n / (1 << (10 * exp))
    text = f"{scaled:.0f}" if math.floor(scaled) == scaled else f"{scaled:.3f}"
    return text + _SIZE_NAMES[exp]


def option_size_string(n: int) -> str:
    """An option's String(): format_size with `B` after a bare number, so it reads back as bytes."""
    text = format_size(n)
    return text + "B" if text != "0" and text[-1].isdigit() else text
