"""Docker's volume plugin protocol on top of the HTTP server: routes, JSON in, JSON out.

Get, List, Path, Capabilities and Activate answer from memory on the loop thread; Create,
Remove, Mount and Unmount may touch a backend or FUSE and run on worker threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..lib.httpserver import Request, Response
from .driver import Driver, DriverError

log = logging.getLogger("pyclone.api")

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
SCOPE = "local"


def err_body(message: str) -> bytes:
    return json.dumps({"Err": message}).encode() + b"\n"


def _ok(payload: dict[str, Any]) -> Response:
    return Response(200, json.dumps(payload).encode() + b"\n", CONTENT_TYPE)


def _fail(status: int, message: str) -> Response:
    return Response(status, err_body(message), CONTENT_TYPE)


def _decode(body: bytes, required: bool) -> dict[str, Any]:
    """Go-style decoding: field names case-insensitive, unknown fields ignored."""
    if not body.strip():
        if required:
            raise ValueError("EOF: request body is empty")
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"invalid JSON: {e}") from None
    except RecursionError:  # the decoder recurses once per level (Go's stops at 10,000)
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("request body must be a JSON object")
    return {str(k).lower(): v for k, v in data.items()}


def _opts(req: dict[str, Any]) -> dict[str, str] | None:
    opts = req.get("opts")
    if opts is None:
        return None
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise ValueError("Opts must be an object of strings")
    return opts


class Api:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        fast: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/Plugin.Activate": lambda r: {"Implements": ["VolumeDriver"]},
            "/VolumeDriver.Capabilities": lambda r: {"Capabilities": {"Scope": SCOPE}},
            "/VolumeDriver.List": lambda r: {"Volumes": driver.list()},
            "/VolumeDriver.Get": lambda r: {"Volume": driver.get(r.get("name"))},
            "/VolumeDriver.Path": lambda r: {"Mountpoint": driver.path(r.get("name"))},
        }
        slow: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/VolumeDriver.Create": lambda r: driver.create(r.get("name"), _opts(r)) or {},
            "/VolumeDriver.Remove": lambda r: driver.remove(r.get("name")) or {},
            "/VolumeDriver.Mount": lambda r: {"Mountpoint": driver.mount(r.get("name"), r.get("id"))},
            "/VolumeDriver.Unmount": lambda r: driver.unmount(r.get("name"), r.get("id")) or {},
        }
        self.fast, self.slow = fast, slow
        self.needs_body = {"/VolumeDriver.Get", "/VolumeDriver.Path"} | set(slow)

    def handle(self, req: Request) -> Response | Callable[[], Response]:
        fn = self.fast.get(req.path) or self.slow.get(req.path)
        if fn is None:
            return _fail(404, f"{req.path}: unknown endpoint")
        if req.method != "POST":
            return _fail(405, f"{req.path}: method {req.method} not allowed, use POST")
        try:
            args = _decode(req.body, req.path in self.needs_body)
            if req.path in self.slow:
                _opts(args)  # reject malformed Opts before any work starts
        except ValueError as e:
            return _fail(400, str(e))
        if req.path in self.slow:
            return lambda: self._call(req.path, fn, args)
        return self._call(req.path, fn, args)

    def _call(self, path: str, fn: Callable[[dict[str, Any]], dict[str, Any]], args: dict[str, Any]) -> Response:
        try:
            return _ok(fn(args))
        except DriverError as e:
            log.debug("%s: Request returned error: %s", path, e)
            return _fail(500, str(e))
        except ValueError as e:
            return _fail(400, str(e))
