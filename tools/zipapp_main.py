# ruff: noqa: E402, UP036
"""Bootstrap of the pyclone-docker zipapp (copied in as __main__.py by build_zipapp.py).

Pure-Python code imports straight from the zip. pycryptodomex's native modules cannot load
from a zip, so the first `import Cryptodome` unpacks them (and only them) once into a
versioned cache dir, checked against the hashes recorded at build time. Plugins that never
touch crypto never unpack anything.
"""

import os
import sys

BUILD = {}  # replaced by build_zipapp.py: arch, version, build_id, native file hashes

if sys.version_info < (3, 10):
    sys.exit("pyclone-docker needs Python >= 3.10; this is " + sys.version.split()[0])


def _interpreter_arch():
    """The architecture of this Python, not of the kernel: a 32-bit userland on a 64-bit
    ARM kernel says aarch64 in uname but needs the armv7 build."""
    import struct

    bits = struct.calcsize("P") * 8
    machine = os.uname().machine
    if bits == 64 and machine in ("x86_64", "amd64"):
        return "amd64"
    if bits == 64 and machine in ("aarch64", "arm64"):
        return "arm64"
    if bits == 32 and (machine.startswith("armv7") or machine in ("armv8l", "aarch64", "arm64")):
        return "armv7"
    return f"{machine} ({bits}-bit)"


_arch = _interpreter_arch()
if _arch != BUILD["arch"]:
    sys.exit(f"pyclone-docker: this is the {BUILD['arch']} build, but this Python is {_arch}: "
             f"use pyclone-docker-{_arch}.pyz (ARMv6 boards are not supported)")

if sys.argv[1:2] == ["version"] and len(sys.argv) == 2:
    # fast path: nothing else imported
    print(f"pyclone-docker v{BUILD['version']} ({BUILD['arch']} zipapp, python {sys.version.split()[0]})")
    sys.exit(0)

def _cache_root():
    env = os.environ.get("PYCLONE_NATIVE_CACHE")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/cache/pyclone-docker"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyclone-docker")


def _unpack_native():
    """Unpack _native/ once per build; concurrent first starts race safely via rename()."""
    import hashlib
    import shutil
    import zipfile

    root = _cache_root()
    target = os.path.join(root, BUILD["build_id"])
    if os.path.exists(os.path.join(target, ".complete")):
        return target
    tmp = None
    try:
        os.makedirs(root, mode=0o755, exist_ok=True)
        tmp = os.path.join(root, f".tmp-{BUILD['build_id']}-{os.getpid()}-{os.urandom(4).hex()}")
        os.mkdir(tmp, 0o755)
        with zipfile.ZipFile(os.path.dirname(__file__)) as zf:
            for name, digest in BUILD["native"].items():
                data = zf.read(name)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise OSError(f"{name} in the zipapp does not match its build hash (damaged file?)")
                dest = os.path.join(tmp, name[len("_native/"):])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(data)
        open(os.path.join(tmp, ".complete"), "w").close()
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.exists(os.path.join(target, ".complete")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another start won the race
        tmp = None
        return target
    except OSError as e:
        sys.exit(f"pyclone-docker: cannot unpack its native crypto modules into {root}: {e}. "
                 "Set PYCLONE_NATIVE_CACHE to a writable directory.")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class _NativeFinder:
    """Finds Cryptodome in the unpacked cache dir, unpacking it on first import."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "Cryptodome":
            return None
        from importlib.machinery import PathFinder

        directory = _unpack_native()
        sys.meta_path.remove(cls)
        sys.path.insert(1, directory)
        return PathFinder.find_spec(name, [directory])


class _CodeLoader:
    """Loads one of the archive's modules from its compiled code kept in the cache dir, or
    compiles it (once per build and Python version) and keeps it there. zipimport reads only
    sources from a zip built for every Python >= 3.10, so without this every start compiled
    every module again: ~120 ms here, seconds on a Pi."""

    def __init__(self, fullname, rel, is_pkg, cache):
        self.fullname, self.rel, self.is_pkg, self.cache = fullname, rel, is_pkg, cache
        self.origin = os.path.join(_CodeFinder.archive, rel)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.get_code(self.fullname), module.__dict__)

    def get_code(self, fullname):
        import marshal

        path = None if self.cache is None else os.path.join(self.cache, fullname + ".code")
        if path is not None:
            try:
                with open(path, "rb") as f:
                    return marshal.loads(f.read())
            except (OSError, ValueError, EOFError, TypeError):
                pass
        code = compile(_CodeFinder.zip().get_data(self.rel), self.origin, "exec", dont_inherit=True)
        if path is not None:
            tmp = f"{path}.{os.getpid()}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(marshal.dumps(code))
                os.replace(tmp, path)
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return code

    def get_source(self, fullname):
        return _CodeFinder.zip().get_data(self.rel).decode("utf-8")

    def is_package(self, fullname):
        return self.is_pkg

    def get_filename(self, fullname):
        return self.origin

    def get_data(self, path):
        return _CodeFinder.zip().get_data(path)

    def get_resource_reader(self, fullname):
        import zipimport

        package_dir = os.path.dirname(self.origin) if self.is_pkg else os.path.dirname(os.path.dirname(self.origin))
        return zipimport.zipimporter(package_dir + os.sep).get_resource_reader(fullname)


class _CodeFinder:
    """The archive's pure-Python modules (BUILD["modules"], the index build_zipapp.py wrote),
    with their compiled code cached (see _CodeLoader). Specs are made from the index, not by
    zipimport, whose find_spec compiles the module's source to answer get_filename."""

    archive = os.path.dirname(os.path.abspath(__file__))
    modules = BUILD.get("modules", {})
    _zip = None
    cache = False  # not looked at yet

    @classmethod
    def zip(cls):
        if cls._zip is None:
            import zipimport

            cls._zip = zipimport.zipimporter(cls.archive)
        return cls._zip

    @classmethod
    def _cache_dir(cls):
        if cls.cache is False:
            cls.cache = None
            try:
                d = os.path.join(_cache_root(), f"code-{BUILD['code_id']}-{sys.implementation.cache_tag}")
                os.makedirs(d, mode=0o755, exist_ok=True)
                st = os.stat(d)
                # code run as root must come from a directory only root can write
                if os.geteuid() != 0 or (st.st_uid == 0 and not st.st_mode & 0o022):
                    cls.cache = d
            except (OSError, KeyError):
                pass
        return cls.cache

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        kind = cls.modules.get(name)
        if kind is None:
            return None
        from importlib.machinery import ModuleSpec

        base = name.replace(".", "/")
        rel = base + ("/__init__.py" if kind else ".py")
        loader = _CodeLoader(name, rel, bool(kind), cls._cache_dir())
        spec = ModuleSpec(name, loader, origin=loader.origin, is_package=bool(kind))
        if kind:
            spec.submodule_search_locations = [os.path.join(cls.archive, base)]
        spec.has_location = True
        return spec


sys.meta_path.insert(0, _CodeFinder)
sys.meta_path.insert(0, _NativeFinder)

if sys.argv[1:2] == ["askpass"]:
    # ssh's password helper (lib/askpass.py): fast, no native modules, nothing else imported
    from pyclone_docker.lib.askpass import client_main

    sys.exit(client_main(sys.argv[2:]))

if sys.argv[1:2] == ["proxy-connect"]:
    # ssh's ProxyCommand through a SOCKS5 or HTTP proxy (lib/proxyconnect.py)
    from pyclone_docker.lib.proxyconnect import main as _proxy_main

    sys.exit(_proxy_main(sys.argv[2:]))

from pyclone_docker.cli import main

sys.exit(main())
