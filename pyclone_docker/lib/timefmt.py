"""Go's time formats as rclone writes them (RFC3339 and RFC3339Nano, UTC), and their parser."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def format_created(ns: int) -> str:
    """Go's RFC3339Nano in UTC: fraction without trailing zeros, 'Z' zone."""
    secs, frac = divmod(ns, 10**9)
    # gmtime and an f-string: a quarter of datetime+strftime's cost, and this runs per cached file
    t = time.gmtime(secs)
    base = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{base}.{frac:09d}".rstrip("0").rstrip(".") + "Z"


def format_rfc3339(ns: int) -> str:
    """Go's RFC3339 (seconds, 'Z'): what Docker's Get CreatedAt must look like."""
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_created(text: str) -> int:
    """RFC3339 with optional fraction and zone offset -> ns since the epoch."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    frac_ns = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac_ns = int((digits + "000000000")[:9])
        text = head + rest
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + frac_ns
