"""The selectors HTTP loop: malformed input, limits, keep-alive, and never stalling."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .conftest import Plugin


def send_raw(sock_path: str, data: bytes, timeout: float = 5.0) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> dict:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def test_unknown_path_is_404_json(plugin: Plugin) -> None:
    status, _, body = plugin.client.raw("POST", "/VolumeDriver.Nope", b"{}")
    assert status == 404 and "Err" in json.loads(body)


def test_wrong_method_is_405(plugin: Plugin) -> None:
    status, _, body = plugin.client.raw("GET", "/VolumeDriver.List")
    assert status == 405 and "POST" in json.loads(body)["Err"]


def test_malformed_request_line_is_400(plugin: Plugin) -> None:
    raw = send_raw(plugin.sock, b"THIS IS NOT HTTP\r\n\r\n")
    assert status_of(raw) == 400 and "Err" in body_of(raw)


def test_malformed_header_is_400(plugin: Plugin) -> None:
    raw = send_raw(plugin.sock, b"POST /VolumeDriver.List HTTP/1.1\r\nno colon here\r\n\r\n")
    assert status_of(raw) == 400


def test_bad_json_is_400_and_empty_body_for_create_is_400(plugin: Plugin) -> None:
    status, _, body = plugin.client.raw("POST", "/VolumeDriver.Create", b"{not json")
    assert status == 400 and "Err" in json.loads(body)
    status, _, body = plugin.client.raw("POST", "/VolumeDriver.Create", b"")
    assert status == 400
    status, _, body = plugin.client.raw("POST", "/VolumeDriver.Create", b'{"Name":"x","Opts":{"a":1}}')
    assert status == 400 and "Opts" in json.loads(body)["Err"]


def test_body_over_1mib_is_413(plugin: Plugin) -> None:
    head = b"POST /VolumeDriver.Create HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"
    raw = send_raw(plugin.sock, head)
    assert status_of(raw) == 413


def test_keep_alive_and_pipelining(plugin: Plugin) -> None:
    req = b"POST /VolumeDriver.List HTTP/1.1\r\nHost: \r\nContent-Length: 3\r\n\r\n{}\n"
    act = b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(plugin.sock)
    s.sendall(req + act + req)  # three requests in one write
    buf = b""
    while buf.count(b"HTTP/1.1 200") < 3:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    s.sendall(act)  # and the connection is still usable
    more = s.recv(65536)
    assert b"VolumeDriver" in more
    s.close()
    assert buf.index(b"Volumes") < buf.index(b"Implements") < buf.rindex(b"Volumes")


def test_chunked_body_is_accepted(plugin: Plugin, data_dir: Path) -> None:
    body = json.dumps({"Name": "chunky", "Opts": {"type": "local", "path": str(data_dir)}}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    raw = send_raw(plugin.sock, b"POST /VolumeDriver.Create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n" + chunked)
    assert status_of(raw) == 200
    assert plugin.client.ok("VolumeDriver.Get", {"Name": "chunky"})


def test_slow_and_idle_clients_do_not_block_others(plugin: Plugin) -> None:
    idle = [socket.socket(socket.AF_UNIX) for _ in range(20)]
    for s in idle:
        s.connect(plugin.sock)
    trickle = socket.socket(socket.AF_UNIX)
    trickle.connect(plugin.sock)
    trickle.sendall(b"POST /VolumeDriver.List HTTP/1.1\r\nContent-Le")  # never finished
    started = time.monotonic()
    for _ in range(20):
        assert plugin.client.ok("VolumeDriver.List", {}) == {"Volumes": []}
    assert time.monotonic() - started < 2.0
    for s in [*idle, trickle]:
        s.close()


def test_slow_mount_does_not_delay_get(plugin: Plugin, data_dir: Path) -> None:
    """Mounts run on workers: Get on the loop answers while a mount is in flight."""
    import threading

    c = plugin.client
    for i in range(4):
        c.ok("VolumeDriver.Create", {"Name": f"p{i}", "Opts": {"type": "local", "path": str(data_dir)}})
    results: list[float] = []

    def get_loop() -> None:
        for _ in range(50):
            t = time.monotonic()
            c.ok("VolumeDriver.Get", {"Name": "p0"})
            results.append(time.monotonic() - t)

    t = threading.Thread(target=get_loop)
    t.start()
    for i in range(4):
        c.ok("VolumeDriver.Mount", {"Name": f"p{i}", "ID": "a"})
    t.join(30)
    for i in range(4):
        c.ok("VolumeDriver.Unmount", {"Name": f"p{i}", "ID": "a"})
    assert len(results) == 50


def test_tcp_socket_writes_spec_file(plugin_factory) -> None:
    spec = Path("/etc/docker/plugins/pyclone.spec")
    if spec.exists():
        import pytest

        pytest.skip("a pyclone.spec already exists on this host")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    p = plugin_factory(start=False)
    p.sock = f"127.0.0.1:{port}"
    p.client.sock_path = ""  # not a unix socket now
    import http.client

    p.start(wait=False)
    try:
        deadline = time.monotonic() + 10
        while not spec.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spec.read_text() == f"tcp://127.0.0.1:{port}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/Plugin.Activate", b"")
        assert json.loads(conn.getresponse().read()) == {"Implements": ["VolumeDriver"]}
        conn.close()
    finally:
        p.stop()
    assert not spec.exists()


def test_systemd_socket_activation_and_notify(tmp_root: Path) -> None:
    """Launch exactly as systemd does: listening socket on fd 3, LISTEN_PID/LISTEN_FDS, NOTIFY_SOCKET."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    sock_path = str(tmp_root / "act.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(sock_path)
    listener.listen(16)
    notify_path = str(tmp_root / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    code = ("import os,sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID']=str(os.getpid()); "
            "os.environ['LISTEN_FDS']='1'; sys.argv=['pyclone-docker']+sys.argv[2:]; "
            "from pyclone_docker.cli import main; sys.exit(main())")
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, "-c", code, str(listener.fileno()), "serve", "docker",
                             "--base-dir", str(tmp_root / "b"), "--cache-dir", str(tmp_root / "c")],
                            pass_fds=[listener.fileno()], env=env, cwd=repo)
    try:
        assert notify.recv(1024) == b"READY=1"
        raw = send_raw(sock_path, b"POST /Plugin.Activate HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert body_of(raw) == {"Implements": ["VolumeDriver"]}
        proc.terminate()
        assert notify.recv(1024) == b"STOPPING=1"
        assert proc.wait(10) == 0
        assert os.path.exists(sock_path)  # systemd owns the socket file: not removed
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
        notify.close()
