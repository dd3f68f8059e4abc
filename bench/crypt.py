#!/usr/bin/env python3
"""crypt benchmark (issue 13): pyclone-docker vs rclone 1.75.2's `serve docker`, both mounting a crypt
volume over a local directory (each plugin its own directory on the same filesystem), with the SAME
volume options (type=crypt, crypt-remote=<dir>, crypt-password=<obscured>, default names:
standard/base32, the vfs-cache-mode under test), in ONE run.

Measures (each plugin in turn, the order rotating; every step on a volume created for it, so no
VFS, listing or cache of an earlier step serves it):
- write: dd if=/dev/zero bs=1M of a --size-mib file, timed until the ciphertext is whole in the
  directory under its encrypted name (rclone's `cryptdecode --reverse`; the size is rclone's
  EncryptedSize; mode full: after the default 5 s vfs-write-back, the same in both), then the
  Unmount (timed apart);
- read: the first read of a file rclone wrote (`rclone copyto` of --size-mib of /dev/urandom,
  once, then hard-linked under the encrypted name of a new file per read), through a fresh volume,
  the page cache dropped; dd's byte count must equal the size: a short read is an ERROR, never a
  figure;
- rand: --rand-reads preads of 4 KiB at random 4 KiB-aligned offsets (one seed for both) in such a
  file, through a fresh volume in mode off, as ops/s (one reader, queue depth 1); every block read
  is then compared with the plaintext: a wrong byte is an ERROR;
- rss: peak RSS of the plugin and its descendants, sampled every 0.2 s during each mode's write +
  read (and during the random reads);
- primitive: ours' pyclone_docker.crypt.contents Encrypter / Decrypter on 64 MiB in-process (a child
  Python on the code under test), 128 KiB writes as FUSE gives them; beside it the parts (Salsa20
  alone, Poly1305 alone, a 64 MiB copy) and two threads sealing at once (Cryptodome's C calls
  release the GIL: does a second sealing thread scale?); and rclone's own crypt outside any mount
  (`rclone cat` of the source to /dev/null, `rclone copyto` of the plaintext), so the reader sees how
  close each mount gets to its primitive.

    python3 bench/crypt.py --rev HEAD   # the full run: 1 GiB, 2000 random reads
    python3 bench/crypt.py --quick      # smoke: 64 MiB, 500 random reads

Without --rev ours runs from a snapshot of --src's working tree (uncommitted changes named), as
bench/sftp.py. --debug-logs runs both plugins with -vv and keeps their logs in --out. --profile
samples every thread's stack of ours every 10 ms (bench/s3.py's sampler) and writes one
folded-stack file per step to --out.

Ratios: > 1 means ours is better: ours/rclone for throughput and ops/s, rclone/ours for time and RSS.
Output: --out (default bench/results-<date>-crypt/): results.json and results.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sftp
from common import REPO, BenchError, Plugin, dd, drop_caches, git_describe, rclone_binary
from s3 import profiled
from sftp import RssSampler, code_of, fmt, log

from pyclone_docker.obscure import obscure

MIB = 1 << 20
MODES = ("off", "full")
STEPS = ("primitive", "io", "rand")
HEADER, BLOCK_DATA, BLOCK = 32, 65536, 65552

# The primitive, in a child Python on the code under test: argv size_mib; prints one JSON object.
PRIMITIVE = r"""
import json, os, sys, threading, time
from pyclone_docker.crypt import contents as c
from Cryptodome.Cipher import Salsa20
from Cryptodome.Hash.Poly1305 import Poly1305_MAC
size = int(sys.argv[1]) << 20
key, plain = os.urandom(32), os.urandom(size)
view = memoryview(plain)
WRITE = 128 << 10
def seal(data):
    enc, parts = c.Encrypter(key), []
    v = memoryview(data)
    for i in range(0, len(v), WRITE):
        enc.write(v[i:i + WRITE], parts.append)
    enc.finish(parts.append)
    return enc.header(), parts
def best(fn, n=3):
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return min(t)
out = {"fast_path": c.fast_path()}
hdr, parts = seal(plain)
out["encrypt_MBps"] = size / 1e6 / best(lambda: seal(plain))
buf = bytearray(c.BLOCK_DATA)
def open_all():
    d = c.Decrypter(key, hdr)
    for i, b in enumerate(parts):
        d.decrypt_block_into(i, b, buf)
out["decrypt_MBps"] = size / 1e6 / best(open_all)
got = bytearray()
d = c.Decrypter(key, hdr)
for i, b in enumerate(parts):
    got += d.decrypt_block(i, b)
assert got == plain, "the primitive's round trip differs"
blocks = [view[i:i + c.BLOCK_DATA] for i in range(0, size, c.BLOCK_DATA)]
sink = bytearray(c.BLOCK_DATA)
def salsa():
    for b in blocks:
        Salsa20.new(key=key, nonce=bytes(8)).encrypt(b, output=sink)
def poly():
    for b in blocks:
        Poly1305_MAC(key[:16], key[16:], b).digest()
def keysetup():
    box = c.SecretBox(key)
    n = bytes(24)
    for _ in blocks:
        box._cipher(n)
out["part_salsa20_MBps"] = size / 1e6 / best(salsa)
out["part_poly1305_MBps"] = size / 1e6 / best(poly)
out["part_per_block_setup_us"] = best(keysetup) / len(blocks) * 1e6
out["part_copy_64MiB_MBps"] = size / 1e6 / best(lambda: bytearray(plain))
half = size // 2
def two():
    ts = [threading.Thread(target=seal, args=(view[k * half:(k + 1) * half],)) for k in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
out["encrypt_2threads_MBps"] = size / 1e6 / best(two)
print(json.dumps(out))
"""


class Rclone:
    """The rclone CLI on a crypt section `secret` (remote: the source directory), the config in a
    0600 file named by RCLONE_CONFIG: the password is never in an argv."""

    def __init__(self, binary: str, root: Path, remote: Path, obscured: str) -> None:
        self.binary = binary
        conf = root / "rclone-cli.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"[secret]\ntype = crypt\nremote = {remote}\npassword = {obscured}\n")
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "RCLONE_CONFIG": str(conf)}

    def run(self, *args: str) -> str:
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=3600,
                           stdin=subprocess.DEVNULL, check=False)
        if p.returncode:
            raise BenchError(f"rclone {args[0]} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        return p.stdout

    def encrypted_name(self, name: str) -> str:
        line = self.run("cryptdecode", "--reverse", "secret:", name).rstrip("\n")
        prefix = name + " \t "
        if not line.startswith(prefix):
            raise BenchError(f"rclone cryptdecode --reverse printed {line!r}")
        return line[len(prefix):]


def encrypted_size(plain: int) -> int:
    """rclone's Cipher.EncryptedSize (header, 16-byte tag per 64 KiB block)."""
    blocks, rest = divmod(plain, BLOCK_DATA)
    return HEADER + blocks * BLOCK + (16 + rest if rest else 0)


# ------------------------------------------------------------------------------------------ the set-up

class Bench(sftp.Bench):
    """sftp.Bench's bookkeeping (add, error, rotated, attempt) over crypt volumes on local dirs."""

    def __init__(self, args: argparse.Namespace, root: Path, plugins: list[Plugin], rc: Rclone,
                 obscured: str, source: Path, plain: Path) -> None:
        self.args, self.root, self.plugins, self.rc = args, root, plugins, rc
        self.obscured, self.source, self.plain = obscured, source, plain
        self.figures: dict[str, dict[str, float]] = {p.label: {} for p in plugins}
        self.samples: dict[str, dict[str, list[float]]] = {p.label: {} for p in plugins}
        self.errors: dict[str, dict[str, str]] = {p.label: {} for p in plugins}
        self.order: list[str] = []
        self.tails: dict[str, list[str]] = {}
        self.serial = 0
        self.notes: list[str] = []
        self.dirs = {p.label: root / f"remote-{p.label}" for p in plugins}
        for d in self.dirs.values():
            d.mkdir()

    # -- volumes (every call on a new connection: see bench/sftp.py) --------------------------------
    def create(self, p: Plugin, mode: str, what: str) -> str:
        self.serial += 1
        name = f"{p.label}{self.serial}-{what}-{mode}"
        opts = {"type": "crypt", "crypt-remote": str(self.dirs[p.label]), "crypt-password": self.obscured}
        if mode != "off":
            opts["vfs-cache-mode"] = mode
        opts.update(self.args.volume_opt)
        try:
            p.call("VolumeDriver.Create", {"Name": name, "Opts": opts}, fresh=True, timeout=120)
        except BenchError as e:  # its message holds the request body: not the password
            raise BenchError(str(e).replace(self.obscured, "***")) from None
        return name

    def mount(self, p: Plugin, name: str) -> str:
        return str(p.call("VolumeDriver.Mount", {"Name": name, "ID": "b"}, fresh=True, timeout=300)["Mountpoint"])

    def unmount(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Unmount", {"Name": name, "ID": "b"}, fresh=True, timeout=900)

    def remove(self, p: Plugin, name: str) -> None:
        p.call("VolumeDriver.Remove", {"Name": name}, fresh=True, timeout=120)

    def profile_ctl(self, p: Plugin, name: str) -> None:
        """As bench/s3.py's: dump (or reset) the sampled stacks of ours."""
        if self.args.profile and p.kind == "pyclone":
            ctl = self.args.out / "profile.ctl"
            ctl.write_text(name)
            for _ in range(100):
                if not ctl.exists():
                    break
                time.sleep(0.02)

    # -- sequential I/O ------------------------------------------------------------------------------
    def wait_whole(self, path: Path, size: int, what: str) -> None:
        t0 = time.perf_counter()
        limit = 120 + size / MIB * 2
        while not (path.exists() and path.stat().st_size == size):
            if time.perf_counter() - t0 > limit:
                got = path.stat().st_size if path.exists() else "no file"
                raise BenchError(f"{what}: {path.name} not whole in the directory within {limit:.0f} s ({got})")
            time.sleep(0.05)

    def write_once(self, p: Plugin, mode: str) -> None:
        mib = self.args.size_mib
        size = mib * MIB
        name = self.create(p, mode, "w")
        fname = f"w-{name}.bin"
        on_disk = self.dirs[p.label] / self.rc.encrypted_name(fname)
        mp = self.mount(p, name)
        measure = f"write_MBps.{mode}"
        try:
            self.profile_ctl(p, "reset")
            t0 = time.perf_counter()
            dd(["if=/dev/zero", f"of={mp}/{fname}", "bs=1M", f"count={mib}"], size, f"{p.label} write {mode}")
            t_close = time.perf_counter()
            whole_at_close = on_disk.exists() and on_disk.stat().st_size == encrypted_size(size)
            self.wait_whole(on_disk, encrypted_size(size), f"{p.label} write {mode}")
            t_landed = time.perf_counter()
            self.profile_ctl(p, measure)
            self.add(p.label, measure, size / 1e6 / (t_landed - t0), sample=True)
            self.add(p.label, f"info_write_close_MBps.{mode}", size / 1e6 / (t_close - t0), sample=True)
            self.add(p.label, f"info_landed_after_close_s.{mode}", t_landed - t_close, sample=True)
            if mode == "off" and not whole_at_close:
                log(f"  note: {p.label} {mode}: the ciphertext was not whole when close returned")
        finally:
            t_u = time.perf_counter()
            self.unmount(p, name)
            self.add(p.label, f"info_unmount_after_write_s.{mode}", time.perf_counter() - t_u, sample=True)
            self.remove(p, name)
            on_disk.unlink(missing_ok=True)

    def linked(self, p: Plugin, fname: str) -> Path:
        """The rclone-written source, hard-linked into p's directory as the ciphertext of fname."""
        link = self.dirs[p.label] / self.rc.encrypted_name(fname)
        os.link(self.source, link)
        return link

    def read_once(self, p: Plugin, mode: str) -> None:
        size = self.args.size_mib * MIB
        name = self.create(p, mode, "r")
        fname = f"r-{name}.bin"
        link = self.linked(p, fname)
        measure = f"read_MBps.{mode}"
        try:
            drop_caches()
            mp = self.mount(p, name)
            try:
                self.profile_ctl(p, "reset")
                secs = dd([f"if={mp}/{fname}", "of=/dev/null", "bs=1M"], size, f"{p.label} read {mode}")
                self.profile_ctl(p, measure)
                self.add(p.label, measure, size / 1e6 / secs, sample=True)
            finally:
                self.unmount(p, name)
        finally:
            self.remove(p, name)
            link.unlink(missing_ok=True)

    def phase_io(self, mode: str, turn: int) -> None:
        peaks: dict[str, int] = {}
        for i in range(self.args.io_samples):
            for p in self.rotated(turn + i):
                with RssSampler(p) as rss:
                    log(f"  {p.label} write {mode} {self.args.size_mib} MiB")
                    self.attempt(p, f"write_MBps.{mode}", self.write_once, p, mode)
                    log(f"  {p.label} read {mode} {self.args.size_mib} MiB")
                    self.attempt(p, f"read_MBps.{mode}", self.read_once, p, mode)
                peaks[p.label] = max(peaks.get(p.label, 0), rss.peak)
        for label, peak in peaks.items():
            self.add(label, f"rss_peak_MiB.{mode}", peak / 1024)

    # -- random 4 KiB reads --------------------------------------------------------------------------
    def rand_once(self, p: Plugin, seed: int) -> None:
        size = self.args.size_mib * MIB
        n = self.args.rand_reads
        rng = random.Random(seed)
        offsets = [rng.randrange(size // 4096) * 4096 for _ in range(n)]
        name = self.create(p, "off", "rand")
        fname = f"rr-{name}.bin"
        link = self.linked(p, fname)
        measure = "rand_read_4k_ops_per_s.off"
        try:
            drop_caches()
            mp = self.mount(p, name)
            try:
                with RssSampler(p) as rss:
                    self.profile_ctl(p, "reset")
                    got: list[bytes] = []
                    fd = os.open(f"{mp}/{fname}", os.O_RDONLY)
                    try:
                        t0 = time.perf_counter()
                        for off in offsets:
                            got.append(os.pread(fd, 4096, off))
                        secs = time.perf_counter() - t0
                    finally:
                        os.close(fd)
                    self.profile_ctl(p, measure)
            finally:
                self.unmount(p, name)
            with open(self.plain, "rb") as f:
                for off, data in zip(offsets, got, strict=True):
                    f.seek(off)
                    if data != f.read(4096):
                        raise BenchError(f"{p.label}: the 4 KiB read at {off} is not the plaintext "
                                         f"({len(data)} bytes)")
            self.add(p.label, measure, n / secs, sample=True)
            self.add(p.label, "info_rand_read_4k_ms_mean.off", secs / n * 1000, sample=True)
            self.add(p.label, "rss_peak_MiB.rand", rss.peak / 1024)
        finally:
            self.remove(p, name)
            link.unlink(missing_ok=True)

    def phase_rand(self, turn: int) -> None:
        for i in range(self.args.io_samples):
            seed = 1000 + i
            for p in self.rotated(turn + i):
                log(f"  {p.label} {self.args.rand_reads} random 4 KiB reads (mode off)")
                self.attempt(p, "rand_read_4k_ops_per_s.off", self.rand_once, p, seed)

    # -- the primitive -------------------------------------------------------------------------------
    def phase_primitive(self, code: Path) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(code)}
        p = subprocess.run([sys.executable, "-c", PRIMITIVE, str(self.args.primitive_mib)], env=env,
                           capture_output=True, text=True, timeout=600, check=False)
        if p.returncode:
            self.error("pyclone", "primitive_encrypt_MBps", p.stderr.strip()[-300:])
            return
        out = json.loads(p.stdout)
        if not out.pop("fast_path"):
            self.notes.append("the primitive ran on the pure-Python HSalsa20 (fast_path() is False)")
        for k, v in out.items():
            self.add("pyclone", f"primitive_{k}" if not k.startswith("part_") else f"info_primitive_{k}", v)
        size = self.args.size_mib * MIB
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as null:
            r = subprocess.run([self.rc.binary, "cat", "secret:src.bin"], env=self.rc.env, stdout=null,
                               stderr=subprocess.PIPE, timeout=3600, check=False)
        secs = time.perf_counter() - t0
        if r.returncode:
            self.error("rclone", "primitive_decrypt_MBps", r.stderr.decode(errors="replace")[-300:])
        else:
            self.add("rclone", "primitive_decrypt_MBps", size / 1e6 / secs)
        t0 = time.perf_counter()
        self.rc.run("copyto", str(self.plain), "secret:enc-again.bin")
        self.add("rclone", "primitive_encrypt_MBps", size / 1e6 / (time.perf_counter() - t0))
        self.rc.run("deletefile", "secret:enc-again.bin")


# ------------------------------------------------------------------------------------------ report

HIGHER = ("write_MBps", "read_MBps", "rand_read", "primitive_")


def ratio(measure: str, ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs or measure.startswith("info_"):
        return ""
    r = ours / theirs if measure.startswith(HIGHER) else theirs / ours
    return f"{r:.2f}x"


def report(b: Bench, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ours, ref = b.plugins[0].label, b.plugins[1].label
    rows = []
    for m in b.order:
        base, _, where = m.partition(".")
        a, r = b.figures[ours].get(m), b.figures[ref].get(m)
        rows.append((m, base, where, "ERROR" if m in b.errors[ours] or m in b.errors[ref] else ratio(m, a, r)))
    lines = [f"# crypt over local: pyclone-docker vs {meta['rclone']}", "",
             f"{meta['started']}, {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}, Python "
             f"{meta['python']}, pycryptodomex {meta['cryptodome']}), {meta['minutes']} min",
             f"pyclone-docker {meta['tree']['commit']} ({meta['tree']['subject'][:60]}...) "
             f"{meta['tree']['dirty']}".rstrip(),
             f"volumes: type=crypt, crypt-remote=<a local dir>, crypt-password=<obscured>, default names "
             f"(standard, base32); {meta['size_mib']} MiB sequential (median of {meta['io_samples']}); "
             f"{meta['rand_reads']} random 4 KiB reads in a {meta['size_mib']} MiB file (mode off, median of "
             f"{meta['io_samples']}); primitive on {meta['primitive_mib']} MiB"
             + (f"; extra volume options for both: {meta['volume_opt']}" if meta["volume_opt"] else "")
             + (f"; extra plugin arguments for both: {meta['plugin_args']}" if meta.get("plugin_args") else ""),
             "ratio > 1: ours better (throughput and ops/s ours/rclone; time and RSS rclone/ours); info_ rows "
             "have none",
             "write_MBps: dd start to the ciphertext whole in the directory (mode full: includes the default "
             "vfs-write-back 5 s, the same in both); info_write_close_MBps: dd start to close; read_MBps: first "
             "read of a file rclone wrote, fresh volume, page cache dropped, size checked; rss_peak_MiB: plugin + "
             "descendants, peak of 0.2 s samples during that mode's writes + reads (rand: the random reads); "
             "primitive_*: ours in-process (128 KiB writes; decrypt into one buffer), rclone's as its CLI "
             "(`rclone cat` to /dev/null, `rclone copyto` local to crypt: process start and file I/O included)",
             "",
             f"| measure | mode | {ours} | {ref} | ratio |", "|---|---|---:|---:|---:|"]
    for m, base, where, rt in rows:
        cell = {lb: "ERROR" if m in b.errors[lb] else fmt(b.figures[lb].get(m)) for lb in (ours, ref)}
        lines.append(f"| {base} | {where} | {cell[ours]} | {cell[ref]} | {rt} |")
    errs = [f"- {lb} {m}: {msg}" for lb in (ours, ref) for m, msg in b.errors[lb].items()]
    if errs:
        lines += ["", "Errors (no figure given):", *errs]
    if meta.get("notes"):
        lines += ["", *[f"- {n}" for n in meta["notes"]]]
    data = {"meta": meta, "figures": b.figures, "samples": b.samples, "errors": b.errors,
            "ratios": {m: rt for m, _, _, rt in rows if rt}}
    return "\n".join(lines) + "\n", data


# ------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 MiB, 500 random reads")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results-<date>-crypt)")
    ap.add_argument("--size-mib", type=int, default=1024, help="sequential and random-read file size")
    ap.add_argument("--rand-reads", type=int, default=2000)
    ap.add_argument("--primitive-mib", type=int, default=64)
    ap.add_argument("--io-samples", type=int, default=2, help="runs of each plugin per measure (medians)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--volume-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra volume option for both plugins (diagnosis, e.g. vfs-read-wait=0)")
    ap.add_argument("--plugin-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument for both plugins' serve docker (diagnosis, e.g. --buffer-size=0)")
    ap.add_argument("--debug-logs", action="store_true", help="run both plugins with -vv; their logs go to --out")
    ap.add_argument("--profile", action="store_true", help="sample ours' stacks; folded files per step in --out")
    ap.add_argument("--rev", help="measure this commit of --src (git archive), not its working tree")
    ap.add_argument("--src", type=Path, default=REPO, help="the source tree of ours (default: this one)")
    args = ap.parse_args()
    args.volume_opt = dict(o.split("=", 1) for o in args.volume_opt)
    if args.quick:
        given = set(sys.argv)
        for opt, value in (("--size-mib", 64), ("--rand-reads", 500), ("--io-samples", 1)):
            if opt not in given:
                setattr(args, opt[2:].replace("-", "_"), value)
    args.out = args.out or REPO / "bench" / f"results-{time.strftime('%Y-%m-%d')}-crypt{'-quick' * args.quick}"
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        print("needs root (FUSE, drop_caches)", file=sys.stderr)
        return 1
    try:
        rclone = rclone_binary()
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    import Cryptodome

    rclone_line = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    root = Path(tempfile.mkdtemp(prefix="pycbench-crypt-", dir="/var/tmp"))
    t_start = time.monotonic()
    meta: dict[str, Any] = {
        "started": time.strftime("%F %T %Z"), "host": os.uname().nodename, "kernel": os.uname().release,
        "cpus": os.cpu_count(), "python": sys.version.split()[0], "cryptodome": Cryptodome.__version__,
        "rclone": rclone_line, "rclone_binary": rclone, "argv": sys.argv[1:], "size_mib": args.size_mib,
        "rand_reads": args.rand_reads, "primitive_mib": args.primitive_mib, "io_samples": args.io_samples,
        "volume_opt": args.volume_opt, "tree": git_describe(args.src), "notes": []}
    describe = subprocess.run(["git", "-C", str(args.src), "describe", "--always", "--dirty", "--tags"],
                              capture_output=True, text=True).stdout.strip()
    meta["git_describe"] = describe
    plugins: list[Plugin] = []
    b: Bench | None = None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        code = code_of(args, root / "code", meta)
        plugins = [Plugin("pyclone", root, code=code), Plugin("rclone", root, rclone=rclone)]
        extra = [*args.plugin_arg, *(["-vv"] if args.debug_logs else [])]
        if extra:
            meta["plugin_args"] = extra
            for p in plugins:
                p.command = (lambda c: lambda: [*c(), *extra])(p.command)  # type: ignore[method-assign]
        if args.profile:
            profiled(plugins[0], args.out)
        obscured = obscure("bench-" + secrets.token_urlsafe(12))
        src_dir, plain = root / "source", root / "plain.bin"
        src_dir.mkdir()
        rc = Rclone(rclone, root, src_dir, obscured)
        log(f"crypt bench in {root}: pyclone {describe} vs {rclone_line}")
        subprocess.run(["dd", "if=/dev/urandom", f"of={plain}", "bs=1M", f"count={args.size_mib}"], check=True,
                       capture_output=True)
        rc.run("copyto", str(plain), "secret:src.bin")
        source = src_dir / rc.encrypted_name("src.bin")
        if source.stat().st_size != encrypted_size(args.size_mib * MIB):
            raise BenchError(f"rclone wrote {source.stat().st_size} bytes of ciphertext")
        b = Bench(args, root, plugins, rc, obscured, source, plain)
        b.notes = meta["notes"]  # the notes the steps add go to the report
        if "primitive" in args.steps:
            log("the primitive (ours in-process, rclone's CLI)")
            b.phase_primitive(code)
        for p in plugins:
            p.start()
        turn = 0
        if "io" in args.steps:
            for mode in args.modes:
                log(f"sequential I/O mode {mode}")
                b.phase_io(mode, turn)
                turn += 1
        if "rand" in args.steps:
            log("random 4 KiB reads")
            b.phase_rand(turn)
        left = [x.name for d in b.dirs.values() for x in d.iterdir()]
        if left:
            meta["notes"].append(f"left in the volume directories after the run: {left[:6]}")
    finally:
        for p in plugins:
            p.stop()
            if args.debug_logs:
                shutil.copy(p.log, args.out / f"{p.label}-plugin.log")
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
