"""The reference rclone as a client in interop tests, and the source trees they copy.

    rc = RcloneCli(rclone_ref.require(), home, remote=lambda path: f":ftp,host=...:{path}",
                   env={"RCLONE_FTP_PASS": obscured})     # secrets through the environment, never argv
    rc.run("copy", src, rc.remote("dir"))
    rc.lsjson("dir")                                       # {path: lsjson entry}, recursive
    make_tree(root, {"a/b.txt": (size, mtime_ns)}, content)   # files with their bytes and modtimes
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

GUARD = 180.0


class RcloneCli:
    def __init__(self, binary: str, home: Path, remote: Callable[[str], str], env: Mapping[str, str] = (),
                 lsjson_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.remote = remote
        (home / "rclone.conf").touch()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "RCLONE_CONFIG": str(home / "rclone.conf"), "TZ": "UTC", **dict(env)}
        self.lsjson_args = lsjson_args

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        p = subprocess.run([self.binary, *args], env=self.env, input=input, capture_output=True, timeout=GUARD,
                           check=False, stdin=None if input is not None else subprocess.DEVNULL)
        assert p.returncode == 0 or not check, \
            f"rclone {args[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}"
        return p

    def lsjson(self, path: str) -> dict[str, dict[str, Any]]:
        out = self.run("lsjson", "-R", *self.lsjson_args, self.remote(path)).stdout
        return {e["Path"]: e for e in json.loads(out)}


def make_tree(root: Path, files: Mapping[str, tuple[int, int]], content: Callable[[str, int], bytes]) -> Path:
    """`files` (relative path -> (size, mtime ns)) under `root`, each with content(path, size)."""
    for rel, (size, mtime_ns) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content(rel, size))
        os.utime(p, ns=(mtime_ns, mtime_ns))
    return root
