"""The store's boundaries, checked: SQL stays in store/, the store stands on no layer above it,
and the model modules form no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"

def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(GATEWAY.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _outside_store() -> list[Path]:
    return [p for p in sorted(GATEWAY.rglob("*.py"))
            if p.parent.name != "store"]


@pytest.mark.parametrize("path", _outside_store(), ids=lambda p: str(p.relative_to(GATEWAY)))
def test_nothing_outside_the_store_imports_sqlalchemy(path):
    assert not [m for m in _imports(path) if m == "sqlalchemy" or m.startswith("sqlalchemy.")]


@pytest.mark.parametrize("path", sorted((GATEWAY / "store").glob("*.py")), ids=lambda p: p.name)
def test_the_store_imports_no_layer_above_it(path):
    above = ("gateway.security", "gateway.services", "gateway.api", "gateway.cli")
    assert not [m for m in _imports(path) if m.startswith(above)]


@pytest.mark.parametrize("name", ["models", "auth_models", "profile_models"])
def test_model_modules_import_only_the_base_and_column_types(name):
    store = {m for m in _imports(GATEWAY / "store" / f"{name}.py") if m.startswith("gateway.store")}
    assert store <= {"gateway.store.base", "gateway.store.types", "gateway.store.base.Base",
                     "gateway.store.base.Pseudonym", "gateway.store.base.PublicId",
                     "gateway.store.types.BigId"}


def test_the_command_line_reaches_the_store_only_through_services():
    imported = _imports(GATEWAY / "cli.py")
    assert not [m for m in imported if m.startswith(("gateway.store", "gateway.api"))]


def test_schema_metadata_holds_every_table():
    from gateway.store.schema import metadata

    assert {"consent_events", "clients", "subject_keys", "decisions", "audit_events",
            "policy_versions", "erasures", "token_throttles", "rate_counters"} <= set(metadata.tables)
