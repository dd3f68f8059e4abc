#!/usr/bin/env python3
"""`make demo`: run the plugin with a ready-made local volume under a temp dir.

Starts `serve docker` on /run/docker/plugins/pyclone.sock (as rclone's own default,
but named pyclone), creates volume `demo` backed by <dir>/data, mounts it once through
the API to show it works, and keeps serving until Ctrl-C. With a Docker engine running:
    docker run --rm -v demo:/data busybox sh -c 'echo hi > /data/hello; ls -l /data'
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def call(sock: str, method: str, body: dict) -> dict:
    conn = UnixHTTPConnection(sock)
    conn.request("POST", "/" + method, json.dumps(body))
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"{}")
    conn.close()
    if data.get("Err"):
        raise SystemExit(f"{method}: {data['Err']}")
    return data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/pyclone-demo")
    ap.add_argument("--socket", default="/run/docker/plugins/pyclone.sock")
    args = ap.parse_args()
    data = os.path.join(args.dir, "data")
    os.makedirs(data, exist_ok=True)
    cmd = [sys.executable, "-m", "pyclone_docker", "serve", "docker", "-v",
           "--socket-addr", args.socket, "--base-dir", os.path.join(args.dir, "volumes"),
           "--cache-dir", os.path.join(args.dir, "cache")]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                call(args.socket, "Plugin.Activate", {})
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the plugin did not start") from None
                time.sleep(0.05)
        call(args.socket, "VolumeDriver.Create", {"Name": "demo", "Opts": {"type": "local", "path": data}})
        mp = call(args.socket, "VolumeDriver.Mount", {"Name": "demo", "ID": "demo-tool"})["Mountpoint"]
        with open(os.path.join(mp, "hello.txt"), "w") as f:
            f.write("written through the FUSE mount\n")
        call(args.socket, "VolumeDriver.Unmount", {"Name": "demo", "ID": "demo-tool"})
        print(f"\nVolume 'demo' works: {mp} -> {data}/hello.txt holds:",
              open(os.path.join(data, "hello.txt")).read().strip())
        print("Docker can now use it:  docker run --rm -v demo:/data <image> ls -l /data")
        print("Ctrl-C stops the plugin (volume 'demo' stays in its state file).\n", flush=True)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
