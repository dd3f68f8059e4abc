"""The volume manager's logic without root: FUSE mounts are faked, the backend is a real local
directory. Above all the rule for a volume's life: an operation that waited on the lock of a
volume removed meanwhile fails "volume not found" and mounts nothing, and a name is used
again only once the Remove of its last volume has finished its clean-up."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyclone_docker import fs as fsmod
from pyclone_docker.docker import driver as drivermod
from pyclone_docker.docker.driver import ERR_IN_USE, ERR_NOT_FOUND, Driver, DriverError
from pyclone_docker.docker.state import StateFile
from pyclone_docker.docker.volume import check_mount_id, check_name
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse import mount as real_mountmod


class FakeMounts:
    """Stands in for fuse/mount.py: records which mountpoints are mounted. A mount's start
    can be held at a gate, so a test decides when it ends."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.started: list[str] = []
        self.gate: threading.Event | None = None
        self.starting = threading.Event()
        self.MountError = real_mountmod.MountError
        fake = self

        class FuseMount:
            def __init__(self, mountpoint: str, ops: Any, values: Any, devname: str,
                         on_exit: Callable[..., None] | None = None) -> None:
                self.mountpoint = mountpoint
                self.alive = False

            def start(self, timeout: float) -> None:
                fake.starting.set()
                if fake.gate is not None:
                    assert fake.gate.wait(10)
                assert self.mountpoint not in fake.active, "mounted twice"
                fake.active.add(self.mountpoint)
                fake.started.append(self.mountpoint)
                self.alive = True

            def unmount(self, lazy: bool = False) -> None:
                fake.active.discard(self.mountpoint)
                self.alive = False

        self.FuseMount = FuseMount

    def is_mountpoint(self, path: str) -> bool:
        return path in self.active

    def umount(self, path: str, lazy: bool = False) -> None:
        self.active.discard(path)

    def fuse_binding(self) -> None:
        pass

    def clean_stale_mounts(self, base: str) -> list[str]:
        return []


class FifoLock:
    """A volume lock that hands itself over in arrival order, and shows who waits: the tests
    line operations up in the order that used to go wrong."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()
        self._held = False

    def __enter__(self) -> None:
        me = object()
        with self._cv:
            self._queue.append(me)
            self._cv.notify_all()
            while self._held or self._queue[0] is not me:
                self._cv.wait()
            self._queue.popleft()
            self._held = True

    def __exit__(self, *exc: object) -> None:
        with self._cv:
            self._held = False
            self._cv.notify_all()

    def wait_for_waiters(self, n: int) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: len(self._queue) >= n, 10), f"{len(self._queue)} waiting, not {n}"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMounts:
    f = FakeMounts()
    monkeypatch.setattr(drivermod, "mountmod", SimpleNamespace(
        FuseMount=f.FuseMount, MountError=f.MountError, is_mountpoint=f.is_mountpoint, umount=f.umount,
        fuse_binding=f.fuse_binding, clean_stale_mounts=f.clean_stale_mounts))
    return f


def make_driver(tmp_path: Path) -> Driver:
    (tmp_path / "state").mkdir(exist_ok=True)
    return Driver(str(tmp_path / "base"), StateFile(str(tmp_path / "state")), OptionValues.defaults(VOLUME_OPTIONS),
                  frozenset(), fsmod.FsContext(env={}), cache_dir=str(tmp_path / "cache"))


def local(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return {"type": "local", "path": str(data)}


class Calls:
    """Runs driver calls on threads and keeps what each returned or raised."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []

    def start(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                self.results[key] = fn(*args)
            except DriverError as e:
                self.results[key] = e

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def join(self) -> None:
        for t in self.threads:
            t.join(10)
            assert not t.is_alive()


def hold_lock(lock: FifoLock, until: threading.Event) -> None:
    with lock:
        assert until.wait(10)


def test_mount_waiting_behind_a_remove_finds_no_volume(tmp_path: Path, fake: FakeMounts) -> None:
    """Mount(v, a), then at once Unmount(v, a), Remove(v), Mount(v, b), served in that order:
    Remove succeeds, so Mount(b) must fail, and no mount may stay behind."""
    d = make_driver(tmp_path)
    d.create("v", local(tmp_path))
    vol = d._volumes["v"]
    vol.lock = FifoLock()  # type: ignore[assignment]
    fake.gate = threading.Event()
    calls = Calls()
    calls.start("mount a", d.mount, "v", "a")
    assert fake.starting.wait(10)  # mount a holds the lock, its FUSE start held at the gate
    for n, (key, fn, *args) in enumerate([("unmount a", d.unmount, "v", "a"), ("remove", d.remove, "v"),
                                          ("mount b", d.mount, "v", "b")], 1):
        calls.start(key, fn, *args)
        vol.lock.wait_for_waiters(n)  # type: ignore[attr-defined]
    fake.gate.set()
    calls.join()
    assert calls.results["mount a"] == vol.mountpoint
    assert calls.results["unmount a"] is None and calls.results["remove"] is None
    assert isinstance(calls.results["mount b"], DriverError) and str(calls.results["mount b"]) == ERR_NOT_FOUND
    assert fake.active == set()  # was: a FUSE mount left with no volume behind it
    assert d.list() == []
    with pytest.raises(DriverError, match=ERR_NOT_FOUND):
        d.get("v")
    assert [r["name"] for r in d.state.load()] == []


def test_unmount_waiting_behind_a_remove_finds_no_volume(tmp_path: Path, fake: FakeMounts) -> None:
    d = make_driver(tmp_path)
    d.create("v", local(tmp_path))
    vol = d._volumes["v"]
    vol.lock = FifoLock()  # type: ignore[assignment]
    hold = threading.Event()
    calls = Calls()
    calls.start("holder", hold_lock, vol.lock, hold)
    calls.start("remove", d.remove, "v")
    vol.lock.wait_for_waiters(1)  # type: ignore[attr-defined]
    calls.start("unmount", d.unmount, "v", "x")
    vol.lock.wait_for_waiters(2)  # type: ignore[attr-defined]
    hold.set()
    calls.join()
    assert calls.results["remove"] is None
    assert str(calls.results["unmount"]) == ERR_NOT_FOUND


def test_create_waits_for_the_remove_of_its_name_to_finish(tmp_path: Path, fake: FakeMounts,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A Remove still cleaning up (mountpoint, cache) must not meet a new volume of the same
    name: it would delete the new one's mountpoint and cache."""
    d = make_driver(tmp_path)
    opts = local(tmp_path)
    d.create("v", opts)
    vol = d._volumes["v"]
    vol.lock = FifoLock()  # type: ignore[assignment]
    cleaning, done = threading.Event(), threading.Event()
    order: list[str] = []
    real_drop = d._drop_cache

    def slow_drop(name: str) -> None:
        cleaning.set()
        assert done.wait(10)
        real_drop(name)
        order.append("remove cleaned up")

    monkeypatch.setattr(d, "_drop_cache", slow_drop)
    calls = Calls()
    calls.start("remove", d.remove, "v")
    assert cleaning.wait(10)
    calls.start("create", lambda: d.create("v", opts) or order.append("created"))
    deadline = time.monotonic() + 10
    while "create" not in calls.results and time.monotonic() < deadline:
        with vol.lock._cv:  # type: ignore[attr-defined]
            if vol.lock._queue:  # type: ignore[attr-defined]
                break  # the Create waits for the Remove
        time.sleep(0.01)
    done.set()
    calls.join()
    assert order == ["remove cleaned up", "created"]
    assert d._volumes["v"] is not vol and Path(d._volumes["v"].mountpoint).is_dir()
    assert [r["name"] for r in d.state.load()] == ["v"]


def test_restore_does_not_remount_a_volume_removed_meanwhile(tmp_path: Path, fake: FakeMounts) -> None:
    """After a crash, restore remounts volumes that had mount IDs; if Docker unmounts and
    removes one first, restore must leave it alone."""
    first = make_driver(tmp_path)
    first.create("v", local(tmp_path))
    first.mount("v", "live")
    fake.active.clear()  # the plugin was killed: its mounts are gone
    d = make_driver(tmp_path)
    d.load_state()
    vol = d._volumes["v"]
    vol.lock = FifoLock()  # type: ignore[assignment]
    hold = threading.Event()
    calls = Calls()
    calls.start("holder", hold_lock, vol.lock, hold)
    for n, (key, fn, *args) in enumerate([("unmount", d.unmount, "v", "live"), ("remove", d.remove, "v"),
                                          ("restore", d.restore)], 1):
        calls.start(key, fn, *args)
        vol.lock.wait_for_waiters(n)  # type: ignore[attr-defined]
    hold.set()
    calls.join()
    assert calls.results["unmount"] is None and calls.results["remove"] is None
    assert fake.active == set() and d.list() == []


def test_restore_does_not_mount_twice(tmp_path: Path, fake: FakeMounts) -> None:
    """A Mount that came in before restore reached the volume: restore leaves that mount be."""
    first = make_driver(tmp_path)
    first.create("v", local(tmp_path))
    first.mount("v", "live")
    fake.active.clear()
    d = make_driver(tmp_path)
    d.load_state()
    d.mount("v", "early")  # Docker's Mount, served before the background restore
    d.restore()  # FakeMounts fails "mounted twice" if restore mounts again
    assert fake.started == [d._volumes["v"].mountpoint] * 2  # the first run's, then the early Mount
    assert d.get("v")["Status"]["Mounts"] == ["early", "live"]


def test_remove_refuses_a_volume_in_use_and_keeps_it(tmp_path: Path, fake: FakeMounts) -> None:
    d = make_driver(tmp_path)
    d.create("v", local(tmp_path))
    mp = d.mount("v", "a")
    with pytest.raises(DriverError, match=ERR_IN_USE):
        d.remove("v")
    assert d.list() == [{"Name": "v", "Mountpoint": mp}] and fake.active == {mp}
    d.unmount("v", "a")
    assert fake.active == set()
    d.remove("v")
    assert d.list() == [] and not Path(mp).exists()


def test_many_threads_on_overlapping_names_keep_mounts_and_volumes_in_step(tmp_path: Path,
                                                                          fake: FakeMounts) -> None:
    d = make_driver(tmp_path)
    opts = local(tmp_path)
    names = ["v0", "v1", "v2"]

    def worker(seed: int) -> None:
        import random

        rnd = random.Random(seed)
        for _ in range(150):
            name, mid = rnd.choice(names), f"t{seed}-{rnd.randrange(3)}"
            op = rnd.choice(["create", "mount", "unmount", "remove", "get"])
            try:
                if op == "create":
                    d.create(name, opts)
                elif op == "mount":
                    d.mount(name, mid)
                elif op == "unmount":
                    d.unmount(name, mid)
                elif op == "remove":
                    d.remove(name)
                else:
                    d.get(name)
            except DriverError as e:
                assert str(e) in (ERR_NOT_FOUND, ERR_IN_USE), e

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    listed = {v["Name"] for v in d.list()}
    in_use = {n for n in listed if d.get(n)["Status"]["Mounts"]}
    assert fake.active == {d._volumes[n].mountpoint for n in in_use}  # no mount without a user
    assert {r["name"] for r in d.state.load()} == listed


def test_names_and_mount_ids() -> None:
    for good in ("a", "A-b_c.d", "0" * 255):
        assert check_name(good) == good
    for bad in ("", ".x", "-x", "_x", "a/b", "..", "a b", "x" * 256, "a\0b", None, 5):
        with pytest.raises(ValueError):
            check_name(bad)
    assert check_mount_id("c0ffee") == "c0ffee"
    for bad in ("", "a\nb", "x" * 257, None):
        with pytest.raises(ValueError):
            check_mount_id(bad)


def test_unknown_volume_errors_come_before_argument_errors(tmp_path: Path, fake: FakeMounts) -> None:
    d = make_driver(tmp_path)
    with pytest.raises(DriverError, match=ERR_NOT_FOUND):
        d.mount("nope", "")  # Docker's wording: the volume first, then the mount ID
    with pytest.raises(DriverError, match="volume name"):
        d.mount("../x", "a")
    d.create("v", local(tmp_path))
    with pytest.raises(DriverError, match="mount ID"):
        d.mount("v", "")
