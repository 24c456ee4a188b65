"""The import graph of the gateway package (docs/architecture.md): no import cycle anywhere,
and the core's import-linter contract names every other top-level module, so that a new one
cannot slip past it. `make lint` checks the contracts themselves (lint-imports)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import grimp
import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # every import counts: at module level, inside functions and under TYPE_CHECKING
    return grimp.build_graph("gateway", cache_dir=None)


def find_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One cycle of direct imports as [a, b, ..., a], or None (depth-first, iterative)."""
    done: set[str] = set()
    for start in sorted(graph.modules):
        if start in done:
            continue
        path = [start]
        on_path = {start}
        pending = [iter(sorted(graph.find_modules_directly_imported_by(start)))]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                pending.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif following in on_path:
                return [*path[path.index(following):], following]
            elif following not in done:
                path.append(following)
                on_path.add(following)
                pending.append(iter(sorted(graph.find_modules_directly_imported_by(following))))
    return None


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    lines = []
    for importer, imported in zip(cycle, cycle[1:], strict=False):
        where = [d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)]
        lines.append(f"  {importer} -> {imported} (line {', '.join(map(str, where)) or '?'})")
    return "\n".join(lines)


def test_the_package_has_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "an import cycle:\n" + describe(graph, cycle or [])


def test_a_planted_cycle_is_found_and_shown(graph):
    planted = copy.deepcopy(graph)
    planted.add_import(importer="gateway.core.errors", imported="gateway.api.errors", line_number=1,
                       line_contents="from ..api import errors")
    cycle = find_cycle(planted)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"gateway.core.errors", "gateway.api.errors"} <= set(cycle)
    assert "gateway.core.errors -> gateway.api.errors (line 1)" in describe(planted, cycle)


def test_the_core_contract_names_every_other_top_level_module(graph):
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"]
                   if c["type"] == "forbidden" and c["source_modules"] == ["gateway.core"]
                   and all(m.startswith("gateway.") for m in c["forbidden_modules"])]
    assert set(contract["forbidden_modules"]) == graph.find_children("gateway") - {"gateway.core"}
