#!/usr/bin/env python3
"""Cross-compile pycryptodomex's native modules for ARMv7 (armhf) from its pinned sdist.

PyPI has no armv7 wheel. The C sources use no Python C-API on Linux, so one build serves
every Python version; Debian's gcc-arm-linux-gnueabihf builds them. The sdist's own
setup.py and compiler_opt.py decide the modules and feature macros (probing the cross
compiler), with one correction: they take the word size (SYS_BITS) from the host Python,
which is 64-bit here, and must be told 32 (else its 32-bit ARM modules get 64-bit word macros).

    python3 tools/cross_build_cryptodome.py --sdist pycryptodomex-X.tar.gz --out DIR

Writes DIR/Cryptodome/<package>/<module>.abi3.so, the wheel's own names. Deterministic:
no debug info, no build id, sources compiled from a fixed path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

CC = "arm-linux-gnueabihf-gcc"
ARCH_FLAGS = ["-march=armv7-a", "-mfpu=vfpv3-d16", "-mfloat-abi=hard"]
X86_ONLY = ("_raw_aesni", "_ghash_clmul")
BUILD_ROOT = "/tmp/pyclone-cross-cryptodome"  # fixed path: keeps any embedded paths identical


def load_extensions(src: Path) -> list:
    """Run the sdist's setup.py with setup() stubbed, as the cross compiler sees it."""
    import struct as real_struct

    sys.path.insert(0, str(src))
    os.chdir(src)
    import compiler_opt  # the sdist's module

    fake = types.SimpleNamespace(**{k: getattr(real_struct, k) for k in dir(real_struct) if not k.startswith("__")})
    fake.calcsize = lambda fmt: 4 if fmt == "P" else real_struct.calcsize(fmt)  # SYS_BITS=32
    compiler_opt.struct = fake
    import setuptools

    setuptools.setup = lambda **kw: None
    scope: dict = {"__name__": "__main__", "__file__": str(src / "setup.py")}
    argv, sys.argv = sys.argv, ["setup.py", "build_ext"]
    try:
        exec(compile((src / "setup.py").read_text(), "setup.py", "exec"), scope)
    finally:
        sys.argv = argv
    return scope["ext_modules"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdist", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if shutil.which(CC) is None:
        sys.exit(f"{CC} not found: apt-get install gcc-arm-linux-gnueabihf")
    out = Path(args.out).resolve()
    sdist = Path(args.sdist).resolve()
    shutil.rmtree(BUILD_ROOT, ignore_errors=True)
    os.makedirs(BUILD_ROOT)
    with tarfile.open(sdist) as tf:
        tf.extractall(BUILD_ROOT, filter="data") if hasattr(tarfile, "data_filter") else tf.extractall(BUILD_ROOT)
    src = next(Path(BUILD_ROOT).iterdir())
    env_cc = os.environ.get("CC")
    os.environ["CC"] = CC  # compiler_opt's probes use the cross compiler
    try:
        exts = load_extensions(src)
    finally:
        if env_cc is None:
            os.environ.pop("CC", None)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for ext in exts:
            if ext.name.rsplit(".", 1)[-1] in X86_ONLY:
                continue
            macros = []
            for name, value in ext.define_macros:
                if name == "SYS_BITS":
                    value = "32"
                macros.append(f"-D{name}" if value is None else f"-D{name}={value}")
            flags = [f for f in ext.extra_compile_args if not f.startswith(("-msse", "-maes", "-mpclmul"))]
            target = out / (ext.name.replace(".", "/") + ".abi3.so")
            target.parent.mkdir(parents=True, exist_ok=True)
            cmd = [CC, *ARCH_FLAGS, "-O2", "-g0", "-fPIC", "-shared", "-fno-strict-aliasing",
                   f"-ffile-prefix-map={BUILD_ROOT}=.", "-Wl,--build-id=none", "-Wl,-s",
                   *macros, *[f"-I{d}" for d in ext.include_dirs], *flags,
                   *ext.sources, "-o", str(Path(tmp) / "m.so")]
            subprocess.run(cmd, check=True, cwd=src)
            shutil.copyfile(Path(tmp) / "m.so", target)
            count += 1
    shutil.rmtree(BUILD_ROOT, ignore_errors=True)
    print(f"built {count} armv7 modules into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
