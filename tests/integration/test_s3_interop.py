"""s3 volumes on a real S3 server (moto) through the plugin's FUSE mounts, and interop with
rclone 1.75.2 on the same bucket (issue 12): what rclone uploads reads back through our mount
with the same names, sizes, modtimes and bytes, and what our mount uploads rclone lists,
reads and checks (modtime and MD5), single PUTs and multipart uploads alike.

Real parts: tests/support/moto.py's moto server, the plugin as a subprocess, the reference
rclone (tests/rclone_ref.py) as an S3 client of the same server.
"""

from __future__ import annotations

import calendar
import errno
import hashlib
import os
import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import rclone_ref
from tests.support.moto import MotoServer, moto_server
from tests.support.rclonecli import GUARD, RcloneCli, make_tree

from .conftest import Plugin

MiB = 1 << 20
BUCKET = "pyc-interop"

# rel path -> (size, mtime ns). rclone's s3 keeps nanoseconds (X-Amz-Meta-Mtime)
FILES: dict[str, tuple[int, int]] = {
    "empty.bin": (0, 1_000_000_000_250_000_000),
    "one.bin": (1, 1_000_086_400_999_999_999),
    "odd.bin": (MiB + 7, 1_000_172_800_500_000_001),
    "multi.bin": (13 * MiB + 5, 1_234_567_890_123_456_789),  # multipart above the 6 MiB cutoff
    "Grüße ☃ 日本語.txt": (4099, 1_300_000_000_100_000_000),
    "space name .txt": (5, 1_400_000_000_000_000_000),
    "punct '\"$*?:<>|#%[];!~+=&.txt": (7, 1_500_000_000_000_000_000),
    "dir/sub/deep/nested.txt": (33, 1_100_000_000_000_000_000),
    "dir/ünï cødé/f.txt": (12, 1_100_000_002_000_000_000),
}


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def parse_time(s: str) -> int:
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", s)
    assert m, s
    return calendar.timegm(time.strptime(m[1], "%Y-%m-%dT%H:%M:%S")) * 10**9 + int((m[2] or "0").ljust(9, "0"))


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoServer]:
    yield from moto_server()


def rclone_for(srv: MotoServer, home: Path) -> RcloneCli:
    return RcloneCli(rclone_ref.require(), home,
                     lambda path: (f":s3,provider=Other,endpoint='{srv.endpoint}',access_key_id={srv.access_key_id},"
                                   f"secret_access_key={srv.secret_access_key},upload_cutoff=6Mi,chunk_size=5Mi:"
                                   f"{BUCKET}/{path}"),
                     lsjson_args=("--hash", "--hash-type", "md5"))


@pytest.fixture(scope="module")
def rc(s3: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> RcloneCli:
    s3.make_bucket(BUCKET)
    return rclone_for(s3, tmp_path_factory.mktemp("rclone-home"))


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("src"), FILES, content)


def s3_opts(srv: MotoServer, path: str, **extra: str) -> dict[str, str]:
    return {"type": "s3", "s3-provider": "Other", "s3-endpoint": srv.endpoint, "s3-access-key-id": srv.access_key_id,
            "s3-secret-access-key": srv.secret_access_key, "s3-upload-cutoff": "6Mi", "s3-chunk-size": "5Mi",
            "path": f"{BUCKET}/{path}", **extra}


def mount(plugin: Plugin, name: str, opts: dict[str, str]) -> Path:
    plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": opts})
    return Path(plugin.client.ok("VolumeDriver.Mount", {"Name": name, "ID": "t"})["Mountpoint"])


def unmount(plugin: Plugin, name: str) -> None:
    plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": "t"})


def walk(root: Path) -> dict[str, tuple[bool, int, int, str]]:
    out: dict[str, tuple[bool, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st, is_dir = os.stat(p), n in dirnames
            data = b"" if is_dir else Path(p).read_bytes()
            out[os.path.relpath(p, root)] = (is_dir, len(data), st.st_mtime_ns, "" if is_dir else md5(data))
    return out


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_rclone_uploaded_reads_back_through_our_mount(plugin: Plugin, s3: MotoServer, rc: RcloneCli, src: Path,
                                                           mode: str) -> None:
    d = f"from-rclone-{mode}"
    rc.run("copy", str(src), rc.remote(d))
    theirs = rc.lsjson(d)
    mp = mount(plugin, f"r-{mode}", s3_opts(s3, d, **{"vfs-cache-mode": mode}))
    try:
        ours = walk(mp)
    finally:
        unmount(plugin, f"r-{mode}")
    assert sorted(ours) == sorted(theirs)
    for rel, (size, mtime_ns) in FILES.items():
        is_dir, got_size, got_mtime, digest = ours[rel]
        assert not is_dir and (got_size, digest) == (size, md5(content(rel, size))), rel
        assert got_mtime == mtime_ns == parse_time(theirs[rel]["ModTime"]), rel  # to the nanosecond


@pytest.mark.parametrize("mode", ["off", "full"])
def test_what_our_mount_uploaded_rclone_lists_reads_and_checks(plugin: Plugin, s3: MotoServer, rc: RcloneCli,
                                                               src: Path, mode: str) -> None:
    d = f"from-mount-{mode}"
    mp = mount(plugin, f"w-{mode}", s3_opts(s3, d, **{"vfs-cache-mode": mode, "vfs-write-back": "0.2s"}))
    try:
        for rel, (size, mtime_ns) in FILES.items():
            (mp / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(mp / rel, "wb") as f:
                f.write(content(rel, size))
                f.flush()  # a write after the utime would stamp the time of that write (POSIX)
                os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
    finally:
        unmount(plugin, f"w-{mode}")  # waits for the uploads
    theirs = rc.lsjson(d)
    assert sorted(k for k, e in theirs.items() if not e["IsDir"]) == sorted(FILES)
    for rel, (size, mtime_ns) in FILES.items():
        e = theirs[rel]
        assert e["Size"] == size and parse_time(e["ModTime"]) == mtime_ns, (rel, e)
        assert e["Hashes"].get("md5") == md5(content(rel, size)), (rel, e["Hashes"])
        assert rc.run("cat", rc.remote(f"{d}/{rel}")).stdout == content(rel, size), rel
    check = subprocess.run([rc.binary, "check", str(src), rc.remote(d)], env=rc.env, capture_output=True,
                           timeout=GUARD, check=False)
    log = check.stderr.decode(errors="replace")
    assert check.returncode == 0 and "0 differences found" in log, log
    assert f"{len(FILES)} matching files" in log and "hashes could not be checked" not in log, log
    # on the server: rclone's metadata, byte for byte (X-Amz-Meta-Mtime as rclone writes it)
    head = s3.boto3_client().head_object(Bucket=BUCKET, Key=f"{d}/odd.bin")
    assert head["Metadata"]["mtime"] == "1000172800.500000001"


def test_a_volume_on_s3_behaves_as_a_filesystem(plugin: Plugin, s3: MotoServer) -> None:
    mp = mount(plugin, "fs", s3_opts(s3, "fs", **{"vfs-cache-mode": "writes", "vfs-write-back": "0.2s",
                                                  "dir-cache-time": "0.5s"}))
    client = s3.boto3_client()

    def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="fs/").get("Contents", []))
    try:
        (mp / "empty").mkdir()
        (mp / "d" / "e").mkdir(parents=True)
        (mp / "d" / "e" / "f.txt").write_bytes(b"hello")
        (mp / "big").write_bytes(content("big", 9 * MiB))
        time.sleep(1.0)  # listings expire: the empty directory lives on in the mount
        assert sorted(os.listdir(mp)) == ["big", "d", "empty"]
        os.rename(mp / "d", mp / "renamed")  # a directory rename copies each object
        os.rename(mp / "big", mp / "renamed" / "big2")
        assert (mp / "renamed" / "e" / "f.txt").read_bytes() == b"hello"
        assert (mp / "renamed" / "big2").read_bytes() == content("big", 9 * MiB)
        with pytest.raises(OSError) as e:
            os.rmdir(mp / "renamed")
        assert e.value.errno == errno.ENOTEMPTY
        os.rmdir(mp / "empty")
        os.utime(mp / "renamed" / "e" / "f.txt", ns=(1_600_000_000_000_000_007,) * 2)
    finally:
        unmount(plugin, "fs")
    assert keys() == ["fs/renamed/big2", "fs/renamed/e/f.txt"]  # nothing stored for a directory
    head = client.head_object(Bucket=BUCKET, Key="fs/renamed/e/f.txt")
    assert head["Metadata"]["mtime"] == "1600000000.000000007"
    got = client.get_object(Bucket=BUCKET, Key="fs/renamed/big2")["Body"].read()
    assert got == content("big", 9 * MiB)
