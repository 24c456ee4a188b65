"""The per-subject lock that orders every write for one subject."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Subject


def lock_subject(session: Session, pseudonym: str, now: datetime) -> None:
    """Create the subject row if needed and hold its lock until the transaction ends.

    Concurrent writes for one subject are applied one after another, so derived
    state always reflects the last event. (SQLite's BEGIN IMMEDIATE already
    serializes writers.)
    """
    postgres = session.bind.dialect.name == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    session.execute(
        insert(Subject).values(pseudonym=pseudonym, created_at=now).on_conflict_do_nothing()
    )
    if postgres:
        session.execute(
            select(Subject.pseudonym).where(Subject.pseudonym == pseudonym).with_for_update()
        )
