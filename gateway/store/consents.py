"""Consent rows <-> consent domain values: notices, receipts, events, current state,
idempotency keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Date, cast, func, select
from sqlalchemy.orm import Session

from ..core.consent import PurposeRecord
from . import statements
from .db import dialect_name
from .errors import unique
from .models import ConsentEvent, IdempotencyKey, Notice, Receipt
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


def _day_column(dialect: str):
    """The UTC calendar day of a consent event, computed by the database."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", ConsentEvent.recorded_at), Date)
    return func.date(ConsentEvent.recorded_at)  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS...'


def _as_day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


class ConsentRepository:
    def __init__(self, session: Session | Connection):
        """A session in write transactions; a plain connection is enough for `records` and
        `history`."""
        self.s = session

    @property
    def _session(self) -> Session:
        """The ORM session that writes and entity reads need."""
        if not isinstance(self.s, Session):
            raise TypeError("writes and entity reads need a session, not a plain connection")
        return self.s

    def lock_subject(self, pseudonym: str, now: datetime) -> None:
        lock_subject(self._session, pseudonym, now)

    def records(self, pseudonym: str) -> dict[str, PurposeRecord]:
        """The subject's current state per purpose (a plain read: no entities kept)."""
        rows = self.s.execute(statements.consent_records(), {"subject": pseudonym})
        return {r.purpose: _as_record(r) for r in rows}

    def add_notice(self, values: dict[str, Any]) -> None:
        self._session.add(Notice(**values))

    def add_receipt(self, values: dict[str, Any]) -> None:
        self.s.execute(statements.insert_receipt(), values)

    def append(self, pseudonym: str, entries: list[tuple[str, PurposeRecord]]) -> None:
        """Append one event per (value, record) and move the current-state rows to them, in
        the caller's transaction: one INSERT for the events, one upsert for the states.

        Plain statements rather than ORM objects: this is the hot path of every banner's
        choice, and the unit of work cost more CPU than the statements themselves.
        """
        event_ids = self.s.execute(statements.insert_consent_events(), [
            {"receipt_id": record.receipt_id, "subject": pseudonym, "purpose": record.purpose,
             "value": value, "status": record.status, "purpose_version": record.purpose_version,
             "method": record.method, "recorded_at": record.decided_at,
             "expires_at": record.expires_at}
            for value, record in entries
        ]).scalars().all()
        self.s.execute(statements.upsert_consent_states(dialect_name(self.s)), [
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
        return self._session.get(Notice, notice_id)

    def notices_of(self, pseudonym: str) -> list[Notice]:
        """Every notice served to the subject, oldest first."""
        return list(self.s.scalars(select(Notice).where(Notice.subject == pseudonym)
                                   .order_by(Notice.served_at)).all())

    def idempotency(self, actor: str, key: str) -> tuple[IdempotencyKey, Receipt] | None:
        row = self._session.get(IdempotencyKey, (actor, key))
        if row is None:
            return None
        return row, self._session.get_one(Receipt, row.receipt_id)

    def remember_idempotency(self, actor: str, key: str, request_hash: str, receipt_id: str,
                             now: datetime) -> None:
        """Raises `DuplicateKey` when a concurrent request with the same key committed first."""
        with unique():
            self._session.add(IdempotencyKey(actor=actor, key=key, request_hash=request_hash,
                                      receipt_id=receipt_id, created_at=now))
            self._session.flush()

    def choices_per_day(self, since: datetime) -> list[tuple[str, str, str, int]]:
        """(UTC day as YYYY-MM-DD, purpose, value, count) of the events recorded since `since`."""
        day = _day_column(dialect_name(self.s)).label("day")
        rows = self.s.execute(
            select(day, ConsentEvent.purpose, ConsentEvent.value, func.count().label("n"))
            .where(ConsentEvent.recorded_at >= since)
            .group_by(day, ConsentEvent.purpose, ConsentEvent.value)
        ).all()
        return [(_as_day(r.day), r.purpose, r.value, int(r.n)) for r in rows]
