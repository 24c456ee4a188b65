"""The database's schema: migrate it to a revision (the command line's `db upgrade`)."""

from __future__ import annotations

from ..store import migrate
from .context import Gateway


def upgrade(gw: Gateway, revision: str = "head") -> list[str]:
    """Run the migrations up to `revision`; returns the revisions the database is at now."""
    migrate.upgrade(gw.db.engine, revision)
    return sorted(migrate.current_revisions(gw.db.engine))
