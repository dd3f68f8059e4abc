"""The plugin API's request decoding (pure logic, no driver behind it)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from pyclone_docker.docker.api import Api
from pyclone_docker.lib.httpserver import Request, Response


@pytest.mark.parametrize("body", [b"[" * 10000 + b"]" * 10000, b'{"Name":' * 10000 + b'"x"' + b"}" * 10000,
                                  b'{"Name": "v", "Opts": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
                         ids=["arrays", "objects", "in-opts"])
@pytest.mark.parametrize("path", ["/VolumeDriver.Get", "/VolumeDriver.Create", "/Plugin.Activate"])
def test_deeply_nested_json_is_a_400(body: bytes, path: str) -> None:
    api = Api(cast(Any, None))  # decoding fails before any driver call
    resp = api.handle(Request("POST", path, {}, body))
    assert isinstance(resp, Response)
    assert resp.status == 400 and json.loads(resp.body) == {"Err": "invalid JSON: nested too deeply"}
