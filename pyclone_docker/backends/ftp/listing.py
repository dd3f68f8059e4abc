"""FTP directory listings: MLSD/MLST facts (RFC 3659) and LIST lines in the unix and DOS
formats real servers print (vsftpd, ProFTPD, pure-ftpd, pyftpdlib, IIS), as jlaffaye/ftp reads them.

A parsed line is a Listed: its name, whether it is a directory, its size, its modtime in ns
(UTC), and whether that time is precise (MLSD's to the second; LIST's to the minute or day).
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


@dataclass(slots=True)
class Listed:
    name: str
    is_dir: bool
    size: int = 0
    mtime_ns: int = 0
    precise: bool = False
    is_link: bool = False
    target: str = ""  # a unix LIST symlink's "-> target"


def mdtm_time(value: str) -> int:
    """YYYYMMDDHHMMSS[.fff] (UTC, RFC 3659's time-val) in ns; ValueError if it is not one."""
    value = value.strip()
    head, _, frac = value.partition(".")
    if len(head) != 14 or not head.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not an FTP time value: {value!r}")
    secs = calendar.timegm((int(head[:4]), int(head[4:6]), int(head[6:8]), int(head[8:10]), int(head[10:12]),
                            int(head[12:14]), 0, 0, 0))
    ns = int((frac + "000000000")[:9]) if frac else 0
    return secs * 10**9 + ns


def format_time(mtime_ns: int) -> str:
    """A time as MFMT and MDTM take it: YYYYMMDDHHMMSS in UTC (to the second, as rclone sets it)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime_ns // 10**9))


def parse_mlsd(line: str) -> Listed | None:
    """One MLSD/MLST line: `fact=value;fact=value; name`. None for cdir/pdir and unknown types."""
    facts_text, sep, name = line.partition(" ")
    if not sep:
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir") or name in (".", ".."):
        return None
    if kind == "dir":
        is_dir = True
    elif kind == "file" or kind.startswith("os.unix=symlink") or kind.startswith("os.unix=slink"):
        is_dir = False
    else:
        return None
    size = 0
    if not is_dir:
        try:
            size = int(facts.get("size") or facts.get("sizd") or 0)
        except ValueError:
            size = 0
    mtime_ns, precise = 0, False
    if "modify" in facts:
        try:
            mtime_ns, precise = mdtm_time(facts["modify"]), True
        except ValueError:
            pass
    return Listed(name, is_dir, size, mtime_ns, precise)


_DOS = re.compile(r"^(\d\d)-(\d\d)-(\d\d(?:\d\d)?)\s+(\d\d):(\d\d)\s*([AaPp][Mm])?\s+(<DIR>|\d+)\s+(.+)$")
_UNIX_MODE = re.compile(r"^[-dlpscbDL][-rwxsStTlL]{9}[+.@]?$")


def parse_list(line: str, now: float | None = None) -> Listed | None:
    """One LIST line, unix (`ls -l`) or DOS (IIS) format; None for what is not an entry
    (`total 12`, `.`, `..`, an empty line, devices)."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("total "):
        return None
    m = _DOS.match(line)
    if m:
        return _dos(m)
    return _unix(line, time.time() if now is None else now)


def _dos(m: re.Match[str]) -> Listed | None:
    month, day, year, hour, minute, ampm, what, name = m.groups()
    y = int(year)
    if len(year) == 2:
        y += 2000 if y < 70 else 1900
    h = int(hour)
    if ampm:
        h = h % 12 + (12 if ampm.upper() == "PM" else 0)
    secs = calendar.timegm((y, int(month), int(day), h, int(minute), 0, 0, 0, 0))
    is_dir = what == "<DIR>"
    if name in (".", ".."):
        return None
    return Listed(name, is_dir, 0 if is_dir else int(what), secs * 10**9, False)


def _unix(line: str, now: float) -> Listed | None:
    # mode links owner group size month day time-or-year name; some servers omit the group
    # or the link count: find the date (month name) and read the size just before it
    fields = line.split(None, 3)
    if not fields or not _UNIX_MODE.match(fields[0]):
        return None
    kind = fields[0][0]
    if kind not in "-dlDL":
        return None
    parts = line.split()
    for i in range(2, len(parts) - 3):
        mon = _MONTHS.get(parts[i][:3].lower())
        if mon is None or not parts[i - 1].isdigit() or not parts[i + 1].isdigit():
            continue
        when = parts[i + 2]
        if ":" not in when and not (when.isdigit() and len(when) == 4):
            continue
        size = int(parts[i - 1])
        day = int(parts[i + 1])
        mtime = _unix_time(mon, day, when, now)
        # the name starts after the time field, spaces in it kept
        rest = line
        for p in parts[:i + 3]:
            rest = rest[rest.index(p) + len(p):]
        name = rest[1:] if rest.startswith(" ") else rest.lstrip(" ")
        break
    else:
        return None
    target = ""
    is_link = kind in "lL"
    if is_link and " -> " in name:
        name, _, target = name.partition(" -> ")
    if name in (".", "..") or not name:
        return None
    is_dir = kind in "dD"
    return Listed(name, is_dir, 0 if is_dir else size, mtime * 10**9, False, is_link, target)


def _unix_time(month: int, day: int, when: str, now: float) -> int:
    """`Dec  2 20:41` (within the last six months: this year or last) or `Dec  2  2025`, as UTC."""
    if ":" in when:
        hour, _, minute = when.partition(":")
        year = time.gmtime(now).tm_year
        t = calendar.timegm((year, month, day, int(hour), int(minute), 0, 0, 0, 0))
        if t > now + 86400 * 2:  # a date in the future belongs to last year, as ls prints it
            t = calendar.timegm((year - 1, month, day, int(hour), int(minute), 0, 0, 0, 0))
        return t
    return calendar.timegm((int(when), month, day, 0, 0, 0, 0, 0, 0))
