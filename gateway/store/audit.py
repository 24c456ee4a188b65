"""Audit rows: appending events, the sealer's statements, exports' streams, signing keys.

The chain itself (hashes, manifests, verification) is computed in `core/audit_chain.py`
and driven by `services/audit.py`; this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, func, select, text, type_coerce
from sqlalchemy.orm import Session

from . import statements
from .db import Database, dialect_name, upsert_insert
from .errors import translated
from .models import AuditEvent, AuditKey

SEAL_LOCK_ID = 0x636F6E73656E74  # PostgreSQL advisory lock key for the sealer


def _data_text(dialect: str):
    """The `data` column as its JSON text, to be parsed with json.loads.

    psycopg would parse every JSON value from bytes, detecting the encoding each
    time; the text of the same value parses to the same dict faster. On SQLite
    the column already is text: only SQLAlchemy's per-row result processor is
    skipped.
    """
    if dialect == "postgresql":
        return cast(AuditEvent.data, Text).label("data")
    return type_coerce(AuditEvent.data, Text).label("data")


def _unsealed_batch(dialect: str, batch: int) -> Select:
    """The oldest `batch` unsealed events, in id order, `data` as JSON text."""
    columns = (AuditEvent.id, AuditEvent.at, AuditEvent.type, AuditEvent.actor, AuditEvent.subject,
               _data_text(dialect))

    def oldest(*selected):
        return select(*selected).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(batch)

    if dialect != "postgresql":
        return oldest(*columns)
    # Asked for whole rows, PostgreSQL sorts the entire unsealed backlog with its payloads
    # (on disk, once it is large) for every batch; sorting only the ids picks the same rows
    # with a small in-memory sort.
    return (select(*columns).where(AuditEvent.id.in_(oldest(AuditEvent.id).scalar_subquery()))
            .order_by(AuditEvent.id))


def _sealed_query(dialect: str) -> Select:
    """Sealed events as (seq, at, type, actor, subject, data as JSON text, prev_hash, hash)."""
    return select(AuditEvent.seq, AuditEvent.at, AuditEvent.type, AuditEvent.actor,
                  AuditEvent.subject, _data_text(dialect), AuditEvent.prev_hash,
                  AuditEvent.hash).where(AuditEvent.seq.is_not(None))


class AuditRepository:
    def __init__(self, session: Session):
        self.s = session

    # --- appending (in the transaction of the change recorded) ------------------------------

    def add(self, row: dict[str, Any]) -> None:
        self.s.execute(statements.insert_audit_event(), row)

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        self.s.execute(statements.insert_audit_event(), rows)

    # --- the sealer -------------------------------------------------------------------------

    def lock_sealer(self, wait: bool) -> bool:
        """Take the sealers' lock for this transaction; without `wait`, False when another
        sealer holds it. (SQLite: the write transaction, BEGIN IMMEDIATE, is the lock.)"""
        if dialect_name(self.s) != "postgresql":
            return True
        fn = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
        result = self.s.execute(select(fn(SEAL_LOCK_ID))).scalar()
        return True if wait else bool(result)

    def chain_head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last sealed event, None before the first."""
        head = self.s.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.seq.is_not(None))
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
        return (head.seq, head.hash) if head else None

    def unsealed(self, batch: int) -> Sequence[Any]:
        """The oldest `batch` unsealed events as (id, at, type, actor, subject, data as JSON
        text), in id order."""
        return self.s.execute(_unsealed_batch(dialect_name(self.s), batch)).all()

    def write_chain(self, ids: list[int], seqs: list[int], prevs: list[str],
                    hashes: list[str]) -> None:
        """Give every event of a batch its place in one statement (PostgreSQL: four arrays;
        SQLite: one executemany of a prepared statement). The ORM's bulk UPDATE by primary key
        spent most of a seal building one parameter set per row."""
        if dialect_name(self.s) == "postgresql":
            self.s.execute(statements.write_chain_postgresql(),
                           {"ids": ids, "seqs": seqs, "prevs": prevs, "hashes": hashes,
                            "first": min(ids), "last": max(ids)})
        else:
            self.s.connection().exec_driver_sql(statements.WRITE_CHAIN_SQLITE,
                                                list(zip(seqs, prevs, hashes, ids, strict=True)))

    # --- signing keys -----------------------------------------------------------------------

    def register_key(self, key_id: str, public_pem: str, now: datetime) -> None:
        """Keep a signing key's public half (once per key)."""
        insert = upsert_insert(dialect_name(self.s))
        self.s.execute(
            insert(AuditKey)
            .values(key_id=key_id, public_pem=public_pem, first_used_at=now)
            .on_conflict_do_nothing()
        )

    def key(self, key_id: str) -> AuditKey | None:
        return self.s.get(AuditKey, key_id)

    # --- reads ------------------------------------------------------------------------------

    def of_subject(self, pseudonym: str) -> list[AuditEvent]:
        """The subject's events, in the order they were written."""
        return list(self.s.execute(select(AuditEvent).where(AuditEvent.subject == pseudonym)
                                   .order_by(AuditEvent.id)).scalars().all())

    def recent(self, limit: int, types: Sequence[str] = (),
               subject: str | None = None) -> list[AuditEvent]:
        """The latest events, newest first, sealed or not, optionally of `types` and a
        subject's pseudonym."""
        query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
        if types:
            query = query.where(AuditEvent.type.in_(list(types)))
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        return list(self.s.scalars(query).all())


@contextmanager
def sealed_rows(db: Database, *, fetch: int, since: datetime | None = None,
                until: datetime | None = None, types: Sequence[str] = (),
                subject: str | None = None) -> Iterator[Iterable[Any]]:
    """Sealed events matching the filter, in seq order, from a server-side cursor (memory stays
    flat) that is open until the block ends. Rows are (seq, at, type, actor, subject, data as
    JSON text, prev_hash, hash)."""
    query = _sealed_query(db.dialect)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if types:
        query = query.where(AuditEvent.type.in_(types))
    if subject:
        query = query.where(AuditEvent.subject == subject)
    with translated(), db.engine.connect() as conn:
        yield conn.execution_options(stream_results=True, yield_per=fetch).execute(
            query.order_by(AuditEvent.seq))


@contextmanager
def chain_rows(db: Database, *, fetch: int) -> Iterator[Iterable[Any]]:
    """Every sealed event in seq order, from one snapshot (REPEATABLE READ on PostgreSQL), for
    verifying the chain. Rows as in `sealed_rows`."""
    with translated(), db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        yield conn.execution_options(stream_results=True, yield_per=fetch).execute(
            _sealed_query(db.dialect).order_by(AuditEvent.seq))
