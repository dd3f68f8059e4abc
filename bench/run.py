#!/usr/bin/env python3
"""Side-by-side benchmark: pyclone-docker vs `rclone serve docker`, same machine, same run.

Each plugin runs on its own unix socket with a local backend on the same disk. Figures
are reported as ratios (ours / rclone's, or rclone's / ours for times) because this is
a shared, noisy machine: only numbers measured in one run compare.

    python3 bench/run.py [--size-mib 1024] [--reps 3] [--json out.json]

Needs root, /dev/fuse and Debian's rclone. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=120)
        self.path_ = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path_)


class Plugin:
    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root / kind
        self.sock = str(self.root / f"{kind}.sock")
        self.base = self.root / "base"
        self.cache = self.root / "cache"
        self.data = self.root / "data"
        for d in (self.root, self.base, self.cache, self.data):
            d.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.conn: UnixHTTP | None = None

    def command(self) -> list[str]:
        common = ["--socket-addr", self.sock, "--base-dir", str(self.base), "--cache-dir", str(self.cache)]
        if self.kind == "rclone":
            return ["rclone", "serve", "docker", *common]
        pyz = os.environ.get("PYCLONE_PYZ")
        head = [sys.executable, pyz] if pyz else [sys.executable, "-m", "pyclone_docker"]
        return [*head, "serve", "docker", *common]

    def start(self) -> float:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(REPO)))
        while True:
            try:
                self.call("Plugin.Activate", None, fresh=True)
                return time.perf_counter() - t0
            except OSError:
                if time.perf_counter() - t0 > 20:
                    raise RuntimeError(f"{self.kind} did not start") from None
                time.sleep(0.001)

    def call(self, method: str, body: dict | None, fresh: bool = False) -> dict:
        if fresh or self.conn is None:
            self.conn = UnixHTTP(self.sock)
        data = b"" if body is None else json.dumps(body).encode() + b"\n"
        self.conn.request("POST", "/" + method, data)
        resp = self.conn.getresponse()
        out = json.loads(resp.read() or b"{}")
        if out.get("Err"):
            raise RuntimeError(f"{self.kind} {method}: {out['Err']}")
        return out

    def rss_kib(self) -> int:
        assert self.proc is not None
        pids = [self.proc.pid]
        try:
            kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            pids += [int(p) for p in kids.split()]
        except FileNotFoundError:
            pass
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                if mp.startswith(str(self.base) + "/"):
                    subprocess.run(["umount", "-l", mp], check=False)


class RssSampler:
    """Peak RSS of a plugin, sampled every 50 ms in a thread."""

    def __init__(self, p: Plugin) -> None:
        import threading

        self.p, self.peak, self.running = p, 0, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.p.rss_kib())
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


def page_cache_reread(root: Path, size_mib: int) -> float:
    """The ceiling: re-reading a file of the backing disk with no FUSE at all (docker's local driver)."""
    f = root / "ceiling.bin"
    dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={size_mib}"])
    dd([f"if={f}", "of=/dev/null", "bs=1M"])
    rate = size_mib / dd([f"if={f}", "of=/dev/null", "bs=1M"]) * 1.048576
    f.unlink()
    return rate


def dd(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["dd", *args, "status=none"], check=True)
    return time.perf_counter() - t0


def drop_caches() -> None:
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def mount_cycles_interleaved(root: Path, cycles: int = 40) -> dict[str, float]:
    """Mount + unmount through each plugin's socket, one cycle of each in turn, so a slow
    minute of this machine costs both alike: the median per plugin, in ms."""
    plugins = [Plugin(kind, root) for kind in ("pyclone", "rclone")]
    times: dict[str, list[float]] = {p.kind: [] for p in plugins}
    try:
        for p in plugins:
            p.start()
            (p.data / "mu").mkdir(exist_ok=True)
            p.call("VolumeDriver.Create", {"Name": "mu", "Opts": {"type": "local", "path": str(p.data / "mu")}})
        for i in range(cycles):
            for p in plugins:
                time.sleep(0.02)
                t0 = time.perf_counter()
                try:
                    p.call("VolumeDriver.Mount", {"Name": "mu", "ID": f"i{i}"})
                    p.call("VolumeDriver.Unmount", {"Name": "mu", "ID": f"i{i}"})
                except TimeoutError:  # rclone 1.60's mount monitor deadlock (rclone_docker.md §4.5)
                    print(f"  {p.kind}: interleaved mount/unmount cycle {i} hung; restarting it", flush=True)
                    p.stop()
                    p.start()
                    if not p.call("VolumeDriver.List", {}).get("Volumes"):
                        p.call("VolumeDriver.Create", {"Name": "mu", "Opts": {"type": "local",
                                                                              "path": str(p.data / "mu")}})
                    continue
                times[p.kind].append(time.perf_counter() - t0)
        for p in plugins:
            p.call("VolumeDriver.Remove", {"Name": "mu"})
    finally:
        for p in plugins:
            p.stop()
    return {k: statistics.median(v) * 1000 if v else float("nan") for k, v in times.items()}


def bench_plugin(p: Plugin, size_mib: int, reps: int, mode: str = "off") -> dict[str, float]:
    r: dict[str, float] = {}
    extra = {"vfs-cache-mode": mode} if mode != "off" else {}
    starts = []
    for _ in range(reps):
        starts.append(p.start())
        p.stop()
    r["start_ms"] = statistics.median(starts) * 1000
    p.start()
    p.call("VolumeDriver.Create", {"Name": "rt", "Opts": {"type": "local", "path": str(p.data / "rt")}})
    (p.data / "rt").mkdir(exist_ok=True)
    times = []
    hangs = 0
    for i in range(20):
        time.sleep(0.02)  # a pause between cycles, outside the timing, as between two docker runs
        t0 = time.perf_counter()
        try:
            p.call("VolumeDriver.Mount", {"Name": "rt", "ID": f"id{i}"})
            p.call("VolumeDriver.Unmount", {"Name": "rt", "ID": f"id{i}"})
        except TimeoutError:
            # rclone 1.60's mount monitor can deadlock the whole API (rclone_docker.md §4.5)
            hangs += 1
            print(f"  {p.kind}: mount/unmount cycle {i} hung; restarting it", flush=True)
            p.stop()
            p.start()
            # rclone 1.60 drops type= volumes at restore (#6769): create it again
            if not p.call("VolumeDriver.List", {}).get("Volumes"):
                p.call("VolumeDriver.Create", {"Name": "rt", "Opts": {"type": "local", "path": str(p.data / "rt")}})
            continue
        times.append(time.perf_counter() - t0)
    r["mount_unmount_ms"] = statistics.median(times) * 1000 if times else float("nan")
    r["api_hangs_in_20_cycles"] = hangs

    # big sequential I/O through one mount
    (p.data / "big").mkdir(exist_ok=True)
    p.call("VolumeDriver.Create", {"Name": "big", "Opts": {"type": "local", "path": str(p.data / "big"), **extra}})
    wr, wr_nosync, rd, reread, steady = [], [], [], [], []
    peak = RssSampler(p)
    for i in range(reps):
        mp = p.call("VolumeDriver.Mount", {"Name": "big", "ID": f"w{i}"})["Mountpoint"]
        f = f"{mp}/file.bin"
        # without fsync first: the plugin's own cost, not how fast this disk flushes a cache file
        wr_nosync.append(size_mib / dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={size_mib}"]))
        os.unlink(f)
        p.call("VolumeDriver.Unmount", {"Name": "big", "ID": f"w{i}"})
        drop_caches()
        mp = p.call("VolumeDriver.Mount", {"Name": "big", "ID": f"w{i}s"})["Mountpoint"]
        wr.append(size_mib / dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={size_mib}", "conv=fsync"]))
        p.call("VolumeDriver.Unmount", {"Name": "big", "ID": f"w{i}s"})
        drop_caches()
        mp = p.call("VolumeDriver.Mount", {"Name": "big", "ID": f"r{i}"})["Mountpoint"]
        rd.append(size_mib / dd([f"if={mp}/file.bin", "of=/dev/null", "bs=1M"]))
        reread.append(size_mib / dd([f"if={mp}/file.bin", "of=/dev/null", "bs=1M"]))
        # later re-reads: every page is in the kernel's cache by now
        steady.append(max(size_mib / dd([f"if={mp}/file.bin", "of=/dev/null", "bs=1M"]) for _ in range(2)))
        os.unlink(f"{mp}/file.bin")
        p.call("VolumeDriver.Unmount", {"Name": "big", "ID": f"r{i}"})
    r["write_MBps"] = statistics.median(wr) * 1.048576
    r["write_nofsync_MBps"] = statistics.median(wr_nosync) * 1.048576
    r["read_MBps"] = statistics.median(rd) * 1.048576
    r["reread_MBps"] = statistics.median(reread) * 1.048576
    r["reread_steady_MBps"] = statistics.median(steady) * 1.048576
    r["rss_peak_during_io_MiB"] = peak.stop() / 1024

    # small files and a big listing; first the disk flushes what the big files left dirty (the
    # uploads of the cache modes), so that both plugins start this phase from the same state
    # and settles (a VM's disk goes on working after sync returns); then `reps` rounds, each in a
    # fresh directory, and the median
    drop_caches()
    time.sleep(3)
    (p.data / "small").mkdir(exist_ok=True)
    p.call("VolumeDriver.Create", {"Name": "small", "Opts": {"type": "local", "path": str(p.data / "small"),
                                                             **extra}})
    mp = p.call("VolumeDriver.Mount", {"Name": "small", "ID": "s"})["Mountpoint"]
    # the same loop on the backing disk itself, just before: what this disk allows this minute
    (p.root / "native-small").mkdir(exist_ok=True)
    r["native_create_files_per_s"] = create_small_files(str(p.root / "native-small"), reps)
    r["create_files_per_s"] = create_small_files(mp, reps)
    os.mkdir(f"{mp}/many")
    for i in range(10000):
        open(p.data / "small" / "many" / f"e{i:05d}", "wb").close()
    p.call("VolumeDriver.Unmount", {"Name": "small", "ID": "s"})
    mp = p.call("VolumeDriver.Mount", {"Name": "small", "ID": "s2"})["Mountpoint"]
    t0 = time.perf_counter()
    subprocess.run(["ls", "-l", f"{mp}/many"], check=True, stdout=subprocess.DEVNULL)
    r["ls_l_10k_s"] = time.perf_counter() - t0
    p.call("VolumeDriver.Unmount", {"Name": "small", "ID": "s2"})

    # memory: 10 volumes mounted, idle, then after 1.5 GB of I/O through them
    try:
        rss10(p, r)
    except TimeoutError:  # rclone 1.60's mount monitor deadlock (rclone_docker.md §4.5)
        r["api_hangs_in_20_cycles"] += 1
        r["rss10_idle_MiB"] = r["rss10_after_io_MiB"] = float("nan")
        print(f"  {p.kind}: the API hung while mounting 10 volumes; no RSS figures", flush=True)
    p.stop()
    return r


def create_small_files(directory: str, reps: int) -> float:
    """Files of 4 KiB created per second: the median of `reps` rounds of 2,000 in fresh directories."""
    block = b"x" * 4096
    rates = []
    for rnd in range(reps):
        os.mkdir(f"{directory}/round{rnd}")
        t0 = time.perf_counter()
        for i in range(2000):
            with open(f"{directory}/round{rnd}/f{i:05d}", "wb") as fh:
                fh.write(block)
        rates.append(2000 / (time.perf_counter() - t0))
    return statistics.median(rates)


def rss10(p: Plugin, r: dict[str, float]) -> None:
    for i in range(10):
        (p.data / f"m{i}").mkdir(exist_ok=True)
        p.call("VolumeDriver.Create", {"Name": f"m{i}", "Opts": {"type": "local", "path": str(p.data / f"m{i}")}})
        p.call("VolumeDriver.Mount", {"Name": f"m{i}", "ID": "mem"})
    time.sleep(1)
    r["rss10_idle_MiB"] = p.rss_kib() / 1024
    for i in range(10):
        mp = str(p.base / f"m{i}")
        dd(["if=/dev/zero", f"of={mp}/f", "bs=1M", "count=75"])
        dd([f"if={mp}/f", "of=/dev/null", "bs=1M"])
    time.sleep(1)
    r["rss10_after_io_MiB"] = p.rss_kib() / 1024
    for i in range(10):
        p.call("VolumeDriver.Unmount", {"Name": f"m{i}", "ID": "mem"})


HIGHER_IS_BETTER = {"write_MBps", "write_nofsync_MBps", "read_MBps", "reread_MBps", "reread_steady_MBps",
                    "create_files_per_s"}
NO_RATIO = {"api_hangs_in_20_cycles", "native_create_files_per_s"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument("--only", choices=["pyclone", "rclone"], default=None)
    ap.add_argument("--vfs-cache-mode", default="off", choices=["off", "minimal", "writes", "full"])
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("rclone"):
        print("needs root and rclone (apt-get install rclone)", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="pycbench-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    results: dict[str, dict[str, float]] = {}
    ceiling = page_cache_reread(root, args.size_mib)
    try:
        interleaved = {} if args.only else mount_cycles_interleaved(root)
        for kind in ([args.only] if args.only else ["pyclone", "rclone"]):
            p = Plugin(kind, root)
            try:
                results[kind] = bench_plugin(p, args.size_mib, args.reps, args.vfs_cache_mode)
                if interleaved:
                    results[kind]["mount_unmount_interleaved_ms"] = interleaved[kind]
                print(kind, json.dumps(results[kind]), flush=True)
            finally:
                p.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"vfs-cache-mode {args.vfs_cache_mode}; backing dir {root}; page-cache re-read without FUSE "
          f"(docker's local driver): {ceiling:.0f} MB/s")
    keys = list(next(iter(results.values())))
    print(f"{'measure':<22} {'pyclone':>10} {'rclone':>10} {'ratio':>8}")
    for k in keys:
        ours = results.get("pyclone", {}).get(k, float("nan"))
        theirs = results.get("rclone", {}).get(k, float("nan"))
        if k in NO_RATIO:
            print(f"{k:<22} {ours:>10.0f} {theirs:>10.0f}")
            continue
        ratio = ours / theirs if k in HIGHER_IS_BETTER else theirs / ours
        print(f"{k:<22} {ours:>10.1f} {theirs:>10.1f} {ratio:>7.2f}x")
    print("ratio > 1 means pyclone-docker is better (faster, or smaller)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
