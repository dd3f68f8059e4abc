"""Listening sockets: a unix socket made 0660 with no window where others may connect, the
socket systemd passes (socket activation), and systemd's readiness notification."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import stat
from dataclasses import dataclass

log = logging.getLogger("pyclone.serve")

SD_LISTEN_FDS_START = 3
# as Go's net.Listen (somaxconn): a connect storm must not fill the queue before the loop sees it
BACKLOG = socket.SOMAXCONN


@dataclass
class Listener:
    sock: socket.socket
    driver_name: str
    cleanup: list[str]  # files to remove at exit (socket, spec)
    description: str

    def close(self) -> None:
        """Remove the socket and spec files, then close the socket."""
        for path in self.cleanup:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.sock.close()


def systemd_socket(env: dict[str, str] | None = None) -> socket.socket | None:
    """The socket systemd passed (LISTEN_PID/LISTEN_FDS, fd 3), or None."""
    env = dict(os.environ) if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count == 0:
        return None
    if count != 1:
        raise RuntimeError(f"expected only one socket from systemd, got {count}")
    fd = SD_LISTEN_FDS_START
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    return socket.socket(fileno=fd)


def unix_listener(path: str, gid: int) -> Listener:
    """A unix socket at `path`, born 0660 and owned by root:`gid` (a stale socket there is
    replaced; anything else is refused)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise RuntimeError(f"{path} exists and is not a socket; refusing to replace it")
        os.unlink(path)  # stale socket from an earlier run
        log.info("removed stale socket %s", path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # born 0660: no window where others may connect
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if os.geteuid() == 0:
        os.chown(path, 0, gid)
    sock.listen(BACKLOG)
    name = os.path.splitext(os.path.basename(path))[0]
    return Listener(sock, name, [path], f"unix socket {path}")


def raise_open_files_limit() -> None:
    """The soft RLIMIT_NOFILE up to the hard one, as Go's runtime does at start: every client
    connection, FUSE mount and cached file costs a descriptor."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as e:
            log.debug("cannot raise the open files limit from %d to %d: %s", soft, hard, e)


def sd_notify(message: str) -> None:
    """The sd_notify protocol without libsystemd: one datagram to $NOTIFY_SOCKET."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    if target.startswith("@"):
        target = "\0" + target[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(target)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify %s: %s", message.split("=")[0], e)
