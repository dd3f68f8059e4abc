#!/usr/bin/env python3
"""Bench row: concurrent readers on a slow backend (issue 10), through the real plugin socket.

The plugin runs as bench/slow_plugin.py: `serve docker` with every backend call 50 ms
slower (the test-only FaultyBackend over a local directory). One volume in
--vfs-cache-mode full, mounted through the socket as dockerd would; every read is an
O_DIRECT read of the FUSE mount, so each one reaches the plugin (no page cache in between),
and each checks the page headers of what it read (a read that returns nothing or the
wrong bytes is an error of the bench, never a figure).

(a) 8 readers of already-cached ranges of one file (a quarter of it, read over and over),
    alone and while one more reader fetches uncached ranges of the same file: the cached
    readers' time with the fetch / without (target <= 1.2x). The fetching reader reads one
    page per 1 MiB block from the end of the file backwards, so every read of it is a new
    fetch and one is in progress for the whole loaded run (the report says if it was not).
(b) 8 sequential readers of one uncached file, each at its own position: the backend
    streams (open_read calls) that served them and their positions (target: one stream per
    reader position, not a lock convoy), and the total time.

    python3 bench/slow_readers.py [--size 1G] [--delay 0.05] [--reps 3] [--json out.json]
    python3 bench/slow_readers.py --size 256M --reps 2     # a smoke run

Needs root and /dev/fuse. Not a test: it asserts nothing but the bytes it read. rclone is not
measured here: it cannot put a latency layer under its backend.
"""

from __future__ import annotations

import argparse
import http.client
import json
import mmap
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
PAGE = 4096
HEADER = struct.Struct("<QQ")  # page index, file tag: the first 16 bytes of every 4 KiB page
READERS = 8


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=300)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class SlowPlugin:
    """bench/slow_plugin.py on its own socket, base dir and cache dir."""

    def __init__(self, root: Path, delay: float, read_delay: float) -> None:
        self.root = root
        self.sock = str(root / "plugin.sock")
        self.control = str(root / "faulty.sock")
        self.base, self.cache = root / "base", root / "cache"
        self.log = root / "plugin.log"
        self.delay, self.read_delay = delay, read_delay
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYCLONE_SLOW_DELAY=str(self.delay),
                   PYCLONE_SLOW_READ_DELAY=str(self.read_delay), PYCLONE_SLOW_CONTROL=self.control)
        cmd = [sys.executable, str(REPO / "bench" / "slow_plugin.py"), "serve", "docker", "-v",
               "--socket-addr", self.sock, "--base-dir", str(self.base), "--cache-dir", str(self.cache),
               "--log-file", str(self.log)]
        with open(self.root / "plugin.err", "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=err)
        t0 = time.monotonic()
        while True:
            try:
                self.call("Plugin.Activate", None)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - t0 > 30:
                    tail = (self.root / "plugin.err").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the slow plugin did not start:\n{tail}") from None
                time.sleep(0.01)

    def call(self, method: str, body: dict | None) -> dict:
        conn = UnixHTTP(self.sock)
        try:
            conn.request("POST", "/" + method, b"" if body is None else json.dumps(body).encode() + b"\n")
            out = json.loads(conn.getresponse().read() or b"{}")
        finally:
            conn.close()
        if out.get("Err"):
            raise RuntimeError(f"{method}: {out['Err']}")
        return out

    def faulty(self, op: str, **kw: object) -> dict:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        try:
            s.connect(self.control)
            s.sendall(json.dumps({"op": op, **kw}).encode() + b"\n")
            reply = json.loads(s.makefile("rb").readline())
        finally:
            s.close()
        if reply.get("error"):
            raise RuntimeError(f"faulty control {op}: {reply['error']}")
        return reply

    def backend_stats(self) -> dict:
        backends = self.faulty("stats")["backends"]
        if len(backends) != 1:
            raise RuntimeError(f"expected one wrapped backend, the slow plugin has {len(backends)}: "
                               "did pyclone_docker.fs.new_fs stop being what builds a volume's backend?")
        return backends[0]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for mp in mounts:
            if mp.startswith(str(self.base) + "/"):
                subprocess.run(["umount", "-l", mp], check=False)


def make_file(path: Path, size: int, tag: int) -> None:
    """Every 4 KiB page starts with its index and the file's tag; the rest is a fixed filler."""
    block = bytearray(MiB)
    block[:] = bytes(range(256)) * (MiB // 256)
    with open(path, "wb") as f:
        for b in range(0, size, MiB):
            n = min(MiB, size - b)
            for p in range(0, n, PAGE):
                HEADER.pack_into(block, p, (b + p) // PAGE, tag)
            f.write(memoryview(block)[:n])


class Reader:
    """O_DIRECT reads of the mounted file, each checked page by page."""

    def __init__(self, path: str, tag: int, size: int, bs: int) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        self.tag, self.size, self.bs = tag, size, bs
        self.buf = mmap.mmap(-1, bs)  # page aligned, as O_DIRECT wants
        self.latencies: list[float] = []
        self.bytes = 0

    def read_at(self, offset: int, length: int) -> None:
        want = min(length, self.size - offset)
        view = memoryview(self.buf)[:length]
        t0 = time.monotonic()
        n = os.preadv(self.fd, [view], offset)
        self.latencies.append(time.monotonic() - t0)
        if n != want:
            raise RuntimeError(f"read at {offset}: {n} bytes, expected {want}")
        for p in range(0, n, PAGE):
            index, tag = HEADER.unpack_from(self.buf, p)
            if (index, tag) != ((offset + p) // PAGE, self.tag):
                raise RuntimeError(f"read at {offset}: page {p // PAGE} holds page {index} of file {tag}")
        self.bytes += n

    def read_span(self, start: int, stop: int) -> None:
        for off in range(start, stop, self.bs):
            self.read_at(off, min(self.bs, stop - off))

    def close(self) -> None:
        os.close(self.fd)
        self.buf.close()


def run_threads(targets: list) -> float:
    barrier = threading.Barrier(len(targets) + 1)
    errors: list[BaseException] = []

    def wrap(fn) -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def cached_readers(mp: str, size: int, segments: list[tuple[int, int]], bs: int, passes: int) -> dict:
    """The 8 readers of cached ranges, all at once, each `passes` times over its own range:
    each one's wall time and read latencies."""
    readers = [Reader(f"{mp}/a.bin", 1, size, bs) for _ in segments]
    times = [0.0] * len(readers)

    def work(i: int) -> None:
        t0 = time.monotonic()
        for _ in range(passes):
            readers[i].read_span(*segments[i])
        times[i] = time.monotonic() - t0

    try:
        run_threads([lambda i=i: work(i) for i in range(len(readers))])
    finally:
        for r in readers:
            r.close()
    lat = [x for r in readers for x in r.latencies]
    return {"reader_s": times, "median_s": statistics.median(times), "max_s": max(times),
            "read_p50_ms": pct(lat, 0.5) * 1000, "read_p99_ms": pct(lat, 0.99) * 1000,
            "read_max_ms": max(lat) * 1000, "bytes": sum(r.bytes for r in readers)}


class Fetcher(threading.Thread):
    """One reader of uncached ranges: a small read in each 1 MiB block from the end of the file
    backwards, so each read is a new fetch (none is sequential to the last, and a fetch that
    reads ahead runs into the block fetched before)."""

    def __init__(self, mp: str, size: int, order: list[int]) -> None:
        super().__init__(daemon=True)
        self.order = order  # the blocks not fetched yet, shared by the runs: the next one first
        self.reader = Reader(f"{mp}/a.bin", 1, size, PAGE)
        self.stop_ev = threading.Event()
        self.done = 0
        self.exhausted = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.order and not self.stop_ev.is_set():
                self.reader.read_at(self.order.pop(0) * MiB, PAGE)
                self.done += 1
            self.exhausted = not self.order
        except BaseException as e:
            self.error = e

    def finish(self) -> dict:
        self.stop_ev.set()
        self.join(120)
        self.reader.close()
        if self.error:
            raise self.error
        lat = self.reader.latencies
        return {"reads": self.done, "ran_out_of_blocks": self.exhausted,
                "fetch_p50_ms": pct(lat, 0.5) * 1000, "fetch_max_ms": max(lat) * 1000 if lat else float("nan")}


def quiesce(p: SlowPlugin, idle: float = 1.0, timeout: float = 600) -> list:
    """The backend's streams once none is open and no call started for `idle` seconds."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        stats = p.backend_stats()
        now = (sum(stats["calls"].values()), all(s[5] is not None for s in stats["streams"]))
        if now == last and now[1]:
            return stats["streams"]
        last = now
        time.sleep(idle)
    raise RuntimeError("the backend never went idle")


def bench_a(p: SlowPlugin, mp: str, size: int, bs: int, reps: int, per_reader: int) -> dict:
    # a quarter of the file is cached, for the 8 readers; the fetching reader has the rest
    seg = min(size // 4 // READERS, 32 * MiB) // MiB * MiB
    if seg < MiB:
        raise SystemExit("--size too small: each of the 8 cached readers needs at least 1 MiB")
    passes = max(1, -(-per_reader // seg))  # each reader reads `per_reader` bytes in all
    segments = [(i * seg, (i + 1) * seg) for i in range(READERS)]
    p.faulty("reset")
    t0 = time.monotonic()
    warm = Reader(f"{mp}/a.bin", 1, size, MiB)
    warm.read_span(0, READERS * seg)  # into the cache: the ranges the 8 readers will read
    warm.close()
    warm_s = time.monotonic() - t0
    # the cache fetched at least that much (its windows, or a download going on after the
    # reads, may reach further): wait until the backend is idle, then fetch past it all
    streams = quiesce(p)
    cached_to = max(off + got for _, off, _, got, _, _ in streams)
    fetch_from = max(READERS * seg, -(-cached_to // MiB) * MiB)
    if size - fetch_from < 8 * MiB:
        raise SystemExit("--size too small: no uncached range is left for the fetching reader")
    base_runs, load_runs, fetchers = [], [], []
    blocks = list(range(size // MiB - 1, fetch_from // MiB - 1, -1))
    for _ in range(reps):
        p.faulty("reset")
        base_runs.append(cached_readers(mp, size, segments, bs, passes))
        opened = p.backend_stats()["calls"].get("open_read", 0)
        if opened:
            raise RuntimeError(f"the 'cached' ranges were fetched again ({opened} open_read calls)")
        fetcher = Fetcher(mp, size, blocks)
        fetcher.start()
        t_wait = time.monotonic()
        while not p.backend_stats()["calls"].get("open_read"):  # the fetch is under way
            if time.monotonic() - t_wait > 30 or not fetcher.is_alive():
                raise RuntimeError(f"the fetching reader never reached the backend ({fetcher.done} reads, "
                                   f"error {fetcher.error!r})")
            time.sleep(0.005)
        load_runs.append(cached_readers(mp, size, segments, bs, passes))
        alive = fetcher.is_alive()  # still fetching when the last cached reader finished
        fetchers.append(fetcher.finish())
        fetchers[-1]["ran_throughout"] = alive
        fetchers[-1]["open_read_calls"] = p.backend_stats()["calls"].get("open_read", 0)
    base_med = statistics.median(r["median_s"] for r in base_runs)
    load_med = statistics.median(r["median_s"] for r in load_runs)
    base_max = statistics.median(r["max_s"] for r in base_runs)
    load_max = statistics.median(r["max_s"] for r in load_runs)
    return {
        "cached_readers": READERS, "range_per_reader": seg, "passes": passes, "bytes_per_reader": seg * passes,
        "read_size": bs, "warm_s": warm_s,
        "uncached_from": fetch_from,
        "alone": base_runs, "with_fetch": load_runs, "fetcher": fetchers,
        "median_reader_s_alone": base_med, "median_reader_s_with_fetch": load_med,
        "ratio_median": load_med / base_med, "ratio_slowest": load_max / base_max,
        "fetch_ran_throughout": all(f["ran_throughout"] for f in fetchers),
    }


def bench_b(p: SlowPlugin, mp: str, size: int, bs: int) -> dict:
    part = size // READERS // PAGE * PAGE
    span = min(part, 64 * MiB)
    starts = [i * part for i in range(READERS)]
    readers = [Reader(f"{mp}/b.bin", 2, size, bs) for _ in starts]
    p.faulty("reset")
    try:
        total = run_threads([lambda r=r, s=s: r.read_span(s, s + span) for r, s in zip(readers, starts, strict=True)])
    finally:
        for r in readers:
            r.close()
    stats = p.backend_stats()
    streams = [s for s in stats["streams"] if s[0] == "b.bin"]
    per_reader = [0] * READERS
    for _, offset, _, _, _, _ in streams:
        per_reader[min(READERS - 1, offset // part)] += 1
    lat = [x for r in readers for x in r.latencies]
    return {
        "streams_open_at_once_max": max_overlap([(s[4], s[5]) for s in streams]),
        "readers": READERS, "bytes_per_reader": span, "read_size": bs, "total_s": total,
        "MBps": READERS * span / total / 1e6,
        "open_read_calls": stats["calls"].get("open_read", 0),
        "streams_per_reader_position": per_reader,
        "stream_offsets_MiB": sorted(round(s[1] / MiB, 3) for s in streams),
        "bytes_fetched": sum(s[3] for s in streams), "bytes_read": sum(r.bytes for r in readers),
        "read_p50_ms": pct(lat, 0.5) * 1000, "read_max_ms": max(lat) * 1000,
    }


def max_overlap(spans: list[tuple[float, float | None]]) -> int:
    """The most streams open at one time (opened at open_read's call, closed at close)."""
    edges = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans if t1 is not None],
                   key=lambda e: (e[0], e[1]))
    now = top = 0
    for _, step in edges:
        now += step
        top = max(top, now)
    return top


def rclone_version() -> str:
    exe = shutil.which("rclone")
    if not exe:
        return "not installed"
    out = subprocess.run([exe, "version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


def report(res: dict) -> None:
    a, b = res["a"], res["b"]
    print(f"slow backend: FaultyBackend(local, delay={res['delay']} s per call, read_delay={res['read_delay']} s), "
          f"--vfs-cache-mode full, file {res['size'] / MiB:.0f} MiB, via the plugin socket and a FUSE mount")
    print(f"rclone ({res['rclone_version']}): not measured: {res['rclone']}")
    print(f"(a) {a['cached_readers']} readers of cached ranges ({a['range_per_reader'] / MiB:.0f} MiB each, "
          f"read {a['passes']} times: {a['bytes_per_reader'] / MiB:.0f} MiB per reader, "
          f"{a['read_size'] // 1024} KiB O_DIRECT reads), {len(a['alone'])} reps:")
    for name, runs in (("alone", a["alone"]), ("with a fetch running", a["with_fetch"])):
        med = statistics.median(r["median_s"] for r in runs)
        p99 = statistics.median(r["read_p99_ms"] for r in runs)
        mx = max(r["read_max_ms"] for r in runs)
        print(f"    {name:<22} median reader {med * 1000:8.1f} ms   read p99 {p99:7.1f} ms   max {mx:7.1f} ms")
    print(f"    ratio (median reader) {a['ratio_median']:.2f}x, slowest reader {a['ratio_slowest']:.2f}x "
          f"(target <= 1.2x); fetches during the loaded runs {[f['open_read_calls'] for f in a['fetcher']]}, "
          f"each {statistics.median(f['fetch_p50_ms'] for f in a['fetcher']):.0f} ms (median)"
          + ("" if a["fetch_ran_throughout"] else "; WARNING: the fetch did not run throughout every loaded run"))
    print(f"(b) {b['readers']} sequential readers of one uncached file, {b['bytes_per_reader'] / MiB:.0f} MiB each "
          f"from its own position: {b['total_s']:.2f} s ({b['MBps']:.0f} MB/s)")
    print(f"    backend streams: {b['open_read_calls']} (target {b['readers']}: one per reader position); "
          f"per position {b['streams_per_reader_position']}; at most {b['streams_open_at_once_max']} open at "
          f"once; fetched {b['bytes_fetched'] / MiB:.0f} MiB for {b['bytes_read'] / MiB:.0f} MiB read")
    offs = b["stream_offsets_MiB"]
    print(f"    stream offsets (MiB): {offs[:24]}{' ...' if len(offs) > 24 else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="size of each test file (default 1G; e.g. 128M for a smoke run)")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds added to every backend call")
    ap.add_argument("--read-delay", type=float, default=0.0, help="seconds added to every stream read")
    ap.add_argument("--bs", default="1M", help="read size of the readers (default 1M)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cached-per-reader", default="32M", help="bytes each cached reader reads per run (its "
                    "range, again and again)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("needs root and /dev/fuse", file=sys.stderr)
        return 1
    size, bs = parse_size(args.size), parse_size(args.bs)
    if size % MiB or size < 16 * MiB or bs % PAGE:
        print("--size must be a whole number of MiB, at least 16M; --bs a multiple of 4K", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="pycslow-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    p = SlowPlugin(root, args.delay, args.read_delay)
    try:
        data = root / "data"
        for d in (data, p.base, p.cache):
            d.mkdir()
        make_file(data / "a.bin", size, 1)
        make_file(data / "b.bin", size, 2)
        p.start()
        p.call("VolumeDriver.Create", {"Name": "slow", "Opts": {"type": "local", "path": str(data),
                                                                "vfs-cache-mode": "full"}})
        mp = p.call("VolumeDriver.Mount", {"Name": "slow", "ID": "bench"})["Mountpoint"]
        res = {"size": size, "delay": args.delay, "read_delay": args.read_delay,
               "rclone_version": rclone_version(),
               "rclone": "rclone cannot put a latency layer under its backend, so it has no such row",
               "mount": "through the plugin socket (bench/slow_plugin.py), FUSE, O_DIRECT reads"}
        res["a"] = bench_a(p, mp, size, bs, args.reps, parse_size(args.cached_per_reader))
        res["b"] = bench_b(p, mp, size, bs)
        p.call("VolumeDriver.Unmount", {"Name": "slow", "ID": "bench"})
        p.call("VolumeDriver.Remove", {"Name": "slow"})
    finally:
        p.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(res)
    small = {"size_MiB": size // MiB, "delay_s": args.delay, "rclone_version": res["rclone_version"],
             "a_ratio_median": round(res["a"]["ratio_median"], 3),
             "a_ratio_slowest": round(res["a"]["ratio_slowest"], 3),
             "a_median_reader_ms_alone": round(res["a"]["median_reader_s_alone"] * 1000, 1),
             "a_median_reader_ms_with_fetch": round(res["a"]["median_reader_s_with_fetch"] * 1000, 1),
             "a_fetch_ran_throughout": res["a"]["fetch_ran_throughout"],
             "b_total_s": round(res["b"]["total_s"], 3), "b_open_read_calls": res["b"]["open_read_calls"],
             "b_streams_per_reader_position": res["b"]["streams_per_reader_position"],
             "b_streams_open_at_once_max": res["b"]["streams_open_at_once_max"]}
    print(json.dumps(small))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
