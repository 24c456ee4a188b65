"""Alembic environment: the engine comes from the gateway (CLI or tests), never a global."""

from alembic import context

from gateway.store.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from gateway.settings import Settings
        from gateway.store.db import make_engine

        engine = make_engine(Settings.load().database_url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET lock_timeout = '10s'")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
