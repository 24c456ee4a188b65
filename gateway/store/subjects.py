"""The per-subject lock that orders every write for one subject."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from . import statements
from .db import dialect_name


def lock_subject(session: Session, pseudonym: str, now: datetime) -> None:
    """Create the subject row if needed and hold its lock until the transaction ends.

    Concurrent writes for one subject are applied one after another, so derived
    state always reflects the last event. (SQLite's BEGIN IMMEDIATE already
    serializes writers.)
    """
    dialect = dialect_name(session)
    row = {"pseudonym": pseudonym, "created_at": now}
    if dialect != "postgresql":
        session.execute(statements.add_subject(dialect), row)
        return
    # A returning subject (the common case) costs one statement: lock the row that exists.
    params = {"pseudonym": pseudonym}
    if session.execute(statements.lock_subject_row(), params).first() is not None:
        return
    inserted = session.execute(statements.add_subject(dialect), row).first()
    if inserted is None:
        # another transaction created it first: wait for its lock like a returning subject
        session.execute(statements.lock_subject_row(), params)
