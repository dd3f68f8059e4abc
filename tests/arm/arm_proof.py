#!/usr/bin/env python3
"""Proof per architecture: run each foreign .pyz in a Debian chroot under qemu-user-static.

For every chroot (bookworm arm64, bookworm armhf, trixie armhf with 64-bit time_t; forky
armhf with --only), made with debootstrap when missing: `version`, the crypto `selftest`, the plugin API on a
socket (Activate, Create, List, Mount), and a FUSE mount checked from the host: sizes,
contents and nanosecond mtimes both ways, with libfuse 3 and libfuse 2.

    sudo python3 tests/arm/arm_proof.py [--chroots DIR] [--only bookworm-armhf]

Prints PASS/FAIL per check and exits non-zero on any failure. Needs root,
qemu-user-static, binfmt-support, debootstrap and the built dist/*.pyz.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# name: (suite, Debian arch, zipapp arch, the suite's libfuse packages)
CHROOTS = {
    "bookworm-arm64": ("bookworm", "arm64", "arm64", "libfuse3-3,libfuse2"),
    "bookworm-armhf": ("bookworm", "armhf", "armv7", "libfuse3-3,libfuse2"),
    "trixie-armhf": ("trixie", "armhf", "armv7", "libfuse3-4,libfuse2t64"),  # 64-bit time_t
    # testing: also 64-bit time_t, Python 3.14; libfuse2 is gone there
    "forky-armhf": ("forky", "armhf", "armv7", "libfuse3-4"),
}
DEFAULT = ["bookworm-arm64", "bookworm-armhf", "trixie-armhf"]
MIRROR = "http://deb.debian.org/debian"
failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"  {'PASS' if ok else 'FAIL'} {name}{(': ' + detail) if detail and not ok else ''}", flush=True)
    if not ok:
        failures.append(name)
    return ok


def sh(*cmd: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)


def ensure_binfmt() -> None:
    if not os.path.exists("/proc/sys/fs/binfmt_misc/status"):
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc")
    for name in ("qemu-arm", "qemu-aarch64"):
        sh("update-binfmts", "--enable", name)


def ensure_chroot(root: Path, suite: str, arch: str, fuse_libs: str) -> None:
    if (root / "usr/bin/python3").exists():
        return
    print(f"  bootstrapping {suite} {arch} (a few minutes)...", flush=True)
    include = f"--include=python3,fuse3,{fuse_libs}"
    if shutil.which("mmdebstrap"):
        # apt copes with mirrors that serve testing's expired Release files
        res = sh("mmdebstrap", "--aptopt=Acquire::Check-Valid-Until \"false\"", f"--arch={arch}",
                 "--variant=minbase", include, suite, str(root), MIRROR, timeout=1800)
    else:
        res = sh("debootstrap", f"--arch={arch}", "--variant=minbase", include, suite, str(root), MIRROR,
                 timeout=1800)
    if res.returncode:
        raise RuntimeError(f"debootstrap failed: {res.stdout[-2000:]}{res.stderr[-2000:]}")


def bind_mounts(root: Path) -> list[Path]:
    done = []
    for d in ("dev", "proc", "sys"):
        target = root / d
        target.mkdir(exist_ok=True)
        if sh("mountpoint", "-q", str(target)).returncode:
            sh("mount", "--rbind" if d != "proc" else "--bind", f"/{d}", str(target))
        done.append(target)
    return done


def unbind(paths: list[Path]) -> None:
    for p in reversed(paths):
        sh("umount", "-l", str(p))


def call(sock: str, endpoint: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("localhost", timeout=120)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.settimeout(120)
    conn.sock.connect(sock)
    conn.request("POST", "/" + endpoint, json.dumps(body))
    out = json.loads(conn.getresponse().read() or b"{}")
    conn.close()
    return out


def prove_plugin(root: Path, pyz_in: str, fuse_name: str) -> None:
    work = root / "tmp/proof"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    host_sock = str(work / "arm.sock")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FUSE_LIBRARY_NAME": fuse_name, "HOME": "/root"}
    proc = subprocess.Popen(["chroot", str(root), "python3", pyz_in, "serve", "docker", "-vv",
                             "--socket-addr", "/tmp/proof/arm.sock", "--base-dir", "/tmp/proof/base",
                             "--cache-dir", "/tmp/proof/cache"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(host_sock) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        if not check(f"[{fuse_name}] plugin serves its socket", os.path.exists(host_sock)):
            return
        check(f"[{fuse_name}] Activate", call(host_sock, "Plugin.Activate", {}) == {"Implements": ["VolumeDriver"]})
        r = call(host_sock, "VolumeDriver.Create", {"Name": "v", "Opts": {"type": "local", "path": "/tmp/proof/data"}})
        check(f"[{fuse_name}] Create", not r.get("Err"), str(r))
        lst = call(host_sock, "VolumeDriver.List", {})
        check(f"[{fuse_name}] List", [v["Name"] for v in lst.get("Volumes", [])] == ["v"], str(lst))
        r = call(host_sock, "VolumeDriver.Mount", {"Name": "v", "ID": "proof"})
        if not check(f"[{fuse_name}] Mount", bool(r.get("Mountpoint")), str(r)):
            return
        mp = root / r["Mountpoint"].lstrip("/")
        payload = os.urandom(123_457)
        (mp / "through-mount.bin").write_bytes(payload)
        st_backend = os.stat(work / "data" / "through-mount.bin")
        check(f"[{fuse_name}] write through the mount reaches the backend", st_backend.st_size == len(payload)
              and (work / "data" / "through-mount.bin").read_bytes() == payload)
        (work / "data" / "from-backend.txt").write_bytes(b"x" * 4321)
        os.utime(work / "data" / "from-backend.txt", ns=(1614834367_123456789, 1614834367_123456789))
        call(host_sock, "VolumeDriver.Unmount", {"Name": "v", "ID": "proof"})
        r = call(host_sock, "VolumeDriver.Mount", {"Name": "v", "ID": "proof2"})  # fresh directory cache
        st = os.stat(mp / "from-backend.txt")
        check(f"[{fuse_name}] size through the mount (struct stat layout)", st.st_size == 4321, str(st))
        check(f"[{fuse_name}] mtime through the mount, to the nanosecond", st.st_mtime_ns == 1614834367_123456789,
              str(st.st_mtime_ns))
        os.utime(mp / "through-mount.bin", ns=(1641092645_500000000, 1641092645_500000000))
        check(f"[{fuse_name}] utimens through the mount", os.stat(work / "data" / "through-mount.bin").st_mtime_ns
              == 1641092645_500000000)
        call(host_sock, "VolumeDriver.Unmount", {"Name": "v", "ID": "proof2"})
        call(host_sock, "VolumeDriver.Remove", {"Name": "v"})
        # cache mode full: the disk cache, and on libfuse3 the passthrough reply hook (INIT and
        # OPEN replies; qemu-user refuses the passthrough ioctl, so files stay on the plugin)
        r = call(host_sock, "VolumeDriver.Create", {"Name": "vf", "Opts": {
            "type": "local", "path": "/tmp/proof/data", "vfs-cache-mode": "full"}})
        r = call(host_sock, "VolumeDriver.Mount", {"Name": "vf", "ID": "proof3"})
        if check(f"[{fuse_name}] Mount in cache mode full", bool(r.get("Mountpoint")), str(r)):
            mpf = root / r["Mountpoint"].lstrip("/")
            blob = os.urandom(300_001)
            (mpf / "cached.bin").write_bytes(blob)
            check(f"[{fuse_name}] cache mode full: written, then read back",
                  (mpf / "cached.bin").read_bytes() == blob and os.stat(mpf / "cached.bin").st_size == len(blob))
            call(host_sock, "VolumeDriver.Unmount", {"Name": "vf", "ID": "proof3"})
            check(f"[{fuse_name}] cache mode full: uploaded by the unmount",
                  (work / "data" / "cached.bin").read_bytes() == blob)
        call(host_sock, "VolumeDriver.Remove", {"Name": "vf"})
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        check(f"[{fuse_name}] plugin stops on SIGTERM", proc.returncode == 0, out[-1500:])
        check(f"[{fuse_name}] no traceback or ERROR in the plugin's output",
              "Traceback" not in out and " ERROR " not in out, out[-1500:])
        if fuse_name == "fuse3":  # libfuse 2 has no custom io: nothing to find
            check(f"[{fuse_name}] passthrough reply hook finds libfuse's io (struct layout)",
                  "reply hook installed (switched off between replies)" in out,
                  "".join(line + "\n" for line in out.splitlines() if "passthrough" in line))
        left = [line for line in open("/proc/self/mountinfo") if str(work) in line]
        check(f"[{fuse_name}] no mount left behind", not left, "".join(left))
        for line in left:
            sh("umount", "-l", line.split()[4])


def prove(name: str, base: Path) -> None:
    suite, arch, pyz_arch, fuse_libs = CHROOTS[name]
    root = base / name
    print(f"== {name} ({pyz_arch} zipapp)", flush=True)
    ensure_chroot(root, suite, arch, fuse_libs)
    binds = bind_mounts(root)
    try:
        pyz = REPO / "dist" / f"pyclone-docker-{pyz_arch}.pyz"
        shutil.copy(pyz, root / "opt/pyclone-docker.pyz")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
        pyver = sh("chroot", str(root), "python3", "--version", env=env).stdout.strip()
        res = sh("chroot", str(root), "python3", "/opt/pyclone-docker.pyz", "version", env=env)
        check(f"version ({pyver})", res.returncode == 0 and f"{pyz_arch} zipapp" in res.stdout,
              res.stdout + res.stderr)
        t0 = time.monotonic()
        res = sh("chroot", str(root), "python3", "/opt/pyclone-docker.pyz", "selftest", env=env)
        check(f"selftest under qemu ({time.monotonic() - t0:.1f}s): {res.stdout.strip().splitlines()[-1:]}",
              res.returncode == 0 and "6 passed, 0 failed" in res.stdout, res.stdout + res.stderr)
        libs = {"fuse3": "libfuse3.so.3*", "fuse": "libfuse.so.2*"}
        for fuse_name, pattern in libs.items():
            if list(root.glob(f"usr/lib/*/{pattern}")):
                prove_plugin(root, "/opt/pyclone-docker.pyz", fuse_name)
            else:
                print(f"  skip [{fuse_name}]: not installed in this chroot", flush=True)
    finally:
        unbind(binds)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chroots", default=os.environ.get("ARM_CHROOT_DIR", "/var/tmp/pyclone-chroots"))
    ap.add_argument("--only", action="append", choices=list(CHROOTS))
    args = ap.parse_args()
    ensure_binfmt()
    base = Path(args.chroots)
    base.mkdir(parents=True, exist_ok=True)
    for name in args.only or DEFAULT:
        try:
            prove(name, base)
        except Exception as e:  # report it and go on with the next chroot
            check(f"{name}: {e}", False)
    print(f"\n{'ALL PASSED' if not failures else 'FAILED: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
