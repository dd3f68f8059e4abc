"""One Docker volume: its saved record, and the mount that serves it while containers use it."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend
from ..fuse.mount import FuseMount
from ..lib.timefmt import format_created, format_rfc3339, parse_created
from .options import VolumeSpec

if TYPE_CHECKING:
    from ..vfs.vfs import VFS

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
MAX_NAME = 255
MAX_MOUNT_ID = 256


def check_name(name: Any) -> str:
    """Docker's local-driver name rule: a name can never be a path outside --base-dir."""
    if not isinstance(name, str) or not name:
        raise ValueError("volume name is required")
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise ValueError(f'invalid volume name "{name[:64]}": names must match '
                         "[A-Za-z0-9][A-Za-z0-9_.-]* and be at most 255 characters")
    return name


def check_mount_id(mount_id: Any) -> str:
    if not isinstance(mount_id, str) or not mount_id:
        raise ValueError("mount ID is required")
    if len(mount_id) > MAX_MOUNT_ID or not mount_id.isprintable():
        raise ValueError("invalid mount ID")
    return mount_id


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_ns: int
    fs: str
    fs_type: str
    path: str
    options: dict[str, str]
    mount_ids: list[str] = field(default_factory=list)
    spec: VolumeSpec | None = None
    # why the volume can't be used right now (restore failed); shown in Get's Status
    error: str = ""
    backend: Backend | None = None
    vfs: VFS | None = None
    mount: FuseMount | None = None
    # serialises the slow work (mount, unmount, remove) on this one volume
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, with_mounts: bool = True) -> dict[str, Any]:
        return {
            "name": self.name,
            "mountpoint": self.mountpoint,
            "created": format_created(self.created_ns),
            "fs": self.fs,
            "type": self.fs_type,
            "path": self.path,
            "options": dict(self.options),
            "mounts": sorted(self.mount_ids) if with_mounts else [],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any], mountpoint: str) -> Volume:
        created = rec.get("created") or ""
        try:
            created_ns = parse_created(created)
        except ValueError:
            created_ns = 0
        options = rec.get("options") or {}
        return cls(
            name=rec["name"],
            mountpoint=mountpoint,
            created_ns=created_ns,
            fs=str(rec.get("fs") or ""),
            fs_type=str(rec.get("type") or ""),
            path=str(rec.get("path") or ""),
            options={str(k): str(v) for k, v in options.items()},
            mount_ids=[str(m) for m in rec.get("mounts") or []],
        )

    def info(self) -> dict[str, Any]:
        status: dict[str, Any] = {"Mounts": sorted(self.mount_ids)}
        if self.error:
            status["Error"] = self.error
        return {
            "Name": self.name,
            "Mountpoint": self.mountpoint,
            "CreatedAt": format_rfc3339(self.created_ns),
            "Status": status,
        }
