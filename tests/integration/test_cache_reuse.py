"""A volume removed and created again under the same name in one plugin process: its cache
starts empty and works (a process-wide memo of made cache directories outlived the removed
volume's tree, and every cached open of the new one failed with ENOENT)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Plugin
from .test_cache_modes import mount, unmount, wait_for


@pytest.mark.parametrize("mode", ["writes", "full"])
def test_remove_and_create_again_in_one_process(plugin: Plugin, data_dir: Path, mode: str) -> None:
    (data_dir / "d").mkdir()
    (data_dir / "d" / "f").write_bytes(b"remote bytes")
    name = f"again-{mode}"
    for round_ in range(2):
        mp = mount(plugin, data_dir, name, **{"vfs-cache-mode": mode, "vfs-write-back": "0s"})
        try:
            assert (mp / "d" / "f").read_bytes() == b"remote bytes"
            (mp / "d" / f"new{round_}").write_bytes(b"written %d" % round_)
            assert (mp / "d" / f"new{round_}").read_bytes() == b"written %d" % round_
        finally:
            unmount(plugin, name)
        assert (data_dir / "d" / f"new{round_}").read_bytes() == b"written %d" % round_
        plugin.client.ok("VolumeDriver.Remove", {"Name": name})
        assert wait_for(lambda: not (plugin.cache / "vfs" / name).exists())
    assert not (plugin.cache / "removed").exists()  # everything was uploaded: nothing kept aside
