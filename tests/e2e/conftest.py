"""Fixtures for the end-to-end tests against a real dockerd.

The plugin runs as a subprocess in legacy (v1) mode on a unix socket in
``/run/docker/plugins``.  dockerd discovers it by name, so every test session
uses its own driver name (``pyclonetest<hex>``, or ``$PYCLONE_E2E_DRIVER``).

Environment:

``PYCLONE_REQUIRE_DOCKER=1``
    fail (instead of skip) when dockerd, root or /dev/fuse is missing.
``PYCLONE_PYZ``
    run ``python3 $PYCLONE_PYZ serve docker ...`` instead of
    ``python3 -m pyclone_docker serve docker ...`` from the source tree.
``PYCLONE_PYTHON``
    interpreter for the plugin (default: the one running pytest).
``PYCLONE_E2E_PLUGIN_ARGS``
    extra plugin arguments, e.g. ``--vfs-cache-mode writes``.
``PYCLONE_E2E_DRIVER``
    fixed driver name instead of a random one.
``PYCLONE_TEST_IMAGE``
    test image (default ``pyclone-test-bb:latest``, built by
    ``.ci/build-test-image.sh``).

Trap: dockerd caches a v1 plugin for its whole lifetime once it has seen it.
When the plugin is gone, every unfiltered ``docker volume ls`` and every
``docker volume inspect``/``docker run -v`` of an unknown name stalls ~15 s
(connection retries), even when the plugin has no volumes left.  The tests
therefore use ``docker volume ls --filter driver=...`` (which only asks that
driver), and the plugin is kept running until every volume of the driver is
removed.  Only a dockerd restart forgets a dead driver.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_IMAGE_SCRIPT = REPO_ROOT / ".ci" / "build-test-image.sh"
IMAGE = os.environ.get("PYCLONE_TEST_IMAGE", "pyclone-test-bb:latest")
PLUGIN_SOCKET_DIR = Path("/run/docker/plugins")
DOCKERD_LOG = Path(os.environ.get("DOCKERD_LOG", "/tmp/dockerd.log"))
LABEL_KEY = "pyclone-e2e"

DOCKER_TIMEOUT = 120.0  # per docker CLI call; a dead v1 plugin costs ~15 s
PLUGIN_READY_TIMEOUT = 30.0
PLUGIN_STOP_TIMEOUT = 10.0  # dockerd gives managed plugins 10 s too
UNMOUNT_GRACE = 10.0


# --------------------------------------------------------------------------
# pytest hooks
# --------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "docker: end-to-end test against a real dockerd (needs root, dockerd, /dev/fuse)",
    )


# nodeid -> (plugin, plugin log offset, dockerd log offset) at test start
_LOG_MARKS: dict[str, tuple[PluginProcess, int, int]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    mark = _LOG_MARKS.get(item.nodeid)
    if mark is None:
        return
    if call.when == "teardown":
        _LOG_MARKS.pop(item.nodeid, None)
    if not report.failed:
        return
    plugin, plugin_off, dockerd_off = mark
    report.sections.append((f"plugin log ({call.when})", _tail_from(plugin.log_path, plugin_off, 200)))
    if DOCKERD_LOG.exists():
        report.sections.append((f"dockerd log ({call.when})", _tail_from(DOCKERD_LOG, dockerd_off, 60)))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail_from(path: Path, offset: int, max_lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    lines = data.decode("utf-8", "replace").splitlines()
    if len(lines) > max_lines:
        lines = [f"... ({len(lines) - max_lines} lines skipped)", *lines[-max_lines:]]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# subprocess helpers
# --------------------------------------------------------------------------


class CommandError(AssertionError):
    """A command failed; the message carries its output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"command failed (exit {result.returncode}): {shlex.join(map(str, result.args))}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )


def run(
    cmd: list[str],
    *,
    check: bool = True,
    timeout: float = DOCKER_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """subprocess.run with captured text output and a mandatory timeout.

    With check=True a failure raises CommandError (an AssertionError that
    shows stdout/stderr), otherwise the result is returned as is.
    """
    try:
        result = subprocess.run(
            cmd,
            check=False,
            timeout=timeout,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"command timed out after {timeout}s: {shlex.join(map(str, cmd))}") from e
    if check and result.returncode != 0:
        raise CommandError(result)
    return result


def docker(*args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], check=check, timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll predicate until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as e:
            value, last_exc = None, e
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# mounts
# --------------------------------------------------------------------------


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: Path) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount at or below root, deepest first."""
    root_s = os.path.realpath(root)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            mount_point = _unescape_mountinfo(fields[4])
            try:
                fstype = fields[fields.index("-", 6) + 1]
            except (ValueError, IndexError):
                fstype = "?"
            if mount_point == root_s or mount_point.startswith(root_s + "/"):
                found.append((mount_point, fstype))
    found.sort(key=lambda m: len(m[0]), reverse=True)
    return found


def lazy_unmount_all(root: Path) -> list[str]:
    """Detach every mount below root (last-resort cleanup); returns what was there."""
    gone = []
    for _ in range(5):
        mounts = mounts_under(root)
        if not mounts:
            break
        for mount_point, _fstype in mounts:
            for cmd in (
                ["umount", "-l", mount_point],
                ["fusermount3", "-uz", mount_point],
            ):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    if subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0:
                        gone.append(mount_point)
                        break
    return gone


# --------------------------------------------------------------------------
# plugin protocol client
# --------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket."""

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = os.fspath(socket_path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def plugin_call(
    socket_path: str | os.PathLike[str],
    method: str,
    body: Any = None,
    timeout: float = 5.0,
) -> tuple[int, Any]:
    """POST /<method> like dockerd does; returns (status, decoded JSON or text)."""
    payload = b"" if body is None else json.dumps(body).encode() + b"\n"
    conn = UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/" + method,
            body=payload,
            headers={"Accept": "application/vnd.docker.plugins.v1.2+json"},
        )
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    finally:
        conn.close()
    try:
        decoded: Any = json.loads(raw) if raw.strip() else None
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return status, decoded


# --------------------------------------------------------------------------
# plugin process
# --------------------------------------------------------------------------


class PluginProcess:
    """The plugin under test, run as ``serve docker`` on a v1 unix socket."""

    def __init__(self, driver: str, root: Path) -> None:
        self.driver = driver
        self.root = root
        self.base_dir = root / "base"
        self.cache_dir = root / "cache"
        self.data_dir = root / "data"  # backing directories of type=local volumes
        self.log_path = root / "plugin.log"
        self.config_path = root / "rclone.conf"
        for d in (self.cache_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.config_path.touch()
        self.socket_path = PLUGIN_SOCKET_DIR / f"{driver}.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- command line ----------------------------------------------------
    def command(self) -> list[str]:
        python = os.environ.get("PYCLONE_PYTHON") or sys.executable or "python3"
        pyz = os.environ.get("PYCLONE_PYZ")
        head = [python, os.path.abspath(pyz)] if pyz else [python, "-m", "pyclone_docker"]
        extra = shlex.split(os.environ.get("PYCLONE_E2E_PLUGIN_ARGS", ""))
        return [
            *head,
            "serve",
            "docker",
            "--socket-addr",
            str(self.socket_path),
            "--base-dir",
            str(self.base_dir),
            "--cache-dir",
            str(self.cache_dir),
            "-v",
            *extra,
        ]

    # -- lifecycle -------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = PLUGIN_READY_TIMEOUT) -> None:
        assert not self.running, "plugin already running"
        self.starts += 1
        cmd = self.command()
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # hermetic: never the user's rclone.conf
        env["RCLONE_CONFIG"] = str(self.config_path)
        pyz = os.environ.get("PYCLONE_PYZ")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {shlex.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root if pyz else REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on pytest must not SIGINT it
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Get rid of a process that failed to start (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(PLUGIN_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def wait_ready(self, timeout: float) -> None:
        """Poll /Plugin.Activate until the plugin answers like a volume driver."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last: object = "no answer yet"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"plugin exited with code {rc} before becoming ready\n"
                    f"command: {shlex.join(self.command())}\n{self.log_tail()}"
                )
            try:
                status, body = plugin_call(self.socket_path, "Plugin.Activate", timeout=2.0)
            except (OSError, http.client.HTTPException) as e:
                last = e
            else:
                if status == 200 and isinstance(body, dict) and body.get("Implements") == ["VolumeDriver"]:
                    return
                raise AssertionError(
                    f"bad /Plugin.Activate answer: HTTP {status} {body!r}; "
                    'expected {"Implements": ["VolumeDriver"]}\n' + self.log_tail()
                )
            time.sleep(0.1)
        raise AssertionError(
            f"plugin not ready after {timeout}s on {self.socket_path} (last: {last!r})\n{self.log_tail()}"
        )

    def stop(self, timeout: float = PLUGIN_STOP_TIMEOUT) -> int:
        """SIGTERM and wait; SIGKILL and fail if it takes longer than timeout."""
        if self.proc is None:
            return 0
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                self.proc = None
                raise AssertionError(
                    f"plugin did not exit within {timeout}s of SIGTERM (killed)\n{self.log_tail()}"
                ) from None
        self.proc = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: simulate a crash (FUSE mounts and socket stay behind)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        rc = self.stop()
        assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
            f"plugin exit code after SIGTERM: {rc}\n{self.log_tail()}"
        )
        self.start()

    def ensure_running(self) -> None:
        if not self.running:
            self.proc = None
            self.start()

    def mounts(self) -> list[tuple[str, str]]:
        """Mounts at or below the base dir."""
        return mounts_under(self.base_dir)

    # -- diagnostics -----------------------------------------------------
    def log_size(self) -> int:
        return _file_size(self.log_path)

    def log_tail(self, lines: int = 60) -> str:
        text = _tail_from(self.log_path, 0, lines)
        return f"--- plugin log ({self.log_path}) ---\n{text}"

    def call(self, method: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        return plugin_call(self.socket_path, method, body, timeout=timeout)


_ALL_PLUGINS: list[PluginProcess] = []


@atexit.register
def _stop_leftover_plugins() -> None:
    # Safety net for an interrupted session: never leave a plugin running.
    for p in _ALL_PLUGINS:
        with contextlib.suppress(Exception):
            p.stop()


# --------------------------------------------------------------------------
# docker resources of a test
# --------------------------------------------------------------------------


class Resources:
    """Unique names for a test's containers and volumes, removed at teardown."""

    def __init__(self, plugin: PluginProcess, test_name: str) -> None:
        self.plugin = plugin
        self.stem = re.sub(r"[^a-z0-9]+", "", test_name.lower().removeprefix("test_"))[:12] or "t"
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.label = f"{LABEL_KEY}={plugin.driver}"

    # helpers exposed to the test module (which cannot import conftest reliably)
    image = IMAGE

    @staticmethod
    def docker(*args: str, check: bool = True, timeout: float = DOCKER_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return docker(*args, check=check, timeout=timeout)

    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
        return wait_for(predicate, timeout, what, interval)

    def _name(self, kind: str) -> str:
        return f"e2e-{self.stem}-{kind}{secrets.token_hex(3)}"

    def volume(self) -> str:
        name = self._name("v")
        self.volumes.append(name)
        return name

    def container(self) -> str:
        name = self._name("c")
        self.containers.append(name)
        return name

    def backing_dir(self, volume: str) -> Path:
        d = self.plugin.data_dir / volume
        d.mkdir(parents=True, exist_ok=True)
        return d

    def create_volume(self, **opts: str) -> tuple[str, Path]:
        """docker volume create -d <driver> -o type=local -o path=<new dir> <unique name>."""
        name = self.volume()
        backing = self.backing_dir(name)
        args = [
            "volume",
            "create",
            "-d",
            self.plugin.driver,
            "-o",
            "type=local",
            "-o",
            f"path={backing}",
        ]
        for k, v in opts.items():
            args += ["-o", f"{k.replace('_', '-')}={v}"]
        out = docker(*args, name).stdout.strip()
        assert out == name, f"docker volume create printed {out!r}, expected {name!r}"
        return name, backing

    def run_args(self, name: str | None = None) -> list[str]:
        """Common `docker run` arguments: label (for cleanup) and optional name."""
        args = ["--label", self.label]
        if name:
            args += ["--name", name]
        return args

    def cleanup(self) -> list[str]:
        """Containers first, then volumes.  Returns a list of problems."""
        problems: list[str] = []
        # A dead plugin would make every call below stall and fail.
        try:
            self.plugin.ensure_running()
        except AssertionError as e:
            problems.append(f"could not restart the plugin for cleanup: {e}")
        ids = docker("ps", "-aq", "--filter", f"label={self.label}", check=False).stdout.split()
        for c in [*self.containers, *ids]:
            r = docker("rm", "-f", "-v", c, check=False, timeout=90)
            if r.returncode != 0 and "No such container" not in r.stderr:
                problems.append(f"docker rm -f {c}: {r.stderr.strip()}")
        # Only names that exist: `docker volume rm <unknown>` asks every
        # driver dockerd knows and stalls on dead ones (see module doc).
        existing: set[str] = set()
        for drv in (self.plugin.driver, "local"):
            ls = docker("volume", "ls", "-q", "--filter", f"driver={drv}", check=False)
            existing.update(ls.stdout.split())
        for v in self.volumes:
            if v not in existing:
                continue
            r = docker("volume", "rm", v, check=False, timeout=90)
            if r.returncode != 0 and "no such volume" not in r.stderr.lower():
                problems.append(f"docker volume rm {v}: {r.stderr.strip()}")
                docker("volume", "rm", "-f", v, check=False, timeout=90)
        return problems


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


def _docker_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the e2e tests must run as root"
    if not Path("/dev/fuse").exists():
        return "/dev/fuse is missing"
    try:
        r = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return "docker CLI not installed"
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if r.returncode != 0:
        return f"`docker info` failed: {r.stderr.strip()[:300]} (start it with .ci/start-dockerd.sh)"
    return None


@pytest.fixture(scope="session")
def docker_ready() -> str:
    """A reachable dockerd and the test image; returns the image name."""
    reason = _docker_unavailable_reason()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"PYCLONE_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    run(["bash", str(BUILD_IMAGE_SCRIPT)], timeout=300)
    docker("image", "inspect", IMAGE, timeout=30)
    return IMAGE


@pytest.fixture(scope="session")
def plugin_session(docker_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginProcess]:
    driver = os.environ.get("PYCLONE_E2E_DRIVER") or f"pyclonetest{secrets.token_hex(4)}"
    root = tmp_path_factory.mktemp(f"e2e-{driver}", numbered=False)
    plugin = PluginProcess(driver, root)
    _ALL_PLUGINS.append(plugin)
    if plugin.socket_path.exists():
        # Only possible with a fixed PYCLONE_E2E_DRIVER: refuse to hijack a live plugin.
        with contextlib.suppress(OSError, http.client.HTTPException):
            plugin.call("Plugin.Activate", timeout=2.0)
            pytest.fail(f"another process already serves {plugin.socket_path}", pytrace=False)
    try:
        plugin.start()
    except BaseException:
        # Never used by dockerd yet: just drop what a failed start left behind.
        with contextlib.suppress(OSError):
            plugin.socket_path.unlink()
        lazy_unmount_all(plugin.base_dir)
        raise
    try:
        yield plugin
    finally:
        problems = _teardown_plugin(plugin)
        if problems:
            pytest.fail("plugin session teardown:\n  " + "\n  ".join(problems), pytrace=False)


def _teardown_plugin(plugin: PluginProcess) -> list[str]:
    """Containers, then volumes, then the plugin; then check that no mount remains."""
    problems: list[str] = []
    try:
        plugin.ensure_running()
    except AssertionError as e:
        problems.append(f"could not restart the plugin for cleanup: {e}")
    label = f"{LABEL_KEY}={plugin.driver}"
    for c in docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split():
        docker("rm", "-f", "-v", c, check=False, timeout=90)
        problems.append(f"container {c} was left behind by a test")
    # Every volume of this driver must be gone before the plugin stops.
    names = docker("volume", "ls", "-q", "--filter", f"driver={plugin.driver}", check=False).stdout.split()
    for v in names:
        r = docker("volume", "rm", v, check=False, timeout=90)
        if r.returncode != 0:
            problems.append(f"docker volume rm {v}: {r.stderr.strip()}")
            docker("volume", "rm", "-f", v, check=False, timeout=90)
    try:
        rc = plugin.stop()
        if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            problems.append(f"plugin exited with code {rc} after SIGTERM")
    except AssertionError as e:
        problems.append(str(e))
    if plugin.socket_path.exists() or plugin.socket_path.is_symlink():
        with contextlib.suppress(OSError):
            plugin.socket_path.unlink()
    left = mounts_under(plugin.base_dir)
    if left:
        problems.append(f"mounts left under {plugin.base_dir} after the plugin stopped: {left}")
        lazy_unmount_all(plugin.base_dir)
    return problems


@pytest.fixture
def plugin(plugin_session: PluginProcess, request: pytest.FixtureRequest) -> PluginProcess:
    """The session's plugin, restarted if a previous test left it dead."""
    plugin_session.ensure_running()
    _LOG_MARKS[request.node.nodeid] = (
        plugin_session,
        plugin_session.log_size(),
        _file_size(DOCKERD_LOG),
    )
    return plugin_session


@pytest.fixture
def res(plugin: PluginProcess, request: pytest.FixtureRequest) -> Iterator[Resources]:
    """Per-test containers/volumes; teardown removes them and checks for leaked mounts."""
    resources = Resources(plugin, request.node.name)
    try:
        yield resources
    finally:
        problems = resources.cleanup()
        # With all containers and volumes gone, nothing may stay mounted.
        deadline = time.monotonic() + UNMOUNT_GRACE
        while (left := mounts_under(plugin.base_dir)) and time.monotonic() < deadline:
            time.sleep(0.25)
        if left:
            problems.append(f"mounts still present under {plugin.base_dir} after cleanup: {left}")
        if problems:
            pytest.fail("teardown:\n  " + "\n  ".join(problems), pytrace=False)
