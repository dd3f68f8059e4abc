"""What a backend under the conformance suite declares about itself (conftest.py's CASES)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyclone_docker.backends.base import Backend


@dataclass(frozen=True)
class BackendCase:
    """One backend under test, and what it declares about itself."""

    id: str
    # build a backend rooted at a fresh, empty directory; `tmp` is this test's own temp dir
    make: Callable[[Path, pytest.FixtureRequest], Backend]
    modtime_precision_ns: int = 1  # times read back are within this of the times set
    dir_modtime: bool = True  # set_modtime works on directories too
    # POSIX errors (ENOTDIR, EISDIR, EINVAL) kept apart; False also accepts ENOENT for them,
    # as an object store that has no such distinctions answers
    posix_errors: bool = True
    max_name_bytes: int = 255  # a longer name fails with ENAMETOOLONG (0: no limit known)
    unicode_normalizes: bool = False  # NFC and NFD spellings of a name are one name
    known_failures: Mapping[str, str] = field(default_factory=dict)  # test name -> reason (strict xfail)
    # a read-only backend (http): test_backend.py's suite is skipped on it and test_read_only.py
    # runs instead; `served(tmp, request)` is the local directory its root serves, which a test
    # fills (through the local filesystem) before it calls `make`
    read_only: bool = False
    served: Callable[[Path, pytest.FixtureRequest], Path] | None = None


# rclone's Standard encoding shows a control character as its symbol (U+2400 + c): a name made
# with a tab lists with the symbol (rclone 1.75.2 lists it so on local, sftp and s3 alike)
_TAB = ("a tab is stored as it is and listed as its symbol (U+2409), as rclone's Standard encoding shows it "
        "(rclone 1.75.2 lists it so)")
TAB_KNOWN_FAILURES = {f"{test}[control-tab": _TAB for test in (
    "test_file_name_round_trip", "test_directory_name_round_trip", "test_move_file_to_and_from_the_name",
    "test_move_directory_to_the_name")}
