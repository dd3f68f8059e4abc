"""tests/support/moto.py's MotoServer (moto's real S3 server in a child process) and
tests/support/hostsfile.py's HostsEntries, checked with boto3 and plain urllib3/http.client:
start and stop, reset, and virtual-host addressing (http://BUCKET.localhost:PORT/key)."""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from tests.support.hostsfile import MARKER, HostsEntries
from tests.support.moto import MotoError, MotoServer, moto_server, moto_unavailable, virtual_hosts_unavailable


@pytest.fixture(scope="session", autouse=True)
def _require_fuse() -> None:
    """Overrides the integration conftest's FUSE check: nothing here mounts (moto_server()
    makes its own check, PYCLONE_REQUIRE_MOTO=1 turns its skip into a failure)."""


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoServer]:
    yield from moto_server()


@pytest.fixture()
def vhosts() -> None:
    reason = virtual_hosts_unavailable()
    if reason:
        if os.environ.get("PYCLONE_REQUIRE_MOTO") == "1":
            pytest.fail(f"virtual-host tests cannot run: {reason}")
        pytest.skip(f"virtual-host tests skipped: {reason}")


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_server_answers_s3(s3: MotoServer) -> None:
    assert moto_unavailable() == ""
    assert s3.running and s3.endpoint == f"http://127.0.0.1:{s3.port}"
    assert s3.region == "us-east-1" and s3.access_key_id and s3.secret_access_key
    s3.reset()
    s3.make_bucket("moto-basic")
    client = s3.boto3_client()
    client.put_object(Bucket="moto-basic", Key="dir/a.txt", Body=b"hello", ACL="public-read")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["moto-basic"]
    # the object as any HTTP client sees it, path-style
    r = urllib3.PoolManager(retries=False).request("GET", f"{s3.endpoint}/moto-basic/dir/a.txt")
    assert r.status == 200 and r.data == b"hello"
    assert "moto-basic/dir/a.txt" in s3.log_text()


def test_reset_forgets_everything(s3: MotoServer) -> None:
    s3.make_bucket("moto-reset")
    s3.boto3_client().put_object(Bucket="moto-reset", Key="k", Body=b"v")
    s3.reset()
    assert s3.boto3_client().list_buckets()["Buckets"] == []


def test_stop_start_close() -> None:
    srv = MotoServer()
    with srv:
        pid, port, tmpdir = srv.pid, srv.port, srv.tmpdir
        assert pid and os.path.isdir(tmpdir)
        srv.make_bucket("moto-life")
        srv.stop()
        assert not srv.running and _pid_gone(pid) and _refused(port)
        srv.start()  # the same port, an empty server
        assert srv.port == port and srv.pid != pid
        assert srv.boto3_client().list_buckets()["Buckets"] == []
        srv.restart()
        assert srv.port == port and srv.running
        pid = srv.pid
    assert pid and _pid_gone(pid) and _refused(port) and not os.path.exists(tmpdir)


def test_virtual_host_get(s3: MotoServer, vhosts: None) -> None:
    s3.reset()
    for name in ("vhost-one", "vhost-two"):
        s3.make_bucket(name)
        s3.boto3_client().put_object(Bucket=name, Key="same/key", Body=name.encode(), ACL="public-read")
    one = s3.virtual_host_endpoint("vhost-one")
    assert one == f"http://vhost-one.localhost:{s3.port}"
    pool = urllib3.PoolManager(retries=False)
    # the bucket comes from the Host header: the same path names a different object
    r1 = pool.request("GET", f"{one}/same/key")
    r2 = pool.request("GET", s3.virtual_host_endpoint("vhost-two") + "/same/key")
    assert (r1.status, r1.data, r2.status, r2.data) == (200, b"vhost-one", 200, b"vhost-two")
    r3 = pool.request("GET", s3.virtual_host_endpoint("vhost-none") + "/same/key")
    assert r3.status == 404 and b"NoSuchBucket" in r3.data
    # bucket-less requests go to the base endpoint, path-style: ListBuckets
    r4 = pool.request("GET", s3.virtual_host_base_endpoint() + "/")
    assert r4.status == 200 and b"<Name>vhost-one</Name>" in r4.data and b"<Name>vhost-two</Name>" in r4.data
    # moto reads the Host header, not the address: plain http.client to 127.0.0.1
    conn = http.client.HTTPConnection("127.0.0.1", s3.port, timeout=30)
    try:
        conn.request("GET", "/same/key", headers={"Host": f"vhost-two.localhost:{s3.port}"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"vhost-two")
    finally:
        conn.close()


def test_virtual_host_signed_client(s3: MotoServer, vhosts: None) -> None:
    """A signing client in virtual-host mode (boto3, addressing_style=virtual) writes and lists
    through BUCKET.localhost; a path-style client sees the result."""
    import boto3
    from botocore.config import Config

    s3.reset()
    s3.make_bucket("vhost-signed")
    s3.virtual_host_name("vhost-signed")  # resolvable before the client uses it
    vclient = boto3.session.Session().client(
        "s3", endpoint_url=s3.virtual_host_base_endpoint(), region_name=s3.region,
        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    vclient.put_object(Bucket="vhost-signed", Key="obj", Body=b"signed body")
    keys = [o["Key"] for o in vclient.list_objects_v2(Bucket="vhost-signed")["Contents"]]
    assert keys == ["obj"]
    assert s3.boto3_client().get_object(Bucket="vhost-signed", Key="obj")["Body"].read() == b"signed body"
    url = vclient.generate_presigned_url("get_object", Params={"Bucket": "vhost-signed", "Key": "obj"})
    assert url.startswith(f"http://vhost-signed.localhost:{s3.port}/obj?")
    r = urllib3.PoolManager(retries=False).request("GET", url)
    assert r.status == 200 and r.data == b"signed body"


def test_virtual_host_lines_go_at_close(vhosts: None) -> None:
    name = f"vhost-close-{os.getpid()}"
    with MotoServer() as srv:
        srv.make_bucket(name)
        host = srv.virtual_host_name(name)
        srv.virtual_host_name(name)  # again: still one line
        assert srv._hosts is not None
        lines = srv._hosts.lines()
        if lines:  # none when *.localhost resolves here without help
            assert len(lines) == 1 and host in lines[0]
        assert socket.getaddrinfo(host, 80, socket.AF_INET)[0][4][0] == "127.0.0.1"
    assert host not in Path("/etc/hosts").read_text()
    with pytest.raises(MotoError, match="no dots"):
        MotoServer().virtual_host_name("with.dot")


def test_hosts_entries(tmp_path: Path) -> None:
    """On a scratch hosts file: idempotent adds, close() takes out only its own lines, and a
    dead owner's lines (a run killed with SIGKILL) are dropped at the next add()."""
    hosts = tmp_path / "hosts"
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    foreign = "10.1.2.3\tsomething.example\t# not ours"
    hosts.write_text(f"127.0.0.1 localhost\n{foreign}\n127.0.0.1\tstale.localhost\t{MARKER}{dead}-1\n")
    lock = tmp_path / "lock"
    with HostsEntries(hosts, lock) as a, HostsEntries(hosts, lock) as b:
        a.add("x.localhost")
        a.add("x.localhost")
        b.add("y.localhost")
        text = hosts.read_text()
        assert text.count("x.localhost") == 1 and "y.localhost" in text and "stale.localhost" not in text
        assert len(a.lines()) == 1 and len(b.lines()) == 1
        a.close()
        text = hosts.read_text()
        assert "x.localhost" not in text and "y.localhost" in text
        with pytest.raises(ValueError):
            b.add("bad name")
    assert hosts.read_text() == f"127.0.0.1 localhost\n{foreign}\n"
