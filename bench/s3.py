#!/usr/bin/env python3
"""s3 benchmark (issue 12): pyclone-docker vs rclone 1.75.2's `serve docker`, both on the SAME moto S3
server (tests/support/moto.py MotoServer, a child process of the bench), the SAME volume options
(type=s3, s3-provider=Other, s3-endpoint, the keys, path=<bucket>/<prefix>, the vfs-cache-mode under
test), in ONE run.

Measures (each plugin in turn, the order rotating; every step on a volume created for it, so no VFS,
listing or cache of an earlier step serves it):
- start: a freshly started plugin (exec to Plugin.Activate), then VolumeDriver.Create + Mount of an
  s3 volume, then the first listing of the mountpoint; median of --connect-samples;
- write: dd if=/dev/zero bs=1M of a --size-mib file (1024: a multipart upload, over the 200 MiB
  cutoff), timed until the object is whole on the server (a HEAD: its size is the file's; mode full:
  after the vfs-write-back upload, which the bench sees start in moto's request log), then the
  Unmount (timed apart);
- read: the first read of an object the plugin never saw (a server-side copy, made just before, of
  an object uploaded with boto3 that carries rclone's X-Amz-Meta-Mtime), through a fresh volume;
  dd's byte count must equal the size, a short read is an ERROR, not a figure;
- rss: peak RSS of the plugin and its descendants, sampled every 0.2 s during each mode's write+read;
- small: --small-files 4 KiB files created in one new directory (modes --small-modes), timed until
  all are listed on the server with their size;
- ls: `ls -l` of a directory of --ls-files objects made with boto3 (each with X-Amz-Meta-Mtime, so a
  plugin needs a HEAD per object for its modtime unless it is smarter), cold (a fresh volume), line
  count checked; median of --ls-samples.

Around every step the bench notes moto's CPU use (its process: utime+stime over the step's wall
time; moto serves from one Python process, so near 100 % it, not the client, set the figure), the
plugin's CPU, and the S3 requests the step made, counted from moto's request log (the bench's own
checks subtracted).

    python3 bench/s3.py --rev HEAD   # the full run, committed code only
    python3 bench/s3.py --quick      # smoke: 64 MiB, 200 files, 500 entries, 1-2 samples

Without --rev ours runs from a snapshot of --src's working tree, as bench/sftp.py. --debug-logs runs
both plugins with -vv and keeps their logs in --out. --profile samples every thread's stack of ours
every 10 ms (a wall-clock sampler in the plugin process: py-spy is not installed) and writes one
folded-stack file per step to --out. --steps picks phases (start io small ls).

--rtt-ms N: the volumes of the --rtt-steps (default start small ls) point both plugins at a delaying
TCP proxy in front of moto (bench/sftp.py's Proxy: tests/support/tcpproxy.py DelayProxy in its own
process, N/2 ms each way), as a real S3 endpoint 10-50 ms away; the bench's own boto3 set-up and
checks go to moto directly. Default 0: loopback for every step. The header says which.

    python3 bench/s3.py --rev HEAD --rtt-ms 20 --steps start small ls

Ratios: > 1 means ours is better: ours/rclone for throughput, rclone/ours for time and RSS.
Output: --out (default bench/results-<date>-s3/): results.json and results.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import moto
import sftp
from common import REPO, BenchError, Plugin, dd, drop_caches, git_describe, rclone_binary
from sftp import Proxy, RssSampler, code_of, fmt, log, ratio, tree_pids

from tests.support.moto import MotoServer

MIB = 1 << 20
MODES = ("off", "full")
STEPS = ("start", "io", "small", "ls")
BUCKET = "pycbench"
PREFIX = "data"
MTIME = "1700000000.123456789"  # rclone's X-Amz-Meta-Mtime format
TICK = os.sysconf("SC_CLK_TCK")
LOG_LINE = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d+)')

# The plugin process of ours under --profile: a wall-clock stack sampler thread, then the plugin.
# argv: code_dir out_prefix interval plugin-args...; writing a name to <out_prefix>.ctl dumps the
# stacks sampled since the last dump to <out_prefix>-<name>.folded ("reset": drops them).
PROFILE_BOOT = r"""
import collections, os, runpy, sys, threading, time
prefix, interval = sys.argv[2], float(sys.argv[3])
sys.argv = ["pyclone_docker", *sys.argv[4:]]
counts = collections.Counter()
def where(f):
    return f"{f.f_code.co_qualname} ({os.path.basename(f.f_code.co_filename)}:{f.f_lineno})"
def run():
    me = threading.get_ident()
    ctl = prefix + ".ctl"
    while True:
        time.sleep(interval)
        for tid, frame in sys._current_frames().items():
            if tid == me:
                continue
            stack = []
            f = frame
            while f is not None and len(stack) < 60:
                stack.append(f"{f.f_code.co_qualname} ({os.path.basename(f.f_code.co_filename)})")
                f = f.f_back
            stack.reverse()
            stack[-1] = where(frame)
            counts[";".join(stack)] += 1
        try:
            name = open(ctl).read().strip()
        except OSError:
            continue
        os.unlink(ctl)
        if name != "reset":
            with open(f"{prefix}-{name}.folded", "w") as out:
                for k, v in counts.most_common():
                    out.write(f"{k} {v}\n")
        counts.clear()
threading.Thread(target=run, daemon=True, name="bench-profiler").start()
runpy.run_module("pyclone_docker", run_name="__main__", alter_sys=True)
"""


# ------------------------------------------------------------------------------------------ processes

def tree_cpu_s(root: int) -> float:
    """utime+stime (seconds) of root and its live descendants, with the children it has reaped."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def classify(method: str, path: str) -> str:
    """An S3 request of moto's log as an operation name."""
    target, _, query = path.partition("?")
    has_key = target.strip("/").count("/") >= 1
    if method == "GET":
        return "GetObject" if has_key and "list-type" not in query else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT":
        return "UploadPart" if "partNumber" in query else "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        return "CreateMultipart" if "uploads" in query and "uploadId" not in query else \
            "CompleteMultipart" if "uploadId" in query else "DeleteObjects" if "delete" in query else "POST"
    return "AbortMultipart" if "uploadId" in query else "DeleteObject"


class Moto:
    """The bench's side of the S3 server: boto3 for set-up and checks, moto's log for request counts."""

    def __init__(self, srv: MotoServer) -> None:
        self.srv = srv
        self.c = srv.boto3_client(read_timeout=600, connect_timeout=30)
        self.own: Counter[str] = Counter()  # the bench's own requests, subtracted from the counts
        self.srv.make_bucket(BUCKET)

    @property
    def pid(self) -> int:
        assert self.srv.proc is not None
        return self.srv.proc.pid

    def log_size(self) -> int:
        return os.path.getsize(self.srv.log_file)

    def log_since(self, offset: int) -> list[tuple[str, str, int]]:
        return self.read_log(offset)[0]

    def read_log(self, offset: int) -> tuple[list[tuple[str, str, int]], int]:
        """(method, path, status) of the whole lines after offset, and the offset after them."""
        with open(self.srv.log_file, "rb") as f:
            f.seek(offset)
            raw = f.read()
        raw = raw[:raw.rfind(b"\n") + 1]
        lines = [(m[1], m[2], int(m[3])) for m in LOG_LINE.finditer(raw.decode(errors="replace"))]
        return lines, offset + len(raw)

    def requests_since(self, offset: int, own: Counter[str]) -> dict[str, int]:
        counts = Counter(classify(m, p) for m, p, _ in self.log_since(offset))
        counts.subtract(own)
        return {k: v for k, v in sorted(counts.items()) if v > 0}

    def size_of(self, key: str) -> int | None:
        self.own["HeadObject"] += 1
        try:
            return int(self.c.head_object(Bucket=BUCKET, Key=key)["ContentLength"])
        except self.c.exceptions.ClientError:
            return None

    def list_sizes(self, prefix: str) -> list[int]:
        sizes: list[int] = []
        token: dict[str, str] = {}
        while True:
            self.own["ListObjects"] += 1
            page = self.c.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **token)
            sizes += [int(o["Size"]) for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sizes
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete_prefix(self, prefix: str) -> None:
        keys = []
        token: dict[str, str] = {}
        while True:
            page = self.c.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **token)
            keys += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        for i in range(0, len(keys), 1000):
            self.c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
        for up in self.c.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []):
            self.c.abort_multipart_upload(Bucket=BUCKET, Key=up["Key"], UploadId=up["UploadId"])


class LogTimer:
    """While running: when moto's log (polled every 20 ms) first showed CreateMultipartUpload of key,
    last showed an UploadPart of it, and showed its CompleteMultipartUpload or PutObject (moto logs a
    request once it answered)."""

    def __init__(self, moto: Moto, key: str) -> None:
        self.moto, self.path = moto, f"/{BUCKET}/{key}"
        self.created: float | None = None
        self.last_part: float | None = None
        self.ended: float | None = None
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LogTimer:
        self.off = self.moto.log_size()
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_ev.wait(0.02):
            lines, self.off = self.moto.read_log(self.off)
            now = time.perf_counter()
            for method, p, status in lines:
                if not p.startswith(self.path) or status != 200:
                    continue
                op = classify(method, p)
                if op == "CreateMultipart" and self.created is None:
                    self.created = now
                elif op == "UploadPart":
                    self.last_part = now
                elif op in ("CompleteMultipart", "PutObject"):
                    self.ended = now

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.1)  # moto logs a request just after it answered it
        self.stop_ev.set()
        self.thread.join()


def delay_proxy(target_port: int, rtt_ms: float) -> Proxy:
    """bench/sftp.py's Proxy (a DelayProxy in a child process), delaying rtt_ms/2 each way: its code
    fixes 10 ms, so the same code runs with the delay given."""
    fixed = "delay_up=0.01, delay_down=0.01"
    if fixed not in sftp.PROXY_CODE:
        raise BenchError(f"bench/sftp.py's PROXY_CODE no longer says {fixed!r}: update delay_proxy")
    half = rtt_ms / 2000
    code = sftp.PROXY_CODE.replace(fixed, f"delay_up={half!r}, delay_down={half!r}")
    with mock.patch.object(sftp, "PROXY_CODE", code):
        return Proxy(target_port)


# ------------------------------------------------------------------------------------------ the set-up

class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, moto: Moto, plugins: list[Plugin],
                 proxy_port: int | None = None) -> None:
        self.args, self.root, self.moto, self.plugins = args, root, moto, plugins
        self.proxy_port = proxy_port  # --rtt-ms: the delaying proxy in front of moto
        self.figures: dict[str, dict[str, float]] = {p.label: {} for p in plugins}
        self.samples: dict[str, dict[str, list[float]]] = {p.label: {} for p in plugins}
        self.errors: dict[str, dict[str, str]] = {p.label: {} for p in plugins}
        self.requests: dict[str, dict[str, dict[str, int]]] = {p.label: {} for p in plugins}
        self.order: list[str] = []
        self.tails: dict[str, list[str]] = {}
        self.serial = 0
        self.moto_rss_peak = 0.0
        self.notes: list[str] = []

    # -- bookkeeping (as bench/sftp.py) ------------------------------------------------------------
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

    def attempt(self, p: Plugin, measure: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except (BenchError, OSError, subprocess.CalledProcessError) as e:
            self.error(p.label, measure, str(e))
            self.tails.setdefault(p.label, []).extend([f"--- {measure}", *p.log_tail(30)])

    @contextmanager
    def watch(self, p: Plugin, measure: str) -> Iterator[None]:
        """Notes moto's and the plugin's CPU and the S3 requests of the step (info_ rows, requests)."""
        base, _, where = measure.partition(".")
        short = base.split("_")[0]
        own0 = Counter(self.moto.own)
        off, t0 = self.moto.log_size(), time.perf_counter()
        m0, p0 = tree_cpu_s(self.moto.pid), tree_cpu_s(p.proc.pid) if p.proc else 0.0
        self.profile_ctl(p, "reset")
        try:
            yield
        finally:
            wall = time.perf_counter() - t0
            own = Counter(self.moto.own)
            own.subtract(own0)
            tag = f".{where}" if where else ""
            self.add(p.label, f"info_{short}_moto_cpu_pct{tag}", 100 * (tree_cpu_s(self.moto.pid) - m0) / wall)
            if p.proc:
                self.add(p.label, f"info_{short}_plugin_cpu_pct{tag}", 100 * (tree_cpu_s(p.proc.pid) - p0) / wall)
            self.requests[p.label][measure] = self.moto.requests_since(off, own)
            self.moto_rss_peak = max(self.moto_rss_peak, rss_mib(self.moto.pid))
            self.profile_ctl(p, measure)

    def profile_ctl(self, p: Plugin, name: str) -> None:
        if self.args.profile and p.kind == "pyclone":
            ctl = Path(f"{self.args.out}/profile.ctl")
            ctl.write_text(name)
            for _ in range(100):  # the sampler takes it within a tick
                if not ctl.exists():
                    break
                time.sleep(0.02)

    # -- volumes ---------------------------------------------------------------------------------
    def opts(self, mode: str, step: str) -> dict[str, str]:
        s = self.moto.srv
        endpoint = s.endpoint
        if self.proxy_port is not None and step in self.args.rtt_steps:
            endpoint = f"http://{s.host}:{self.proxy_port}"
        o = {"type": "s3", "s3-provider": "Other", "s3-endpoint": endpoint, "s3-access-key-id": s.access_key_id,
             "s3-secret-access-key": s.secret_access_key, "path": f"{BUCKET}/{PREFIX}"}
        if mode != "off":
            o["vfs-cache-mode"] = mode
        return o

    def create(self, p: Plugin, mode: str, step: str) -> str:
        self.serial += 1
        name = f"{p.label}{self.serial}-{mode}"
        p.call("VolumeDriver.Create", {"Name": name, "Opts": self.opts(mode, step)}, fresh=True, timeout=120)
        return name

    def mount(self, p: Plugin, name: str) -> str:
        return str(p.call("VolumeDriver.Mount", {"Name": name, "ID": "b"}, fresh=True, timeout=300)["Mountpoint"])

    def unmount(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Unmount", {"Name": name, "ID": "b"}, fresh=True, timeout=900)

    def remove(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Remove", {"Name": name}, fresh=True, timeout=120)

    # -- start -------------------------------------------------------------------------------------
    def phase_start(self) -> None:
        for i in range(self.args.connect_samples):
            for p in self.rotated(i):
                m1 = "create_mount_ms"
                if m1 in self.errors[p.label]:
                    continue
                try:
                    started = p.start()  # a fresh process: no pooled connection, no cached Fs
                    self.add(p.label, "info_start_to_activate_ms", started * 1000, sample=True)
                    time.sleep(0.3)
                    with self.watch(p, m1):
                        t0 = time.perf_counter()
                        name = self.create(p, "off", "start")
                        tc = time.perf_counter()
                        mp = self.mount(p, name)
                        t1 = time.perf_counter()
                        os.listdir(mp)
                        t2 = time.perf_counter()
                    self.add(p.label, m1, (t1 - t0) * 1000, sample=True)
                    self.add(p.label, "create_mount_list_ms", (t2 - t0) * 1000, sample=True)
                    self.add(p.label, "info_create_alone_ms", (tc - t0) * 1000, sample=True)
                    self.unmount(p, name)
                    self.remove(p, name)
                except (BenchError, OSError) as e:
                    self.error(p.label, m1, str(e))
                finally:
                    p.stop()

    # -- big sequential I/O --------------------------------------------------------------------------
    def wait_whole(self, key: str, size: int, what: str, timer: LogTimer) -> None:
        """Until the object is whole on the server: a HEAD (its size is the file's) once moto's log
        showed the upload's last request, and every 2 s whatever the log says."""
        t0 = time.perf_counter()
        limit = 120 + size / MIB * 2
        last_head = t0
        while True:
            now = time.perf_counter()
            if timer.ended is not None or now - last_head > 2:
                last_head = now
                if self.moto.size_of(key) == size:
                    return
            if now - t0 > limit:
                raise BenchError(f"{what}: {key} not whole on the server within {limit:.0f} s "
                                 f"({self.moto.size_of(key)} bytes)")
            time.sleep(0.05)

    def write_once(self, p: Plugin, mode: str) -> None:
        mib = self.args.size_mib
        size = mib * MIB
        name = self.create(p, mode, "io")
        mp = self.mount(p, name)
        fname = f"w-{name}.bin"
        key = f"{PREFIX}/{fname}"
        try:
            with self.watch(p, f"write_MBps.{mode}"), LogTimer(self.moto, key) as lt:
                t0 = time.perf_counter()
                dd(["if=/dev/zero", f"of={mp}/{fname}", "bs=1M", f"count={mib}"], size, f"{p.label} write {mode}")
                t_close = time.perf_counter()
                whole_at_close = self.moto.size_of(key) == size
                if not whole_at_close:
                    self.wait_whole(key, size, f"{p.label} write {mode}", lt)
                t_landed = time.perf_counter()
            sample = True  # medians of --io-samples
            self.add(p.label, f"write_MBps.{mode}", size / 1e6 / (t_landed - t0), sample)
            self.add(p.label, f"info_write_close_s.{mode}", t_close - t0, sample)
            self.add(p.label, f"info_landed_after_close_s.{mode}", t_landed - t_close, sample)
            start = t0 if mode == "off" else lt.created
            if start is not None and lt.last_part is not None and lt.ended is not None:
                # the parts (mode off: from dd's start) and moto's CompleteMultipartUpload apart
                self.add(p.label, f"info_parts_MBps.{mode}", size / 1e6 / (lt.last_part - start), sample)
                self.add(p.label, f"info_moto_complete_s.{mode}", lt.ended - lt.last_part, sample)
            if mode != "off" and lt.created is not None:
                self.add(p.label, f"info_upload_start_after_close_s.{mode}", lt.created - t_close, sample)
                self.add(p.label, f"upload_MBps.{mode}", size / 1e6 / (t_landed - lt.created), sample)
            if mode == "off" and not whole_at_close:
                log(f"  note: {p.label} {mode}: the object was not whole on the server when close returned")
        finally:
            t_u = time.perf_counter()
            self.unmount(p, name)
            self.add(p.label, f"info_unmount_after_write_s.{mode}", time.perf_counter() - t_u, sample=True)
            self.remove(p, name)
            self.moto.delete_prefix(key)

    def read_once(self, p: Plugin, mode: str, source: str) -> None:
        size = self.args.size_mib * MIB
        name = self.create(p, mode, "io")
        key = f"{PREFIX}/r-{name}.bin"
        self.moto.c.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": source},
                                MetadataDirective="COPY")
        try:
            drop_caches()
            mp = self.mount(p, name)
            try:
                with self.watch(p, f"read_MBps.{mode}"):
                    secs = dd([f"if={mp}/{Path(key).name}", "of=/dev/null", "bs=1M"], size, f"{p.label} read {mode}")
                self.add(p.label, f"read_MBps.{mode}", size / 1e6 / secs, sample=True)
            finally:
                self.unmount(p, name)
        finally:
            self.remove(p, name)
            self.moto.delete_prefix(key)

    def phase_io(self, mode: str, turn: int) -> None:
        mib = self.args.size_mib
        source = f"src/src-{mib}.bin"  # outside the volumes' prefix
        if self.moto.size_of(source) != mib * MIB:
            self.baseline(source)
        peaks: dict[str, tuple[int, int]] = {}
        for i in range(self.args.io_samples):
            for p in self.rotated(turn + i):
                with RssSampler(p) as rss:
                    log(f"  {p.label} write {mode} {mib} MiB")
                    self.attempt(p, f"write_MBps.{mode}", self.write_once, p, mode)
                    log(f"  {p.label} read {mode} {mib} MiB")
                    self.attempt(p, f"read_MBps.{mode}", self.read_once, p, mode, source)
                peaks[p.label] = max(peaks.get(p.label, (0, 0)), (rss.peak, rss.procs))
        for label, (peak, procs) in peaks.items():
            self.add(label, f"rss_peak_MiB.{mode}", peak / 1024)
            self.add(label, f"info_rss_procs.{mode}", float(procs))

    def baseline(self, source: str) -> None:
        """The read source, uploaded with boto3 as rclone would (5 MiB parts, 4 in flight), timed, then
        read back in one GET: what moto does for a client that is not a FUSE mount (the notes)."""
        from boto3.s3.transfer import TransferConfig

        mib = self.args.size_mib
        size = mib * MIB
        path = self.root / "src.bin"
        subprocess.run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", f"count={mib}"], check=True,
                       capture_output=True)
        log(f"  uploading the {mib} MiB read source with boto3 (the moto baseline)")
        cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
        with LogTimer(self.moto, source) as lt:
            t0 = time.perf_counter()
            self.moto.c.upload_file(str(path), BUCKET, source, ExtraArgs={"Metadata": {"mtime": MTIME}}, Config=cfg)
            t1 = time.perf_counter()
        path.unlink()
        note = (f"moto baseline, boto3 upload_file of {mib} MiB (5 MiB parts, 4 threads): "
                f"{size / 1e6 / (t1 - t0):.1f} MB/s")
        if lt.last_part is not None and lt.ended is not None:
            note += (f" (parts {size / 1e6 / (lt.last_part - t0):.0f} MB/s, then moto's CompleteMultipartUpload "
                     f"{lt.ended - lt.last_part:.1f} s)")
        t0 = time.perf_counter()
        body = self.moto.c.get_object(Bucket=BUCKET, Key=source)["Body"]
        got = sum(len(b) for b in iter(lambda: body.read(MIB), b""))
        secs = time.perf_counter() - t0
        note += f"; one get_object read back: {size / 1e6 / secs:.0f} MB/s ({got} bytes)"
        self.notes.append(note)
        log(f"  {note}")

    # -- small files, ls -----------------------------------------------------------------------------
    def small_once(self, p: Plugin, mode: str) -> None:
        n = self.args.small_files
        name = self.create(p, mode, "small")
        mp = self.mount(p, name)
        d = f"small-{name}"
        block = b"x" * 4096
        measure = f"small_create_files_per_s.{mode}"
        try:
            os.mkdir(f"{mp}/{d}")
            with self.watch(p, measure):
                t0 = time.perf_counter()
                for i in range(n):
                    with open(f"{mp}/{d}/f{i:05d}", "wb") as fh:
                        fh.write(block)
                t_loop = time.perf_counter()
                limit = t_loop + 120 + n / 10
                while True:
                    sizes = self.moto.list_sizes(f"{PREFIX}/{d}/")
                    if len(sizes) == n and all(s == 4096 for s in sizes):
                        break
                    if time.perf_counter() > limit:
                        raise BenchError(f"{p.label}: {len(sizes)} objects on the server, "
                                         f"{sum(s == 4096 for s in sizes)} of 4096 bytes (expected {n})")
                    time.sleep(0.2)
                t_all = time.perf_counter()
            self.add(p.label, measure, n / (t_all - t0))
            self.add(p.label, f"info_small_loop_s.{mode}", t_loop - t0)
        finally:
            self.unmount(p, name)
            self.remove(p, name)
            self.moto.delete_prefix(f"{PREFIX}/{d}/")

    def make_many(self) -> str:
        n = self.args.ls_files
        d = f"many-{n}"
        if len(self.moto.list_sizes(f"{PREFIX}/{d}/")) != n:
            log(f"  making {n} objects with boto3 (X-Amz-Meta-Mtime on each)")
            c = self.moto.srv.boto3_client(max_pool_connections=8)

            def put(i: int) -> None:
                c.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{d}/entry-{i:05d}.dat", Body=b"",
                             Metadata={"mtime": f"1700000000.{i:09d}"})

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, range(n)))
        return d

    def ls_once(self, p: Plugin, d: str) -> None:
        n = self.args.ls_files
        name = self.create(p, "off", "ls")
        mp = self.mount(p, name)
        out = self.root / f"ls-{p.label}.out"
        try:
            with open(out, "wb") as fh, self.watch(p, "ls_l_cold_s"):
                t0 = time.perf_counter()
                subprocess.run(["ls", "-l", f"{mp}/{d}"], check=True, stdout=fh)
                secs = time.perf_counter() - t0
            lines = out.read_bytes().count(b"\n") - 1
            if lines != n:
                raise BenchError(f"{p.label}: ls -l listed {lines} of {n} entries")
            self.add(p.label, "ls_l_cold_s", secs, sample=True)
        finally:
            out.unlink(missing_ok=True)
            self.unmount(p, name)
            self.remove(p, name)

    def phase_small(self, turn: int) -> None:
        for k, mode in enumerate(self.args.small_modes):
            for p in self.rotated(turn + k):
                log(f"  {p.label} {self.args.small_files} small files, mode {mode}")
                self.attempt(p, f"small_create_files_per_s.{mode}", self.small_once, p, mode)

    def phase_ls(self, turn: int) -> None:
        d = self.make_many()
        for i in range(self.args.ls_samples):
            for p in self.rotated(turn + i):
                log(f"  {p.label} ls -l of {self.args.ls_files} objects")
                self.attempt(p, "ls_l_cold_s", self.ls_once, p, d)


# ------------------------------------------------------------------------------------------ report

def report(b: Bench, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ours, ref = b.plugins[0].label, b.plugins[1].label
    rows = []
    for m in b.order:
        base, _, where = m.partition(".")
        a, r = b.figures[ours].get(m), b.figures[ref].get(m)
        rows.append((m, base, where, "ERROR" if m in b.errors[ours] or m in b.errors[ref] else ratio(m, a, r)))
    net = f", RTT {meta['rtt_ms']:g} ms" if meta.get("rtt_ms") else ""
    lines = [f"# s3 (moto{net}): pyclone-docker vs {meta['rclone']}", "",
             f"{meta['started']}, {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}), "
             f"{meta['minutes']} min; {meta['moto']}",
             f"pyclone-docker {meta['tree']['commit']} {meta['tree']['dirty']}".rstrip(),
             f"network: {meta['network']}",
             f"sizes: {meta['size_mib']} MiB sequential (median of {meta['io_samples']}); "
             f"{meta['small_files']} small files (modes "
             f"{' '.join(meta['small_modes'])}); ls of {meta['ls_files']} objects, median of {meta['ls_samples']}; "
             f"start: median of {meta['connect_samples']}",
             "ratio > 1: ours better (throughput ours/rclone; time and RSS rclone/ours); info_ rows have none",
             "write_MBps: dd start to the object whole on the server (mode full: includes the default "
             "vfs-write-back 5 s, the same in both); upload_MBps (mode full): from the CreateMultipartUpload to "
             "the object whole; read_MBps: first read, fresh volume, size checked; rss_peak_MiB: plugin + "
             "descendants, peak of 0.2 s samples during that write + read; *_moto_cpu_pct: moto's process "
             "over the step (one Python process: ~100 % means the server set the figure)",
             "",
             f"| measure | mode | {ours} | {ref} | ratio |", "|---|---|---:|---:|---:|"]
    for m, base, where, rt in rows:
        cell = {lb: "ERROR" if m in b.errors[lb] else fmt(b.figures[lb].get(m)) for lb in (ours, ref)}
        lines.append(f"| {base} | {where} | {cell[ours]} | {cell[ref]} | {rt} |")
    lines += ["", "S3 requests per step (moto's log; the bench's own HEAD/List checks subtracted; "
              "ls: the last sample):", "", f"| step | {ours} | {ref} |", "|---|---|---|"]
    for m in [m for m in b.order if any(m in b.requests[lb] for lb in (ours, ref))]:
        cells = [", ".join(f"{k} {v}" for k, v in b.requests[lb].get(m, {}).items()) or "-" for lb in (ours, ref)]
        lines.append(f"| {m} | {cells[0]} | {cells[1]} |")
    errs = [f"- {lb} {m}: {msg}" for lb in (ours, ref) for m, msg in b.errors[lb].items()]
    if errs:
        lines += ["", "Errors (no figure given):", *errs]
    if meta.get("notes"):
        lines += ["", *[f"- {n}" for n in meta["notes"]]]
    data = {"meta": meta, "figures": b.figures, "samples": b.samples, "errors": b.errors,
            "requests": b.requests, "ratios": {m: rt for m, _, _, rt in rows if rt}}
    return "\n".join(lines) + "\n", data


# ------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 MiB, 200 files, 500 entries, 1-2 samples")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results-<date>-s3)")
    ap.add_argument("--size-mib", type=int, default=1024, help="sequential file size")
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--small-modes", nargs="+", choices=("off", "writes", "full"), default=["off", "writes"])
    ap.add_argument("--ls-files", type=int, default=10000)
    ap.add_argument("--ls-samples", type=int, default=2)
    ap.add_argument("--io-samples", type=int, default=2, help="writes and reads of each plugin per mode (medians)")
    ap.add_argument("--connect-samples", type=int, default=5)
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--rtt-ms", type=float, default=0.0,
                    help="round trip added by a delaying proxy in front of moto (N/2 ms each way); 0: loopback")
    ap.add_argument("--rtt-steps", nargs="+", choices=STEPS, default=["start", "small", "ls"],
                    help="the steps whose volumes go through the --rtt-ms proxy")
    ap.add_argument("--debug-logs", action="store_true", help="run both plugins with -vv; their logs go to --out")
    ap.add_argument("--profile", action="store_true", help="sample ours' stacks; folded files per step in --out")
    ap.add_argument("--rev", help="measure this commit of --src (git archive), not its working tree")
    ap.add_argument("--src", type=Path, default=REPO, help="the source tree of ours (default: this one)")
    args = ap.parse_args()
    if args.quick:
        given = set(sys.argv)
        for opt, value in (("--size-mib", 64), ("--small-files", 200), ("--ls-files", 500),
                           ("--connect-samples", 2), ("--ls-samples", 1), ("--io-samples", 1)):
            if opt not in given:
                setattr(args, opt[2:].replace("-", "_"), value)
    args.out = (args.out or REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-s3{'-quick' * args.quick}").resolve()
    return args


def profiled(p: Plugin, out: Path) -> None:
    """Runs ours under PROFILE_BOOT (a stack sampler thread in the plugin process)."""
    cmd = p.command

    def command() -> list[str]:
        argv = cmd()
        i = argv.index("serve")
        return [sys.executable, "-c", PROFILE_BOOT, "-", str(out.resolve() / "profile"), "0.01", *argv[i:]]

    p.command = command  # type: ignore[method-assign]


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the clean-up below runs on a kill too
    if os.geteuid() != 0:
        print("needs root (FUSE, drop_caches)", file=sys.stderr)
        return 1
    try:
        rclone = rclone_binary()
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    rclone_line = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    root = Path(tempfile.mkdtemp(prefix="pycbench-s3-", dir="/var/tmp"))
    t_start = time.monotonic()
    meta: dict[str, Any] = {
        "started": time.strftime("%F %T %Z"), "host": os.uname().nodename, "kernel": os.uname().release,
        "cpus": os.cpu_count(), "rclone": rclone_line, "rclone_binary": rclone, "argv": sys.argv[1:],
        "size_mib": args.size_mib, "small_files": args.small_files, "small_modes": args.small_modes,
        "ls_files": args.ls_files, "ls_samples": args.ls_samples, "io_samples": args.io_samples,
        "connect_samples": args.connect_samples, "rtt_ms": args.rtt_ms,
        "rtt_steps": args.rtt_steps if args.rtt_ms else [],
        "network": "loopback (no added delay)" if not args.rtt_ms else
        f"RTT {args.rtt_ms:g} ms added ({args.rtt_ms / 2:g} ms each way, a DelayProxy in front of moto) for the "
        f"steps {' '.join(s for s in args.rtt_steps if s in args.steps) or '(none run)'}; "
        f"other steps and the bench's own checks on loopback",
        "notes": []}
    meta["tree"] = git_describe(args.src)
    srv = MotoServer()
    plugins: list[Plugin] = []
    b: Bench | None = None
    proxy: Proxy | None = None
    try:
        srv.start()
        if args.rtt_ms:
            proxy = delay_proxy(srv.port, args.rtt_ms)
        args.out.mkdir(parents=True, exist_ok=True)
        plugins = [Plugin("pyclone", root, code=code_of(args, root / "code", meta)),
                   Plugin("rclone", root, rclone=rclone)]
        if args.debug_logs:
            for p in plugins:
                p.command = (lambda c: lambda: [*c(), "-vv"])(p.command)  # type: ignore[method-assign]
        if args.profile:
            profiled(plugins[0], args.out)
        b = Bench(args, root, Moto(srv), plugins, proxy.port if proxy else None)
        meta["moto"] = f"moto {moto.__version__} server on {srv.endpoint} (path style), bucket {BUCKET}"
        log(f"s3 bench in {root}: pyclone {meta['tree']['commit']} {meta['tree']['dirty']} vs {rclone_line}; "
            f"{meta['moto']}; {meta['network']}")
        if "start" in args.steps:
            log("start + Create + Mount")
            b.phase_start()
        for p in plugins:
            p.start()
        turn = 0
        if "io" in args.steps:
            for mode in args.modes:
                log(f"sequential I/O mode {mode}")
                b.phase_io(mode, turn)
                turn += 1
        if "small" in args.steps:
            log("small files")
            b.phase_small(turn)
            turn += 1
        if "ls" in args.steps:
            log("ls -l")
            b.phase_ls(turn)
        meta["notes"] += b.notes
        left = b.moto.list_sizes(f"{PREFIX}/")
        meta["notes"].append(f"moto: peak RSS {b.moto_rss_peak:.0f} MiB (sampled after each step); "
                             f"{len(left)} objects under {PREFIX}/ at the end (the ls directory)")
    finally:
        for p in plugins:
            p.stop()
            if args.debug_logs:
                shutil.copy(p.log, args.out / f"{p.label}-plugin.log")
        if proxy is not None:
            proxy.close()
        srv.close()
        shutil.rmtree(root, ignore_errors=True)
    meta["minutes"] = round((time.monotonic() - t_start) / 60, 1)
    text, data = report(b, meta)
    print("\n" + text)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    for label, tail in b.tails.items():
        (args.out / f"{label}-log-at-errors.txt").write_text("\n".join(tail) + "\n")
    print(f"wrote {args.out}/results.md and results.json")
    return 2 if any(b.errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
