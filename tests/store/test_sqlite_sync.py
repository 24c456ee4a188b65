"""SQLite commits are durable: every connection runs WAL with `synchronous=FULL` (README, Durability),
and deletes overwrite what they delete (`secure_delete`), so that erasure leaves nothing in free pages."""

from __future__ import annotations

from gateway.store.db import make_engine


def test_every_sqlite_connection_syncs_each_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        for _ in range(2):  # a new connection each time, not only the first
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL (NORMAL is 1)
                assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            engine.dispose()
    finally:
        engine.dispose()
