"""The per-subject lock that orders every write for one subject."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Subject


@functools.cache
def _lock_row() -> Select:
    """Built once, on first use: every write for a subject starts with it."""
    return select(Subject.pseudonym).where(Subject.pseudonym == bindparam("pseudonym")).with_for_update()


def lock_subject(session: Session, pseudonym: str, now: datetime) -> None:
    """Create the subject row if needed and hold its lock until the transaction ends.

    Concurrent writes for one subject are applied one after another, so derived
    state always reflects the last event. (SQLite's BEGIN IMMEDIATE already
    serializes writers.)
    """
    if session.bind.dialect.name != "postgresql":
        session.execute(
            sqlite_insert(Subject).values(pseudonym=pseudonym, created_at=now).on_conflict_do_nothing()
        )
        return
    # A returning subject (the common case) costs one statement: lock the row that exists.
    params = {"pseudonym": pseudonym}
    if session.execute(_lock_row(), params).first() is not None:
        return
    inserted = session.execute(
        pg_insert(Subject).values(pseudonym=pseudonym, created_at=now).on_conflict_do_nothing()
        .returning(Subject.pseudonym)
    ).first()
    if inserted is None:
        # another transaction created it first: wait for its lock like a returning subject
        session.execute(_lock_row(), params)
