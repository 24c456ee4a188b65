"""Alembic, driven from code: upgrade to head and tell whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .errors import reachable

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(None)).get_heads())  # type: ignore[arg-type]


def current_revisions(engine: Engine) -> set[str]:
    """Raises `StoreUnavailable` when the database cannot be reached."""
    with reachable(), engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def at_head(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()
