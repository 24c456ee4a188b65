"""Consent rows <-> consent domain values."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, Select, bindparam, insert, select
from sqlalchemy.orm import Session

from ..core.consent import PurposeRecord
from .db import upsert_insert
from .models import ConsentEvent, ConsentState, IdempotencyKey, Notice, Receipt
from .subjects import lock_subject


def _as_record(row: Any) -> PurposeRecord:
    return PurposeRecord(
        purpose=row.purpose,
        status=row.status,
        purpose_version=row.purpose_version,
        decided_at=row.decided_at,
        expires_at=row.expires_at,
        receipt_id=row.receipt_id,
        method=row.method,
    )


@functools.cache
def _records_of() -> Select:
    """Built once, on first use: every consent-state read and profile view runs it."""
    return select(ConsentState.purpose, ConsentState.status, ConsentState.purpose_version,
                  ConsentState.decided_at, ConsentState.expires_at, ConsentState.receipt_id,
                  ConsentState.method).where(ConsentState.subject == bindparam("subject"))


@functools.cache
def _insert_receipt() -> Insert:
    return insert(Receipt.__table__)


@functools.cache
def _insert_events() -> Insert:
    # ids come back in the order of the parameter sets, so each state row gets its own event
    return insert(ConsentEvent.__table__).returning(ConsentEvent.id, sort_by_parameter_order=True)


@functools.cache
def _upsert_states(dialect: str) -> Insert:
    table = ConsentState.__table__
    stmt = upsert_insert(dialect)(table)
    moved = ("status", "purpose_version", "decided_at", "expires_at", "receipt_id", "method", "event_id")
    return stmt.on_conflict_do_update(index_elements=[table.c.subject, table.c.purpose],
                                      set_={name: stmt.excluded[name] for name in moved})


class ConsentRepository:
    def __init__(self, session: Session | Connection):
        """A session in write transactions; a plain connection is enough for `records` and
        `history`."""
        self.s = session

    def lock_subject(self, pseudonym: str, now: datetime) -> None:
        lock_subject(self.s, pseudonym, now)

    def records(self, pseudonym: str) -> dict[str, PurposeRecord]:
        """The subject's current state per purpose (a plain read: no entities kept)."""
        rows = self.s.execute(_records_of(), {"subject": pseudonym})
        return {r.purpose: _as_record(r) for r in rows}

    def add_receipt(self, values: dict[str, Any]) -> None:
        self.s.execute(_insert_receipt(), values)

    def append(self, pseudonym: str, entries: list[tuple[str, PurposeRecord]]) -> None:
        """Append one event per (value, record) and move the current-state rows to them, in
        the caller's transaction: one INSERT for the events, one upsert for the states.

        Plain statements rather than ORM objects: this is the hot path of every banner's
        choice, and the unit of work cost more CPU than the statements themselves.
        """
        event_ids = self.s.execute(_insert_events(), [
            {"receipt_id": record.receipt_id, "subject": pseudonym, "purpose": record.purpose,
             "value": value, "status": record.status, "purpose_version": record.purpose_version,
             "method": record.method, "recorded_at": record.decided_at,
             "expires_at": record.expires_at}
            for value, record in entries
        ]).scalars().all()
        self.s.execute(_upsert_states(self.s.bind.dialect.name), [
            {"subject": pseudonym, "purpose": record.purpose, "status": record.status,
             "purpose_version": record.purpose_version, "decided_at": record.decided_at,
             "expires_at": record.expires_at, "receipt_id": record.receipt_id,
             "method": record.method, "event_id": event_id}
            for event_id, (_value, record) in zip(event_ids, entries, strict=True)
        ])

    def history(self, pseudonym: str) -> list[dict[str, Any]]:
        rows = self.s.execute(
            select(ConsentEvent.receipt_id, ConsentEvent.purpose, ConsentEvent.value,
                   ConsentEvent.status, ConsentEvent.method, ConsentEvent.recorded_at,
                   ConsentEvent.purpose_version, ConsentEvent.expires_at, Receipt.notice_id)
            .join(Receipt, Receipt.id == ConsentEvent.receipt_id)
            .where(ConsentEvent.subject == pseudonym)
            .order_by(ConsentEvent.id)
        )
        return [
            {
                "receipt_id": e.receipt_id,
                "purpose": e.purpose,
                "status": e.value,
                "result": e.status,
                "method": e.method,
                "recorded_at": e.recorded_at,
                "purpose_version": e.purpose_version,
                "expires_at": e.expires_at,
                "notice_id": e.notice_id,
            }
            for e in rows
        ]

    def granted_since(self, pseudonym: str, since: datetime, purposes: list[str]) -> bool:
        """Whether an event granted one of `purposes` after `since` (a new consent after an
        erasure)."""
        if not purposes:
            return False
        found = self.s.execute(
            select(ConsentEvent.id)
            .where(ConsentEvent.subject == pseudonym, ConsentEvent.value == "granted",
                   ConsentEvent.recorded_at > since, ConsentEvent.purpose.in_(purposes))
            .limit(1)
        ).first()
        return found is not None

    def notice(self, notice_id: str) -> Notice | None:
        return self.s.get(Notice, notice_id)

    def idempotency(self, actor: str, key: str) -> tuple[IdempotencyKey, Receipt] | None:
        row = self.s.get(IdempotencyKey, (actor, key))
        if row is None:
            return None
        return row, self.s.get_one(Receipt, row.receipt_id)
