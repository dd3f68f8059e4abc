#!/usr/bin/env python3
"""sftp benchmark (issue 11): pyclone-docker vs rclone 1.75.2's `serve docker`, both on the SAME real
OpenSSH sshd (tests/support/sshd.py), the SAME volume options (type=sftp, a key file and a
known_hosts file, the vfs-cache-mode under test), in ONE run; on loopback and at 20 ms RTT (a
DelayProxy of tests/support/tcpproxy.py, 10 ms each way, in its own process; each plugin's volume
points at the proxy's port).

Measures (each plugin in turn, the order rotating; every transfer on a volume created for it, so
no VFS, listing or cache of an earlier step serves it):
- connect: VolumeDriver.Create + VolumeDriver.Mount of a fresh volume on a freshly started plugin
  (so the ssh connection is made inside the timing), median of --connect-samples; and the same
  plus the first listing of the mountpoint (a plugin that connects lazily pays there);
- write: dd if=/dev/zero bs=1M of a --size-mib file (--size-mib-rtt at 20 ms) until the file is
  whole on the server disk under its final name (mode off: the close uploads; mode full: the
  upload after vfs-write-back, polled every 50 ms), then the Unmount (timed apart);
- read: the first read of a file the plugin never saw (a hard link, made on the server disk, to a
  file in the server's page cache; the client's page cache dropped), through a fresh mount with an
  empty VFS cache; dd's byte count must equal the size, a short read is an ERROR, not a figure;
- rss: peak RSS of the plugin and all its descendants (ours: its ssh processes), sampled every
  0.2 s during each mode's write and read;
- small: --small-files 4 KiB files created in one new directory (mode off), checked on the server;
- ls: `ls -l` of a directory of --ls-files entries made on the server disk just before, through a
  fresh volume (cold), line count checked.

    python3 bench/sftp.py --rev HEAD   # the full run (~15 min on 2 cores), committed code only
    python3 bench/sftp.py --quick      # smoke: 64 MiB, 200 files, 500 entries, 2 connect samples

Without --rev ours runs from a snapshot of --src's working tree (uncommitted changes named in the
output), as bench/run.py. --debug-logs runs both plugins with -vv and keeps their logs in --out.

Ratios: > 1 means ours is better: ours/rclone for throughput, rclone/ours for time and RSS.
Output: --out (default bench/results-<date>-sftp/): results.json and results.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, BenchError, Plugin, dd, drop_caches, git_describe, rclone_binary, snapshot

from tests.support.sshd import SshServer

MIB = 1 << 20
NETS = ("loopback", "rtt20")
MODES = ("off", "full")
PROXY_CODE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.support.tcpproxy import DelayProxy
p = DelayProxy("127.0.0.1", int(sys.argv[2]), delay_up=0.01, delay_down=0.01)
print(p.port, flush=True)
sys.stdin.read()
p.close()
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%T')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------ processes

def tree_pids(root: int) -> list[int]:
    """root and every descendant."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_rss_kib(root: int) -> tuple[int, int]:
    """(summed VmRSS of root and its descendants, how many processes)."""
    total = n = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            n += 1
        except (OSError, StopIteration):
            pass
    return total, n


class RssSampler:
    """Peak tree RSS of one plugin, sampled every 0.2 s while running."""

    def __init__(self, p: Plugin) -> None:
        self.p, self.peak, self.procs = p, 0, 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_ev.is_set():
            if self.p.proc is not None:
                rss, n = tree_rss_kib(self.p.proc.pid)
                if rss > self.peak:
                    self.peak, self.procs = rss, n
            self.stop_ev.wait(0.2)

    def __exit__(self, *exc: object) -> None:
        self.stop_ev.set()
        self.thread.join()


class Proxy:
    """DelayProxy in a child process (no GIL shared with the bench's sampler); ends when stdin closes."""

    def __init__(self, target_port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PROXY_CODE, str(REPO), str(target_port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise BenchError(f"the delay proxy did not start: {line!r}")
        self.port = int(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------------------ the set-up

class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, srv: SshServer, ports: dict[str, int],
                 known_hosts: str, plugins: list[Plugin]) -> None:
        self.args, self.root, self.srv, self.ports = args, root, srv, ports
        self.known_hosts, self.plugins = known_hosts, plugins
        self.figures: dict[str, dict[str, float]] = {p.label: {} for p in plugins}
        self.samples: dict[str, dict[str, list[float]]] = {p.label: {} for p in plugins}
        self.errors: dict[str, dict[str, str]] = {p.label: {} for p in plugins}
        self.order: list[str] = []
        self.tails: dict[str, list[str]] = {}  # plugin log tails at errors
        self.serial = 0
        self.server = {p.label: Path(srv.root_dir) / p.label for p in plugins}
        for d in self.server.values():
            d.mkdir()
            os.chown(d, srv.uid, srv.gid)

    # -- bookkeeping ---------------------------------------------------------------------------
    def add(self, label: str, measure: str, value: float, sample: bool = False) -> None:
        if measure not in self.order:
            self.order.append(measure)
        if sample:
            self.samples[label].setdefault(measure, []).append(value)
            self.figures[label][measure] = statistics.median(self.samples[label][measure])
        else:
            self.figures[label][measure] = value

    def error(self, label: str, measure: str, msg: str) -> None:
        if measure not in self.order:
            self.order.append(measure)
        self.errors[label].setdefault(measure, msg)
        self.figures[label].pop(measure, None)
        log(f"  ERROR {label} {measure}: {msg}")

    def rotated(self, i: int) -> list[Plugin]:
        k = i % len(self.plugins)
        return self.plugins[k:] + self.plugins[:k]

    # -- volumes -------------------------------------------------------------------------------
    # Every call on a new connection: our server closes a keep-alive connection idle for 120 s
    # (lib/httpserver.py IDLE_TIMEOUT; rclone's keeps it), and a call on that closed connection
    # fails in this client with EPIPE (docker's Go client retries such a request on a new one).
    def opts(self, p: Plugin, net: str, mode: str) -> dict[str, str]:
        o = {"type": "sftp", "sftp-host": "127.0.0.1", "sftp-port": str(self.ports[net]),
             "sftp-user": self.srv.user, "sftp-key-file": self.srv.key_file,
             "sftp-known-hosts-file": self.known_hosts, "path": str(self.server[p.label])}
        if mode != "off":
            o["vfs-cache-mode"] = mode
        return o

    def create(self, p: Plugin, net: str, mode: str) -> str:
        self.serial += 1
        name = f"s{self.serial}-{net}-{mode}"
        p.call("VolumeDriver.Create", {"Name": name, "Opts": self.opts(p, net, mode)}, fresh=True, timeout=120)
        return name

    def mount(self, p: Plugin, name: str) -> str:
        return str(p.call("VolumeDriver.Mount", {"Name": name, "ID": "b"}, fresh=True, timeout=300)["Mountpoint"])

    def unmount(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Unmount", {"Name": name, "ID": "b"}, fresh=True, timeout=900)

    def remove(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Remove", {"Name": name}, fresh=True, timeout=120)

    def size_mib(self, net: str) -> int:
        return self.args.size_mib if net == "loopback" else self.args.size_mib_rtt

    # -- connect -------------------------------------------------------------------------------
    def phase_connect(self, net: str) -> None:
        for i in range(self.args.connect_samples):
            for p in self.rotated(i):
                m1, m2 = f"create_mount_ms.{net}", f"create_mount_list_ms.{net}"
                if m1 in self.errors[p.label]:
                    continue
                try:
                    p.start()  # a fresh process: no pooled connection, no cached Fs
                    time.sleep(0.3)
                    t0 = time.perf_counter()
                    name = self.create(p, net, "off")
                    tc = time.perf_counter()
                    mp = self.mount(p, name)
                    t1 = time.perf_counter()
                    os.listdir(mp)
                    t2 = time.perf_counter()
                    self.add(p.label, m1, (t1 - t0) * 1000, sample=True)
                    self.add(p.label, m2, (t2 - t0) * 1000, sample=True)
                    self.add(p.label, f"info_create_alone_ms.{net}", (tc - t0) * 1000, sample=True)
                    self.unmount(p, name)
                    self.remove(p, name)
                except (BenchError, OSError) as e:
                    self.error(p.label, m1, str(e))
                finally:
                    p.stop()

    # -- big sequential I/O ----------------------------------------------------------------------
    def wait_on_server(self, path: Path, size: int, what: str) -> float | None:
        """Polls (every 50 ms) until path is whole on the server; returns when the first file named path.name...
        (the final name or an upload's partial name) appeared, None if one was there at the first poll."""
        t0 = time.perf_counter()
        limit = 120 + size / MIB * 2
        first: float | None = None
        polls = 0
        while not (path.exists() and path.stat().st_size == size):
            if first is None and polls and any(n.startswith(path.name) for n in os.listdir(path.parent)):
                first = time.perf_counter()
            if time.perf_counter() - t0 > limit:
                got = path.stat().st_size if path.exists() else "no file"
                raise BenchError(f"{what}: {path} not whole on the server within {limit:.0f} s ({got})")
            polls += 1
            time.sleep(0.05)
        return first

    def write_once(self, p: Plugin, net: str, mode: str) -> None:
        mib = self.size_mib(net)
        size = mib * MIB
        tag = f"{net}.{mode}"
        name = self.create(p, net, mode)
        mp = self.mount(p, name)
        fname = f"w-{name}.bin"
        on_server = self.server[p.label] / fname
        try:
            t0 = time.perf_counter()
            dd(["if=/dev/zero", f"of={mp}/{fname}", "bs=1M", f"count={mib}"], size, f"{p.label} write {tag}")
            t_close = time.perf_counter()
            whole_at_close = on_server.exists() and on_server.stat().st_size == size
            t_upload = self.wait_on_server(on_server, size, f"{p.label} write {tag}")
            t_landed = time.perf_counter()
            self.add(p.label, f"write_MBps.{tag}", size / 1e6 / (t_landed - t0))
            self.add(p.label, f"info_write_close_s.{tag}", t_close - t0)
            self.add(p.label, f"info_landed_after_close_s.{tag}", t_landed - t_close)
            if mode != "off" and t_upload is not None:  # the upload alone, from its first byte on the server
                self.add(p.label, f"info_upload_start_after_close_s.{tag}", t_upload - t_close)
                self.add(p.label, f"upload_MBps.{tag}", size / 1e6 / (t_landed - t_upload))
            if mode == "off" and not whole_at_close:
                log(f"  note: {p.label} {tag}: the file was not whole on the server when close returned")
            os.unlink(f"{mp}/{fname}")
        finally:
            t_u = time.perf_counter()
            self.unmount(p, name)
            self.add(p.label, f"info_unmount_after_write_s.{tag}", time.perf_counter() - t_u)
            self.remove(p, name)
            on_server.unlink(missing_ok=True)

    def read_once(self, p: Plugin, net: str, mode: str, source: Path) -> None:
        mib = self.size_mib(net)
        size = mib * MIB
        tag = f"{net}.{mode}"
        name = self.create(p, net, mode)
        fname = f"r-{name}.bin"
        link = self.server[p.label] / fname
        os.link(source, link)
        try:
            drop_caches()
            subprocess.run(["dd", f"if={source}", "of=/dev/null", "bs=4M"], capture_output=True, check=True)
            mp = self.mount(p, name)
            try:
                secs = dd([f"if={mp}/{fname}", "of=/dev/null", "bs=1M"], size, f"{p.label} read {tag}")
                self.add(p.label, f"read_MBps.{tag}", size / 1e6 / secs)
                os.unlink(f"{mp}/{fname}")
            finally:
                self.unmount(p, name)
        finally:
            self.remove(p, name)
            link.unlink(missing_ok=True)

    def phase_io(self, net: str, mode: str, turn: int) -> None:
        mib = self.size_mib(net)
        source = Path(self.srv.root_dir) / f"src-{mib}.bin"
        if not source.exists():
            subprocess.run(["dd", "if=/dev/urandom", f"of={source}", "bs=1M", f"count={mib}"], check=True,
                           capture_output=True)
            os.chown(source, self.srv.uid, self.srv.gid)
        tag = f"{net}.{mode}"
        for p in self.rotated(turn):
            with RssSampler(p) as rss:
                log(f"  {p.label} write {tag} {mib} MiB")
                self.attempt(p, f"write_MBps.{tag}", self.write_once, p, net, mode)
                log(f"  {p.label} read {tag} {mib} MiB")
                self.attempt(p, f"read_MBps.{tag}", self.read_once, p, net, mode, source)
            self.add(p.label, f"rss_peak_MiB.{tag}", rss.peak / 1024)
            self.add(p.label, f"info_rss_procs.{tag}", float(rss.procs))

    def attempt(self, p: Plugin, measure: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except (BenchError, OSError, subprocess.CalledProcessError) as e:
            self.error(p.label, measure, str(e))
            self.tails.setdefault(p.label, []).extend([f"--- {measure}", *p.log_tail(30)])

    # -- small files, ls -----------------------------------------------------------------------
    def small_once(self, p: Plugin, net: str) -> None:
        n = self.args.small_files
        name = self.create(p, net, "off")
        mp = self.mount(p, name)
        d = f"small-{name}"
        block = b"x" * 4096
        try:
            os.mkdir(f"{mp}/{d}")
            t0 = time.perf_counter()
            for i in range(n):
                with open(f"{mp}/{d}/f{i:05d}", "wb") as fh:
                    fh.write(block)
            secs = time.perf_counter() - t0
            on_server = self.server[p.label] / d
            sizes = [e.stat().st_size for e in os.scandir(on_server)]
            if len(sizes) != n or any(s != 4096 for s in sizes):
                raise BenchError(f"{p.label}: {len(sizes)} files on the server after the loop, "
                                 f"{sum(s == 4096 for s in sizes)} of 4096 bytes (expected {n})")
            self.add(p.label, f"small_create_files_per_s.{net}", n / secs)
        finally:
            self.unmount(p, name)
            self.remove(p, name)
            shutil.rmtree(self.server[p.label] / d, ignore_errors=True)

    def ls_once(self, p: Plugin, net: str) -> None:
        n = self.args.ls_files
        d = self.server[p.label] / f"many-{net}"
        d.mkdir()
        for i in range(n):
            open(d / f"entry-{i:05d}.dat", "wb").close()
        subprocess.run(["chown", "-R", f"{self.srv.uid}:{self.srv.gid}", str(d)], check=True)
        name = self.create(p, net, "off")
        mp = self.mount(p, name)
        out = self.root / f"ls-{p.label}.out"
        try:
            with open(out, "wb") as fh:
                t0 = time.perf_counter()
                subprocess.run(["ls", "-l", f"{mp}/{d.name}"], check=True, stdout=fh)
                secs = time.perf_counter() - t0
            lines = out.read_bytes().count(b"\n") - 1
            if lines != n:
                raise BenchError(f"{p.label}: ls -l listed {lines} of {n} entries")
            self.add(p.label, f"ls_l_cold_s.{net}", secs)
        finally:
            out.unlink(missing_ok=True)
            self.unmount(p, name)
            self.remove(p, name)
            shutil.rmtree(d, ignore_errors=True)

    def phase_small_ls(self, net: str, turn: int) -> None:
        for p in self.rotated(turn):
            log(f"  {p.label} small files {net}")
            self.attempt(p, f"small_create_files_per_s.{net}", self.small_once, p, net)
        for p in self.rotated(turn):
            log(f"  {p.label} ls -l {net}")
            self.attempt(p, f"ls_l_cold_s.{net}", self.ls_once, p, net)


# ------------------------------------------------------------------------------------------ report

def ratio(measure: str, ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs or measure.startswith("info_"):
        return ""
    higher_better = measure.startswith(("write_MBps", "read_MBps", "upload_MBps", "small_create"))
    r = ours / theirs if higher_better else theirs / ours
    return f"{r:.2f}x"


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def report(b: Bench, meta: dict) -> tuple[str, dict]:
    ours, ref = b.plugins[0].label, b.plugins[1].label
    rows = []
    for m in b.order:
        base, _, where = m.partition(".")
        a, r = b.figures[ours].get(m), b.figures[ref].get(m)
        rows.append({"measure": base, "where": where, ours: a, ref: r,
                     "ratio": "ERROR" if m in b.errors[ours] or m in b.errors[ref] else ratio(m, a, r)})
    lines = [f"# sftp: pyclone-docker vs {meta['rclone']}", "",
             f"{meta['started']}, {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}), "
             f"{meta['minutes']} min; {meta['sshd']}",
             f"pyclone-docker {meta['tree']['commit']} {meta['tree']['dirty']}".rstrip(),
             f"sizes: {meta['size_mib']} MiB on loopback, {meta['size_mib_rtt']} MiB at 20 ms RTT"
             + (" (not 1 GiB: the time budget)" if meta["size_mib_rtt"] < meta["size_mib"] else "")
             + f"; {meta['small_files']} small files; ls of {meta['ls_files']} entries; "
             f"connect: median of {meta['connect_samples']}",
             "ratio > 1: ours better (throughput ours/rclone; time and RSS rclone/ours); info_ rows have none",
             "write_MBps: dd start to the file whole on the server (mode full: includes the default "
             "vfs-write-back 5 s, the same in both); upload_MBps (mode full): from the upload's first file on "
             "the server to the file whole; read_MBps: first read, fresh volume, empty cache, size checked; "
             "rss_peak_MiB: plugin + descendants (ours: its ssh), peak of 0.2 s samples during that write + read",
             "",
             f"| measure | net.mode | {ours} | {ref} | ratio |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['measure']} | {r['where']} | {fmt(r[ours]) if m not in b.errors[ours] else 'ERROR'} | "
              f"{fmt(r[ref]) if m not in b.errors[ref] else 'ERROR'} | {r['ratio']} |"
              for m, r in zip(b.order, rows, strict=True)]
    errs = [f"- {lb} {m}: {msg}" for lb in (ours, ref) for m, msg in b.errors[lb].items()]
    if errs:
        lines += ["", "Errors (no figure given):", *errs]
    notes = meta.get("notes", [])
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    data = {"meta": meta, "figures": b.figures, "samples": b.samples, "errors": b.errors,
            "ratios": {m: r["ratio"] for m, r in zip(b.order, rows, strict=True) if r["ratio"]}}
    return "\n".join(lines) + "\n", data


# ------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 MiB, 200 files, 500 entries, 2 samples")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results-<date>-sftp)")
    ap.add_argument("--size-mib", type=int, default=1024, help="sequential file size on loopback")
    ap.add_argument("--size-mib-rtt", type=int, default=1024, help="sequential file size at 20 ms RTT")
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--ls-files", type=int, default=10000)
    ap.add_argument("--connect-samples", type=int, default=5)
    ap.add_argument("--nets", nargs="+", choices=NETS, default=list(NETS))
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--debug-logs", action="store_true", help="run both plugins with -vv; their logs go to --out")
    ap.add_argument("--rev", help="measure this commit of --src (git archive), not its working tree")
    ap.add_argument("--src", type=Path, default=REPO, help="the source tree of ours (default: this one)")
    args = ap.parse_args()
    if args.quick:
        given = set(sys.argv)
        for opt, value in (("--size-mib", 64), ("--size-mib-rtt", 64), ("--small-files", 200),
                           ("--ls-files", 500), ("--connect-samples", 2)):
            if opt not in given:
                setattr(args, opt[2:].replace("-", "_"), value)
    args.out = args.out or REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-sftp{'-quick' * args.quick}"
    return args


def code_of(args: argparse.Namespace, dest: Path, meta: dict) -> Path:
    """Our code under test: a snapshot of --src's working tree, or of commit --rev."""
    if not args.rev:
        return snapshot(args.src, dest)
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(args.src), "archive", args.rev, "pyclone_docker"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    show = subprocess.run(["git", "-C", str(args.src), "log", "-1", "--format=%h%n%s", args.rev],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    meta["tree"] = {"src": str(args.src), "commit": show[0], "subject": show[1][:100],
                    "dirty": f"(git archive {args.rev}: committed code only)"}
    return dest


def leftover_ssh(ports: list[int]) -> list[str]:
    """ssh processes still talking to our sshd or proxy (other runs on this machine use other ports)."""
    out = subprocess.run(["pgrep", "-a", "-x", "ssh"], capture_output=True, text=True).stdout.splitlines()
    return [line[:200] for line in out if any(f" -p {port} " in line for port in ports)]


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("needs root (FUSE, sshd, drop_caches)", file=sys.stderr)
        return 1
    try:
        rclone = rclone_binary()
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    rclone_line = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    root = Path(tempfile.mkdtemp(prefix="pycbench-sftp-", dir="/var/tmp"))
    t_start = time.monotonic()
    meta: dict = {"started": time.strftime("%F %T %Z"), "host": os.uname().nodename, "kernel": os.uname().release,
                  "cpus": os.cpu_count(), "rclone": rclone_line, "rclone_binary": rclone,
                  "tree": git_describe(args.src), "argv": sys.argv[1:], "size_mib": args.size_mib,
                  "size_mib_rtt": args.size_mib_rtt, "small_files": args.small_files, "ls_files": args.ls_files,
                  "connect_samples": args.connect_samples, "notes": []}
    srv = SshServer()
    proxy: Proxy | None = None
    our_ports: list[int] = []
    plugins: list[Plugin] = []
    try:
        srv.start()
        sshd_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
        meta["sshd"] = f"sshd {srv.host}:{srv.port} (internal-sftp), client {sshd_v}"
        proxy = Proxy(srv.port)
        ports = {"loopback": srv.port, "rtt20": proxy.port}
        our_ports.extend(ports.values())
        known_hosts = str(root / "known_hosts")
        Path(known_hosts).write_text("".join(line + "\n" for line in srv.known_hosts_lines()
                                             + srv.known_hosts_lines(port=proxy.port)))
        plugins = [Plugin("pyclone", root, code=code_of(args, root / "code", meta)),
                   Plugin("rclone", root, rclone=rclone)]
        if args.debug_logs:
            for p in plugins:
                p.command = (lambda c: lambda: [*c(), "-vv"])(p.command)  # type: ignore[method-assign]
        b = Bench(args, root, srv, ports, known_hosts, plugins)
        log(f"sftp bench in {root}: pyclone vs {rclone_line}; sshd on {srv.port}, 20 ms proxy on {proxy.port}")
        turn = 0
        for net in args.nets:
            log(f"connect ({net})")
            b.phase_connect(net)
        for p in plugins:
            p.start()
        for net in args.nets:
            for mode in args.modes:
                log(f"sequential I/O {net} mode {mode}")
                b.phase_io(net, mode, turn)
                turn += 1
            log(f"small files and ls -l {net}")
            b.phase_small_ls(net, turn)
            turn += 1
        leftovers = [str(x.relative_to(srv.root_dir)) for d in b.server.values() for x in d.rglob("*")]
        if leftovers:
            meta["notes"].append(f"left on the server after the run (removed): {leftovers[:10]}")
    finally:
        for p in plugins:
            p.stop()
            if args.debug_logs:
                args.out.mkdir(parents=True, exist_ok=True)
                shutil.copy(p.log, args.out / f"{p.label}-plugin.log")
        time.sleep(1)
        stray = leftover_ssh(our_ports)
        if proxy:
            proxy.close()
        srv.close()
        shutil.rmtree(root, ignore_errors=True)
    if stray:
        meta["notes"].append(f"ssh processes left after the plugins stopped: {stray}")
    meta["minutes"] = round((time.monotonic() - t_start) / 60, 1)
    text, data = report(b, meta)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    for label, tail in b.tails.items():
        (args.out / f"{label}-log-at-errors.txt").write_text("\n".join(tail) + "\n")
    print(f"wrote {args.out}/results.md and results.json")
    return 2 if any(b.errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
