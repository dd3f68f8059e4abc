"""The plugin's state file, `<cache-dir>/docker-plugin.state`, in rclone's JSON layout.

Written atomically (temp file, rename) with mode 0600 on every change, so a crash at any
moment leaves either the old or the new state; a change of the volumes themselves is also
fsynced (file and directory) before it is answered, a change of mount IDs alone is not (see
Driver.save). A file that cannot be parsed is kept aside as `.corrupt-<time>` instead of
being overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from ..lib.atomic import atomic_write

log = logging.getLogger("pyclone.state")

STATE_FILE = "docker-plugin.state"


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

    def save(self, volumes: list[dict[str, Any]], durable: bool = True) -> None:
        """Atomic always; `durable` also fsyncs the file and its directory."""
        volumes = sorted(volumes, key=lambda v: v["name"])
        data = json.dumps(volumes, separators=(",", ":")).encode()
        atomic_write(self.path, data, sync=durable)
