"""rclone's chunk file names: `name_format` and `start_from`, temporary suffixes, transaction IDs.

A pattern such as `*.rclone_chunk.###` has one `*` (the composite file's name) first and one
run of `#` (the chunk number, zero-padded to as many digits as there are hashes; more digits
are kept as they are). Chunk numbers count from `start_from`. In the hash place a control chunk
has `_` + 3..7 lowercase letters/digits (rclone 1.75.2 defines none; they are skipped). A
temporary chunk (an upload in progress, or a norename transaction's data) ends in `_` + a
4..9-character base-36 transaction ID; the old `..tmp_` + 10..13 decimals form is read too
and given as its base-36 ID, as rclone does.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

CTRL_TYPE = r"[a-z][a-z0-9]{2,6}"
_TEMP_SUFFIX = r"_([0-9a-z]{4,9})"
_TEMP_SUFFIX_OLD = r"\.\.tmp_([0-9]{10,13})"
_CTRL_RE = re.compile(rf"^{CTRL_TYPE}\Z")
_XACT_RE = re.compile(r"^[0-9a-z]{4,9}\Z")
DEFAULT_FORMAT = "*.rclone_chunk.###"

# rclone's newXactID: the first 4 base-36 digits are the Unix time modulo this prime (about 19
# days), the last 2 a random number up to 1295
_CLOSEST_PRIME_ZZZZ_SECONDS = 1679609
_MAX_TWO_BASE36_DIGITS = 1295


def base36(n: int) -> str:
    """strconv.FormatInt(n, 36) for n >= 0."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def new_xact_id(now: float | None = None, rng: random.Random | None = None) -> str:
    """A 6-character transaction ID as rclone makes them: time-based first 4, random last 2."""
    unix = int(time.time() if now is None else now)
    first4 = base36(abs(unix) % _CLOSEST_PRIME_ZZZZ_SECONDS).rjust(4, "0")
    last2 = base36((rng or random).randint(0, _MAX_TWO_BASE36_DIGITS)).rjust(2, "0")
    return first4 + last2


@dataclass(frozen=True)
class ChunkName:
    """What a chunk's name says: its composite file, data chunk number (0-based, -1 for a control
    chunk), control type ("" for data) and transaction ID ("" for an active chunk)."""

    parent: str
    chunk_no: int
    ctrl_type: str
    xact_id: str


class ChunkNames:
    """One name_format + start_from: makes and parses chunk names (paths keep their directory)."""

    def __init__(self, pattern: str = DEFAULT_FORMAT, start_from: int = 1) -> None:
        if start_from < 0:
            raise ValueError("start_from must be non-negative")
        why = _check_pattern(pattern)
        if why:
            raise ValueError(f"invalid name format '{pattern}': {why}")
        self.pattern = pattern
        self.start_from = start_from
        digits = pattern.count("#")
        self._width = digits if digits > 1 else 0
        re_digits = f"[0-9]{{{digits},}}" if digits > 1 else "[0-9]+"
        head, _, tail = pattern.partition("*")
        before, hashes, after = re.match(r"^([^#]*)(#+)([^#]*)$", tail).groups()  # type: ignore[union-attr]
        del hashes
        # the main name is non-greedy, or it would eat a temporary suffix
        self._regex = re.compile(
            "^" + re.escape(head) + "(.+?)" + re.escape(before) + f"(?:({re_digits})|_({CTRL_TYPE}))"
            + re.escape(after) + f"(?:{_TEMP_SUFFIX}|{_TEMP_SUFFIX_OLD})?\\Z")  # Go: "." stops at a newline
        self._before, self._after = before, after

    def make(self, path: str, chunk_no: int, ctrl_type: str = "", xact_id: str = "") -> str:
        """The name of data chunk `chunk_no` (0-based) of `path`, or of a control chunk
        (chunk_no < 0 and ctrl_type), temporary when xact_id is given."""
        directory, _, name = path.rpartition("/")
        if chunk_no >= 0 and not ctrl_type:
            number = str(chunk_no + self.start_from)
            middle = number.rjust(self._width, "0") if self._width else number
        elif chunk_no < 0 and _CTRL_RE.match(ctrl_type):
            middle = "_" + ctrl_type
        else:
            raise ValueError("make: invalid argument")
        out = name + self._before + middle + self._after
        if xact_id:
            suffix = xact_id.rjust(4, "0")  # Go's "_%04s"
            if not _XACT_RE.match(suffix):
                raise ValueError("make: invalid transaction ID")
            out += "_" + suffix
        return f"{directory}/{out}" if directory else out

    def parse(self, path: str) -> ChunkName | None:
        """The chunk `path` names, or None when it is not a chunk name (a plain file, a meta
        object, or a data chunk numbered below start_from)."""
        directory, slash, name = path.rpartition("/")
        m = self._regex.match(name)
        if m is None or not m.group(1):
            return None
        main, number, ctrl, xact, old = m.groups()
        chunk_no = -1
        if number:
            chunk_no = int(number) - self.start_from
            if chunk_no < 0:
                return None  # rclone: "invalid data chunk number" (logged at INFO)
        if old:
            xact = base36(int(old)).rjust(4, "0")
        return ChunkName(directory + slash + main, chunk_no, ctrl or "", xact or "")


def _check_pattern(pattern: str) -> str:
    """Why rclone refuses `pattern` ("" if it does not)."""
    if pattern.count("*") != 1:
        return "pattern must have exactly one asterisk (*)"
    if pattern.count("#") < 1:
        return "pattern must have a hash character (#)"
    if pattern.index("*") > pattern.index("#"):
        return "asterisk (*) in pattern must come before hashes (#)"
    if not re.match(r"^[^#]*#+[^#]*\Z", pattern):
        return "hashes (#) in pattern must be consecutive"
    if "/" in pattern:
        return "directory separator prohibited"
    if pattern[0] != "*":
        return "pattern must start with asterisk"
    return ""
