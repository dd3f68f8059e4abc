"""A set of byte ranges: which parts of a sparse cache file hold data.

SEEK_DATA/SEEK_HOLE work in whole pages, so they cannot say which bytes were fetched;
this set can. Ranges are half-open [start, end), sorted, and merged when they touch,
as rclone's `lib/ranges` does, and serialise to rclone's vfsMeta `Rs` form.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator


class RangeSet:
    __slots__ = ("_starts", "_ends")

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges or ():
            self.add(start, end)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        # every range that overlaps or touches [start, end) is merged into it
        i = bisect.bisect_left(self._ends, start)
        j = bisect.bisect_right(self._starts, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def remove_from(self, size: int) -> None:
        """Forget everything at or after `size` (the file was truncated)."""
        i = bisect.bisect_left(self._ends, size + 1)
        del self._starts[i + 1:]
        del self._ends[i + 1:]
        if i < len(self._starts):
            if self._starts[i] >= size:
                del self._starts[i]
                del self._ends[i]
            else:
                self._ends[i] = min(self._ends[i], size)

    def contains(self, start: int, end: int) -> bool:
        if end <= start:
            return True
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The gaps of [start, end) that are not in the set."""
        gaps = []
        pos = start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while pos < end and i < len(self._starts):
            s, e = self._starts[i], self._ends[i]
            if e <= pos:
                i += 1
                continue
            if s > pos:
                gaps.append((pos, min(s, end)))
            pos = max(pos, e)
            i += 1
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def size(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def to_rclone(self) -> list[dict[str, int]] | None:
        """vfsMeta's `Rs`: null when empty."""
        return [{"Pos": s, "Size": e - s} for s, e in self] or None

    @classmethod
    def from_rclone(cls, rs: list[dict[str, int]] | None) -> RangeSet:
        return cls([(int(r["Pos"]), int(r["Pos"]) + int(r["Size"])) for r in rs or ()])
