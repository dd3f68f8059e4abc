"""The import graph of pyclone_docker, read with ast: layers only point down, and no module
imports itself back through others. Every import counts, also those inside functions and
under TYPE_CHECKING: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "pyclone_docker"

# highest first: a module may import its own layer and the ones below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("commands", ("pyclone_docker.cli", "pyclone_docker.__main__", "pyclone_docker.selftest")),
    ("docker", ("pyclone_docker.docker",)),
    ("fuse", ("pyclone_docker.fuse", "pyclone_docker._vendor")),
    ("vfs", ("pyclone_docker.vfs",)),
    ("vfs cache", ("pyclone_docker.vfs.cache",)),
    ("backends", ("pyclone_docker.backends", "pyclone_docker.fs")),
    ("rc", ("pyclone_docker.rc",)),
    ("lib and formats", ("pyclone_docker.lib", "pyclone_docker.parsers", "pyclone_docker.fspath",
                         "pyclone_docker.flags", "pyclone_docker.rcconfig", "pyclone_docker.obscure",
                         "pyclone_docker.secretbox", "pyclone_docker.log", "pyclone_docker.encoder",
                         "pyclone_docker.crypt", "pyclone_docker")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _rank(module: str) -> int:
    """The layer of a module: the longest matching prefix decides (vfs.cache below vfs)."""
    best, rank = -1, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in mods:  # `from .x import name`: the module x
                    name = name.rpartition(".")[0]
                # a package's own __init__ and its submodules are one unit for this check
                if name and name != mod and not name.startswith(mod + ".") and not mod.startswith(name + "."):
                    graph[mod].add(name)
    return graph


GRAPH = _graph()


def test_every_module_has_a_layer() -> None:
    for mod in GRAPH:
        _rank(mod)


@pytest.mark.parametrize("mod", sorted(GRAPH))
def test_imports_point_down(mod: str) -> None:
    up = sorted(t for t in GRAPH[mod] if _rank(t) < _rank(mod))
    assert not up, f"{mod} ({LAYERS[_rank(mod)][0]}) imports upward: " + ", ".join(
        f"{t} ({LAYERS[_rank(t)][0]})" for t in up)


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself can fail: a vfs module importing docker is caught."""
    assert _rank("pyclone_docker.vfs.vfs") > _rank("pyclone_docker.docker.driver")
    assert _rank("pyclone_docker.vfs.cache.item") > _rank("pyclone_docker.vfs.vfs")
    assert _rank("pyclone_docker.lib.httpserver") > _rank("pyclone_docker.rc.server")
