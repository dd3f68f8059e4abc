"""The side-by-side benchmark of a network backend through mounted volumes (bench/webdav.py,
bench/ftp.py): pyclone-docker vs rclone 1.75.2's `serve docker`, both mounting volumes on ONE
real server with the SAME volume options, in one run, the plugins interleaved sample by sample.

Measures (ratio > 1: ours better):
- write_MBps (off, full): dd of SIZE MiB into a fresh volume, until the file is whole on the
  server's disk (mode full: includes the default 5 s write-back, the same in both);
- read_MBps (off, full): first read of a file both see, fresh volume, page cache dropped, size checked;
- small_create_files_per_s (off): 2,000 files of 4 KiB written by one shell loop;
- ls_l_cold_s: `ls -l` of a 10,000-entry directory on a fresh volume;
- rss_peak_MiB: plugin tree, peak of 0.2 s samples during the write + read, and during the ls.
Output: --out (default bench/results-<date>-<backend>/): results.md and results.json. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from common import REPO, BenchError, Plugin, dd, drop_caches, rclone_binary
from sftp import RssSampler, code_of, fmt, log, ratio

SMALL = 2000
LS = 10_000


@dataclass
class Remote:
    """A server under the bench: the volume options that reach it (without `path`), the
    directory it serves on this machine, and the owner its files must have (chown), if any."""

    opts: dict[str, str]
    root: Path
    about: str
    owner: str = ""


def wait_whole(path: Path, size: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.stat().st_size == size:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise BenchError(f"{path} not whole on the server within {timeout:.0f} s")


class Bench:
    def __init__(self, args: argparse.Namespace, remote: Remote, plugins: list[Plugin]) -> None:
        self.args, self.remote, self.plugins = args, remote, plugins
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.serial = 0

    def add(self, label: str, key: str, value: float) -> None:
        self.samples.setdefault((label, key), []).append(value)

    def volume(self, p: Plugin, path: str, mode: str) -> tuple[str, Path]:
        self.serial += 1
        name = f"{p.label}{self.serial}"
        opts = {**self.remote.opts, "path": path}
        # the volume's directory exists on the server before either plugin mounts it (rclone 1.75.2
        # can't mount a missing one on pyftpdlib, which answers 501 where it expects 550)
        d = self.remote.root / path
        if not d.exists():
            d.mkdir(parents=True)
            if self.remote.owner:
                subprocess.run(["chown", self.remote.owner, str(d)], check=True)
        if mode != "off":
            opts["vfs-cache-mode"] = mode
        p.call("VolumeDriver.Create", {"Name": name, "Opts": opts}, fresh=True)
        return name, Path(p.mount(name, "b"))

    def fresh_path(self, d: str) -> str:
        """The file just written, under a new path (a hard link on the server's disk) that no
        plugin has read or cached: rclone keeps a removed volume's VFS cache, and a new volume
        of the same remote and path finds it there, so its "first read" of the file it wrote
        came from its own disk, not the server."""
        rd = f"{d}-read"
        dst = self.remote.root / rd
        dst.mkdir()
        if self.remote.owner:
            subprocess.run(["chown", self.remote.owner, str(dst)], check=True)
        os.link(self.remote.root / d / "big", dst / "big")
        return rd

    def drop(self, p: Plugin, name: str) -> None:
        p.unmount(name, "b")
        p.call("VolumeDriver.Remove", {"Name": name}, fresh=True, timeout=900)

    def io(self, mode: str) -> None:
        size = self.args.size_mib << 20
        for rep in range(self.args.samples):
            for p in self.plugins if rep % 2 == 0 else self.plugins[::-1]:
                d = f"io-{p.label}-{mode}-{rep}"
                with RssSampler(p) as rss:
                    name, mp = self.volume(p, d, mode)
                    log(f"  {p.label} write {mode} {self.args.size_mib} MiB")
                    t0 = time.perf_counter()
                    dd([f"of={mp}/big", "if=/dev/zero", "bs=1M", f"count={self.args.size_mib}"], size, "write")
                    wait_whole(self.remote.root / d / "big", size)
                    self.add(p.label, f"write_MBps.{mode}", size / 1e6 / (time.perf_counter() - t0))
                    self.drop(p, name)
                    rd = self.fresh_path(d)
                    drop_caches()
                    name, mp = self.volume(p, rd, mode)
                    log(f"  {p.label} read {mode}")
                    secs = dd([f"if={mp}/big", "of=/dev/null", "bs=1M"], size, "read")
                    self.add(p.label, f"read_MBps.{mode}", size / 1e6 / secs)
                    self.drop(p, name)
                self.add(p.label, f"rss_peak_MiB.{mode}", rss.peak / 1024)

    def small(self) -> None:
        for p in self.plugins:
            d = f"small-{p.label}"
            name, mp = self.volume(p, d, "off")
            log(f"  {p.label} {SMALL} small files")
            script = f'i=0; while [ $i -lt {SMALL} ]; do head -c 4096 /dev/zero > "{mp}/f$i"; i=$((i+1)); done'
            t0 = time.perf_counter()
            subprocess.run(["sh", "-c", script], check=True)
            self.add(p.label, "small_create_files_per_s.off", SMALL / (time.perf_counter() - t0))
            self.drop(p, name)
            n = len(os.listdir(self.remote.root / d))
            if n != SMALL:
                raise BenchError(f"{p.label}: {n} small files on the server, not {SMALL}")

    def ls(self) -> None:
        d = self.remote.root / "ls"
        d.mkdir(exist_ok=True)
        for i in range(LS):
            (d / f"entry-{i:05d}.txt").write_bytes(b"x" * (i % 100))
        if self.remote.owner:
            subprocess.run(["chown", "-R", self.remote.owner, str(d)], check=True)
        for rep in range(self.args.samples):
            for p in self.plugins if rep % 2 == 0 else self.plugins[::-1]:
                with RssSampler(p) as rss:
                    name, mp = self.volume(p, "ls", "off")
                    t0 = time.perf_counter()
                    out = subprocess.run(["ls", "-l", str(mp)], capture_output=True, text=True, check=True).stdout
                    self.add(p.label, "ls_l_cold_s", time.perf_counter() - t0)
                    if out.count("\n") < LS:
                        raise BenchError(f"{p.label}: ls -l listed {out.count(chr(10))} lines, not {LS}+")
                    self.drop(p, name)
                self.add(p.label, "rss_peak_MiB.ls", rss.peak / 1024)


def report(b: Bench, meta: dict) -> str:
    ours, ref = b.plugins[0].label, b.plugins[1].label
    keys = sorted({k for _, k in b.samples}, key=lambda k: (k.split(".")[0], k))
    lines = [f"# {meta['backend']} ({meta['server']}): pyclone-docker vs {meta['rclone']}", "",
             f"{meta['when']}, {meta['machine']}, {meta['minutes']:.1f} min; server {meta['server_about']}; "
             f"size {meta['size_mib']} MiB, medians of {meta['samples']}",
             f"pyclone-docker {meta['tree']['commit']} {meta['tree'].get('dirty', '')}",
             "ratio > 1: ours better (throughput ours/rclone; time and RSS rclone/ours)", "",
             "| measure | mode | pyclone | rclone | ratio |", "|---|---|---:|---:|---:|"]
    table = {}
    for k in keys:
        measure, _, mode = k.partition(".")
        a = statistics.median(b.samples.get((ours, k), [0])) or None
        r = statistics.median(b.samples.get((ref, k), [0])) or None
        table[k] = {"pyclone": a, "rclone": r}
        rr = ratio(measure, a, r) if not measure.startswith("rss") else (f"{r / a:.2f}x" if a and r else "")
        lines.append(f"| {measure} | {mode} | {fmt(a)} | {fmt(r)} | {rr} |")
    meta["results"] = table
    return "\n".join(lines) + "\n"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--steps", nargs="+", default=["io", "small", "ls"], choices=["io", "small", "ls"])
    ap.add_argument("--modes", nargs="+", default=["off", "full"], choices=["off", "full"])
    ap.add_argument("--rev", default="", help="bench this commit (git archive) instead of the working tree")
    ap.add_argument("--src", type=Path, default=REPO)
    ap.add_argument("--out", type=Path)


def run(args: argparse.Namespace, backend: str, server: Callable[[Path], AbstractContextManager[Remote]]) -> int:
    """The whole bench of `backend` on the server `server(dir)` starts; writes --out."""
    args.out = (args.out or REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-{backend}").resolve()
    rclone = rclone_binary()
    root = Path(tempfile.mkdtemp(prefix=f"pycbench-{backend}-", dir="/var/tmp"))
    meta: dict = {"when": time.strftime("%F %T UTC", time.gmtime()), "backend": backend, "server": args.server,
                  "size_mib": args.size_mib, "samples": args.samples,
                  "machine": f"{os.uname().nodename} ({os.cpu_count()} CPUs, kernel {os.uname().release})",
                  "rclone": subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.split("\n")[0],
                  "tree": {"commit": "working tree"}}
    # a SIGTERM (a bench stopped) unwinds as an exit: the plugins stop, mounts and volumes go, and
    # the work dir (1 GiB and more) is removed, as after a run
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        code = code_of(args, root / "code", meta)
        t0 = time.monotonic()
        with server(root / "server") as remote:
            meta["server_about"] = remote.about
            plugins = [Plugin("pyclone", root, code=code), Plugin("rclone", root, rclone=rclone)]
            try:
                for p in plugins:
                    p.start()
                b = Bench(args, remote, plugins)
                for step in args.steps:
                    log(step)
                    if step == "io":
                        for mode in args.modes:
                            b.io(mode)
                    else:
                        getattr(b, step)()
            finally:
                for p in plugins:
                    p.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    meta["minutes"] = (time.monotonic() - t0) / 60
    text = report(b, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(meta, indent=1, default=str))
    print(text)
    print(f"wrote {args.out}/results.md and results.json")
    return 0
