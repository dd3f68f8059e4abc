"""libfuse workers keep one Python thread state each while the mount lives, and every one of
them is deleted once the mount ends (pyclone_docker/fuse_workers.py). A real mount served
by this test process, so the interpreter's thread states can be counted."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

from pyclone_docker import backends
from pyclone_docker.flags import VOLUME_OPTIONS, OptionValues
from pyclone_docker.fuse import workers as fuse_workers
from pyclone_docker.fuse.mount import FuseMount
from pyclone_docker.fuse.ops import FuseOps
from pyclone_docker.vfs.vfs import VFS


def thread_states() -> int:
    """Thread states of this interpreter (the C API's own list)."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    n, state = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        n += 1
        state = api.PyThreadState_Next(state)
    return n


def test_worker_thread_states_live_with_the_mount_and_go_with_it(tmp_path: Path) -> None:
    remote, mountpoint = tmp_path / "remote", tmp_path / "mnt"
    remote.mkdir()
    mountpoint.mkdir()
    values = OptionValues.defaults(VOLUME_OPTIONS)
    info = backends.find("local")
    assert info.factory is not None
    baseline = thread_states()
    python_threads = threading.active_count()
    big = os.urandom(8 << 20)
    for cycle in range(3):
        vfs = VFS(info.factory(":local", str(remote), {}), values)
        mount = FuseMount(str(mountpoint), FuseOps(vfs), values, "test")
        mount.start()
        try:
            for i in range(300):
                (mountpoint / f"c{cycle}-{i}").write_bytes(b"x" * 4096)
            (mountpoint / f"big{cycle}").write_bytes(big)  # 1 MiB writes: buffers to give back
            assert (mountpoint / f"big{cycle}").read_bytes() == big
            assert len(os.listdir(mountpoint)) == 301 * (cycle + 1)
            # the workers that served all this kept their states (and the mount thread has one)
            during = thread_states()
            assert during >= baseline + 2, (cycle, baseline, during)
        finally:
            mount.unmount()
        assert not mount.alive
        # every kept state is gone with the workers: no growth from one mount to the next
        assert thread_states() == baseline + (threading.active_count() - python_threads), cycle
    assert (remote / "big2").read_bytes() == big
    assert fuse_workers.worker.big_write is None  # this (Python) thread never kept a record
