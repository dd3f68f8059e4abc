"""Faults under sftp volumes (issue 11): the real plugin over a real sshd, through real FUSE.

- ssh killed (-9) mid-transfer: an upload in mode off fails with EIO or succeeds, never leaves
  a wrong file (or a partial one under the final name); in modes writes/full the application
  sees nothing and the write-back sends the file again; a reader reconnects (right bytes) or
  fails with EIO, never wrong bytes.
- sshd restarted between operations and mid-transfer: the plugin reconnects.
- 20 ms of RTT (tests/support/tcpproxy.py's DelayProxy): everything still works.
- a 30 s outage (sshd in a network namespace, its packets dropped) while files are written and
  cached files read in mode writes: no error is seen, and every file reaches the server.

Correctness only: nothing here asserts how long anything takes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sshd import SshServer, sshd_server
from tests.support.tcpproxy import DelayProxy

from .conftest import Plugin

MB = 1 << 20
BIG = 100 * MB
KILL_AT = 30  # MB moved before the fault


@pytest.fixture(scope="module")
def srv() -> Iterator[SshServer]:
    yield from sshd_server()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(BIG)


# --- helpers ---------------------------------------------------------------------------------

def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def server_dir(srv: SshServer, name: str) -> Path:
    d = Path(srv.root_dir) / f"{name}-{secrets.token_hex(3)}"
    d.mkdir()
    os.chown(d, srv.uid, srv.gid)
    return d


def put_on_server(srv: SshServer, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chown(path, srv.uid, srv.gid)


def volume_opts(srv: SshServer, d: Path, mode: str = "off", port: int | None = None,
                known_hosts: str | None = None, **extra: str) -> dict[str, str]:
    return {"type": "sftp", "path": str(d), "sftp-host": srv.host, "sftp-port": str(port or srv.port),
            "sftp-user": srv.user, "sftp-key-file": srv.key_file,
            "sftp-known-hosts-file": known_hosts or srv.known_hosts_file, "vfs-cache-mode": mode, **extra}


@contextlib.contextmanager
def mounted(plugin: Plugin, name: str, opts: dict[str, str]) -> Iterator[Path]:
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": opts})
    mp = Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])
    try:
        yield mp
    finally:  # in the cache modes Unmount waits for the uploads
        plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})


def plugin_ssh(plugin: Plugin) -> list[int]:
    """The plugin's ssh children (sftp sessions, each with its ControlMaster)."""
    assert plugin.proc is not None
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        if ppid == plugin.proc.pid and os.path.basename(argv[0]) == b"ssh":
            out.append(int(entry))
    return out


def kill_ssh(plugin: Plugin) -> int:
    pids = plugin_ssh(plugin)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, step: float = 0.005) -> Any:
    """Poll cond() until it is truthy (a guard against a hang, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def partials(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if "partial" in p.name]


def partial_at_least(d: Path, size: int) -> Path | None:
    for p in partials(d):
        with contextlib.suppress(FileNotFoundError):
            if p.stat().st_size >= size:
                return p
    return None


def write_through(path: Path, data: bytes, fault: Callable[[], None] | None = None) -> OSError | None:
    """Write `data` to `path` 1 MB at a time (unbuffered), calling fault() after KILL_AT MB;
    the OSError the application saw, if any (from a write or the close)."""
    try:
        with open(path, "wb", buffering=0) as f:
            for i in range(0, len(data), MB):
                f.write(data[i:i + MB])
                if fault is not None and i == KILL_AT * MB:
                    fault()
    except OSError as e:
        return e
    return None


def read_through(path: Path, fault: Callable[[], None] | None = None) -> tuple[bytes, OSError | None]:
    """Read `path` 1 MB at a time, calling fault() after KILL_AT MB: (bytes read, error)."""
    got = bytearray()
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(MB):
                got += chunk
                if fault is not None and len(got) == KILL_AT * MB:
                    fault()
    except OSError as e:
        return bytes(got), e
    return bytes(got), None


def killer(plugin: Plugin) -> Callable[[], None]:
    def fault() -> None:
        assert wait_for(lambda: kill_ssh(plugin), timeout=10), "no ssh process under the plugin to kill"
    return fault


def still_works(mp: Path, d: Path | None = None) -> None:
    """After a fault: new operations through the mount work (and reach the server)."""
    data = os.urandom(300_000)
    (mp / "after.bin").write_bytes(data)
    assert (mp / "after.bin").read_bytes() == data
    assert "after.bin" in os.listdir(mp)
    if d is not None:
        assert wait_for(lambda: (d / "after.bin").exists() and (d / "after.bin").read_bytes() == data)


# --- ssh killed mid-transfer -----------------------------------------------------------------

def test_ssh_killed_mid_write_mode_off_never_leaves_a_wrong_file(plugin: Plugin, srv: SshServer,
                                                                  payload: bytes) -> None:
    d = server_dir(srv, "kill-w-off")
    old = b"the old content\n"
    put_on_server(srv, d / "big.bin", old)
    with mounted(plugin, "kwoff", volume_opts(srv, d)) as mp:
        err = write_through(mp / "big.bin", payload, killer(plugin))
        print(f"mode off, ssh killed mid-write: the application saw {err!r}")
        if err is not None:
            assert err.errno == errno.EIO, err
        # the upload is renamed only when complete: the old file, or exactly the new one
        assert wait_for(lambda: not partials(d), timeout=30), partials(d)
        on_server = (d / "big.bin").read_bytes()
        if err is None:
            assert md5(on_server) == md5(payload)
        else:
            assert on_server == old or md5(on_server) == md5(payload)
        still_works(mp, d)
    assert not partials(d)


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_ssh_killed_mid_upload_the_write_back_sends_it_again(plugin: Plugin, srv: SshServer, payload: bytes,
                                                             mode: str) -> None:
    d = server_dir(srv, f"kill-up-{mode}")
    with mounted(plugin, f"kup{mode}", volume_opts(srv, d, mode, **{"vfs-write-back": "0.1s"})) as mp:
        # the application writes into the cache: ssh dying meanwhile is no concern of its
        assert write_through(mp / "big.bin", payload, killer(plugin)) is None
        part = wait_for(lambda: partial_at_least(d, KILL_AT * MB))
        assert part is not None, "the upload was not seen under way"
        assert not (d / "big.bin").exists()  # caught mid-upload
        assert kill_ssh(plugin) >= 1
        assert md5((mp / "big.bin").read_bytes()) == md5(payload)  # the cached copy is intact
    assert md5((d / "big.bin").read_bytes()) == md5(payload)  # Unmount waited for the re-upload
    assert not partials(d)


# --- sshd restarted ---------------------------------------------------------------------------

def test_sshd_restart_between_operations(plugin: Plugin, srv: SshServer) -> None:
    d = server_dir(srv, "restart-ops")
    a, b = os.urandom(200_000), os.urandom(200_000)
    with mounted(plugin, "rops", volume_opts(srv, d)) as mp:
        (mp / "a.bin").write_bytes(a)
        assert plugin_ssh(plugin)
        srv.restart()
        assert sorted(os.listdir(mp)) == ["a.bin"]
        assert (mp / "a.bin").read_bytes() == a
        (mp / "b.bin").write_bytes(b)
        os.mkdir(mp / "sub")
        os.rename(mp / "b.bin", mp / "sub" / "b.bin")
        srv.restart()
        assert (mp / "sub" / "b.bin").read_bytes() == b
        os.unlink(mp / "a.bin")
        assert os.listdir(mp) == ["sub"]
    assert (d / "sub" / "b.bin").read_bytes() == b and not (d / "a.bin").exists()


def test_sshd_restart_mid_upload(plugin: Plugin, srv: SshServer, payload: bytes) -> None:
    d = server_dir(srv, "restart-up")
    with mounted(plugin, "rup", volume_opts(srv, d, "writes", **{"vfs-write-back": "0.1s"})) as mp:
        assert write_through(mp / "big.bin", payload) is None
        assert wait_for(lambda: partial_at_least(d, KILL_AT * MB)) is not None, "the upload was not seen"
        assert not (d / "big.bin").exists()
        srv.restart()
        still_works(mp)
    assert md5((d / "big.bin").read_bytes()) == md5(payload)
    assert (d / "after.bin").exists() and not partials(d)


SSHD_DOWN = 1.5  # seconds sshd is away in a "slow restart"


class DownForAMoment:
    """The fault: sshd stops, and starts again SSHD_DOWN seconds later (same port and keys)."""

    def __init__(self, srv: SshServer) -> None:
        self.srv = srv
        self.timer: threading.Timer | None = None

    def __call__(self) -> None:
        self.srv.stop()
        self.timer = threading.Timer(SSHD_DOWN, self.srv.start)
        self.timer.start()

    def wait(self) -> None:
        """Until sshd answers again (the next test needs it)."""
        if self.timer is not None:
            self.timer.join(60)
        self.srv.start()  # a no-op when running; starts it if the timer's start failed


@pytest.mark.parametrize("fault,mode", [
    ("ssh killed", "off"), ("ssh killed", "full"), ("sshd restarted", "off"), ("sshd restarted", "full"),
    ("sshd away", "off"), ("sshd away", "full")])
def test_a_fault_mid_read_gives_right_bytes_or_eio(plugin: Plugin, srv: SshServer, payload: bytes, fault: str,
                                                   mode: str) -> None:
    d = server_dir(srv, f"read-{fault.split()[-1]}-{mode}")
    put_on_server(srv, d / "big.bin", payload)
    away = DownForAMoment(srv)
    do = {"ssh killed": killer(plugin), "sshd restarted": srv.restart, "sshd away": away}[fault]
    try:
        with mounted(plugin, f"r{mode}{fault.split()[-1]}", volume_opts(srv, d, mode)) as mp:
            got, err = read_through(mp / "big.bin", do)
            print(f"mode {mode}, {fault} mid-read: {len(got)} bytes, the application saw {err!r}")
            away.wait()
            if err is not None:
                assert got == payload[:len(got)]  # what did arrive is right
                assert err.errno == errno.EIO, err
            else:
                assert len(got) == len(payload) and md5(got) == md5(payload)
            # a new read after the fault is whole and right, and the mount works on
            assert md5((mp / "big.bin").read_bytes()) == md5(payload)
            still_works(mp, d)
    finally:
        away.wait()


def test_a_cached_file_survives_the_server_refusing_it_in_mode_writes(plugin: Plugin, srv: SshServer) -> None:
    """In mode writes a file that is in the cache is read from it (rclone's File.Open: cache
    mode >= minimal and the item exists in the cache -> a cached handle), so a server that can't
    serve it (down, or here: the file made unreadable, its size and modtime unchanged) does not
    matter. rclone 1.75.2 passes this."""
    d = server_dir(srv, "cached-read")
    data = os.urandom(300_000)
    with mounted(plugin, "cread", volume_opts(srv, d, "writes", **{"vfs-write-back": "0.1s"})) as mp:
        (mp / "f.bin").write_bytes(data)
        assert wait_for(lambda: (d / "f.bin").exists() and (d / "f.bin").read_bytes() == data)
        assert wait_for(lambda: not partials(d))
        meta = plugin.cache / "vfsMeta" / "cread" / "f.bin"
        assert wait_for(lambda: meta.exists() and json.loads(meta.read_text()).get("Dirty") is False)
        assert (plugin.cache / "vfs" / "cread" / "f.bin").read_bytes() == data  # clean, in the cache
        time.sleep(1.5)  # past --attr-timeout and the upload's own bookkeeping (not an assertion)
        os.chmod(d / "f.bin", 0)  # ctime only: the fingerprint (size, modtime, hash) stays
        assert (mp / "f.bin").read_bytes() == data


# --- latency ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["off", "writes"])
def test_20ms_rtt_through_a_delay_proxy(plugin: Plugin, srv: SshServer, payload: bytes, tmp_path: Path,
                                        mode: str) -> None:
    d = server_dir(srv, f"rtt-{mode}")
    data = payload[:20 * MB]
    put_on_server(srv, d / "there.bin", payload[20 * MB:21 * MB])
    with DelayProxy("127.0.0.1", srv.port, delay_up=0.010, delay_down=0.010) as proxy:
        known = srv.write_known_hosts(str(tmp_path / "known_hosts"), port=proxy.port)
        with mounted(plugin, f"rtt{mode}", volume_opts(srv, d, mode, port=proxy.port, known_hosts=known)) as mp:
            assert os.listdir(mp) == ["there.bin"]
            assert (mp / "there.bin").read_bytes() == payload[20 * MB:21 * MB]
            assert write_through(mp / "big.bin", data) is None
            assert md5((mp / "big.bin").read_bytes()) == md5(data)
            os.mkdir(mp / "dir")
            (mp / "dir" / "small.txt").write_text("small")
            assert sorted(os.listdir(mp)) == ["big.bin", "dir", "there.bin"]
            assert (mp / "dir" / "small.txt").read_text() == "small"
        assert proxy.connections_accepted >= 1 and proxy.bytes_up > len(data)  # it went through the proxy
    assert md5((d / "big.bin").read_bytes()) == md5(data)
    assert (d / "dir" / "small.txt").read_text() == "small"


# --- an outage -------------------------------------------------------------------------------

def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p


class Netns:
    """A network namespace joined to the host by a veth pair: host 10.231.N.1, netns 10.231.N.2."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.name = f"pyclone-t{tag}"
        self.host_if, self.ns_if = f"pct{tag}h", f"pct{tag}n"
        used = _ip("ip", "-o", "-4", "addr").stdout
        free = [n for n in range(2, 250) if f"10.231.{n}." not in used]
        n = free[secrets.randbelow(len(free))]
        self.host_addr, self.ns_addr = f"10.231.{n}.1", f"10.231.{n}.2"
        self.rules: list[list[str]] = []
        self.lock = threading.Lock()

    def create(self) -> None:
        for cmd, ns in ((f"netns add {self.name}", None),
                        (f"link add {self.host_if} type veth peer name {self.ns_if}", None),
                        (f"link set {self.ns_if} netns {self.name}", None),
                        (f"addr add {self.host_addr}/24 dev {self.host_if}", None),
                        (f"link set {self.host_if} up", None),
                        (f"addr add {self.ns_addr}/24 dev {self.ns_if}", self.name),
                        (f"link set {self.ns_if} up", self.name), ("link set lo up", self.name)):
            _ip("ip", *cmd.split(), ns=ns)

    def cut(self) -> None:
        """Drop every packet on the veth, both ways (inside the namespace: the host's own
        firewall is not touched, and the host keeps its route, so nothing leaks elsewhere)."""
        for rule in (["INPUT", "-i", self.ns_if, "-j", "DROP"], ["OUTPUT", "-o", self.ns_if, "-j", "DROP"]):
            _ip("iptables", "-w", "-I", *rule, ns=self.name)
            self.rules.append(rule)

    def heal(self) -> None:
        with self.lock:
            while self.rules:
                _ip("iptables", "-w", "-D", *self.rules.pop(), ns=self.name, check=False)

    def destroy(self) -> None:
        self.heal()
        _ip("ip", "link", "del", self.host_if, check=False)
        _ip("ip", "netns", "del", self.name, check=False)


@pytest.fixture
def netns_srv() -> Iterator[tuple[SshServer, Netns]]:
    if subprocess.run(["which", "iptables"], capture_output=True, check=False).returncode != 0:
        pytest.skip("iptables not installed")
    net = Netns()
    try:
        net.create()
        gen = sshd_server(host=net.ns_addr, netns=net.name)
        srv = next(gen)
        try:
            yield srv, net
        finally:
            net.heal()
            gen.close()
    finally:
        net.destroy()
    assert net.name not in _ip("ip", "netns", "list").stdout


OUTAGE = 30.0


def test_a_30s_outage_in_mode_writes_is_invisible(plugin: Plugin, netns_srv: tuple[SshServer, Netns]) -> None:
    srv, net = netns_srv
    d = server_dir(srv, "outage")
    files: dict[str, bytes] = {}
    errors: list[str] = []
    done = {"write": 0, "read": 0}
    slowest = {"write": 0.0, "read": 0.0}
    leaked: list[str] = []
    lock = threading.Lock()  # files is shared by the writer, the reader and heal()
    with mounted(plugin, "outage", volume_opts(srv, d, "writes", **{"vfs-write-back": "0.5s"})) as mp:
        for i in range(5):
            files[f"before-{i}.bin"] = os.urandom(256 * 1024 + i)
            (mp / f"before-{i}.bin").write_bytes(files[f"before-{i}.bin"])
        assert wait_for(lambda: all((d / n).exists() and (d / n).read_bytes() == b for n, b in files.items())), \
            "the first files were not uploaded"
        stop = threading.Event()

        def timed(kind: str, fn: Callable[[], None]) -> None:
            t = time.monotonic()
            try:
                fn()
                done[kind] += 1
            except OSError as e:
                errors.append(f"{kind}: {e!r}")
            slowest[kind] = max(slowest[kind], time.monotonic() - t)

        def writer() -> None:  # new files, one after the other
            n = 0
            while not stop.is_set():
                name, data = f"during-{n}.bin", os.urandom(64 * 1024 + n)

                def write(name: str = name, data: bytes = data) -> None:
                    (mp / name).write_bytes(data)
                    with lock:
                        files[name] = data
                timed("write", write)
                n += 1
                stop.wait(0.2)

        def reader() -> None:  # files written before (uploaded) and during (not yet) the outage
            n = 0
            while not stop.is_set():
                with lock:
                    name = sorted(files)[n % len(files)]

                def read(name: str = name) -> None:
                    if (mp / name).read_bytes() != files[name]:
                        errors.append(f"read {name}: wrong bytes")
                timed("read", read)
                n += 1
                stop.wait(0.1)

        def heal() -> None:
            with lock:
                names = list(files)
            leaked.extend(n for n in names if n.startswith("during-") and (d / n).exists())
            net.heal()
            stop.set()

        net.cut()
        healer = threading.Timer(OUTAGE, heal)
        threads = [threading.Thread(target=f, daemon=True) for f in (writer, reader)]
        healer.start()
        try:
            for t in threads:
                t.start()
            healer.join()
            for t in threads:
                t.join(600)  # a guard: a read may wait until the connection recovers
        finally:
            healer.cancel()
            net.heal()
            stop.set()
        print(f"outage {OUTAGE:.0f}s: {done['write']} writes (slowest {slowest['write']:.1f}s), "
              f"{done['read']} reads (slowest {slowest['read']:.1f}s)")
        assert not errors, errors
        assert not leaked, f"{leaked} reached the server during the outage: the link was not cut"
        assert done["write"] >= 1 and done["read"] >= 1
        assert not any(t.is_alive() for t in threads)
    for name, data in files.items():  # Unmount waited for every upload
        assert (d / name).read_bytes() == data, name
    assert not partials(d)
