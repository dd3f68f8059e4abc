"""When and how soon HttpClient tries a request again.

The schedule is rclone's pacer for the web backends (lib/pacer, s3's minSleep 10 ms): the first
retry waits 10 ms, each further one twice the one before, at most 2 s. A 429 or 503 with a
`Retry-After` (seconds, or an HTTP-date) waits what the server asks, at most RETRY_AFTER_CAP.
"""

from __future__ import annotations

import time

MIN_SLEEP = 0.010
MAX_SLEEP = 2.0
RETRY_AFTER_CAP = 60.0
# rclone's s3 retryErrorCodes; webdav adds 423 (Locked) through HttpClient(retry_statuses=...)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
RETRY_AFTER_STATUSES = frozenset({429, 503})


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first)."""
    return min(MAX_SLEEP, MIN_SLEEP * (2 ** max(0, attempt - 1)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait (0..RETRY_AFTER_CAP), or None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(RETRY_AFTER_CAP, float(int(text)))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(RETRY_AFTER_CAP, max(0.0, delay))


def delay_for(attempt: int, status: int | None = None, retry_after: str | None = None) -> float:
    """The wait before the next attempt: the server's Retry-After on 429/503, else the backoff."""
    if status in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return asked
    return backoff(attempt)
