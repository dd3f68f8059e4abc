"""Remote commands of the sftp backend, as rclone runs them: the shell type, and hashes by
`md5sum`/`sha1sum` (or what `md5sum_command`/`sha1sum_command` say) run over ssh.

Detection is lazy (the first hash asked for), so a volume's create and mount run no command.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
from typing import Any, Protocol

from ..base import Entry
from .pool import Connection
from .proto import Attrs

log = logging.getLogger("pyclone")

_EMPTY = {"md5": "d41d8cd98f00b204e9800998ecf8427e", "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
          "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
_CANDIDATES = {"md5": ("md5sum", "md5 -r", "rclone md5sum"), "sha1": ("sha1sum", "sha1 -r", "rclone sha1sum"),
               "sha256": ("sha256sum", "sha256 -r", "rclone hashsum sha256")}
_ORDER = ("md5", "sha1", "sha256")
_UNIX_SAFE = re.compile(r"[A-Za-z0-9_.,:/@\u0080-\U0010ffff+\n-]")
_HEX = re.compile(r"^[0-9a-f]+$")
_KNOWN = 4096  # remembered upload digests per volume


def quote_unix(path: str) -> str:
    """rclone's shell quoting for a unix shell: a backslash before every unsafe character."""
    out = "".join(c if _UNIX_SAFE.match(c) else "\\" + c for c in path)
    return out.replace("\n", "'\n'")


def quote_powershell(path: str) -> str:
    for q in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
        path = path.replace(q, q + q)
    return f"'{path}'"


def quote_cmd(path: str) -> str:
    if any(c in path for c in '"%!\r\n'):
        raise OSError(errno.EINVAL, "path can't be quoted for cmd", path)
    return f'"{path}"'


class CommandHost(Protocol):
    """What remote commands need of their backend (backend.py's SftpBackend)."""

    label: str

    def connection(self) -> Connection: ...

    def stat(self, path: str) -> Entry: ...

    def stat_remote(self, remote: str, path: str) -> Attrs: ...


class RemoteCommands:
    def __init__(self, backend: CommandHost, opt: dict[str, Any]) -> None:
        self.b = backend
        self.disabled = bool(opt["disable_hashcheck"])
        self.shell_type = str(opt["shell_type"] or "")
        self.path_override = str(opt["path_override"] or "")
        wanted = [h.strip().lower() for h in (opt["hashes"] or []) if h.strip()] or ["md5", "sha1"]
        self.wanted = [h for h in wanted if h in _CANDIDATES]
        if unknown := [h for h in wanted if h not in _CANDIDATES]:
            log.warning("sftp %s: hashes %s are not supported by pyclone-docker yet (md5, sha1 and sha256 are): "
                        "they are not used", backend.label, ",".join(unknown))
        if unused := [f"{k}sum_command" for k in ("crc32", "blake3", "xxh3", "xxh128") if opt.get(f"{k}sum_command")]:
            log.warning("sftp %s: %s not used: pyclone-docker hashes with md5, sha1 and sha256 only",
                        backend.label, ", ".join(unused))
        self.commands: dict[str, str] = {}
        for kind in _ORDER:
            given = str(opt.get(f"{kind}sum_command") or "")
            if given:
                self.commands[kind] = given
        self._lock = threading.Lock()
        self.known: dict[tuple[str, str], tuple[int | None, int | None, str]] = {}

    def hash_names(self) -> tuple[str, ...]:
        if self.disabled or self.shell_type == "none":
            return ()
        return tuple(k for k in _ORDER if k in self.wanted and self.commands.get(k) != "none")

    def _shell(self) -> str:
        if not self.shell_type:
            _rc, out = self.b.connection().exec("echo ${ShellId}%ComSpec%")
            text = out.decode("utf-8", "replace").strip()
            if text.startswith("Microsoft.PowerShell"):
                self.shell_type = "powershell"
            elif not text.endswith("%ComSpec%") and (".exe" in text.lower() or ".com" in text.lower()):
                self.shell_type = "cmd"
            else:
                self.shell_type = "unix"
            log.debug("sftp %s: shell type %s", self.b.label, self.shell_type)
        return self.shell_type

    def _command(self, kind: str) -> str:
        with self._lock:
            cmd = self.commands.get(kind)
            if cmd is None:
                self._shell()
                cmd = "none"
                for candidate in _CANDIDATES[kind]:
                    rc, out = self.b.connection().exec(candidate)
                    if rc == 0 and out.split(b" ", 1)[0].strip().lower().lstrip(b"\\") == _EMPTY[kind].encode():
                        cmd = candidate
                        break
                self.commands[kind] = cmd
                log.debug("sftp %s: %s hashes by %r", self.b.label, kind, cmd)
            return cmd

    # --- the digests of our own uploads ---------------------------------------------------

    def remember(self, path: str, remote: str, kind: str, digest: str) -> None:
        """The VFS hashed what it just uploaded: kept while the file has that size and modtime
        (as rclone's sftp Object keeps the hash of its upload), so a cached copy's fingerprint
        needs no remote command, nor one that may fail."""
        if kind not in self.hash_names():
            return
        try:
            a = self.b.stat_remote(remote, path)
        except OSError:
            return
        if len(self.known) >= _KNOWN:
            self.known.pop(next(iter(self.known)))
        self.known[(path, kind)] = (a.size, a.mtime, digest)

    def forget(self, *paths: str) -> None:
        for key in [k for k in self.known if k[0] in paths]:
            self.known.pop(key, None)

    def forget_all(self) -> None:
        self.known.clear()

    def hash(self, path: str, remote: str, kind: str) -> str:
        if kind not in self.hash_names():
            raise OSError(errno.ENOTSUP, f"sftp: no {kind} hash", path)
        known = self.known.get((path, kind))
        if known is not None:
            try:
                a = self.b.stat_remote(remote, path)
            except OSError:
                a = None
            if a is not None and (a.size, a.mtime) == known[:2]:
                return known[2]
            self.known.pop((path, kind), None)
        cmd = self._command(kind)
        if cmd == "none":
            raise OSError(errno.ENOTSUP, f"sftp {self.b.label}: no {kind} command on the server", path)
        shell_path = remote
        if self.path_override:
            shell_path = self.path_override.rstrip("/") + "/" + remote.lstrip("./")
        shell = self._shell()
        quoted = (quote_powershell(shell_path) if shell == "powershell" else
                  quote_cmd(shell_path) if shell == "cmd" else quote_unix(shell_path))
        rc, out = self.b.connection().exec(f"{cmd} {quoted}")
        digest = out.split(b" ", 1)[0].strip().lstrip(b"\\").lower().decode("ascii", "replace")
        if rc != 0 or not _HEX.match(digest):
            self.b.stat(path)  # ENOENT for a missing file
            raise OSError(errno.EIO, f"sftp {self.b.label}: {cmd} failed (exit {rc})", path)
        return digest
