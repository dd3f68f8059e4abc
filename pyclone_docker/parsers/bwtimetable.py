"""rclone's --bwlimit value (fs.BwTimetable): one bandwidth, an upload:download pair, or a timetable.

    10M                      10 MiB/s both ways (a bare number is KiB/s, as every rclone size)
    off                      no limit
    10M:1M                   10 MiB/s up (tx), 1 MiB/s down (rx); either side may be `off`
    08:00,512k 12:00,10M 23:00,off
                             from 08:00 every day 512 KiB/s, from 12:00 10 MiB/s, from 23:00 none
    Mon-10:00,2M Sun-20:00,off
                             day-of-week slots (Sun..Sat or Sunday..Saturday, any case)

Slots are separated by spaces or ';'. A slot without a day stands for all seven days. The slot
in force at a time is the latest one at or before it in the week (Sunday 00:00 first); before the
first slot of the week the table's last slot as written holds (rclone's LimitAt wraps that way).
Errors are rclone 1.75.2's words; a flag reads `parsing "X" as fs.BwTimetable failed: <why>`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .sizes import option_size_string, set_size
from .strconv import go_quote

_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class BwPair:
    """Bytes per second up (tx) and down (rx); a value <= 0 means no limit that way."""

    tx: int = -1
    rx: int = -1

    def is_set(self) -> bool:
        return self.tx > 0 or self.rx > 0

    def __str__(self) -> str:
        text = option_size_string(self.tx)
        return text if self.rx == self.tx else f"{text}:{option_size_string(self.rx)}"


@dataclass(frozen=True)
class BwTimeSlot:
    day: int  # 0 = Sunday, as Go's time.Weekday
    hhmm: int  # 8:30 is 830
    bandwidth: BwPair

    @property
    def week_minute(self) -> int:
        return self.day * 24 * 60 + (self.hhmm // 100) * 60 + self.hhmm % 100


UNLIMITED = BwTimeSlot(0, 0, BwPair(-1, -1))


@dataclass(frozen=True)
class BwTimetable:
    """The parsed table (hashable); empty means --bwlimit was not given."""

    slots: tuple[BwTimeSlot, ...] = ()

    def __bool__(self) -> bool:
        return any(slot.bandwidth.is_set() for slot in self.slots)

    def __str__(self) -> str:
        if len(self.slots) == 1 and self.slots[0].day == 0 and self.slots[0].hhmm == 0:
            return str(self.slots[0].bandwidth)
        return " ".join(f"{_DAY_NAMES[s.day]}-{s.hhmm // 100:02d}:{s.hhmm % 100:02d},{s.bandwidth}"
                        for s in self.slots)

    def limit_at(self, when: float | None = None) -> BwTimeSlot:
        """The slot in force at `when` (seconds since the epoch, local time; now by default)."""
        if not self.slots:
            return UNLIMITED
        t = time.localtime(time.time() if when is None else when)
        day = (t.tm_wday + 1) % 7  # Python's Monday = 0; Go's Sunday = 0
        now = day * 24 * 60 + t.tm_hour * 60 + t.tm_min
        best = self.slots[-1]  # wraps round from the end of the week
        best_diff: int | None = None
        for slot in self.slots:
            if now < slot.week_minute:
                continue
            diff = now - slot.week_minute
            if best_diff is None or diff <= best_diff:  # a later equal slot wins, as rclone's
                best, best_diff = slot, diff
        return best


def _atoi(s: str) -> int:
    """Go's strconv.Atoi for the two-digit fields (a sign allowed, nothing else)."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f"strconv.Atoi: parsing {go_quote(s)}: invalid syntax")
    return int(s)


def _hhmm(text: str) -> int:
    """rclone's validateHour: exactly `hh:mm` (five bytes), 00-23 and 00-59."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) != 5:
        raise ValueError(f"invalid time specification (hh:mm): {go_quote(text)}")
    hh_s = raw[0:2].decode("utf-8", "replace")
    mm_s = raw[3:].decode("utf-8", "replace")
    try:
        hh = _atoi(hh_s)
    except ValueError as e:
        raise ValueError(f"invalid hour in time specification {go_quote(text)}: {e}") from None
    if not 0 <= hh <= 23:
        raise ValueError(f"invalid hour (must be between 00 and 23): {hh}")
    try:
        mm = _atoi(mm_s)
    except ValueError as e:
        raise ValueError(f"invalid minute in time specification: {go_quote(text)}: {e}") from None
    if not 0 <= mm <= 59:
        raise ValueError(f"invalid minute (must be between 00 and 59): {mm}")
    return hh * 100 + mm


def _weekday(text: str) -> int:
    low = text.lower()
    for i, name in enumerate(_DAYS):
        if low in (name, name[:3]):
            return i
    raise ValueError(f"invalid weekday: {go_quote(low)}")


def parse_bwpair(s: str) -> BwPair:
    """`10M` (both ways) or `10M:1M` (tx:rx); each side an rclone size or `off`."""
    tx_s, colon, rx_s = s.partition(":")
    tx = set_size(tx_s)
    return BwPair(tx, set_size(rx_s) if colon else tx)


def set_bwtimetable(s: str) -> BwTimetable:
    """BwTimetable.Set: the table, or ValueError with rclone's reason alone."""
    if s == "":
        raise ValueError("empty string")
    if " " not in s and "," not in s:
        return BwTimetable((BwTimeSlot(0, 0, parse_bwpair(s)),))
    slots: list[BwTimeSlot] = []
    for tok in s.replace(";", " ").split(" "):
        if not tok:
            continue
        parts = tok.split(",")
        if len(parts) != 2:
            raise ValueError(f"invalid time/bandwidth specification: {go_quote(tok)}")
        when, bandwidth = parts
        if "-" not in when:
            hhmm = _hhmm(when)
            pair = parse_bwpair(bandwidth)
            slots.extend(BwTimeSlot(day, hhmm, pair) for day in range(7))
            continue
        spec = when.split("-")
        if len(spec) != 2:
            raise ValueError(f"invalid time specification: {go_quote(when)}")
        day = _weekday(spec[0])
        slots.append(BwTimeSlot(day, _hhmm(spec[1]), parse_bwpair(bandwidth)))
    return BwTimetable(tuple(slots))


def parse_bwtimetable(s: str, *, as_flag: bool = True) -> BwTimetable:
    """--bwlimit as rclone 1.75.2 reads it; a flag is printed and read once more (as every rclone
    flag), which rounds each bandwidth to what rclone shows (`1234567B` is `1.177Mi`)."""
    try:
        table = set_bwtimetable(s)
        return set_bwtimetable(str(table)) if as_flag and table.slots else table
    except ValueError as e:
        raise ValueError(f"parsing {go_quote(s)} as fs.BwTimetable failed: {e}") from None
