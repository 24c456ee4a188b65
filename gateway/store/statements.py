"""The hot-path statements, in one place: what every banner request, banner choice, profile
view, subject write and audited request runs.

Each is built once, on first use (never at import), and then reused: SQLAlchemy compiles a
statement once per dialect and caches it, so the request pays only for its parameters.
Statements that differ per engine take the dialect's name.
"""

from __future__ import annotations

import functools
from typing import cast

from sqlalchemy import Insert, Select, Table, bindparam, insert, select, text
from sqlalchemy.sql.elements import TextClause

from .base import Base
from .db import upsert_insert
from .limit_models import RateCounter
from .models import AuditEvent, ConsentEvent, ConsentState, Property, Receipt, Subject
from .profile_models import Decision, ProfileValue, SubjectKey


def _table(model: type[Base]) -> Table:
    """A model's Table, for plain Core statements (declarative models type `__table__` as any
    FromClause; every model here is mapped to a Table)."""
    return cast(Table, model.__table__)


# --- banner requests ------------------------------------------------------------------------


@functools.cache
def property_by_key_hash() -> Select:
    """Every banner request runs it: the property behind `X-Property-Key` and its Origins."""
    return (select(Property.id, Property.origins, Property.revoked_at)
            .where(Property.key_hash == bindparam("key_hash")))


@functools.cache
def count_request(dialect: str) -> Insert:
    """A banner request under a rate limit runs it: one more in its bucket's window (created
    at 1), returning the window's count. An upsert on both engines."""
    stmt = upsert_insert(dialect)(RateCounter)
    return (stmt.on_conflict_do_update(index_elements=["bucket", "window_start"],
                                       set_={"count": RateCounter.count + 1})
            .returning(RateCounter.count))


# --- subjects -------------------------------------------------------------------------------


@functools.cache
def lock_subject_row() -> Select:
    """Every write for a subject starts with it (PostgreSQL: SELECT ... FOR UPDATE)."""
    return select(Subject.pseudonym).where(Subject.pseudonym == bindparam("pseudonym")).with_for_update()


@functools.cache
def add_subject(dialect: str) -> Insert:
    """Insert-or-nothing of a subject row; on PostgreSQL it returns the row it inserted."""
    stmt = upsert_insert(dialect)(Subject).on_conflict_do_nothing()
    return stmt.returning(Subject.pseudonym) if dialect == "postgresql" else stmt


# --- consents -------------------------------------------------------------------------------


@functools.cache
def consent_records() -> Select:
    """Every consent-state read and profile view runs it."""
    return select(ConsentState.purpose, ConsentState.status, ConsentState.purpose_version,
                  ConsentState.decided_at, ConsentState.expires_at, ConsentState.receipt_id,
                  ConsentState.method).where(ConsentState.subject == bindparam("subject"))


@functools.cache
def insert_receipt() -> Insert:
    return insert(_table(Receipt))


@functools.cache
def insert_consent_events() -> Insert:
    # ids come back in the order of the parameter sets, so each state row gets its own event
    return insert(_table(ConsentEvent)).returning(ConsentEvent.id, sort_by_parameter_order=True)


@functools.cache
def upsert_consent_states(dialect: str) -> Insert:
    table = _table(ConsentState)
    stmt = upsert_insert(dialect)(table)
    moved = ("status", "purpose_version", "decided_at", "expires_at", "receipt_id", "method", "event_id")
    return stmt.on_conflict_do_update(index_elements=[table.c.subject, table.c.purpose],
                                      set_={name: stmt.excluded[name] for name in moved})


# --- profiles and decisions -----------------------------------------------------------------


@functools.cache
def sealed_profile() -> Select:
    """Every profile view runs it: the wrapped data key and every encrypted value, one query."""
    return (
        select(SubjectKey.kek_id, SubjectKey.wrapped, ProfileValue.attribute,
               ProfileValue.ciphertext, ProfileValue.written_at)
        .select_from(SubjectKey)
        .outerjoin(ProfileValue, ProfileValue.subject == SubjectKey.subject)
        .where(SubjectKey.subject == bindparam("subject"))
        .order_by(ProfileValue.attribute)
    )


@functools.cache
def insert_decision() -> Insert:
    """A plain INSERT: cheaper than the ORM's unit of work on every decision."""
    return insert(_table(Decision))


# --- the audit log --------------------------------------------------------------------------


@functools.cache
def insert_audit_event() -> Insert:
    """Every audited request writes one (a plain INSERT, sent at once)."""
    return insert(_table(AuditEvent))


@functools.cache
def write_chain_postgresql() -> TextClause:
    """The sealer gives every row of a batch its place in one statement: the whole batch goes
    as four arrays. The id range adds nothing to the join's result, but it lets PostgreSQL read
    just the batch's rows through the primary key instead of hashing the whole table."""
    return text(
        "UPDATE audit_events SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:prevs AS varchar[]), "
        "CAST(:hashes AS varchar[])) AS u(id, seq, prev_hash, hash) "
        "WHERE audit_events.id = u.id AND audit_events.id BETWEEN :first AND :last"
    )


# SQLite: one executemany of this prepared statement (driver SQL, no SQLAlchemy compile)
WRITE_CHAIN_SQLITE = "UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?"
