"""s3 volumes end to end (issue 12): dockerd, the plugin, FUSE, and a real S3 server (moto).

moto's server (tests/support/moto.py) listens on 127.0.0.1; the plugin runs on the host
(conftest's v1 plugin, or the managed plugin with host networking), so loopback reaches it and
the containers only see the mount. A volume

    docker volume create NAME -d <driver> -o type=s3 -o s3-provider=Other \
        -o s3-endpoint=http://127.0.0.1:PORT -o s3-access-key-id=... \
        -o s3-secret-access-key=... -o path=BUCKET/PREFIX -o allow-other=true

is written by one container (200 small files of 1-4 KiB and one 300 MiB file of /dev/urandom,
md5s taken in the container with busybox md5sum), read back by a second one, removed, and the
objects checked on the server with boto3: 201 keys under the prefix, their sizes, the big
object's bytes (streamed and hashed), its multipart ETag (`-N`: 300 MiB is over the 200 MiB
upload cutoff, 5 MiB parts), rclone's `x-amz-meta-mtime` (`<seconds>.<9 digits>`) and
`x-amz-meta-md5chksum` (present when the upload is made from the VFS cache, absent for a
streamed upload in cache mode off, as rclone). This runs in both cache modes, set per volume,
whatever PYCLONE_E2E_PLUGIN_ARGS gives the plugin. The plugin's peak RSS (the process and its
children, sampled every 0.2 s) during the round trip is printed and recorded as a property, and
only checked against a sanity bound.

Then: the same volume from an rclone.conf section (the plugin's RCLONE_CONFIG; /data/config in
the managed plugin), a missing bucket with s3-no-check-bucket=true (the write fails in the
container, the bucket is not made, the plugin keeps serving) and an endpoint port nobody
listens on (an I/O error in the container, never a hang). moto does not check signatures, so a
wrong secret cannot be tested here.

Five tests pin behaviour this file first found differing from rclone 1.75.2 (checked against
`rclone mount` on moto), since fixed: a directory's utime (the seed's `--workdir /mnt` on an
empty volume), the mtime header's digits, the missing bucket's EIO at close and its log line,
and the dead endpoint's listing (EIO, not empty) and its log line.

Volume names, buckets and prefixes get a random suffix (dockerd's volume names are global).
The objects stay in moto, which dies with the module's fixture.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.moto import MotoServer, free_port, moto_server

if TYPE_CHECKING:  # helpers come in through the fixtures, never by importing conftest
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
SMALL_FILES = 200
BIG_MIB = 300
CHUNK = 5 << 20  # s3-chunk-size's default: the part size of both uploads
RUN_TIMEOUT = 300.0
ERROR_GUARD = 240.0  # a failing command must end well before this (no hang)
RSS_BOUND = 200 << 20  # a sanity bound on the plugin's resident memory, not a benchmark
RSS_INTERVAL = 0.2
# X-Amz-Meta-Mtime as rclone reads it: seconds, then up to nine digits of fraction (rclone writes
# trailing zeros trimmed, and no dot for whole seconds: test_mtime_header_trims_zeros_as_rclone)
MTIME_RE = re.compile(r"^\d+(\.\d{1,9})?$")


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(docker_ready: str) -> Iterator[MotoServer]:
    yield from moto_server()


def plugin_cache_mode() -> str:
    """The plugin-wide --vfs-cache-mode that PYCLONE_E2E_PLUGIN_ARGS gives (default off)."""
    args = shlex.split(os.environ.get("PYCLONE_E2E_PLUGIN_ARGS", ""))
    mode = "off"
    for i, a in enumerate(args):
        if a == "--vfs-cache-mode" and i + 1 < len(args):
            mode = args[i + 1]
        elif a.startswith("--vfs-cache-mode="):
            mode = a.split("=", 1)[1]
    return mode


def tag() -> str:
    return secrets.token_hex(4)


def o_args(opts: list[str] | tuple[str, ...]) -> list[str]:
    return [arg for o in opts for arg in ("-o", o)]


def s3_opts(srv: MotoServer, path: str, *extra: str, endpoint: str = "") -> list[str]:
    return ["type=s3", "s3-provider=Other", f"s3-endpoint={endpoint or srv.endpoint}",
            f"s3-access-key-id={srv.access_key_id}", f"s3-secret-access-key={srv.secret_access_key}",
            f"path={path}", "allow-other=true", *extra]


def create_volume(res: Resources, name: str, *opts: str, check: bool = True,
                  timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """docker volume create NAME -d <driver> -o OPT...; the name is removed at teardown."""
    res.volumes.append(name)
    r = res.docker("volume", "create", name, "-d", res.plugin.driver, *o_args(opts), check=False,
                   timeout=timeout)
    if check:  # not the CLI's argv in the message: it holds the secret key
        rc, out = r.returncode, r.stdout.strip()
        assert rc == 0, f"docker volume create {name} failed ({rc}): {r.stderr}"
        assert out == name, f"docker volume create printed {out!r}"
    return r


def ctr_run(res: Resources, volume: str, script: str, *, check: bool = True, timeout: float = RUN_TIMEOUT,
            workdir: bool = False) -> subprocess.CompletedProcess[str]:
    """docker run --rm -v VOLUME:/mnt IMAGE sh -c "cd /mnt && SCRIPT" (the image has no /mnt).

    Not `--workdir /mnt`, the seed's: dockerd makes a missing workdir in the container's
    rootfs, and then copies an existing, empty mount point's times onto an empty volume's root,
    which fails on s3 (test_seed_workdir_on_empty_volume). workdir=True: the seed's form."""
    where = ["--workdir", "/mnt"] if workdir else []
    return res.docker("run", "--rm", *res.run_args(), "-v", f"{volume}:/mnt", *where, res.image, "sh", "-c",
                      "cd /mnt && " + script, timeout=timeout, check=check)


def small_size(i: int) -> int:
    return 1024 + i * 15  # 1024 .. 4009 bytes


def write_script(n_small: int, big_mib: int) -> str:
    return (
        "set -e\n"
        "mkdir -p small\n"
        "i=0\n"
        f"while [ $i -lt {n_small} ]; do head -c $((1024 + i * 15)) /dev/urandom > small/f$i; i=$((i + 1)); done\n"
        f"dd if=/dev/urandom of=big.bin bs=1M count={big_mib} 2>/dev/null\n"
        "md5sum small/* big.bin\n"
        'echo "count=$(ls small | wc -l)"\n'
    )


READ_SCRIPT = (
    "set -e\n"
    "md5sum small/* big.bin\n"
    'echo "count=$(ls small | wc -l)"\n'
    'echo "size=$(wc -c < big.bin)"\n'
)


def md5_lines(out: str) -> dict[str, str]:
    """`md5sum` output as {path: md5}."""
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"([0-9a-f]{32})  (\S+)", line.strip())
        if m:
            found[m.group(2)] = m.group(1)
    return found


def fields(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line and "  " not in line)


def listed(res: Resources, name: str) -> bool:
    # filtered by driver: unfiltered it asks every v1 plugin dockerd has seen (conftest's doc)
    out = res.docker("volume", "list", "--filter", f"driver={res.plugin.driver}", "--format", "{{.Name}}").stdout
    return name in out.split()


def remove_volume(res: Resources, name: str) -> None:
    res.docker("volume", "remove", name, timeout=RUN_TIMEOUT)
    assert not listed(res, name)


def log_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def keys_under(srv: MotoServer, bucket: str, prefix: str) -> dict[str, int]:
    client = srv.boto3_client()
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def md5_object(srv: MotoServer, bucket: str, key: str) -> str:
    body = srv.boto3_client().get_object(Bucket=bucket, Key=key)["Body"]
    h = hashlib.md5()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def b64_md5_hex(value: str) -> str:
    import base64

    return base64.b64decode(value).hex()


# --------------------------------------------------------------------------
# RSS of the plugin and its children
# --------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return out


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssSampler:
    """Samples the summed VmRSS of a process tree every RSS_INTERVAL seconds in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = sum(_status_kib(p, "VmRSS") for p in _descendants(self.pid)) * 1024
        self.peak = max(self.peak, rss)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(RSS_INTERVAL)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sample()


# --------------------------------------------------------------------------
# 1. the round trip, in cache modes off and full
# --------------------------------------------------------------------------


def check_objects(srv: MotoServer, bucket: str, prefix: str, written: dict[str, str], n_small: int,
                  big_mib: int) -> dict[str, Any]:
    """The server's view after the volume is gone; returns the big object's HEAD."""
    client = srv.boto3_client()
    keys = keys_under(srv, bucket, prefix)
    expected = {f"{prefix}/small/f{i}": small_size(i) for i in range(n_small)}
    expected[f"{prefix}/big.bin"] = big_mib << 20
    assert len(keys) == n_small + 1, f"{len(keys)} keys under {prefix}/, expected {n_small + 1}: " \
        f"extra {sorted(set(keys) - set(expected))[:5]}, missing {sorted(set(expected) - set(keys))[:5]}"
    assert keys == expected, "object sizes differ from the files': " + \
        str({k: (keys.get(k), v) for k, v in expected.items() if keys.get(k) != v})
    for i in (0, 1, n_small // 2, n_small - 1):  # single PUTs: the ETag is the MD5
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/small/f{i}")
        assert head["ETag"].strip('"') == written[f"small/f{i}"], f"small/f{i}: {head['ETag']}"
        assert MTIME_RE.match(head["Metadata"].get("mtime", "")), head["Metadata"]
    big_key = f"{prefix}/big.bin"
    assert md5_object(srv, bucket, big_key) == written["big.bin"], "the big object's bytes differ"
    head = client.head_object(Bucket=bucket, Key=big_key)
    parts = -(-(big_mib << 20) // CHUNK)
    assert head["ETag"].strip('"').endswith(f"-{parts}"), f"not a {parts}-part multipart ETag: {head['ETag']}"
    mtime = head["Metadata"].get("mtime", "")
    assert MTIME_RE.match(mtime), f"x-amz-meta-mtime not in rclone's format: {mtime!r}"
    assert abs(float(mtime) - time.time()) < 3600, f"x-amz-meta-mtime far from now: {mtime}"
    return head


@pytest.mark.parametrize("mode", ["off", "full"])
def test_s3_volume_roundtrip(plugin: PluginProcess, res: Resources, moto: MotoServer, mode: str,
                             record_property: Any) -> None:
    bucket, prefix = moto.make_bucket(f"e2e-{tag()}"), f"vol-{tag()}"
    log_start = plugin.log_size()
    name = f"s3vol{tag()}"
    create_volume(res, name, *s3_opts(moto, f"{bucket}/{prefix}", f"vfs-cache-mode={mode}"))
    assert listed(res, name)
    assert plugin.proc is not None
    t0 = time.monotonic()
    with RssSampler(plugin.proc.pid) as rss:
        out = ctr_run(res, name, write_script(SMALL_FILES, BIG_MIB)).stdout
        written = md5_lines(out)
        assert fields(out).get("count") == str(SMALL_FILES), out[-500:]
        assert len(written) == SMALL_FILES + 1, f"{len(written)} md5 lines: {out[-500:]}"
        t_write = time.monotonic() - t0
        back_out = ctr_run(res, name, READ_SCRIPT).stdout
        remove_volume(res, name)  # waits for any upload still going from the cache
    elapsed = time.monotonic() - t0
    back = md5_lines(back_out)
    assert fields(back_out).get("count") == str(SMALL_FILES), back_out[-500:]
    assert fields(back_out).get("size", "").strip() == str(BIG_MIB << 20), back_out[-500:]
    differ = sorted(k for k in written if back.get(k) != written[k])
    assert not differ, f"a second container read other bytes: {differ[:5]}"

    peak_mb = rss.peak / 1e6
    print(f"\n[s3 e2e, vfs-cache-mode={mode}] plugin peak RSS {peak_mb:.1f} MB "
          f"({rss.samples} samples every {RSS_INTERVAL} s; write {t_write:.1f} s, all {elapsed:.1f} s; "
          f"VmHWM of the plugin process {_status_kib(plugin.proc.pid, 'VmHWM') / 1e3:.1f} MB)")
    record_property(f"plugin_peak_rss_bytes_{mode}", rss.peak)

    head = check_objects(moto, bucket, prefix, written, SMALL_FILES, BIG_MIB)
    md5chksum = head["Metadata"].get("md5chksum")
    if mode == "off":  # streamed, size unknown: no MD5 before the last part (rclone's too)
        assert md5chksum is None, f"a streamed multipart upload carries md5chksum {md5chksum!r}"
    else:  # uploaded from the cached copy, hashed first
        assert md5chksum, f"no x-amz-meta-md5chksum on a multipart upload from the cache: {head['Metadata']}"
        assert b64_md5_hex(md5chksum) == written["big.bin"], f"md5chksum {md5chksum} is not the file's MD5"
    assert moto.secret_access_key not in log_from(plugin.log_path, log_start), "the plugin log holds the secret"
    assert rss.peak < RSS_BOUND, f"plugin peak RSS {peak_mb:.1f} MB during a {BIG_MIB} MiB upload"


# Was: pyclone's utimens of a directory reaches the s3 backend, which refuses it (ENOENT for an empty
# prefix, ENOTSUP when it has objects: S3Backend.set_modtime); rclone 1.75.2's Dir.SetModTime only
# keeps the time in memory and succeeds. dockerd sets the volume root's times when it copies an
# existing, empty mount point onto an empty volume: `docker run --workdir /mnt` fails


def test_seed_workdir_on_empty_volume(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    """The seed's `docker run -v VOLUME:/mnt --workdir /mnt` on a new, empty s3 volume."""
    bucket = moto.make_bucket(f"e2e-{tag()}")
    name = f"s3seed{tag()}"
    create_volume(res, name, *s3_opts(moto, f"{bucket}/p"))
    r = ctr_run(res, name, "pwd && echo hi > hello.txt && echo ok=yes", check=False, workdir=True)
    remove_volume(res, name)
    assert r.returncode == 0 and "ok=yes" in r.stdout, f"the seed's container failed: {r.stderr.strip()}"
    assert keys_under(moto, bucket, "p") == {"p/hello.txt": 3}


# --------------------------------------------------------------------------
# 2. an rclone.conf section
# --------------------------------------------------------------------------


@pytest.fixture
def config_section(plugin: PluginProcess) -> Iterator[Path]:
    """plugin.config_path (the plugin's RCLONE_CONFIG) restored to what it held afterwards."""
    before = plugin.config_path.read_bytes()
    try:
        yield plugin.config_path
    finally:
        plugin.config_path.write_bytes(before)


def s3_section(srv: MotoServer, section: str) -> str:
    return (f"[{section}]\ntype = s3\nprovider = Other\nendpoint = {srv.endpoint}\n"
            f"access_key_id = {srv.access_key_id}\nsecret_access_key = {srv.secret_access_key}\n")


CONF_SMALL = 20
CONF_BIG_MIB = 12  # under the upload cutoff, over one part


def test_rclone_conf_section(plugin: PluginProcess, res: Resources, moto: MotoServer,
                             config_section: Path) -> None:
    bucket, prefix = moto.make_bucket(f"e2e-{tag()}"), f"conf-{tag()}"
    section = f"s3conf{tag()}"
    config_section.write_text(s3_section(moto, section))
    name = f"s3conf{tag()}"
    create_volume(res, name, f"remote={section}:{bucket}/{prefix}", "allow-other=true")
    out = ctr_run(res, name, write_script(CONF_SMALL, CONF_BIG_MIB)).stdout
    written = md5_lines(out)
    assert len(written) == CONF_SMALL + 1, out[-500:]
    back = md5_lines(ctr_run(res, name, READ_SCRIPT).stdout)
    assert back == written, "a second container read other bytes"
    remove_volume(res, name)
    keys = keys_under(moto, bucket, prefix)
    assert len(keys) == CONF_SMALL + 1 and keys[f"{prefix}/big.bin"] == CONF_BIG_MIB << 20, sorted(keys)[:5]
    assert md5_object(moto, bucket, f"{prefix}/big.bin") == written["big.bin"]
    etag = moto.boto3_client().head_object(Bucket=bucket, Key=f"{prefix}/big.bin")["ETag"].strip('"')
    if plugin_cache_mode() == "off":  # streamed, size unknown: multipart from the first full part (rclone's too)
        assert etag.endswith(f"-{-(-(CONF_BIG_MIB << 20) // CHUNK)}"), f"not a streamed multipart upload: {etag}"
    else:  # from the cache, size known, under the cutoff: one PutObject
        assert etag == written["big.bin"], f"under the cutoff but not one PutObject: {etag}"


# Was: pyclone writes X-Amz-Meta-Mtime always with nine fraction digits (backends/s3/api.py
# mtime_header: f\"{secs}.{ns:09d}\"); rclone 1.75.2 (swift.TimeToFloatString) trims trailing zeros
# and writes whole seconds without a dot: 1577836800.5, 1577836800


def test_mtime_header_trims_zeros_as_rclone(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    """A file touched to a whole second in the container: rclone stores "1577836800"."""
    bucket = moto.make_bucket(f"e2e-{tag()}")
    name = f"s3mtime{tag()}"
    create_volume(res, name, *s3_opts(moto, f"{bucket}/p"))
    ctr_run(res, name, "echo x > whole.txt && touch -d '2020-01-01 00:00:00' whole.txt && stat -c %Y whole.txt")
    remove_volume(res, name)
    meta = moto.boto3_client().head_object(Bucket=bucket, Key="p/whole.txt")["Metadata"]
    assert meta.get("mtime") == "1577836800", f"x-amz-meta-mtime {meta.get('mtime')!r}, rclone writes '1577836800'"


# --------------------------------------------------------------------------
# 3. a missing bucket; an endpoint nobody listens on
# --------------------------------------------------------------------------


WRITE_ONE = "head -c 4096 /dev/urandom > /tmp/x && cp /tmp/x /mnt/one.bin && echo wrote=yes"


def missing_bucket_volume(res: Resources, srv: MotoServer) -> tuple[str, str]:
    """A volume on a bucket nobody made, s3-no-check-bucket=true (nothing creates it), cache
    mode off (the upload is the container's own close(), not a later one from the cache)."""
    bucket = f"e2e-missing-{tag()}"
    name = f"s3nobkt{tag()}"
    create_volume(res, name, *s3_opts(srv, f"{bucket}/p", "s3-no-check-bucket=true", "vfs-cache-mode=off"))
    return name, bucket


def test_missing_bucket_fails_the_write(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    """The write fails in the container (within the guard), the bucket is not created, and the
    plugin serves on: the same volume lists, another volume writes."""
    name, bucket = missing_bucket_volume(res, moto)
    t0 = time.monotonic()
    r = ctr_run(res, name, WRITE_ONE, check=False, timeout=ERROR_GUARD)
    print(f"\nmissing bucket: exit {r.returncode} after {time.monotonic() - t0:.1f} s: {r.stderr.strip()}")
    assert r.returncode != 0 and "wrote=yes" not in r.stdout, f"a write to a missing bucket succeeded: {r}"
    assert "one.bin" in r.stderr, f"the container's error names no file: {r.stderr}"
    bucket_names = [b["Name"] for b in moto.boto3_client().list_buckets().get("Buckets", [])]
    assert bucket not in bucket_names, "s3-no-check-bucket=true, yet the bucket was created"

    assert ctr_run(res, name, "ls /mnt; echo alive=yes").stdout.strip().endswith("alive=yes")
    good = moto.make_bucket(f"e2e-{tag()}")
    other = f"s3after{tag()}"
    create_volume(res, other, *s3_opts(moto, f"{good}/p"))
    assert "wrote=yes" in ctr_run(res, other, WRITE_ONE).stdout
    remove_volume(res, name)
    remove_volume(res, other)
    assert keys_under(moto, good, "p") == {"p/one.bin": 4096}


# Was: a missing bucket (s3-no-check-bucket=true, cache mode off): pyclone PUTs at open(O_CREAT), maps
# the 404 NoSuchBucket to ENOENT ('cp: can't create ...: No such file or directory', mkdir the same)
# and logs nothing; rclone 1.75.2 opens, fails the close with EIO and logs ERROR 'one.bin:
# WriteFileHandle.New Rcat failed: ... NoSuchBucket: The specified bucket does not exist'


def test_missing_bucket_error_as_rclone(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    log_start = plugin.log_size()
    name, bucket = missing_bucket_volume(res, moto)
    r = ctr_run(res, name, WRITE_ONE, check=False, timeout=ERROR_GUARD)
    remove_volume(res, name)
    assert r.returncode != 0
    log = log_from(plugin.log_path, log_start)
    assert "NoSuchBucket" in log or bucket in log, f"the plugin log says nothing of the missing bucket:\n{log}"
    assert "input/output error" in r.stderr.lower(), f"not rclone's EIO at close: {r.stderr.strip()}"


def dead_port_volume(res: Resources, srv: MotoServer) -> tuple[str, int, subprocess.CompletedProcess[str]]:
    """A volume whose endpoint is a loopback port nobody listens on (the bucket exists on moto)."""
    bucket = srv.make_bucket(f"e2e-{tag()}")
    port = free_port()
    name = f"s3port{tag()}"
    r = create_volume(res, name, *s3_opts(srv, f"{bucket}/p", endpoint=f"http://127.0.0.1:{port}"), check=False,
                      timeout=ERROR_GUARD)
    return name, port, r


def test_wrong_endpoint_port_fails_clearly(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    """Wherever it fails (create, or the container's access), it fails within the guard, with
    an error that says so (the endpoint at create, EIO in the container), and the plugin serves on.
    (pyclone: create and mount succeed, the container's access gets EIO after its retries.)"""
    t0 = time.monotonic()
    name, port, r = dead_port_volume(res, moto)
    stage = "create"
    if r.returncode == 0:
        stage = "container"
        r = ctr_run(res, name, WRITE_ONE, check=False, timeout=ERROR_GUARD)
    took = time.monotonic() - t0
    print(f"\nwrong port: failed at {stage} (exit {r.returncode}) after {took:.1f} s: {r.stderr.strip()}")
    assert r.returncode != 0 and "wrote=yes" not in r.stdout, f"a volume on a dead port worked: {r}"
    err = r.stderr
    if stage == "create":
        assert f"127.0.0.1:{port}" in err, f"the error names no endpoint: {err}"
        assert not listed(res, name)
    else:
        assert "input/output error" in err.lower() or "i/o error" in err.lower(), \
            f"the container's error is not an I/O error: {err}"
        remove_volume(res, name)
    assert plugin.running and plugin.call("Plugin.Activate")[0] == 200


# Was: a listing that cannot reach the endpoint shows an empty directory: `ls /mnt` on a volume whose
# endpoint refuses connections exits 0 with nothing listed; rclone 1.75.2 fails it with EIO ('IO
# error: ... ListObjects ...', after its retries)
# Was: the I/O errors of a volume whose endpoint refuses connections are not logged (the container
# gets EIO, the plugin's log at -v has nothing); rclone 1.75.2 logs 'ERROR : IO error: ...' with the
# request's error


def test_wrong_endpoint_port_listing_fails(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    name, _port, r = dead_port_volume(res, moto)
    assert r.returncode == 0, f"create failed: {r.stderr}"  # pyclone's: create does not reach the endpoint
    r = ctr_run(res, name, "ls /mnt && echo listed=yes", check=False, timeout=ERROR_GUARD)
    remove_volume(res, name)
    assert r.returncode != 0 and "listed=yes" not in r.stdout, f"an unreachable remote listed as empty: {r.stdout}"
    assert "input/output error" in r.stderr.lower(), r.stderr


def test_wrong_endpoint_port_logged(plugin: PluginProcess, res: Resources, moto: MotoServer) -> None:
    log_start = plugin.log_size()
    name, port, r = dead_port_volume(res, moto)
    assert r.returncode == 0, f"create failed: {r.stderr}"
    r = ctr_run(res, name, WRITE_ONE, check=False, timeout=ERROR_GUARD)
    remove_volume(res, name)
    assert r.returncode != 0
    log = log_from(plugin.log_path, log_start)
    assert str(port) in log and "refused" in log.lower(), f"the plugin log does not say why:\n{log}"


# --------------------------------------------------------------------------
# 2m. the managed plugin: an rclone.conf section under /data/config
# --------------------------------------------------------------------------

with warnings.catch_warnings():  # `slow` is not registered in conftest.py (as in test_managed_plugin.py)
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    slow = pytest.mark.slow

MANAGED = "pyclonetest/pyclone-s3:e2e"


@pytest.fixture
def managed_s3(docker_ready: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The managed plugin (`make plugin`), created under its own name with config/cache in
    tmp_path; removed with its volumes at the end."""
    from test_managed_plugin import host_arch, remove_plugin

    arch = host_arch()
    p = subprocess.run(["make", "-C", str(REPO), "plugin", f"PLUGIN_ARCH={arch}"], capture_output=True,
                       text=True, timeout=1800, check=False)
    if p.returncode:
        pytest.fail(f"make plugin failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}", pytrace=False)
    plugin_dir = REPO / "build" / "plugin" / f"pyclone-{arch}"
    config, cache = tmp_path / "config", tmp_path / "cache"
    config.mkdir()
    cache.mkdir()
    (config / "rclone.conf").touch()
    remove_plugin(MANAGED)
    subprocess.run(["docker", "plugin", "create", MANAGED, str(plugin_dir)], check=True, capture_output=True,
                   timeout=300)
    try:
        subprocess.run(["docker", "plugin", "set", MANAGED, f"config.source={config}", f"cache.source={cache}",
                        "args=-v"], check=True, capture_output=True, timeout=60)
        yield MANAGED, config
    finally:
        remove_plugin(MANAGED)


@slow
def test_managed_plugin_rclone_conf_under_data_config(docker_ready: str, moto: MotoServer,
                                                      managed_s3: tuple[str, Path]) -> None:
    from dockercli import docker

    driver, config = managed_s3
    section = f"s3managed{tag()}"
    (config / "rclone.conf").write_text(s3_section(moto, section))
    bucket, prefix = moto.make_bucket(f"e2e-{tag()}"), f"managed-{tag()}"
    docker("plugin", "enable", "--timeout", "60", driver)
    name = f"s3managed{tag()}"
    docker("volume", "create", name, "-d", driver, "-o", f"remote={section}:{bucket}/{prefix}",
           "-o", "allow-other=true")
    try:
        assert name in docker("volume", "list", "-q", "--filter", f"driver={driver}").stdout.split()
        out = docker("run", "--rm", "-v", f"{name}:/mnt", docker_ready, "sh", "-c",
                     "cd /mnt && " + write_script(CONF_SMALL, CONF_BIG_MIB), timeout=RUN_TIMEOUT).stdout
        written = md5_lines(out)
        assert len(written) == CONF_SMALL + 1, out[-500:]
        docker("volume", "remove", name, timeout=RUN_TIMEOUT)
        keys = keys_under(moto, bucket, prefix)
        assert len(keys) == CONF_SMALL + 1, sorted(keys)[:5]
        assert md5_object(moto, bucket, f"{prefix}/big.bin") == written["big.bin"]
    finally:  # only a name that exists: an unknown one asks every v1 driver dockerd has seen (~15 s per dead one)
        if name in docker("volume", "ls", "-q", "--filter", f"driver={driver}", check=False).stdout.split():
            docker("volume", "rm", "-f", name, check=False)
