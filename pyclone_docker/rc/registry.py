"""The rc methods: each is registered by the module that owns what it works on (core methods
here, vfs/* in vfs/rc.py); the server looks them up by path."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from .params import Params


@dataclass(frozen=True)
class Call:
    path: str
    fn: Callable[[Any, Params], Params]
    title: str
    help: str = ""
    no_auth: bool = False  # rclone's NoAuth: answers without authentication
    slow: bool = False  # may touch a backend: runs on a worker thread


CALLS: dict[str, Call] = {}


def register(*calls: Call) -> None:
    for call in calls:
        CALLS[call.path] = call


def _noop(_context: object, params: Params) -> Params:
    return params


def _version(_context: object, _params: Params) -> Params:
    nums = [int(p) if p.isdigit() else 0 for p in __version__.split("-")[0].split(".")[:3]]
    uname = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm"}.get(uname.machine, uname.machine)
    return {
        "version": f"v{__version__}",
        "decomposed": [*nums, 0, 0, 0][:3],
        "isGit": False,
        "isBeta": False,
        "os": "linux" if uname.sysname == "Linux" else uname.sysname.lower(),
        "osKernel": f"{uname.release} ({uname.machine})",
        "arch": arch,
        "pythonVersion": platform.python_version(),
    }


def _rc_list(_context: object, _params: Params) -> Params:
    return {"commands": [{"Path": c.path, "Title": c.title, "Help": c.help, "NoAuth": c.no_auth,
                          "AuthRequired": not c.no_auth, "NeedsRequest": False, "NeedsResponse": False}
                         for c in sorted(CALLS.values(), key=lambda c: c.path)]}


register(
    Call("rc/noop", _noop, "Echo the input to the output parameters", no_auth=True,
         help="This echoes the input parameters to the output parameters for testing purposes."),
    Call("rc/list", _rc_list, "List all the registered remote control commands", no_auth=True,
         help='This lists all the registered remote control commands as a JSON map in the commands response.'),
    Call("core/version", _version, "Shows the current version of pyclone-docker and the OS", no_auth=True),
)
