"""A real S3 server for tests: `MotoServer` runs moto's server (`python -m moto.server`, from
moto[server], a test-only tool) as a child process on a free loopback port.

    with MotoServer() as s3:               # start() on enter, close() on exit
        s3.endpoint                        # "http://127.0.0.1:PORT" (path-style addressing)
        s3.access_key_id, s3.secret_access_key, s3.region   # fixed test values
        s3.make_bucket("bkt")              # through boto3 (test-only, for server-side checks)
        s3.boto3_client().get_object(Bucket="bkt", Key="k")
        s3.reset()                         # POST /moto-api/reset: every bucket and object gone
        s3.virtual_host_endpoint("bkt")    # "http://bkt.localhost:PORT", resolvable (see below)
        s3.stop(); s3.start()              # down and up again on the same port (state is lost)

From a conftest, `moto_server()` is a generator fixture body (one server per session is the
intended use; reset() between tests when they must not see each other's buckets):

    @pytest.fixture(scope="session")
    def moto() -> Iterator[MotoServer]:
        yield from moto_server()

It skips (or fails, with PYCLONE_REQUIRE_MOTO=1) when moto[server] is not installed.

Moto accepts any credentials and does not check signatures (unless told to); it keeps
everything in memory and loses it at stop(). Its request log (werkzeug's) goes to `log_file`.
The child's environment is built from scratch (no AWS_* variable of ours reaches it).

Virtual-host addressing (`http://BUCKET.HOST:PORT/key`): moto's S3 takes the bucket from the
Host header's first label when the host is a name with a dot that is not an AWS path-style
host (moto/s3/responses.py `subdomain_based_buckets`), and treats any host starting with
`localhost` as path-style. So with `localhost:PORT` as the client's endpoint, bucket-less
requests (ListBuckets) go to `localhost:PORT` and bucket requests to `BUCKET.localhost:PORT`,
on any port (through a FaultProxy too: `virtual_host_endpoint(bucket, port=proxy.port)`).
Names under `.localhost` are loopback by definition (RFC 6761), but glibc without
nss-myhostname does not resolve them: as root, `virtual_host_endpoint()` adds
`127.0.0.1 BUCKET.localhost` to /etc/hosts (tests/support/hostsfile.py: marked lines, removed
at close(), and at interpreter exit should close() never run). Hosts files have no wildcards,
so every bucket a test addresses this way must be named first, before the client under test
uses it (also buckets the client creates itself). Bucket names with dots cannot work this way
(moto takes only the first label; real S3 over TLS has the same limit).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.hostsfile import HostsEntries, hosts_unavailable

ACCESS_KEY_ID = "AKIAPYCLONETEST00001"
SECRET_ACCESS_KEY = "pyclone-test-secret-access-key-000000000"  # a fake: moto takes any
REGION = "us-east-1"
VHOST_DOMAIN = "localhost"
_MODULES = ("moto", "moto.server", "flask", "flask_cors", "werkzeug", "boto3")


class MotoError(RuntimeError):
    """moto did not come up, or cannot do what was asked (the message says why)."""


def moto_unavailable() -> str:
    """'' when MotoServer can run here, else the reason."""
    for mod in _MODULES:
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"python module {mod} missing (pip install -r requirements-dev.txt: moto[server], boto3)"
    return ""


def virtual_hosts_unavailable() -> str:
    """'' when virtual_host_endpoint() can make BUCKET.localhost resolve here, else the reason."""
    return "" if _resolves_to_loopback(f"probe.{VHOST_DOMAIN}") else hosts_unavailable()


def moto_server(**kwargs: Any) -> Iterator[MotoServer]:
    """Fixture body: yields a started MotoServer(**kwargs), closes it after; skips (or fails
    with PYCLONE_REQUIRE_MOTO=1) when moto[server] is missing."""
    import pytest

    reason = moto_unavailable()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_MOTO") == "1":
            pytest.fail(f"moto tests cannot run: {reason}")
        pytest.skip(f"moto tests skipped: {reason}")
    with MotoServer(**kwargs) as srv:
        yield srv


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _resolves_to_loopback(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(info[4][0] == "127.0.0.1" for info in infos)


class MotoServer:
    """moto's S3 server as a child process; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 60.0,
                 extra_env: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port  # 0: a free one is picked at the first start, then kept
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})  # e.g. {"MOTO_S3_DEFAULT_MAX_KEYS": "5"}
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.region = REGION
        self.tmpdir = ""
        self.log_file = ""
        self.startup_seconds = 0.0  # how long the last start() took until S3 answered
        self.proc: subprocess.Popen[bytes] | None = None
        self._auto_port = port == 0
        self._client: Any = None
        self._hosts: HostsEntries | None = None

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> MotoServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- process control -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc else None

    def _child_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": self.tmpdir, "TMPDIR": self.tmpdir, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONUNBUFFERED": "1", "MOTO_PORT": str(self.port)}
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start moto and return once its S3 answers (ListBuckets); raises MotoError with the
        log's tail if it does not within startup_timeout."""
        if self.running:
            return
        if not self.tmpdir:
            self.tmpdir = tempfile.mkdtemp(prefix="pyclone-moto-")
            self.log_file = str(Path(self.tmpdir) / "moto.log")
            Path(self.log_file).touch(mode=0o600)
        for attempt in range(5):
            if self.port == 0 or (attempt and self._auto_port):
                self.port = free_port(self.host)
            try:
                self._start_once()
                return
            except MotoError as e:
                if not (self._auto_port and "Address already in use" in str(e)) or attempt == 4:
                    raise

    def _start_once(self) -> None:
        log_start = os.path.getsize(self.log_file)
        argv = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        t0 = time.monotonic()
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self._child_env(), cwd=self.tmpdir, start_new_session=True)
        deadline = t0 + self.startup_timeout
        why = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = f"moto exited with status {self.proc.returncode}"
                break
            if self._probe():
                self.startup_seconds = time.monotonic() - t0
                return
            time.sleep(0.05)
        else:
            why = f"S3 did not answer on {self.endpoint} within {self.startup_timeout:.0f} s"
        self._kill()
        with open(self.log_file, "rb") as f:
            f.seek(log_start)
            tail = f.read().decode(errors="replace").splitlines()[-40:]
        raise MotoError(f"moto did not come up ({why}); log {self.log_file}:\n" + "\n".join(tail))

    def _probe(self) -> bool:
        """True once an unsigned ListBuckets gets its XML (this also loads moto's S3 app, so the
        first request of a test is not the slow one)."""
        try:
            status, _, body = self.request("GET", "/", timeout=5)
        except OSError:
            return False
        return status == 200 and b"ListAllMyBucketsResult" in body

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """One plain HTTP request to the server (a fresh connection); (status, headers, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop moto (and anything it started); every bucket is lost, the port is kept."""
        self._kill()

    def restart(self) -> None:
        """stop() then start() on the same port (an empty server)."""
        self.stop()
        self._auto_port = False  # the same port or a loud failure
        self.start()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)  # moto's handler exits at once
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its session: whatever it left behind

    def close(self) -> None:
        """stop(), take out our /etc/hosts lines, remove the temp dir (log)."""
        try:
            self.stop()
        finally:
            if self._hosts is not None:
                self._hosts.close()
                self._hosts = None
            self._client = None
            if self.tmpdir:
                import shutil

                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = ""

    # -- S3 helpers (test-side) ------------------------------------------------------------
    def boto3_client(self, **config: Any) -> Any:
        """A boto3 S3 client on this server (path-style, no retries). With no arguments the
        same client is returned each time; `config` goes to botocore's Config."""
        if not config and self._client is not None:
            return self._client
        import boto3
        from botocore.config import Config

        cfg = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1, "mode": "standard"}}
        cfg.update(config)
        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key, config=Config(**cfg))
        if not config:
            self._client = client
        return client

    def make_bucket(self, name: str) -> str:
        """Create bucket `name` (in self.region); returns the name."""
        self.boto3_client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Forget every bucket and object (moto's POST /moto-api/reset)."""
        status, _, body = self.request("POST", "/moto-api/reset")
        if status != 200:
            raise MotoError(f"moto reset answered {status}: {body[:200]!r}")

    # -- virtual-host addressing -----------------------------------------------------------
    def virtual_host_name(self, bucket: str) -> str:
        """The bucket's virtual-host name, made resolvable to 127.0.0.1 (an /etc/hosts line as
        root, unless *.localhost already resolves here); raises MotoError when it cannot be."""
        if not bucket or "." in bucket or bucket != bucket.lower():
            raise MotoError(f"bucket {bucket!r} cannot be virtual-host addressed here "
                            "(lower case, no dots)")
        name = f"{bucket}.{VHOST_DOMAIN}"
        if self._hosts is not None and ("127.0.0.1", name) in self._hosts.names:
            return name
        if hosts_unavailable():
            if _resolves_to_loopback(name):
                return name
            raise MotoError(f"{name} does not resolve and {hosts_unavailable()}")
        if self._hosts is None:
            self._hosts = HostsEntries()
        self._hosts.add(name, "127.0.0.1")
        return name

    def virtual_host_base_endpoint(self, port: int | None = None) -> str:
        """The endpoint a virtual-host style client is configured with: "http://localhost:PORT"
        (moto answers bucket-less requests there path-style). `port`: e.g. a proxy's."""
        return f"http://{VHOST_DOMAIN}:{port or self.port}"

    def virtual_host_endpoint(self, bucket: str, port: int | None = None) -> str:
        """"http://BUCKET.localhost:PORT": the bucket's own URL (objects at /KEY); see
        virtual_host_name()."""
        return f"http://{self.virtual_host_name(bucket)}:{port or self.port}"

    # -- log -------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return Path(self.log_file).read_text(errors="replace")
        except (FileNotFoundError, OSError):
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
