"""End-to-end tests: the plugin as a subprocess, driven by a real dockerd.

Run as root with dockerd up (``.ci/start-dockerd.sh``)::

    python3 -m pytest -v tests/e2e

Every test uses unique volume/container names; the ``res`` fixture removes
containers, then volumes, and checks that nothing stays mounted under the
plugin's base directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # helpers come in through the fixtures, never by importing conftest
    from conftest import PluginProcess, Resources

pytestmark = pytest.mark.docker

BIG_MB = 20
DOCKER_TIMEOUT = 120.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def inspect_volume(res: Resources, name: str) -> dict[str, Any]:
    data = json.loads(res.docker("volume", "inspect", name).stdout)
    assert isinstance(data, list) and len(data) == 1, data
    return data[0]


def driver_volumes(res: Resources, driver: str | None = None) -> list[str]:
    # Filtered by driver on purpose: an unfiltered `docker volume ls` asks
    # every v1 plugin dockerd has ever seen and stalls ~15 s on dead ones.
    driver = driver or res.plugin.driver
    return res.docker("volume", "ls", "-q", "--filter", f"driver={driver}").stdout.split()


def mount_ids(res: Resources, name: str) -> list[str]:
    status = inspect_volume(res, name).get("Status") or {}
    mounts = status.get("Mounts")
    assert isinstance(mounts, list), f"Status.Mounts missing or not a list: {status!r}"
    return mounts


def is_mounted(plugin: PluginProcess, mountpoint: str) -> bool:
    return any(m == mountpoint for m, _fstype in plugin.mounts())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_in(res: Resources, volume: str, script: str, *, timeout: float = DOCKER_TIMEOUT) -> str:
    """docker run --rm -v volume:/data IMAGE sh -c script; returns stdout."""
    return res.docker(
        "run",
        "--rm",
        *res.run_args(),
        "-v",
        f"{volume}:/data",
        res.image,
        "sh",
        "-c",
        script,
        timeout=timeout,
    ).stdout


def start_sleeper(res: Resources, volume: str, script: str = "") -> str:
    """A detached container holding the volume mounted (runs `script`, then sleeps)."""
    name = res.container()
    cmd = f"{script}\nexec sleep 300" if script else "exec sleep 300"
    res.docker(
        "run",
        "-d",
        *res.run_args(name),
        "-v",
        f"{volume}:/data",
        res.image,
        "sh",
        "-c",
        cmd,
    )
    return name


def assert_host_file(res: Resources, path: Path, expected: str, timeout: float = 10.0) -> None:
    """The backing file on the host gets exactly `expected` (waits: the
    container may still be writing/closing it, uploads may be asynchronous)."""
    seen: list[str] = []

    def matches() -> bool:
        seen.append(path.read_text() if path.exists() else "<missing>")
        return seen[-1] == expected

    try:
        res.wait_for(matches, timeout, f"{path} to contain {expected!r}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last content: {seen[-1] if seen else '?'!r}") from None


# --------------------------------------------------------------------------
# a. basic lifecycle
# --------------------------------------------------------------------------


def test_create_use_inspect_ls_rm(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()

    out = run_in(res, vol, "echo hi > /data/f.txt; cat /data/f.txt")
    assert out.strip() == "hi"
    assert_host_file(res, backing / "f.txt", "hi\n")

    info = inspect_volume(res, vol)
    assert info["Name"] == vol
    assert info["Driver"] == plugin.driver
    assert info["Mountpoint"], info
    assert os.path.realpath(info["Mountpoint"]).startswith(os.path.realpath(plugin.base_dir) + "/"), info
    assert isinstance(info.get("Status"), dict) and "Mounts" in info["Status"], info
    assert info["Status"]["Mounts"] == [], f"no container runs, yet Status.Mounts = {info['Status']['Mounts']}"
    assert info.get("Options", {}).get("type") == "local", info

    assert vol in driver_volumes(res)
    ls = res.docker(
        "volume",
        "ls",
        "--filter",
        f"name={vol}",
        "--filter",
        f"driver={plugin.driver}",
        "--format",
        "{{.Driver}} {{.Name}}",
    ).stdout
    assert f"{plugin.driver} {vol}" in ls.splitlines(), ls

    # The plugin itself answers Get/List consistently.
    status, body = plugin.call("VolumeDriver.Get", {"Name": vol})
    assert status == 200 and body["Volume"]["Name"] == vol, (status, body)
    status, body = plugin.call("VolumeDriver.List", {})
    assert status == 200 and vol in [v["Name"] for v in body["Volumes"]], (status, body)

    res.docker("volume", "rm", vol)
    assert vol not in driver_volumes(res)
    status, body = plugin.call("VolumeDriver.Get", {"Name": vol})
    assert status != 200 or (isinstance(body, dict) and body.get("Err")), f"Get after rm: {status} {body}"
    # Removing a volume never deletes its data.
    assert (backing / "f.txt").read_text() == "hi\n"


# --------------------------------------------------------------------------
# b. a bigger file, checksummed in two containers and on the host
# --------------------------------------------------------------------------


def test_large_file_checksum(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()

    out = run_in(
        res,
        vol,
        f"dd if=/dev/urandom of=/data/big.bin bs=1M count={BIG_MB} 2>/dev/null && sync && sha256sum /data/big.bin",
        timeout=300,
    )
    written_sum = out.split()[0]

    out = run_in(res, vol, "sha256sum /data/big.bin; wc -c < /data/big.bin", timeout=300)
    read_sum, size = out.split()[0], int(out.split()[-1])
    assert size == BIG_MB * 1024 * 1024
    assert read_sum == written_sum, "a second container read different data"

    host = backing / "big.bin"
    res.wait_for(
        lambda: host.exists() and host.stat().st_size == BIG_MB * 1024 * 1024,
        15,
        "big.bin on the host",
    )
    assert sha256_file(host) == written_sum, "backend file differs from what the container wrote"


# --------------------------------------------------------------------------
# c. plugin restart: graceful, and crash while a container holds the volume
# --------------------------------------------------------------------------


def test_graceful_restart_restores_state(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()
    assert run_in(res, vol, "echo before > /data/before.txt; cat /data/before.txt").strip() == "before"
    mountpoint = inspect_volume(res, vol)["Mountpoint"]

    plugin.restart()  # SIGTERM (must exit within 10 s), then start with the same dirs

    assert vol in driver_volumes(res), "volume lost across a plugin restart"
    info = inspect_volume(res, vol)
    assert info["Driver"] == plugin.driver
    assert info["Mountpoint"] == mountpoint
    assert info["Status"]["Mounts"] == []

    # The restored volume still points at the same backing path (rclone#9853).
    out = run_in(res, vol, "cat /data/before.txt; echo after > /data/after.txt; ls /data")
    assert out.splitlines()[0] == "before", out
    assert_host_file(res, backing / "after.txt", "after\n")


def test_crash_while_mounted(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()
    ctr = start_sleeper(res, vol, "echo pre > /data/pre.txt")
    assert_host_file(res, backing / "pre.txt", "pre\n")
    mountpoint = inspect_volume(res, vol)["Mountpoint"]
    assert is_mounted(plugin, os.path.realpath(mountpoint)), f"{mountpoint} is not mounted while a container uses it"
    assert len(mount_ids(res, vol)) == 1

    plugin.kill()  # SIGKILL: no cleanup, stale FUSE mount and socket stay behind
    # No docker command while the plugin is down: dockerd would retry ~15 s.
    plugin.start()

    problems: list[str] = []
    assert vol in driver_volumes(res), "volume not listed after a plugin crash"
    ids = mount_ids(res, vol)
    if len(ids) != 1:
        problems.append(f"Status.Mounts after crash+restart = {ids}, expected the container's mount id")

    # The plugin should repair the stale mount (unmount + remount for live ids).
    def healthy() -> bool:
        os.listdir(mountpoint)
        return (Path(mountpoint) / "pre.txt").exists()

    try:
        res.wait_for(healthy, 20, f"{mountpoint} to be usable again after the restart")
    except AssertionError as e:
        problems.append(str(e))

    res.docker("rm", "-f", ctr, timeout=90)

    # After the container is gone, Remove must succeed (retry: Unmount may lag).
    errors: list[str] = []

    def removed() -> bool:
        r = res.docker("volume", "rm", vol, check=False, timeout=90)
        errors.append(r.stderr.strip())
        return r.returncode == 0

    try:
        res.wait_for(removed, 30, f"docker volume rm {vol} to succeed", interval=1.0)
    except AssertionError as e:
        raise AssertionError(f"{e}; last error: {errors[-1] if errors else '?'}") from None
    assert vol not in driver_volumes(res)
    assert (backing / "pre.txt").read_text() == "pre\n", "data lost"
    res.wait_for(lambda: not plugin.mounts(), 10, "no mounts under the base dir")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# d. two containers share a volume (mount refcount by ID)
# --------------------------------------------------------------------------


def test_two_containers_share_volume(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()
    c1 = start_sleeper(res, vol, "echo one > /data/one.txt")
    c2 = start_sleeper(res, vol, "echo two > /data/two.txt")
    assert_host_file(res, backing / "one.txt", "one\n")
    assert_host_file(res, backing / "two.txt", "two\n")
    mountpoint = os.path.realpath(inspect_volume(res, vol)["Mountpoint"])
    assert is_mounted(plugin, mountpoint), f"{mountpoint} not mounted on the host"

    def exec_out(ctr: str, script: str) -> str:
        return res.docker("exec", ctr, "sh", "-c", script).stdout

    assert exec_out(c1, "cat /data/two.txt") == "two\n"
    assert exec_out(c2, "cat /data/one.txt") == "one\n"
    assert exec_out(c1, "echo from1 > /data/x.txt; cat /data/x.txt") == "from1\n"
    assert exec_out(c2, "cat /data/x.txt") == "from1\n"

    ids = mount_ids(res, vol)
    assert len(ids) == 2 and len(set(ids)) == 2, f"expected two mount ids, got {ids}"

    res.docker("rm", "-f", c1, timeout=90)
    res.containers.remove(c1)
    ids_after = mount_ids(res, vol)
    assert len(ids_after) == 1 and ids_after[0] in ids, f"after the first container: {ids_after}"
    assert is_mounted(plugin, mountpoint), "the volume was unmounted although a second container still uses it"
    # The second container still works on the (still mounted) volume.
    assert exec_out(
        c2,
        "cat /data/one.txt /data/x.txt; echo three > /data/three.txt; cat /data/three.txt",
    ) == ("one\nfrom1\nthree\n")
    assert_host_file(res, backing / "three.txt", "three\n")

    res.docker("rm", "-f", c2, timeout=90)
    res.containers.remove(c2)
    assert mount_ids(res, vol) == []
    res.wait_for(
        lambda: not plugin.mounts(),
        10,
        "the volume to be unmounted after the last container",
    )


# --------------------------------------------------------------------------
# e. implicit create (Opts null) is refused with a clear message
# --------------------------------------------------------------------------


def test_implicit_create_without_options_fails(plugin: PluginProcess, res: Resources) -> None:
    vol = res.volume()
    r = res.docker(
        "run",
        "--rm",
        *res.run_args(),
        "--volume-driver",
        plugin.driver,
        "-v",
        f"{vol}:/data",
        res.image,
        "sh",
        "-c",
        "echo should-not-run",
        check=False,
    )
    assert r.returncode != 0, f"container ran on an option-less volume: {r.stdout!r}"
    assert "should-not-run" not in r.stdout
    m = re.search(r"VolumeDriver\.Create:\s*(.*)", r.stderr)
    assert m, f"the plugin's Create error did not reach the CLI: {r.stderr!r}"
    assert re.search(r"remote|type", m.group(1), re.IGNORECASE), (
        f"error does not mention the missing remote/type: {m.group(1)!r}"
    )
    assert vol not in driver_volumes(res)
    assert vol not in res.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split()

    # Same thing straight on the socket, as dockerd sends it.
    status, body = plugin.call("VolumeDriver.Create", {"Name": vol, "Opts": None})
    assert status != 200 and isinstance(body, dict) and body.get("Err"), (status, body)


# --------------------------------------------------------------------------
# f. unknown option
# --------------------------------------------------------------------------


def test_bad_option_is_rejected(plugin: PluginProcess, res: Resources) -> None:
    vol = res.volume()
    backing = res.backing_dir(vol)
    r = res.docker(
        "volume",
        "create",
        "-d",
        plugin.driver,
        "-o",
        "type=local",
        "-o",
        f"path={backing}",
        "-o",
        "bogus-option=1",
        vol,
        check=False,
    )
    assert r.returncode != 0, f"volume with a bogus option was created: {r.stdout!r}"
    assert "bogus-option" in r.stderr, f"error does not name the option: {r.stderr!r}"
    assert vol not in driver_volumes(res)
    assert vol not in res.docker("volume", "ls", "-q", "--filter", "driver=local").stdout.split()
    status, body = plugin.call("VolumeDriver.Get", {"Name": vol})
    assert status != 200 or (isinstance(body, dict) and body.get("Err")), f"Get after failed create: {body}"


# --------------------------------------------------------------------------
# g. copy-up of image content into a new, empty volume
# --------------------------------------------------------------------------


def test_copy_up_from_image(plugin: PluginProcess, res: Resources) -> None:
    vol, backing = res.create_volume()
    assert not any(backing.iterdir())
    out = run_in(res, vol, "cat /data/from-image.txt")
    assert out == "hello\n"
    assert_host_file(res, backing / "from-image.txt", "hello\n")
    assert mount_ids(res, vol) == []

    # A non-empty volume is not overwritten by a second copy-up.
    (backing / "from-image.txt").write_text("changed\n")
    assert run_in(res, vol, "cat /data/from-image.txt") == "changed\n"


# --------------------------------------------------------------------------
# protocol odds and ends seen from dockerd
# --------------------------------------------------------------------------


def test_create_is_idempotent_in_docker(plugin: PluginProcess, res: Resources) -> None:
    vol, _backing = res.create_volume()
    # Same name again: dockerd only calls Get and keeps the first options.
    other = res.backing_dir(vol + "-other")
    out = res.docker(
        "volume",
        "create",
        "-d",
        plugin.driver,
        "-o",
        "type=local",
        "-o",
        f"path={other}",
        vol,
    )
    assert out.stdout.strip() == vol
    assert driver_volumes(res).count(vol) == 1
