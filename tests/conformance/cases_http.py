"""The http cases of the conformance suite, and the session fixtures of their real servers.

conftest.py adds HTTP_CASES to CASES and imports the fixtures by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .case import BackendCase

HTTP_CASES: list[BackendCase] = []


@pytest.fixture(scope="session")
def nginx_http() -> Iterator[object]:
    pytest.skip("not built yet")
    yield None


@pytest.fixture(scope="session")
def python_http() -> Iterator[object]:
    pytest.skip("not built yet")
    yield None
