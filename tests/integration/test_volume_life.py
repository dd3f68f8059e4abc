"""A volume's life under concurrent calls over the real socket, with real FUSE mounts: Mount
racing Remove, many threads on overlapping names, then a crash and a restart. After each
phase no FUSE mount is left under --base-dir without a volume using it, and Get, List, the
mounts and the state file agree."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .conftest import Plugin


def local(path: Path) -> dict[str, str]:
    return {"type": "local", "path": str(path)}


def call(plugin: Plugin, endpoint: str, body: dict[str, Any]) -> tuple[bool, str]:
    status, data = plugin.client.call(endpoint, body)
    assert status in (200, 500), (endpoint, status, data)
    return status == 200 and not data.get("Err"), data.get("Err", "")


def check_consistent(plugin: Plugin) -> dict[str, list[str]]:
    """Every volume with mount IDs is mounted, no other mount is under --base-dir, and the
    state file holds the volumes List shows. Returns each volume's mount IDs."""
    c = plugin.client
    listed = {v["Name"]: v["Mountpoint"] for v in c.ok("VolumeDriver.List", {})["Volumes"]}
    ids = {name: c.ok("VolumeDriver.Get", {"Name": name})["Volume"]["Status"]["Mounts"] for name in listed}
    mounted = sorted(plugin.mounts())
    assert mounted == sorted(listed[n] for n in listed if ids[n]), (mounted, ids)
    state = json.loads((plugin.cache / "docker-plugin.state").read_text())
    assert sorted(v["name"] for v in state) == sorted(listed)
    return ids


def test_mount_racing_unmount_remove_mount(plugin: Plugin, data_dir: Path) -> None:
    """Mount(v, a), then at once Unmount(v, a), Remove(v) and Mount(v, b). Remove and Mount(b)
    cannot both succeed: Mount(b) before Remove makes the volume in use; after it, there is no
    volume. (Both did succeed, leaving a FUSE mount with no volume behind it.)"""
    outcomes = []
    for r in range(12):
        name = f"race{r}"
        plugin.client.ok("VolumeDriver.Create", {"Name": name, "Opts": local(data_dir)})
        results: dict[str, tuple[bool, str]] = {}

        def run(key: str, endpoint: str, body: dict[str, Any], res: dict[str, tuple[bool, str]] = results) -> None:
            res[key] = call(plugin, endpoint, body)

        first = threading.Thread(target=run, args=("mount a", "VolumeDriver.Mount", {"Name": name, "ID": "a"}))
        first.start()
        time.sleep(0.002)  # Mount(a) first on the wire; the others while its FUSE mount starts
        rest = [threading.Thread(target=run, args=args) for args in [
            ("unmount a", "VolumeDriver.Unmount", {"Name": name, "ID": "a"}),
            ("remove", "VolumeDriver.Remove", {"Name": name}),
            ("mount b", "VolumeDriver.Mount", {"Name": name, "ID": "b"})]]
        for t in rest:
            t.start()
        for t in [first, *rest]:
            t.join(30)
        assert not (results["remove"][0] and results["mount b"][0]), results
        outcomes.append((results["remove"][0], results["mount b"][0]))
        ids = check_consistent(plugin)
        for mid in ids.get(name, []):
            plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": mid})
        call(plugin, "VolumeDriver.Remove", {"Name": name})
    check_consistent(plugin)
    assert plugin.mounts() == []
    print(f"\n(remove ok, mount b ok) outcomes: {sorted(set(outcomes))}")


def test_many_threads_overlapping_names_then_restart(plugin_factory: Any, data_dir: Path) -> None:
    plugin = plugin_factory()
    names = ["n0", "n1", "n2"]
    errors: list[str] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(40):
            name, mid = rnd.choice(names), f"t{seed}-{rnd.randrange(2)}"
            op = rnd.choice(["Create", "Mount", "Mount", "Unmount", "Remove", "Get"])
            body: dict[str, Any] = {"Name": name}
            if op == "Create":
                body["Opts"] = local(data_dir)
            elif op in ("Mount", "Unmount"):
                body["ID"] = mid
            ok, err = call(plugin, "VolumeDriver." + op, body)
            if not ok and err not in ("volume not found", "volume is in use"):
                errors.append(f"{op} {name}: {err}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    ids = check_consistent(plugin)
    # leave one volume in use at least, then crash and start again
    keep = names[0]
    if keep not in ids:
        plugin.client.ok("VolumeDriver.Create", {"Name": keep, "Opts": local(data_dir)})
    plugin.client.ok("VolumeDriver.Mount", {"Name": keep, "ID": "survivor"})
    ids = check_consistent(plugin)
    plugin.stop(signal.SIGKILL)
    plugin.start()
    deadline = time.monotonic() + 20
    want = {name for name, mids in ids.items() if mids}
    while time.monotonic() < deadline:  # restore remounts in the background
        live = {os.path.basename(mp) for mp in plugin.mounts() if _answers(mp)}
        if live == want:
            break
        time.sleep(0.05)
    after = check_consistent(plugin)
    assert after == ids  # the same volumes with the same mount IDs
    assert {os.path.basename(mp) for mp in plugin.mounts()} == want
    for name, mids in after.items():
        for mid in mids:
            plugin.client.ok("VolumeDriver.Unmount", {"Name": name, "ID": mid})
        plugin.client.ok("VolumeDriver.Remove", {"Name": name})
    assert check_consistent(plugin) == {} and plugin.mounts() == []


def _answers(mountpoint: str) -> bool:
    try:
        os.listdir(mountpoint)
        return os.stat(mountpoint).st_dev != os.stat(os.path.dirname(mountpoint)).st_dev
    except OSError:
        return False
