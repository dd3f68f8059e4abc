"""Swarm: a single-node `docker swarm init`, a stack whose volume uses the (v1) plugin with
driver_opts (rclone's serve docker compose example, adapted to a local remote), the service writing through it.
The node must not be in a swarm already (skipped otherwise); the swarm is left at the end, and the
networks must be back as they were (no docker_gwbridge/ingress left to break later tests)."""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dockercli import docker, wait

if TYPE_CHECKING:  # conftest's classes come in through the fixtures
    from conftest import PluginProcess

with warnings.catch_warnings():  # `slow` is not registered in conftest.py: select with -m slow / "not slow"
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = "pyclone-test-bb:latest"


def network_names() -> set[str]:
    return set(docker("network", "ls", "--format", "{{.Name}}").stdout.split())


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


@pytest.fixture
def swarm(docker_ready: str) -> Iterator[None]:
    """A single-node swarm created for this test, left (and its networks removed) afterwards."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    if state != "inactive":
        pytest.skip(f"this node is already in a swarm (state {state!r}): not touching it")
    before = network_names()
    gwbridge_before = "docker_gwbridge" in before or link_exists("docker_gwbridge")
    docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    try:
        yield
    finally:
        docker("swarm", "leave", "--force", check=False)
        wait(lambda: docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive",
             60, "the node to leave the swarm")
        wait(lambda: "ingress" not in network_names(), 30, "the ingress network to go")
        if not gwbridge_before:  # swarm creates docker_gwbridge and leaves it behind
            docker("network", "rm", "docker_gwbridge", check=False)
            wait(lambda: not link_exists("docker_gwbridge"), 30, "the docker_gwbridge interface to go")
        after = network_names()
        assert after == before, f"networks before the swarm {sorted(before)}, after leaving it {sorted(after)}"
        assert link_exists("docker0"), "docker0 is gone"
        # the default bridge still works for the tests that come later
        docker("run", "--rm", IMAGE, "sh", "-c", ":")


@pytest.fixture
def stack(swarm: None, plugin: PluginProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(stack name, backing dir); stack, its containers and its volume are removed at teardown."""
    name = f"pyc{int(time.time()) % 100000}"
    data = tmp_path / "data"
    data.mkdir()
    compose = tmp_path / "stack.yml"
    compose.write_text(json.dumps({  # JSON is YAML: no YAML library needed
        "version": "3.8",
        "services": {"app": {
            "image": IMAGE,
            "command": ["sh", "-c", "echo ok > /data/ok-$$(hostname); sleep 3600"],
            "volumes": ["data:/data"],
            "stop_grace_period": "2s",  # sh as PID 1 ignores SIGTERM: SIGKILL after 2 s, not 10
            "deploy": {"replicas": 1, "restart_policy": {"condition": "none"}},
        }},
        "volumes": {"data": {"driver": plugin.driver, "driver_opts": {
            "type": "local", "path": str(data), "allow_other": "true"}}},
    }, indent=2))
    # a v1 plugin is only known to swarm's scheduler once the daemon has activated it (moby#32480);
    # filtered by driver, so that dead v1 plugins of other sessions do not stall it
    docker("volume", "ls", "--filter", f"driver={plugin.driver}")
    try:
        docker("stack", "deploy", "-c", str(compose), name)
        yield name, data
    finally:
        docker("stack", "rm", name, check=False)
        label = f"label=com.docker.stack.namespace={name}"
        wait(lambda: not docker("ps", "-aq", "--filter", label).stdout.strip(), 90, "the stack's containers to go")
        vol = f"{name}_data"

        def volume_gone() -> bool:
            if vol not in docker("volume", "ls", "-q", "--filter", f"driver={plugin.driver}").stdout.split():
                return True
            docker("volume", "rm", vol, check=False)  # refused while a task still references it
            return False

        wait(volume_gone, 60, f"volume {vol} to be removed")


def test_stack_writes_through_a_plugin_volume(stack: tuple[str, Path], plugin: PluginProcess) -> None:
    name, data = stack

    def written() -> list[Path]:
        return [p for p in data.iterdir() if p.name.startswith("ok-")]

    try:
        wait(written, 120, "the service's file in the backing dir")
    except AssertionError as e:
        ps = docker("service", "ps", "--no-trunc", f"{name}_app", check=False)
        raise AssertionError(f"{e}\n{ps.stdout}{ps.stderr}") from None
    files = written()
    assert len(files) == 1 and files[0].read_text() == "ok\n"
    vol = json.loads(docker("volume", "inspect", f"{name}_data").stdout)[0]
    assert vol["Driver"] == plugin.driver
    assert vol["Options"] == {"type": "local", "path": str(data), "allow_other": "true"}
    assert vol["Labels"].get("com.docker.stack.namespace") == name
    # the task's container sees the plugin's FUSE mount, not the backing dir
    cid = docker("ps", "-q", "--filter", f"label=com.docker.stack.namespace={name}").stdout.split()[0]
    mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", cid).stdout)
    assert [m["Driver"] for m in mounts if m["Destination"] == "/data"] == [plugin.driver]
