"""Swarm: a single-node `docker swarm init`, a stack whose volume uses the plugin with driver_opts
(seed 002's compose example, adapted to a local remote), the service writing through it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from dockercli import docker, wait

IMAGE = "pyclone-test-bb:latest"


@pytest.mark.docker
def test_stack_writes_through_a_plugin_volume(plugin, tmp_path: Path) -> None:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    created = state != "active"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    stack = f"pyc{int(time.time()) % 100000}"
    data = tmp_path / "data"
    data.mkdir()
    compose = tmp_path / "stack.yml"
    compose.write_text(json.dumps({  # JSON is YAML: no YAML library needed
        "version": "3.8",
        "services": {"app": {
            "image": IMAGE,
            "command": ["sh", "-c", "echo ok > /data/ok-$$(hostname); sleep 3600"],
            "volumes": ["data:/data:nocopy"],
            "deploy": {"replicas": 1, "restart_policy": {"condition": "none"}},
        }},
        "volumes": {"data": {"driver": plugin.driver, "driver_opts": {
            "type": "local", "path": str(data), "allow_other": "true", "vfs_cache_mode": "off"}}},
    }))
    try:
        # a v1 plugin is only known to swarm's scheduler once the daemon has activated it (moby#32480)
        docker("volume", "ls", "--filter", f"driver={plugin.driver}")
        docker("stack", "deploy", "-c", str(compose), stack)
        wait(lambda: any(p.name.startswith("ok-") for p in data.iterdir()), 120, "the service's file")
        written = [p for p in data.iterdir() if p.name.startswith("ok-")]
        assert written[0].read_text() == "ok\n"
        vol = json.loads(docker("volume", "inspect", f"{stack}_data").stdout)[0]
        assert vol["Driver"] == plugin.driver and vol["Options"]["type"] == "local"
    finally:
        docker("stack", "rm", stack, check=False)
        wait(lambda: not docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={stack}").stdout.strip(),
             90, "the stack's containers to go")
        wait(lambda: docker("volume", "rm", f"{stack}_data", check=False).returncode == 0
             or f"{stack}_data" not in docker("volume", "ls", "-q", "--filter", f"driver={plugin.driver}").stdout,
             60, "the stack's volume to be removable")
        if created:
            docker("swarm", "leave", "--force", check=False)
            docker("network", "rm", "docker_gwbridge", check=False)  # swarm leaves it behind
    assert (data / written[0].name).exists()  # the data outlives the stack, as rclone's docs say
