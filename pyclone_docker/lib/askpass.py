"""Answer the password prompts of child processes (ssh's SSH_ASKPASS) without the secret ever
being in an argv, an environment or a file.

The plugin listens on a unix socket in a private (0700) runtime directory. ssh runs the askpass
helper, which is this plugin itself (`<python> <plugin> askpass --socket PATH PROMPT`); the helper
sends the prompt over the socket and prints the answer for ssh to read from its pipe. The server
answers only a helper whose parent is a process registered with it (the ssh it started), checked
with SO_PEERCRED and /proc, and only as many times as registered. Everything else is refused.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
from collections.abc import Callable

Answer = Callable[[str], "str | None"]  # prompt -> the secret for it, or None to refuse

_MAX_PROMPT = 4096


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # the command name is in parentheses and may itself hold spaces or parentheses
    return int(raw[raw.rindex(b")") + 2:].split()[1])


class AskpassServer:
    """One per process: `register(pid, answer, uses)` before ssh needs it, `forget(pid)` after."""

    def __init__(self, runtime_dir: str) -> None:
        self.path = os.path.join(runtime_dir, "askpass.sock")
        self._answers: dict[int, tuple[Answer, list[int]]] = {}
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self._sock.listen(16)
        threading.Thread(target=self._serve, name="askpass", daemon=True).start()

    def register(self, pid: int, answer: Answer, uses: int = 2) -> None:
        with self._lock:
            self._answers[pid] = (answer, [uses])

    def forget(self, pid: int) -> None:
        with self._lock:
            self._answers.pop(pid, None)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                self._answer(conn)
            except (OSError, ValueError):
                pass
            finally:
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", cred)
        if uid != os.geteuid():
            return
        parent = _parent_of(pid)
        with self._lock:
            entry = self._answers.get(parent)
            if entry is None or entry[1][0] <= 0:
                return
            entry[1][0] -= 1
        prompt = b""
        while len(prompt) < _MAX_PROMPT and not prompt.endswith(b"\n"):
            chunk = conn.recv(_MAX_PROMPT)
            if not chunk:
                break
            prompt += chunk
        secret = entry[0](prompt.decode("utf-8", "replace").strip())
        if secret is not None:
            conn.sendall(b"+" + secret.encode("utf-8", "surrogateescape") + b"\n")

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def plugin_command(subcommand: str) -> str:
    """A shell command line that runs this plugin (the zipapp, or the package) with `subcommand`;
    one program and its arguments, so `exec` may be put in front (ssh's ProxyCommand does)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../pyclone_docker
    archive = os.path.dirname(here)
    if os.path.isfile(archive):  # inside a zipapp: run the archive
        return f"{_q(sys.executable)} -S {_q(archive)} {subcommand}"
    # from a source tree or site-packages: its parent on the path
    return f"env PYTHONPATH={_q(archive)} {_q(sys.executable)} -S -m pyclone_docker {subcommand}"


def helper_command(runtime_dir: str, sock_path: str) -> str:
    """An executable that runs this plugin's askpass helper (ssh takes a path, no arguments):
    a two-line script in the runtime directory, which must allow exec."""
    script = os.path.join(runtime_dir, "askpass")
    if os.path.exists(script):
        return script
    run = "exec " + plugin_command(f"askpass --socket {_q(sock_path)} \"$@\"")
    tmp = script + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700), "w") as f:
        f.write(f"#!/bin/sh\n{run}\n")
    os.replace(tmp, script)
    return script


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def ask(sock_path: str, prompt: str) -> str | None:
    """The plugin's answer to `prompt` (None: refused); for helpers that ssh runs."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock_path)
        s.sendall(prompt.encode("utf-8", "replace") + b"\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    except OSError:
        return None
    finally:
        s.close()
    if not reply.startswith(b"+"):
        return None
    return reply[1:].rstrip(b"\n").decode("utf-8", "surrogateescape")


def client_main(argv: list[str]) -> int:
    """`askpass --socket PATH PROMPT`: print the answer for PROMPT, or fail (ssh then gives up)."""
    if len(argv) < 2 or argv[0] != "--socket":
        sys.stderr.write("usage: askpass --socket PATH [PROMPT]\n")
        return 2
    prompt = " ".join(argv[2:]) or "password:"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(argv[1])
        s.sendall(prompt.encode("utf-8", "replace") + b"\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    except OSError as e:
        sys.stderr.write(f"askpass: {e}\n")
        return 1
    finally:
        s.close()
    if not reply.startswith(b"+"):
        sys.stderr.write("askpass: no answer for this prompt\n")
        return 1
    sys.stdout.buffer.write(reply[1:])
    sys.stdout.flush()
    return 0
