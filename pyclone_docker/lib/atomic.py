"""Writing a file atomically: a crash at any moment leaves the old content or the new."""

from __future__ import annotations

import os
import re

# the temp files atomic_write leaves behind if the process is killed mid-write
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\Z")


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
