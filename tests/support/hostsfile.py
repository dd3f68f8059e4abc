"""Test names in /etc/hosts, always taken out again: `HostsEntries`.

glibc (nsswitch `hosts: files dns`) resolves no wildcard, and `*.localhost` only through
nss-myhostname or systemd-resolved, neither of which a Debian 12 CI machine has: a test that
needs `mybucket.localhost` (an S3 virtual-host URL) to reach 127.0.0.1 adds it here.

    with HostsEntries() as hosts:     # close() on exit
        hosts.add("mybucket.localhost")           # 127.0.0.1 by default; idempotent
        ...                                       # any process now resolves it
    # every line this instance added is gone

Each line we write ends with a marker naming its owner (`# pyclone-docker-tests owner=PID-N`);
close() removes exactly this instance's lines (also run at interpreter exit, should a test
never call it), and every add() first drops the lines of owners whose process is gone (a run
killed with SIGKILL). Lines without our marker are never touched. Edits take an flock (two
test runs at once) and rewrite the file in place, not by rename: in a container /etc/hosts is
often a bind mount, which a rename would not replace. Needs root (`hosts_unavailable()`).

Only names that cannot mean anything real should go here: `*.localhost` (RFC 6761: always
loopback) is what MotoServer uses.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

HOSTS = Path("/etc/hosts")
LOCK_FILE = Path("/var/lib/pyclone-docker-tests/hosts.lock")
MARKER = "# pyclone-docker-tests owner="
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_seq = itertools.count(1)


def hosts_unavailable(path: Path = HOSTS) -> str:
    """'' when HostsEntries can edit the hosts file, else the reason."""
    if os.geteuid() != 0:
        return f"editing {path} needs root"
    if not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_of(line: str) -> str | None:
    i = line.find(MARKER)
    return line[i + len(MARKER):].strip() if i >= 0 else None


def _stale(owner: str) -> bool:
    pid = owner.split("-", 1)[0]
    return pid.isdigit() and not _pid_alive(int(pid))


class HostsEntries:
    """Lines this instance owns in the hosts file; see the module docstring."""

    def __init__(self, path: Path = HOSTS, lock_file: Path = LOCK_FILE) -> None:
        self.path = Path(path)
        self.lock_file = Path(lock_file)
        self.owner = f"{os.getpid()}-{next(_seq)}"
        self.names: set[tuple[str, str]] = set()  # (addr, name) we added
        self._mutex = threading.Lock()
        self._atexit = False

    def __enter__(self) -> HostsEntries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._mutex, open(self.lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _rewrite(self, keep: Callable[[str], bool], extra: list[str]) -> None:
        """Keep the lines for which keep(line) is true, append extra; in place."""
        with open(self.path, "r+", encoding="utf-8", errors="surrogateescape") as f:
            old = f.read()
            lines = [ln for ln in old.splitlines() if keep(ln)]
            new = "".join(ln + "\n" for ln in [*lines, *extra])
            if new != old:
                f.seek(0)
                f.write(new)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())

    def add(self, name: str, addr: str = "127.0.0.1") -> None:
        """Make `name` resolve to `addr` (a no-op when this instance already added it)."""
        if not _NAME.match(name) or ".." in name:
            raise ValueError(f"not a host name: {name!r}")
        with self._locked():
            if (addr, name) in self.names:
                return
            line = f"{addr}\t{name}\t{MARKER}{self.owner}"

            def keep(ln: str) -> bool:
                owner = _owner_of(ln)
                return owner is None or not _stale(owner)

            self._rewrite(keep, [line])
            self.names.add((addr, name))
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True

    def close(self) -> None:
        """Remove every line this instance added (safe to call again)."""
        if not self.names and not self._atexit:
            return
        with self._locked():
            self._rewrite(lambda ln: _owner_of(ln) != self.owner, [])
            self.names.clear()
        if self._atexit:
            atexit.unregister(self.close)
            self._atexit = False

    def lines(self) -> list[str]:
        """This instance's lines as they are in the file now."""
        try:
            text = self.path.read_text(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if _owner_of(ln) == self.owner]
