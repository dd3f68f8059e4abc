#!/usr/bin/env python3
"""Build one self-contained zipapp per architecture: dist/pyclone-docker-{amd64,arm64,armv7}.pyz.

Each holds the package (with the vendored FUSE binding), urllib3, and that architecture's
pycryptodomex. Wheels come from PyPI pinned by version and sha256 (zipapp.lock.json);
armv7 has no wheel on PyPI, so its native modules are cross-compiled from the pinned sdist
(tools/cross_build_cryptodome.py). Same inputs give a byte-identical .pyz: fixed
timestamps and permissions, sorted entries, stripped shared objects.

    python3 build_zipapp.py [--arch amd64 --arch arm64 --arch armv7] [--out dist]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
LOCK = REPO / "zipapp.lock.json"
CACHE = REPO / "build" / "wheels"
ARCHES = ("amd64", "arm64", "armv7")
STRIP = {"amd64": "strip", "arm64": "aarch64-linux-gnu-strip", "armv7": "arm-linux-gnueabihf-strip"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_warned: set[str] = set()
# not needed at run time: tests, type stubs, platform code for browsers
SKIP_PARTS = ("/SelfTest/", "/tests/", "/contrib/emscripten/", "__pycache__")
SKIP_SUFFIXES = (".pyi", ".pyc", "py.typed", ".c", ".h")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(entry: dict[str, str]) -> Path:
    """A pinned wheel or sdist from PyPI (cached under build/wheels), hash-checked."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / entry["file"]
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE),
               f"{entry['name']}=={entry['version']}"]
        if entry.get("platform"):
            cmd += ["--only-binary", ":all:", "--platform", entry["platform"], "--python-version", "3.10",
                    "--implementation", "cp"]
        elif entry["file"].endswith(".tar.gz"):
            cmd += ["--no-binary", ":all:"]
        else:
            cmd += ["--only-binary", ":all:"]
        subprocess.run(cmd, check=True)
    digest = sha256(path.read_bytes())
    if digest != entry["sha256"]:
        raise SystemExit(f"{path.name}: sha256 {digest} does not match the pinned {entry['sha256']}")
    return path


def wheel_files(path: Path, top: str) -> dict[str, bytes]:
    out = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith(top + "/") and not skipped(name):
                out[name] = zf.read(name)
    return out


def skipped(name: str) -> bool:
    return any(p in "/" + name for p in SKIP_PARTS) or name.endswith(SKIP_SUFFIXES) or name.endswith("/")


def package_files() -> dict[str, bytes]:
    out = {}
    for path in sorted((REPO / "pyclone_docker").rglob("*")):
        rel = path.relative_to(REPO).as_posix()
        if path.is_file() and not skipped(rel):
            out[rel] = path.read_bytes()
    return out


def strip(data: bytes, arch: str) -> bytes:
    tool = shutil.which(STRIP[arch])
    if tool is None:
        if arch not in _warned:
            _warned.add(arch)
            print(f"warning: {STRIP[arch]} not found; {arch} shared objects stay unstripped", file=sys.stderr)
        return data
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        subprocess.run([tool, "--strip-unneeded", f.name], check=True)
        return Path(f.name).read_bytes()


def crypto_files(arch: str, lock: dict) -> dict[str, bytes]:
    """Cryptodome's .py files (the same on every arch) and this arch's stripped .so files."""
    py_wheel = wheel_files(fetch(lock["pycryptodomex"]["amd64"]), "Cryptodome")
    files = {n: d for n, d in py_wheel.items() if not n.endswith(".so")}
    if arch == "armv7":
        natives = cross_built(lock)
    else:
        natives = {n: d for n, d in wheel_files(fetch(lock["pycryptodomex"][arch]), "Cryptodome").items()
                   if n.endswith(".so")}
    for name, data in natives.items():
        files[name] = strip(data, arch)
    return files


def cross_built(lock: dict) -> dict[str, bytes]:
    sdist = fetch(lock["pycryptodomex"]["sdist"])
    out_dir = REPO / "build" / "native-armv7"
    stamp = out_dir / ".sdist-sha256"
    if not stamp.exists() or stamp.read_text() != lock["pycryptodomex"]["sdist"]["sha256"]:
        shutil.rmtree(out_dir, ignore_errors=True)
        subprocess.run([sys.executable, str(REPO / "tools" / "cross_build_cryptodome.py"),
                        "--sdist", str(sdist), "--out", str(out_dir)], check=True)
        stamp.write_text(lock["pycryptodomex"]["sdist"]["sha256"])
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*.so"))}


def build(arch: str, out: Path, lock: dict) -> Path:
    from pyclone_docker import __version__

    pure = package_files()
    pure.update(wheel_files(fetch(lock["urllib3"]), "urllib3"))
    native = {"_native/" + n: d for n, d in crypto_files(arch, lock).items()}
    hashes = {n: sha256(d) for n, d in sorted(native.items())}
    build_id = sha256(json.dumps([arch, __version__, sorted(hashes.items())]).encode())[:16]
    # names the compiled-code cache (tools/zipapp_main.py): any change to a module is a new one
    code_id = sha256(json.dumps(sorted((n, sha256(d)) for n, d in pure.items())).encode())[:16]
    # the importable modules (1: a package), so the bootstrap makes their specs itself
    modules = {}
    for name in pure:
        if name.endswith(".py"):
            package = name.endswith("/__init__.py")
            modules[(name.rpartition("/")[0] if package else name[:-3]).replace("/", ".")] = int(package)
    meta = {"arch": arch, "version": __version__, "build_id": f"{__version__}-{arch}-{build_id}",
            "native": hashes, "code_id": code_id, "modules": modules}
    boot = (REPO / "tools" / "zipapp_main.py").read_text()
    boot = boot.replace("BUILD = {}  # replaced by build_zipapp.py: arch, version, build_id, native file hashes",
                        "BUILD = " + json.dumps(meta, sort_keys=True))
    entries = {"__main__.py": boot.encode(), **pure, **native}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name], compresslevel=9)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"pyclone-docker-{arch}.pyz"
    target.write_bytes(b"#!/usr/bin/env python3\n" + buf.getvalue())
    target.chmod(0o755)
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", action="append", choices=ARCHES)
    ap.add_argument("--out", default=str(REPO / "dist"))
    args = ap.parse_args()
    lock = json.loads(LOCK.read_text())
    sys.path.insert(0, str(REPO))
    for arch in args.arch or ARCHES:
        path = build(arch, Path(args.out), lock)
        print(f"{path}  {path.stat().st_size:,} bytes  sha256 {sha256(path.read_bytes())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
