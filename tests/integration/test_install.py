"""Installing the `pyclone-docker` command: `make install` puts it on PATH (a symlink to the
zipapp), `pip install .` (what pipx does, in a venv of its own) gives a console script.

Both are run for real: `make install DESTDIR=...` with the repository's Makefile and a zipapp
built from this tree, and pip into fresh venvs (pip fetches setuptools and the dependencies
from the package index). Each installed command is then used by name through PATH.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pyclone_docker

REPO = Path(__file__).resolve().parents[2]
VERSION = pyclone_docker.__version__
PASSWORD = "not-a-secret pw"


@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    """Overrides the suite's FUSE check: installing and running the command mounts nothing."""


def _arch() -> str:
    """The arch `make install` picks (the Makefile's ARCH)."""
    machine, bits = os.uname().machine, struct.calcsize("P") * 8
    return "amd64" if machine == "x86_64" else "arm64" if bits == 64 else "armv7"


def _pip_env() -> dict[str, str]:
    """pip keeps its configuration (index, certificates) but nothing points it at this tree."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX"):
        env.pop(name, None)
    return env


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, stdin: str | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def _check(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    r = _run(cmd, env=env, cwd=cwd, timeout=timeout)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def _use_command(bindir: Path, tmp: Path, version_text: str) -> None:
    """`pyclone-docker` found by name through PATH: version, --help, obscure/reveal, exit codes."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        # the interpreter running the tests stands for `python3` on PATH (the zipapp's shebang)
        "PATH": os.pathsep.join([str(bindir), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "PYCLONE_NATIVE_CACHE": str(tmp / "native-cache"),
    }
    assert shutil.which("pyclone-docker", path=env["PATH"]) == str(bindir / "pyclone-docker")
    cwd = tmp  # not the repository: nothing may import pyclone_docker from the source tree

    r = _run(["pyclone-docker", "version"], env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"pyclone-docker v{VERSION} "), r.stdout
    assert version_text in r.stdout

    r = _run(["pyclone-docker", "--help"], env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "pyclone-docker version" in r.stdout and "serve docker" in r.stdout

    # the README's $(pyclone-docker obscure ...), with the value on stdin rather than in argv
    r = _run(["pyclone-docker", "obscure", "-"], env=env, cwd=cwd, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    obscured = r.stdout.strip()
    assert obscured and obscured != PASSWORD
    r = _run(["pyclone-docker", "reveal", "-"], env=env, cwd=cwd, stdin=obscured + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PASSWORD + "\n"

    # main()'s return value is the exit status: 2 for a usage error, 1 without arguments
    r = _run(["pyclone-docker", "no-such-command"], env=env, cwd=cwd)
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = _run(["pyclone-docker", "reveal", "-"], env=env, cwd=cwd, stdin="!!not base64!!\n")
    assert r.returncode == 2, (r.stdout, r.stderr)
    r = _run(["pyclone-docker"], env=env, cwd=cwd)
    assert r.returncode == 1


# -- make install ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def make_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make install` reads (Makefile, units, README, dist/<arch>.pyz) in a directory of its
    own, the zipapp built from this tree (or $PYCLONE_PYZ): no stale or half-written dist/ file."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    src = tmp_path_factory.mktemp("make-src")
    shutil.copy2(REPO / "Makefile", src / "Makefile")
    shutil.copy2(REPO / "README.md", src / "README.md")
    shutil.copytree(REPO / "systemd", src / "systemd")
    (src / "pyclone_docker").mkdir()  # the Makefile lists the package's files for the zipapp rule
    dist = src / "dist"
    dist.mkdir()
    arch = _arch()
    given = os.environ.get("PYCLONE_PYZ")
    if given:
        shutil.copy2(given, dist / f"pyclone-docker-{arch}.pyz")
    else:
        subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "--arch", arch, "--out", str(dist)],
                       check=True, capture_output=True, timeout=600)
    return src


def _make(src: Path, target: str, destdir: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    _check(["make", "-C", str(src), target, f"DESTDIR={destdir}", f"PYTHON={sys.executable}"],
           env=env, cwd=src, timeout=120)


def test_make_install_puts_the_command_on_path(make_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "root"
    _make(make_tree, "install", dest)
    pyz = dest / "usr/local/lib/pyclone-docker/pyclone-docker.pyz"
    assert pyz.read_bytes() == (make_tree / "dist" / f"pyclone-docker-{_arch()}.pyz").read_bytes()
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n") and os.access(pyz, os.X_OK)
    for unit in ("pyclone-docker.service", "pyclone-docker.socket"):
        assert (dest / "etc/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()
    assert (dest / "usr/local/lib/pyclone-docker/README.md").is_file()

    command = dest / "usr/local/bin/pyclone-docker"
    # relative, so that it points into DESTDIR now and into /usr/local/lib once installed
    assert command.is_symlink() and os.readlink(command) == "../lib/pyclone-docker/pyclone-docker.pyz"
    assert command.resolve() == pyz.resolve()
    _use_command(command.parent, tmp_path, f"{_arch()} zipapp")

    # a second install over the first (an upgrade) keeps one working symlink
    _make(make_tree, "install", dest)
    assert command.is_symlink() and command.resolve() == pyz.resolve()
    assert sorted(p.name for p in command.parent.iterdir()) == ["pyclone-docker"]


def test_make_uninstall_removes_what_install_put(make_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "root"
    _make(make_tree, "install", dest)
    installed = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir() or p.is_symlink())
    assert "usr/local/bin/pyclone-docker" in installed and len(installed) == 5, installed
    _make(make_tree, "uninstall", dest)
    left = [str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir() or p.is_symlink()]
    assert left == []
    assert not (dest / "usr/local/lib/pyclone-docker").exists()


# -- pip install . ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def src_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What pip reads, copied: setuptools writes build/ and *.egg-info into the source directory."""
    src = tmp_path_factory.mktemp("pip-src")
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    shutil.copy2(REPO / "README.md", src / "README.md")
    shutil.copytree(REPO / "pyclone_docker", src / "pyclone_docker",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _requirements() -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines())
    return {line.replace(" ", "").lower() for line in lines if line}


def test_wheel_has_the_whole_package_and_the_right_metadata(src_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "wheels"
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src_copy)],
           env=_pip_env(), cwd=tmp_path)
    (wheel,) = out.glob("*.whl")
    assert wheel.name == f"pyclone_docker-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"pyclone_docker-{VERSION}.dist-info"
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    package = REPO / "pyclone_docker"
    sources = {str(p.relative_to(REPO)) for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert "pyclone_docker/_vendor/mfusepy.py" in sources and "pyclone_docker/_vendor/mfusepy.LICENSE" in sources
    assert sources <= names, sorted(sources - names)
    assert {n for n in names if not n.startswith(info)} == sources

    header = metadata.split("\n\n", 1)[0].splitlines()
    assert f"Version: {VERSION}" in header
    assert "Requires-Python: >=3.10" in header
    requires = {line.split(":", 1)[1].replace(" ", "").lower() for line in header if line.startswith("Requires-Dist:")}
    assert requires == _requirements()
    assert "[console_scripts]\npyclone-docker = pyclone_docker.cli:main" in entry_points


@pytest.mark.parametrize("isolation", ["build-isolation", "no-build-isolation"])
def test_pip_install_in_a_venv_gives_the_command(src_copy: Path, tmp_path: Path, isolation: str) -> None:
    venv = tmp_path / "venv"
    try:
        _pip_install_and_use(src_copy, tmp_path, venv, isolation)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~50 MB each


def _pip_install_and_use(src_copy: Path, tmp_path: Path, venv: Path, isolation: str) -> None:
    env = _pip_env()
    _check([sys.executable, "-m", "venv", str(venv)], env=env, cwd=tmp_path)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    if isolation == "no-build-isolation":
        # the build tools come from the venv itself (a distro's or an offline machine's setuptools);
        # pip checks them against pyproject.toml's build-system.requires
        _check([*pip, "setuptools>=61", "wheel"], env=env, cwd=tmp_path)
        pip += ["--no-build-isolation", "--check-build-dependencies"]
    _check([*pip, str(src_copy)], env=env, cwd=tmp_path)

    where = _check([python, "-c", "import importlib.util as u, pyclone_docker, Cryptodome, urllib3; "
                    "print(pyclone_docker.__file__); print(u.find_spec('pyclone_docker._vendor.mfusepy').origin)"],
                   env=env, cwd=tmp_path).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    _use_command(venv / "bin", tmp_path, f"(python {sys.version.split()[0]})")
