"""s3 options that change requests, each against a real S3 server (moto), checked on the
server with boto3: the bucket level, directory markers, ACL and storage class, requester pays,
download_url, no_head, --use-server-modtime, env_auth, multipart server-side copies above
copy_cutoff, SSE-C, and what a volume sends over the wire (captured by a FaultProxy)."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import random
import time
from collections.abc import Iterator

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.backends.base import Backend, BackendContext, read_full
from tests.support.faultproxy import FaultProxy
from tests.support.moto import MotoServer, moto_server

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoServer]:
    yield from moto_server()


def new(srv: MotoServer, root: str, endpoint: str = "", ctx: BackendContext | None = None, **opts: str) -> Backend:
    extra = "".join(f",{k}='{v}'" for k, v in opts.items())
    spec = (f":s3,provider=Other,endpoint='{endpoint or srv.endpoint}',access_key_id={srv.access_key_id},"
            f"secret_access_key={srv.secret_access_key}{extra}:{root}")
    return fsmod.new_fs(spec, fsmod.FsContext(backend=ctx) if ctx else fsmod.FsContext())


def put(b: Backend, path: str, data: bytes, mtime_ns: int | None = None) -> None:
    w = b.open_write(path, len(data), mtime_ns)
    if b.upload_hashes(len(data)):  # as the VFS does for an upload from its cache
        w.source_hashes = {"md5": hashlib.md5(data).hexdigest()}  # type: ignore[attr-defined]
    w.write(memoryview(data))
    w.close()


def get(b: Backend, path: str) -> bytes:
    r = b.open_read(path)
    try:
        out = bytearray()
        buf = bytearray(1 << 20)
        while n := read_full(r, memoryview(buf)):
            out += buf[:n]
        return bytes(out)
    finally:
        r.close()


def test_without_a_bucket_the_top_level_is_the_buckets(s3: MotoServer) -> None:
    b = new(s3, "")
    b.mkdir("pyc-made-by-mkdir")  # CreateBucket
    assert "pyc-made-by-mkdir" in {e.name for e in b.list("") if e.is_dir}
    put(b, "pyc-made-by-mkdir/d/f", b"x")
    assert [e.name for e in b.list("pyc-made-by-mkdir")] == ["d"]
    with pytest.raises(OSError) as e:
        b.rmdir("pyc-made-by-mkdir")  # BucketNotEmpty
    assert e.value.errno in (39, 17)
    b.delete("pyc-made-by-mkdir/d/f")
    b.rmdir("pyc-made-by-mkdir")  # DeleteBucket
    assert "pyc-made-by-mkdir" not in {e.name for e in b.list("")}


def test_a_write_makes_the_bucket_unless_no_check_bucket(s3: MotoServer) -> None:
    put(new(s3, "pyc-lazy/sub"), "f", b"made")
    assert s3.boto3_client().get_object(Bucket="pyc-lazy", Key="sub/f")["Body"].read() == b"made"
    with pytest.raises(OSError) as e:  # NoSuchBucket, naming the bucket: EIO at close, as rclone's
        put(new(s3, "pyc-never-made", no_check_bucket="true"), "f", b"x")
    assert e.value.errno == errno.EIO and "NoSuchBucket" in str(e.value)
    assert "pyc-never-made" in str(e.value) and s3.secret_access_key not in str(e.value)


def test_directory_markers(s3: MotoServer) -> None:
    s3.make_bucket("pyc-markers")
    b = new(s3, "pyc-markers/root", directory_markers="true")
    assert "empty_dirs" in b.features
    b.mkdir("d")
    keys = [o["Key"] for o in s3.boto3_client().list_objects_v2(Bucket="pyc-markers")["Contents"]]
    assert keys == ["root/d/"]
    assert [(e.name, e.is_dir) for e in b.list("")] == [("d", True)] and b.list("d") == []
    b.rmdir("d")
    assert "Contents" not in s3.boto3_client().list_objects_v2(Bucket="pyc-markers")


def test_acl_storage_class_and_requester_pays_reach_the_server(s3: MotoServer) -> None:
    s3.make_bucket("pyc-headers")
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        b = new(s3, "pyc-headers", endpoint=proxy.endpoint, acl="public-read",
                storage_class="REDUCED_REDUNDANCY", requester_pays="true")
        put(b, "f", b"data")
        assert get(b, "f") == b"data"
    head = s3.boto3_client().head_object(Bucket="pyc-headers", Key="f")
    assert head["StorageClass"] == "REDUCED_REDUNDANCY"
    grants = s3.boto3_client().get_object_acl(Bucket="pyc-headers", Key="f")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") and g["Permission"] == "READ" for g in grants)
    puts = [r for r in proxy.requests if r.method == "PUT" and r.path.endswith("/f")]
    assert puts and all(r.headers.get("x-amz-request-payer") == "requester" for r in puts)


def test_download_url_serves_the_reads(s3: MotoServer) -> None:
    s3.make_bucket("pyc-dl")
    data = random.Random(1).randbytes(100_000)
    s3.boto3_client().put_object(Bucket="pyc-dl", Key="f", Body=data, ACL="public-read")
    with FaultProxy("127.0.0.1", s3.port) as cdn:  # the "CDN": the same objects, another address
        b = new(s3, "pyc-dl", download_url=f"{cdn.endpoint}/pyc-dl")
        assert get(b, "f") == data
        gets = [r for r in cdn.requests if r.method == "GET"]
        assert len(gets) == 1 and "authorization" not in {k.lower() for k in gets[0].headers}


def test_modtimes_from_metadata_or_the_server(s3: MotoServer) -> None:
    s3.make_bucket("pyc-times")
    put(new(s3, "pyc-times"), "f", b"x", mtime_ns=1_234_567_890_123_456_789)
    listed = {e.name: e for e in new(s3, "pyc-times").list("")}
    assert listed["f"].mtime_ns == 1_234_567_890_123_456_789
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        server = new(s3, "pyc-times", endpoint=proxy.endpoint, ctx=BackendContext(use_server_modtime=True))
        listed = {e.name: e for e in server.list("")}
        assert abs(listed["f"].mtime_ns - time.time_ns()) < 600 * 10**9  # LastModified: now
        assert proxy.count(method="HEAD") == 0  # no HEAD per object


def test_no_head_trusts_the_upload(s3: MotoServer) -> None:
    s3.make_bucket("pyc-nohead")
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        b = new(s3, "pyc-nohead", endpoint=proxy.endpoint, no_head="true")
        put(b, "f", b"abc", mtime_ns=1_000_000_000_000_000_001)
        heads = proxy.count(method="HEAD")
        e = b.stat("f")
        assert (e.size, e.mtime_ns) == (3, 1_000_000_000_000_000_001) and proxy.count(method="HEAD") == heads


def test_env_auth_reads_the_aws_variables(s3: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.make_bucket("pyc-env")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_access_key)
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        b = fsmod.new_fs(f":s3,provider=Other,env_auth=true,endpoint='{proxy.endpoint}':pyc-env", fsmod.FsContext())
        put(b, "f", b"signed")
        auth = [r.headers.get("authorization", "") for r in proxy.requests]
        assert auth and all(f"Credential={s3.access_key_id}/" in a for a in auth)


def test_rename_and_modtime_above_copy_cutoff_use_multipart_copies(s3: MotoServer) -> None:
    s3.make_bucket("pyc-bigcopy")
    data = random.Random(2).randbytes(12 * MiB + 3)
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        b = new(s3, "pyc-bigcopy", endpoint=proxy.endpoint, copy_cutoff="5Mi", upload_cutoff="6Mi")
        put(b, "big", data, mtime_ns=1_500_000_000_000_000_000)
        b.move("big", "moved")
        b.set_modtime("moved", 1_600_000_000_000_000_000)
        copies = [r for r in proxy.requests if r.method == "PUT" and "x-amz-copy-source-range" in
                  {k.lower() for k in r.headers}]
        assert len(copies) >= 6  # three parts, twice
        assert get(b, "moved") == data and b.stat("moved").mtime_ns == 1_600_000_000_000_000_000
        with pytest.raises(FileNotFoundError):
            b.stat("big")
    head = s3.boto3_client().head_object(Bucket="pyc-bigcopy", Key="moved")
    assert head["Metadata"]["md5chksum"]  # kept through both copies
    assert base64.b64decode(head["Metadata"]["md5chksum"]) == hashlib.md5(data).digest()


def test_sse_customer_key_is_sent_on_every_object_request(s3: MotoServer) -> None:
    s3.make_bucket("pyc-ssec")
    key = os.urandom(32).hex()[:32]
    with FaultProxy("127.0.0.1", s3.port) as proxy:
        b = new(s3, "pyc-ssec", endpoint=proxy.endpoint, sse_customer_algorithm="AES256", sse_customer_key=key)
        put(b, "f", b"secret data")
        assert get(b, "f") == b"secret data"
        b.stat("f")
        for r in proxy.requests:
            if r.path.endswith("/f"):
                names = {k.lower() for k in r.headers}
                assert "x-amz-server-side-encryption-customer-key" in names, (r.method, r.path)
