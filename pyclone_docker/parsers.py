"""rclone's value syntax: sizes, durations, booleans, file modes and integers.

Each parser mirrors the Go function rclone 1.60 uses (fs.SizeSuffix, fs.Duration,
strconv.ParseBool, strconv.ParseInt ...), including its error texts, so a value that
rclone accepts is accepted here and means the same thing.
"""

from __future__ import annotations

import datetime as _dt
import math
import re


def _category(ch: str) -> str:
    import unicodedata  # lazily: the table costs RSS the plugin rarely needs

    return unicodedata.category(ch)

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_NS = 1_000_000_000


def go_quote(s: str) -> str:
    """Go's %q for the strings that occur in error messages (printable text)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif _category(ch)[0] == "C" or (ch.isspace() and ch != " "):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------------------
# Go strconv number syntax

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


def _float_to_int64(x: float) -> int:
    """Go's int64(float64) on amd64: out of range and NaN become MinInt64."""
    if math.isnan(x) or x >= 2.0**63 or x < -(2.0**63):
        return _INT64_MIN
    return int(x)


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
    if not _INT64_MIN <= value <= _INT64_MAX:
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


# ---------------------------------------------------------------------------
# sizes

_SIZE_UNITS = {c: 1 << (10 * (n + 1)) for n, c in enumerate("kmgtpe")}
_SIZE_NAMES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _size_multiplier(c: str) -> int:
    mult = _SIZE_UNITS.get(c.lower())
    if mult is None:
        raise ValueError(f"bad suffix '{c}'")
    return mult


def _split_size(s: str) -> tuple[str, int]:
    """Split into the number text and its multiplier (a bare number means KiB)."""
    last = s[-1]
    if last.isascii() and (last.isdigit() or last == "."):
        return s, 1024
    if last in "bB":
        if len(s) > 2 and s[-2] == "i":
            return s[:-3], _size_multiplier(s[-3])
        return s[:-1], 1
    if last in "iI":
        if len(s) > 1:
            return s[:-2], _size_multiplier(s[-2])
        raise ValueError(f"bad suffix '{last}'")
    return s[:-1], _size_multiplier(last)


def parse_size(s: str) -> int:
    """rclone SizeSuffix in bytes: `128M` = `128Mi` = `128MiB`; bare numbers are KiB; off = -1."""
    if s == "":
        raise ValueError("empty string")
    if s.lower() == "off":
        return -1
    number, mult = _split_size(s)
    value = parse_go_float(number)
    if value < 0:
        raise ValueError(f"size can't be negative {go_quote(number)}")
    return _float_to_int64(value * mult)


def _format_go_float(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def format_size(n: int) -> str:
    """SizeSuffix.String(): `off`, `0`, `1Ki`, `10.100Gi`."""
    if n < 0:
        return "off"
    if n == 0:
        return "0"
    exp = min((n.bit_length() - 1) // 10, len(_SIZE_NAMES) - 1)
    scaled = n / (1 << (10 * exp))
    text = _format_go_float(scaled, 0 if math.floor(scaled) == scaled else 3)
    return text + _SIZE_NAMES[exp]


# ---------------------------------------------------------------------------
# durations

_UNITS_NS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 1_000_000,
             "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}
_DAY_NS = 86400 * _NS
# (suffix, ns) in the order rclone tries HasSuffix; "" (seconds) always matches
_AGE_SUFFIXES = (("d", _DAY_NS), ("w", 7 * _DAY_NS), ("M", 30 * _DAY_NS),
                 ("y", 365 * _DAY_NS), ("", _NS))


def _leading_int(s: str, i: int) -> tuple[int, int, bool]:
    """Digits from s[i:]: (value, next index, overflowed)."""
    value = 0
    while i < len(s) and "0" <= s[i] <= "9":
        value = value * 10 + ord(s[i]) - 48
        if value > 1 << 63:
            return 0, i, True
        i += 1
    return value, i, False


def _leading_fraction(s: str, i: int) -> tuple[int, float, int]:
    """Digits after the dot: (value, scale, next index); extra digits past int64 are dropped."""
    value, scale, overflow = 0, 1.0, False
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            if value > _INT64_MAX // 10:
                overflow = True
            else:
                value, scale = value * 10 + ord(s[i]) - 48, scale * 10
        i += 1
    return value, scale, i


def go_parse_duration(s: str) -> int | None:
    """time.ParseDuration in ns, or None where Go would return an error."""
    i, negative = 0, False
    if s[:1] in ("+", "-"):
        negative, i = s[0] == "-", 1
    if s[i:] == "0":
        return 0
    if i == len(s):
        return None
    total = 0
    while i < len(s):
        if not (s[i] == "." or "0" <= s[i] <= "9"):
            return None
        start = i
        whole, i, overflow = _leading_int(s, i)
        if overflow:
            return None
        had_whole = i > start
        frac, scale, had_frac = 0, 1.0, False
        if i < len(s) and s[i] == ".":
            fstart = i + 1
            frac, scale, i = _leading_fraction(s, fstart)
            had_frac = i > fstart
        if not had_whole and not had_frac:
            return None
        ustart = i
        while i < len(s) and s[i] != "." and not "0" <= s[i] <= "9":
            i += 1
        unit = _UNITS_NS.get(s[ustart:i])
        if unit is None or whole > (1 << 63) // unit:
            return None
        value = whole * unit
        if frac:
            value += int(frac * (unit / scale))
        total += value
        if total > 1 << 63:
            return None
    if negative:
        return -total
    return None if total > _INT64_MAX else total


_YMD = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_HMS = r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})([.,][0-9]+)?"  # Go allows a 1-digit hour
_DATE_FORMATS = (
    # (regex, uses a zone) for RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05"
    (re.compile(_YMD + r"T" + _HMS + r"(Z|[+-][0-9]{2}:[0-9]{2})"), True),
    (re.compile(_YMD + r"T" + _HMS), False),
    (re.compile(_YMD + r" " + _HMS), False),
    (re.compile(_YMD), False),
)


def _date_error(s: str) -> ValueError:
    """The error Go's time.Parse gives for the last layout rclone tries, "2006-01-02"."""
    q = go_quote(s)

    def cannot(rest: str, elem: str) -> ValueError:
        return ValueError(f'parsing time {q} as "2006-01-02": cannot parse {go_quote(rest)} as "{elem}"')

    if len(s) < 4 or not _is_digits(s[0], 1):
        return cannot(s, "2006")
    if not _is_digits(s[:4], 4):
        return cannot(s[4:], "2006")  # Go has already consumed the 4 characters
    if s[4:5] != "-":
        return cannot(s[4:], "-")
    if not _is_digits(s[5:7], 2):
        return cannot(s[5:], "01")
    if not 1 <= int(s[5:7]) <= 12:
        return ValueError(f"parsing time {q}: month out of range")
    if s[7:8] != "-":
        return cannot(s[7:], "-")
    if not _is_digits(s[8:10], 2):
        return cannot(s[8:], "02")
    if len(s) > 10:
        return ValueError(f"parsing time {q}: extra text: {go_quote(s[10:])}")
    return ValueError(f"parsing time {q}: day out of range")


def _is_digits(s: str, n: int) -> bool:
    return len(s) == n and all("0" <= c <= "9" for c in s)


def _parse_instant(s: str) -> _dt.datetime | None:
    for regex, zoned in _DATE_FORMATS:
        m = regex.fullmatch(s)
        if not m:
            continue
        parts = [int(p) for p in m.groups()[:6] if p is not None]
        try:
            if len(parts) == 3:
                return _dt.datetime(*parts)
            frac = m.group(7) or ".0"
            micro = int((frac[1:] + "000000")[:6])
            t = _dt.datetime(*parts, micro)
        except ValueError:
            continue
        if zoned:
            zone = m.group(8)
            offset = _dt.timedelta(0) if zone == "Z" else _dt.timedelta(
                hours=int(zone[1:3]), minutes=int(zone[4:6])) * (-1 if zone[0] == "-" else 1)
            t = t.replace(tzinfo=_dt.timezone(offset))
        return t
    return None


def _age_of(s: str, now: _dt.datetime | None) -> int:
    """ns between now and an absolute time given in local time (or with a zone)."""
    t = _parse_instant(s)
    if t is None:
        raise _date_error(s)
    now = now or _dt.datetime.now().astimezone()
    if t.tzinfo is None:
        t = t.astimezone()  # naive means local time
    delta = now - t
    return (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000


def parse_duration_ns(s: str, now: _dt.datetime | None = None) -> int:
    """fs.ParseDuration in ns: `off` = MaxInt64, Go syntax, d/w/M/y suffixes, or a date."""
    if s == "off":
        return _INT64_MAX
    ns = go_parse_duration(s)
    if ns is not None:
        return ns
    for suffix, mult in _AGE_SUFFIXES:
        if s.endswith(suffix):
            try:
                return _float_to_int64(parse_go_float(s[:len(s) - len(suffix)]) * mult)
            except ValueError:
                break
    return _age_of(s, now)


def parse_duration(s: str) -> float:
    """fs.ParseDuration in seconds; `off` is math.inf. Raises ValueError like rclone."""
    ns = parse_duration_ns(s)
    if ns == _INT64_MAX:
        return math.inf
    return ns / _NS


def _fmt_frac(value: int, digits: int) -> str:
    """value / 10**digits without trailing zeros, as Go's fmtFrac/fmtInt do."""
    whole, frac = divmod(value, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def go_duration_string(ns: int) -> str:
    """time.Duration.String(): `1h30m0s`, `1.5s`, `20ms`, `0s`."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < _NS:
        if u < 1000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_fmt_frac(u, 3)}\u00b5s"
        return f"{sign}{_fmt_frac(u, 6)}ms"
    secs = _fmt_frac(u % (60 * _NS), 9) + "s"
    minutes = u // (60 * _NS)
    if minutes == 0:
        return sign + secs
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{sign}{minutes}m{secs}"
    return f"{sign}{hours}h{minutes}m{secs}"


def _go_shortest_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    from decimal import Decimal  # rarely needed; keeps libmpdec out of the plugin's RSS

    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_duration_ns(ns: int) -> str:
    """fs.Duration.String(): `off`, `2d`, `1.5w`, else Go's form."""
    if ns == _INT64_MAX:
        return "off"
    for suffix, mult in reversed(_AGE_SUFFIXES[:-1]):
        if abs(float(ns)) >= mult:
            return _go_shortest_float(float(ns) / mult) + suffix
    return go_duration_string(ns)


def format_duration(seconds: float) -> str:
    """fs.Duration.String() of a value in seconds: `1h30m0s`, `5m0s`, `20ms`, `off` for inf."""
    if math.isinf(seconds) and seconds > 0:
        return "off"
    return format_duration_ns(round(seconds * _NS))
