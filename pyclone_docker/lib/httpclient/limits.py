"""Process-wide rate limits: --tpslimit (transactions a second) and --bwlimit (bytes a second).

rclone keeps one of each for the whole process (fs/accounting): every HttpClient with the same
settings shares the same bucket here (`tps_bucket`, `bandwidth`). The buckets follow Go's
golang.org/x/time/rate, which rclone uses: a reservation takes its tokens at once (the balance may
go below zero) and the caller sleeps until the balance it took would have refilled, so
concurrent callers queue up fairly without holding a lock while they sleep.

--tpslimit's bucket starts full (its burst, at least 1, goes at once, as rate.NewLimiter);
--bwlimit's starts empty (rclone empties it) with a burst of 4 MiB (more above 256 MiB/s).
The --bwlimit timetable is looked at again when the minute changes (rclone: once a minute);
a change of bandwidth starts new, empty buckets.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from ...parsers.bwtimetable import BwPair, BwTimetable

log = logging.getLogger("pyclone.http")

MAX_BURST = 4 * 1024 * 1024  # rclone's defaultMaxBurstSize


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, *, full: bool = True,
                 clock=time.monotonic, sleep=time.sleep) -> None:
        if not rate > 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._tokens = self.burst if full else 0.0
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, n: float = 1.0) -> float:
        """Take `n` tokens now; the seconds to wait before using them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, n: float = 1.0) -> None:
        """Wait until `n` tokens are ours (in pieces of at most one burst)."""
        while n > 0:
            piece = min(n, self.burst)
            n -= piece
            wait = self.reserve(piece)
            if wait > 0:
                self._sleep(wait)


_lock = threading.Lock()
_tps: dict[tuple[float, int], TokenBucket] = {}
_bandwidth: dict[BwTimetable, BandwidthLimiter] = {}


def tps_bucket(rate: float, burst: int) -> TokenBucket | None:
    """The process's --tpslimit bucket for these settings, or None when there is no limit
    (0, negative, NaN or infinite, as rate.Limit treats them)."""
    if not (rate > 0 and math.isfinite(rate)):
        return None
    key = (float(rate), max(1, int(burst)))
    with _lock:
        bucket = _tps.get(key)
        if bucket is None:
            bucket = _tps[key] = TokenBucket(key[0], key[1], full=True)
            log.info("Starting transaction limiter: max %g transactions/s with burst %d", key[0], key[1])
        return bucket


def _empty_bucket(bandwidth: int) -> TokenBucket:
    burst = max(bandwidth * MAX_BURST // (256 * 1024 * 1024), MAX_BURST)
    return TokenBucket(bandwidth, burst, full=False)


class BandwidthLimiter:
    """--bwlimit for one timetable: `tx(n)` after/before sending n bytes, `rx(n)` after reading."""

    def __init__(self, table: BwTimetable, *, clock=time.time) -> None:
        self.table = table
        self._clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._pair = BwPair()
        self._tx: TokenBucket | None = None
        self._rx: TokenBucket | None = None
        self._update()

    def _update(self) -> None:
        now = self._clock()
        minute = int(now // 60)
        if minute == self._minute:
            return
        with self._lock:
            if minute == self._minute:
                return
            first = self._minute < 0
            self._minute = minute
            pair = self.table.limit_at(now).bandwidth
            if pair == self._pair and not first:
                return
            self._pair = pair
            self._tx = _empty_bucket(pair.tx) if pair.tx > 0 else None
            self._rx = _empty_bucket(pair.rx) if pair.rx > 0 else None
            if first and pair.is_set():
                log.info("Starting bandwidth limiter at %s Byte/s", pair)
            elif not first:
                log.info("Scheduled bandwidth change. Limit set to %s", pair if pair.is_set() else "off")

    def tx_bucket(self) -> TokenBucket | None:
        self._update()
        return self._tx

    def rx_bucket(self) -> TokenBucket | None:
        self._update()
        return self._rx

    def tx(self, n: int) -> None:
        bucket = self.tx_bucket()
        if bucket is not None and n > 0:
            bucket.take(n)

    def rx(self, n: int) -> None:
        bucket = self.rx_bucket()
        if bucket is not None and n > 0:
            bucket.take(n)


def bandwidth(table: BwTimetable | None) -> BandwidthLimiter | None:
    """The process's --bwlimit limiter for this timetable, or None when no slot limits anything."""
    if not table:
        return None
    with _lock:
        limiter = _bandwidth.get(table)
        if limiter is None:
            limiter = _bandwidth[table] = BandwidthLimiter(table)
        return limiter
