"""The amd64 zipapp: reproducible, small, and working on every Python 3.10-3.13 on this machine."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def interpreters() -> list[str]:
    """Every CPython 3.10+ pyenv or the system provides here, once each."""
    found = {}
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3")))
    candidates += ["/usr/bin/python3", sys.executable]
    for exe in candidates:
        if not os.path.exists(exe):
            continue
        ver = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
        if ver and tuple(map(int, ver.split("."))) >= (3, 10):
            found.setdefault(ver, exe)
    return [found[v] for v in sorted(found, key=lambda v: tuple(map(int, v.split("."))))]


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("PYCLONE_PYZ")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "--arch", "amd64", "--out", str(out)],
                   check=True, capture_output=True)
    return out / "pyclone-docker-amd64.pyz"


def run(exe: str, pyz: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run([exe, str(pyz), *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})), cwd="/")


def test_build_is_reproducible_and_small(pyz: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "--arch", "amd64", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    again = tmp_path / "pyclone-docker-amd64.pyz"
    if not os.environ.get("PYCLONE_PYZ"):
        assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(pyz.read_bytes()).digest()
    assert again.stat().st_size <= 2 * 1024 * 1024


@pytest.mark.parametrize("exe", interpreters())
def test_smoke_on_every_python(exe: str, pyz: Path, tmp_path: Path) -> None:
    env = {"PYCLONE_NATIVE_CACHE": str(tmp_path / "native")}
    res = run(exe, pyz, "version", env=env)
    assert res.returncode == 0 and "amd64 zipapp" in res.stdout, res.stderr
    res = run(exe, pyz, "selftest", env=env)
    assert res.returncode == 0 and "6 passed, 0 failed" in res.stdout, res.stdout + res.stderr
    # serve the API and mount a volume from the zipapp
    sock = str(tmp_path / "z.sock")
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([exe, str(pyz), "serve", "docker", "--socket-addr", sock,
                             "--base-dir", str(tmp_path / "base"), "--cache-dir", str(tmp_path / "cache")],
                            env=dict(os.environ, **env), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        call(sock, "Plugin.Activate", {})
        call(sock, "VolumeDriver.Create", {"Name": "z", "Opts": {"type": "local", "path": str(data)}})
        assert call(sock, "VolumeDriver.List", {})["Volumes"][0]["Name"] == "z"
        if os.geteuid() == 0 and os.path.exists("/dev/fuse"):
            mp = call(sock, "VolumeDriver.Mount", {"Name": "z", "ID": "1"})["Mountpoint"]
            Path(mp, "via-pyz.txt").write_text(exe)
            call(sock, "VolumeDriver.Unmount", {"Name": "z", "ID": "1"})
            assert (data / "via-pyz.txt").read_text() == exe
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def call(sock: str, endpoint: str, body: dict) -> dict:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    payload = json.dumps(body).encode()
    s.sendall(b"POST /%s HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (endpoint.encode(), len(payload), payload))
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    s.close()
    out = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert not out.get("Err"), out
    return out


def test_native_modules_unpack_once_and_concurrently(pyz: Path, tmp_path: Path) -> None:
    cache = tmp_path / "native"
    env = dict(os.environ, PYCLONE_NATIVE_CACHE=str(cache))
    procs = [subprocess.Popen([sys.executable, str(pyz), "obscure", "x"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(6)]
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    entries = [e for e in os.listdir(cache) if not e.startswith("code-")]  # code-*: compiled code
    assert len(entries) == 1 and not entries[0].startswith(".tmp")  # one build dir, no leftovers
    assert os.path.exists(cache / entries[0] / ".complete")


def test_serving_without_crypto_unpacks_nothing(pyz: Path, tmp_path: Path) -> None:
    cache = tmp_path / "native"
    res = run(sys.executable, pyz, "serve", "docker", "--help", env={"PYCLONE_NATIVE_CACHE": str(cache)})
    assert res.returncode == 0
    assert [e for e in os.listdir(cache) if not e.startswith("code-")] == []


def test_compiled_code_is_kept_and_reused(pyz: Path, tmp_path: Path) -> None:
    """zipimport compiles a zip's sources at every start; the boot keeps the compiled code."""
    cache = tmp_path / "native"
    env = {"PYCLONE_NATIVE_CACHE": str(cache)}
    assert run(sys.executable, pyz, "obscure", "x", env=env).returncode == 0
    [code_dir] = [cache / e for e in os.listdir(cache) if e.startswith("code-")]
    kept = {p.name: p.stat().st_mtime_ns for p in code_dir.iterdir()}
    assert "pyclone_docker.cli.code" in kept and "pyclone_docker.obscure.code" in kept
    assert not [n for n in kept if n.endswith(".tmp")]
    # a damaged entry is compiled again, never trusted
    (code_dir / "pyclone_docker.obscure.code").write_bytes(b"\x00garbage")
    res = run(sys.executable, pyz, "obscure", "x", env=env)
    assert res.returncode == 0 and res.stdout.strip()
    again = {p.name: p.stat().st_mtime_ns for p in code_dir.iterdir()}
    assert again["pyclone_docker.cli.code"] == kept["pyclone_docker.cli.code"]  # reused, not rewritten
    assert (code_dir / "pyclone_docker.obscure.code").read_bytes() != b"\x00garbage"
    # tracebacks still show the source (the loader gives linecache the zip's text)
    res = run(sys.executable, pyz, "reveal", "not-base64!", env=env)
    assert res.returncode != 0


def test_compiled_code_others_can_write_is_not_used_by_root(pyz: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the rule is for root")
    cache = tmp_path / "native"
    env = {"PYCLONE_NATIVE_CACHE": str(cache)}
    assert run(sys.executable, pyz, "obscure", "x", env=env).returncode == 0
    [code_dir] = [cache / e for e in os.listdir(cache) if e.startswith("code-")]
    for p in code_dir.iterdir():
        p.unlink()
    code_dir.chmod(0o777)  # anyone could plant code here: root must not run it
    assert run(sys.executable, pyz, "obscure", "x", env=env).returncode == 0
    assert list(code_dir.iterdir()) == []


def test_unwritable_cache_gives_a_clear_error(pyz: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = "/proc/pyclone-cannot-write-here"  # even root cannot create this
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = str(ro / "sub")
    res = run(sys.executable, pyz, "obscure", "x", env={"PYCLONE_NATIVE_CACHE": target})
    assert res.returncode != 0
    assert target in res.stderr and "PYCLONE_NATIVE_CACHE" in res.stderr


def test_wrong_architecture_is_named(pyz: Path, tmp_path: Path) -> None:
    """An arm64 build run by this amd64 Python says which file to use instead."""
    out = tmp_path / "arm"
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "--arch", "arm64", "--out", str(out)],
                   check=True, capture_output=True)
    res = run(sys.executable, out / "pyclone-docker-arm64.pyz", "version")
    assert res.returncode != 0 and "use pyclone-docker-amd64.pyz" in res.stderr


_COUNT_COMPILES = """
import builtins, runpy, sys
seen = []
real = builtins.compile
def counting(source, filename, *args, **kwargs):
    seen.append(str(filename))
    return real(source, filename, *args, **kwargs)
builtins.compile = counting
sys.argv = [sys.argv[1], "selftest"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print("COMPILED", len([f for f in seen if "/pyclone_docker/" in f or "/urllib3/" in f]))
"""


@pytest.mark.parametrize("exe", interpreters())
def test_a_warm_start_compiles_none_of_the_archive(exe: str, pyz: Path, tmp_path: Path) -> None:
    """The first start compiles the modules it imports into the code cache; later ones load
    them from it and compile nothing (zipimport itself would compile every module's source
    at every start, even just to make its spec)."""
    env = dict(os.environ, PYCLONE_NATIVE_CACHE=str(tmp_path))
    counts = []
    for _ in range(2):
        out = subprocess.run([exe, "-c", _COUNT_COMPILES, str(pyz)], capture_output=True, text=True, env=env,
                             timeout=60, cwd="/").stdout
        counts.append(int(out.rsplit("COMPILED", 1)[1]))
    assert counts[0] > 10 and counts[1] == 0, counts
