"""The ftp cases of the conformance suite, and the session fixtures of their real servers.

conftest.py adds FTP_CASES to CASES and imports the fixtures by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .case import BackendCase

FTP_CASES: list[BackendCase] = []


@pytest.fixture(scope="session")
def pyftpd() -> Iterator[object]:
    pytest.skip("not built yet")
    yield None


@pytest.fixture(scope="session")
def vsftpd() -> Iterator[object]:
    pytest.skip("not built yet")
    yield None
