"""In-process figures for ours' crypt read path: 1 GiB ciphertext, page cache dropped per run."""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, "/work/main")
from pyclone_docker.crypt import contents as fmt

KEY = bytes(range(32))
PATH = "/var/tmp/cryptprof_helper/c.bin"
MIB = 1 << 20
SIZE = 1024 * MIB
B = fmt.BLOCK_SIZE


def make():
    if os.path.exists(PATH) and os.path.getsize(PATH) == fmt.HEADER_SIZE + (SIZE // fmt.BLOCK_DATA) * B:
        return
    enc = fmt.Encrypter(KEY)
    chunk = os.urandom(MIB)
    with open(PATH, "wb") as f:
        f.write(enc.header())
        for _ in range(SIZE // MIB):
            enc.write(memoryview(chunk), f.write)
        enc.finish(f.write)


def drop():
    os.sync()
    open("/proc/sys/vm/drop_caches", "w").write("3\n")


def header():
    with open(PATH, "rb") as f:
        return f.read(fmt.HEADER_SIZE)


def run(name, fn, cold=True):
    if cold:
        drop()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    t, c = time.perf_counter() - t0, time.process_time() - c0
    print(f"{name:58s} {SIZE / 1e6 / t:7.0f} MB/s  wall {t:5.2f} s  cpu {c:5.2f} s", flush=True)


def raw_read():
    fd = os.open(PATH, os.O_RDONLY)
    buf = bytearray(B)
    v = memoryview(buf)
    os.lseek(fd, fmt.HEADER_SIZE, 0)
    while os.readv(fd, [v]):
        pass
    os.close(fd)


def serial(copies=True):
    """As now: read a block, decrypt it (fresh bytearray), copy into a 1 MiB block, copy 128 KiB out."""

    def f():
        dec = fmt.Decrypter(KEY, header())
        fd = os.open(PATH, os.O_RDONLY)
        os.lseek(fd, fmt.HEADER_SIZE, 0)
        buf = bytearray(B)
        v = memoryview(buf)
        big = bytearray(MIB)
        bv = memoryview(big)
        out = bytearray(128 << 10)
        ov = memoryview(out)
        i = 0
        fill = 0
        while True:
            n = os.readv(fd, [v])
            if not n:
                break
            plain = dec.decrypt_block(i, v[:n])
            i += 1
            if copies:
                bv[fill : fill + len(plain)] = plain
                fill += len(plain)
                if fill == MIB:
                    for o in range(0, MIB, 128 << 10):
                        ov[:] = bv[o : o + (128 << 10)]
                    fill = 0
        os.close(fd)

    return f


def decrypt_only_warm():
    data = open(PATH, "rb").read(64 * MIB + 4096 * 16)  # 1024 blocks, warm
    dec = fmt.Decrypter(KEY, data[:32])
    v = memoryview(data)[32:]
    out = bytearray(fmt.BLOCK_DATA)
    t0 = time.perf_counter()
    for _rep in range(16):
        for i in range(1024):
            dec.decrypt_block_into(i, v[i * B : (i + 1) * B], out)
    t = time.perf_counter() - t0
    print(f"{'decrypt only, warm, into one buffer (1 GiB)':58s} {SIZE / 1e6 / t:7.0f} MB/s  wall {t:5.2f} s")
    t0 = time.perf_counter()
    for _rep in range(16):
        for i in range(1024):
            dec.decrypt_block(i, v[i * B : (i + 1) * B])
    t = time.perf_counter() - t0
    print(f"{'decrypt only, warm, fresh bytearray per block':58s} {SIZE / 1e6 / t:7.0f} MB/s  wall {t:5.2f} s")
    big = bytearray(MIB)
    bv = memoryview(big)
    out128 = bytearray(128 << 10)
    ov = memoryview(out128)
    src = memoryview(out)
    t0 = time.perf_counter()
    for k in range(SIZE // fmt.BLOCK_DATA):
        o = (k % 16) * fmt.BLOCK_DATA
        bv[o : o + fmt.BLOCK_DATA] = src
        if k % 16 == 15:
            for o in range(0, MIB, 128 << 10):
                ov[:] = bv[o : o + (128 << 10)]
    t = time.perf_counter() - t0
    print(f"{'the two copies alone (64K->1M, 1M->128K), 1 GiB':58s} {SIZE / 1e6 / t:7.0f} MB/s  wall {t:5.2f} s")


def pipelined(workers):
    """A reader thread + `workers` decrypt threads (block k on worker k % workers), the consumer in order."""

    def f():
        dec = fmt.Decrypter(KEY, header())
        qs = [queue.Queue(8) for _ in range(workers)]
        outs = [queue.Queue(8) for _ in range(workers)]

        def reader():
            fd = os.open(PATH, os.O_RDONLY)
            os.lseek(fd, fmt.HEADER_SIZE, 0)
            k = 0
            while True:
                buf = bytearray(B)
                n = os.readv(fd, [memoryview(buf)])
                qs[k % workers].put((k, memoryview(buf)[:n] if n else None))
                k += 1
                if not n:
                    break
            for q in qs:
                q.put((k, None))
            os.close(fd)

        def worker(w):
            while True:
                k, blk = qs[w].get()
                if blk is None:
                    outs[w].put(None)
                    return
                out = bytearray(len(blk) - 16)
                dec.decrypt_block_into(k, blk, out)
                outs[w].put(out)

        ts = [threading.Thread(target=reader)] + [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
        for t in ts:
            t.start()
        big = bytearray(MIB)
        bv = memoryview(big)
        fill = 0
        k = 0
        while True:
            p = outs[k % workers].get()
            k += 1
            if p is None:
                break
            bv[fill : fill + len(p)] = p
            fill += len(p)
            if fill == MIB:
                fill = 0
        for t in ts:
            t.join()

    return f


make()
print(f"cpus {os.cpu_count()}, load {open('/proc/loadavg').read().split()[:3]}")
run("raw ciphertext read, 64 KiB readv, cold", raw_read)
run("serial read+decrypt+2 copies (as ReadAhead thread), cold", serial())
run("serial read+decrypt+2 copies, warm page cache", serial(), cold=False)
run("serial read+decrypt, no copies, warm", serial(False), cold=False)
decrypt_only_warm()
for w in (1, 2, 3):
    run(f"reader thread + {w} decrypt thread(s) + consumer copy, cold", pipelined(w))
    run(f"reader thread + {w} decrypt thread(s) + consumer copy, warm", pipelined(w), cold=False)
