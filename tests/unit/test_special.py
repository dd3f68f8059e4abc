"""The in-memory table of FIFOs, sockets and device nodes (vfs/special.py)."""

from __future__ import annotations

import stat

from pyclone_docker.backends.base import Entry
from pyclone_docker.vfs.special import SpecialNodes


def node(name: str) -> Entry:
    return Entry(name, False, 0, 1, 0o644, 0, 0, special=stat.S_IFIFO)


def test_children_are_direct_only_and_named_by_their_last_part() -> None:
    t = SpecialNodes()
    assert not t
    for p in ("top", "a/mid", "a/b/deep", "ab/other"):
        t.add(p, node(p))
    assert t
    assert [e.name for e in t.children("")] == ["top"]
    assert [e.name for e in t.children("a")] == ["mid"]
    assert [e.name for e in t.children("a/b")] == ["deep"]
    assert t.children("a")[0] is not t.get("a/mid")  # copies: a listing may rename its entries
    assert t.has_under("a") and t.has_under("a/b") and not t.has_under("a/b/deep") and not t.has_under("top")


def test_move_takes_a_node_or_a_whole_directory_and_nothing_else() -> None:
    t = SpecialNodes()
    for p in ("d/x", "d/sub/y", "dd/z", "lone"):
        t.add(p, node(p))
    t.move("d", "e/f")
    assert t.get("e/f/x") and t.get("e/f/sub/y") and t.get("dd/z")
    assert t.get("d/x") is None and t.get("d/sub/y") is None
    t.move("lone", "e/lone")
    assert t.get("e/lone") and t.get("lone") is None
    assert t.remove("e/lone") is not None and t.remove("e/lone") is None
