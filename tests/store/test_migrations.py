"""The real migrations build the schema the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store import migrate
from gateway.store.db import make_engine
from gateway.store.schema import metadata


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    try:
        assert migrate.at_head(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"models and migrations drift: {diff}"
    finally:
        engine.dispose()


def test_upgrade_from_empty_and_readiness_reports_behind(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert not migrate.at_head(engine)
        migrate.upgrade(engine)
        assert migrate.at_head(engine)
        migrate.upgrade(engine)  # idempotent
        assert migrate.current_revisions(engine) == migrate.head_revisions()
    finally:
        engine.dispose()
