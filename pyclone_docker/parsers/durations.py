"""rclone's fs.Duration: Go durations, `off`, d/w/M/y suffixes and dates, which mean "that long ago".

As with sizes (sizes.py), rclone 1.75.2 reports a value that does not parse as
`parsing "X" as fs.Duration failed: <why>`, and reads a flag twice: parsed, printed with
Duration.String() and parsed again. A config item is read once.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

from .strconv import INT64_MAX, float_to_int64, format_go_float, go_quote, parse_go_float

_NS = 1_000_000_000
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
            if value > INT64_MAX // 10:
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
    return None if total > INT64_MAX else total


_YMD = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_HMS = r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})([.,][0-9]+)?"  # Go allows a 1-digit hour
_DATE_FORMATS = (
    # (regex, uses a zone) for RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05"
    (re.compile(_YMD + r"T" + _HMS + r"(Z|[+-][0-9]{2}:[0-9]{2})"), True),
    (re.compile(_YMD + r"T" + _HMS), False),
    (re.compile(_YMD + r" " + _HMS), False),
    (re.compile(_YMD), False),
)


def _is_digits(s: str, n: int) -> bool:
    return len(s) == n and all("0" <= c <= "9" for c in s)


def _date_error(s: str) -> ValueError:
    """The error Go's time.Parse gives for the last layout rclone tries, "2006-01-02".

    Go (>= 1.20) names the text where the failing element began: "1d12h" as "2006".
    """
    q = go_quote(s)

    def cannot(rest: str, elem: str) -> ValueError:
        return ValueError(f'parsing time {q} as "2006-01-02": cannot parse {go_quote(rest)} as "{elem}"')

    if not _is_digits(s[:4], 4):
        return cannot(s, "2006")
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


def fs_parse_duration(s: str, now: _dt.datetime | None = None) -> int:
    """fs.ParseDuration in ns, or ValueError with Go's reason: `off` = MaxInt64, Go syntax,
    d/w/M/y suffixes, else a date (the age of it)."""
    if s == "off":
        return INT64_MAX
    ns = go_parse_duration(s)
    if ns is not None:
        return ns
    for suffix, mult in _AGE_SUFFIXES:
        if s.endswith(suffix):
            try:
                return float_to_int64(parse_go_float(s[:len(s) - len(suffix)]) * mult)
            except ValueError:
                break
    return _age_of(s, now)


def parse_duration_ns(s: str, now: _dt.datetime | None = None, *, as_flag: bool = True) -> int:
    """An fs.Duration option in ns as rclone 1.75.2 reads it: as a flag, or (as_flag=False) a config item."""
    try:
        ns = fs_parse_duration(s, now)
    except ValueError as e:
        raise ValueError(f"parsing {go_quote(s)} as fs.Duration failed: {e}") from None
    return fs_parse_duration(format_duration_ns(ns), now) if as_flag else ns


def parse_duration(s: str, *, as_flag: bool = True) -> float:
    """parse_duration_ns in seconds; `off` is math.inf."""
    ns = parse_duration_ns(s, as_flag=as_flag)
    if ns == INT64_MAX:
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


def format_duration_ns(ns: int) -> str:
    """fs.Duration.String(): `off`, `2d`, `1.5w`, else Go's form."""
    if ns == INT64_MAX:
        return "off"
    for suffix, mult in reversed(_AGE_SUFFIXES[:-1]):
        if abs(float(ns)) >= mult:
            return format_go_float(float(ns) / mult) + suffix
    return go_duration_string(ns)


def format_duration(seconds: float) -> str:
    """fs.Duration.String() of a value in seconds: `1h30m0s`, `5m0s`, `20ms`, `off` for inf."""
    if math.isinf(seconds) and seconds > 0:
        return "off"
    return format_duration_ns(round(seconds * _NS))
