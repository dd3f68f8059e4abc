"""The plugin's state file, `<cache-dir>/docker-plugin.state`, in rclone's JSON layout.

Written atomically (temp file, fsync, rename, fsync of the directory) with mode 0600 on
every change, so a crash at any moment leaves either the old or the new state. A file
that cannot be parsed is kept aside as `.corrupt-<time>` instead of being overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("pyclone.state")

STATE_FILE = "docker-plugin.state"
FIELDS = ("name", "mountpoint", "created", "fs", "type", "path", "options", "mounts")


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


def atomic_write(path: str, data: bytes, mode: int = 0o600, sync: bool = True) -> None:
    """Temp file, fsync, rename, fsync of the directory; sync=False skips both fsyncs
    (still atomic against a killed process, not against a power cut)."""
    directory = os.path.dirname(path) or "."
    # O_EXCL with a random name, as mkstemp does (tempfile itself costs start-up time and RSS)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if not sync:
        return
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class StateFile:
    def __init__(self, cache_dir: str) -> None:
        self.path = os.path.join(cache_dir, STATE_FILE)

    def load(self) -> list[dict[str, Any]]:
        """The saved volumes; [] when there is no file. A broken file is set aside, never lost."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw or b"[]")
            if not isinstance(data, list) or not all(isinstance(v, dict) for v in data):
                raise ValueError("expected a JSON array of volumes")
        except ValueError as e:
            aside = f"{self.path}.corrupt-{int(time.time())}"
            os.replace(self.path, aside)
            log.error("state file %s is unreadable (%s); kept it as %s and started empty", self.path, e, aside)
            return []
        return data

    def save(self, volumes: list[dict[str, Any]]) -> None:
        volumes = sorted(volumes, key=lambda v: v["name"])
        data = json.dumps(volumes, separators=(",", ":")).encode()
        atomic_write(self.path, data)
