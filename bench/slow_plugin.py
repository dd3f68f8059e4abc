#!/usr/bin/env python3
"""The plugin, with every volume's backend behind the test-only FaultyBackend: a slow remote.

    PYCLONE_SLOW_DELAY=0.05 [PYCLONE_SLOW_READ_DELAY=0] [PYCLONE_SLOW_CONTROL=/run/x/ctl.sock] \\
        python3 bench/slow_plugin.py serve docker --socket-addr ... (the plugin's own arguments)

PYCLONE_SLOW_DELAY is the seconds added to every backend call, PYCLONE_SLOW_READ_DELAY those
added to every read of a stream. `pyclone_docker.fs.new_fs` is patched in this process only;
nothing in pyclone_docker/ knows of it. For benchmarks and tests, never a deployment.

PYCLONE_SLOW_CONTROL names a unix socket that answers one JSON line per connection:
  {"op": "stats"}  -> {"backends": [{"root", "calls", "streams": [[path, offset, length,
                       delivered, opened, closed], ...]}]}  (times: CLOCK_MONOTONIC, seconds)
  {"op": "reset"}  -> clears every backend's counters, events and streams
  {"op": "set", "delay": s, "read_delay": s}  -> changes the knobs of every backend made so far
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyclone_docker import cli  # noqa: E402
from tests.support.faulty import FaultyBackend, wrap_new_fs  # noqa: E402


def _answer(made: list[FaultyBackend], request: dict) -> dict:
    op = request.get("op")
    if op == "stats":
        out = []
        for b in list(made):
            with b._cond:  # a consistent snapshot of one backend
                streams = [[s.path, s.offset, s.length, s.delivered, s.opened, s.closed] for s in b.streams]
                out.append({"root": b.root, "calls": dict(b.calls), "streams": streams})
        return {"backends": out}
    if op == "reset":
        for b in list(made):
            b.reset()
        return {}
    if op == "set":
        for b in list(made):
            if "delay" in request:
                b.delay = float(request["delay"])
            if "read_delay" in request:
                b.read_delay = float(request["read_delay"])
        return {}
    return {"error": f"unknown op {op!r}"}


def serve_control(path: str, made: list[FaultyBackend]) -> None:
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(8)

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            with conn:
                try:
                    line = conn.makefile("rb").readline()
                    reply = _answer(made, json.loads(line or b"{}"))
                except Exception as e:  # a bad request must not end the plugin
                    reply = {"error": repr(e)}
                conn.sendall(json.dumps(reply).encode() + b"\n")

    threading.Thread(target=loop, name="faulty-control", daemon=True).start()


def main() -> int:
    delay = float(os.environ.get("PYCLONE_SLOW_DELAY", "0.05"))
    read_delay = float(os.environ.get("PYCLONE_SLOW_READ_DELAY", "0"))
    made, _undo = wrap_new_fs(delay=delay, read_delay=read_delay)
    control = os.environ.get("PYCLONE_SLOW_CONTROL")
    if control:
        serve_control(control, made)
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
