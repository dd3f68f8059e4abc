#!/usr/bin/env python3
"""Is an mmap read path worth it for the cache? Serve FUSE-sized reads from a cached file
into a caller's buffer (as read_into does for libfuse's buffer), both ways (each checked to
have read the whole file):

- pread: os.preadv(fd, [view], off) - the kernel copies page cache -> buffer;
- mmap:  bounded windows (default 8 MiB, 32-bit safe), view[:] = window[a:b] - one memcpy
         from the mapping, plus the cost of mapping/unmapping windows.

    python3 bench/mmap_vs_pread.py [--size-mib 1024] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import mmap
import os
import tempfile
import time


def run(path: str, size: int, chunk: int, window: int) -> tuple[float, float]:
    fd = os.open(path, os.O_RDONLY)
    buf = bytearray(chunk)
    view = memoryview(buf)
    got = 0
    t0 = time.perf_counter()
    for off in range(0, size, chunk):
        got += os.preadv(fd, [view], off)
    pread_s = time.perf_counter() - t0
    if got != size:  # a short read is an error, never a figure
        raise SystemExit(f"pread read {got} of {size} bytes of {path}")
    got = 0
    t0 = time.perf_counter()
    for base in range(0, size, window):
        length = min(window, size - base)
        with mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=base) as mm:
            for off in range(0, length, chunk):
                piece = mm[off:off + chunk]
                view[:len(piece)] = piece
                got += len(piece)
    mmap_s = time.perf_counter() - t0
    os.close(fd)
    if got != size:
        raise SystemExit(f"mmap read {got} of {size} bytes of {path}")
    mib = size / (1 << 20)
    return mib / pread_s * 1.048576, mib / mmap_s * 1.048576


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    size = args.size_mib << 20
    fd, path = tempfile.mkstemp(dir=args.dir)
    block = os.urandom(1 << 20)
    for _ in range(args.size_mib):
        os.write(fd, block)
    os.close(fd)
    try:
        run(path, size, 1 << 20, 8 << 20)  # warm the page cache
        print(f"{'request':>8} {'pread MB/s':>11} {'mmap MB/s':>10} {'mmap/pread':>11}")
        for chunk in (4 << 10, 128 << 10, 1 << 20):
            results = [run(path, size, chunk, 8 << 20) for _ in range(3)]
            p = sorted(r[0] for r in results)[1]
            m = sorted(r[1] for r in results)[1]
            print(f"{chunk >> 10:>6}Ki {p:>11.0f} {m:>10.0f} {m / p:>10.2f}x")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
