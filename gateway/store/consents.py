"""Consent rows <-> consent domain values."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select
from sqlalchemy.orm import Session

from ..core.consent import PurposeRecord
from .models import ConsentEvent, ConsentState, IdempotencyKey, Notice, Receipt
from .subjects import lock_subject

_STATE_COLUMNS = (ConsentState.purpose, ConsentState.status, ConsentState.purpose_version,
                  ConsentState.decided_at, ConsentState.expires_at, ConsentState.receipt_id,
                  ConsentState.method)


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
    return select(*_STATE_COLUMNS).where(ConsentState.subject == bindparam("subject"))


class ConsentRepository:
    def __init__(self, session: Session | Connection):
        """A session in write transactions; a plain connection is enough for `records` and
        `history`."""
        self.s = session
        self._states: dict[str, ConsentState] | None = None  # loaded by `load_states`

    def lock_subject(self, pseudonym: str, now: datetime) -> None:
        lock_subject(self.s, pseudonym, now)

    def records(self, pseudonym: str) -> dict[str, PurposeRecord]:
        """The subject's current state per purpose (a plain read: no entities kept)."""
        rows = self.s.execute(_records_of(), {"subject": pseudonym})
        return {r.purpose: _as_record(r) for r in rows}

    def load_states(self, pseudonym: str) -> dict[str, PurposeRecord]:
        """Like `records`, in a write transaction that goes on to `append`: the rows are kept,
        so that moving them needs no second read."""
        rows = self.s.scalars(select(ConsentState).where(ConsentState.subject == pseudonym)).all()
        self._states = {r.purpose: r for r in rows}
        return {r.purpose: _as_record(r) for r in rows}

    def add_receipt(self, receipt: Receipt) -> None:
        self.s.add(receipt)
        self.s.flush()

    def append(self, pseudonym: str, entries: list[tuple[str, PurposeRecord]]) -> None:
        """Append one event per (value, record) and move the current-state rows to them, in
        the same transaction: one INSERT for the events, then the state rows."""
        if self._states is None:
            self.load_states(pseudonym)
        assert self._states is not None
        events = [
            ConsentEvent(
                receipt_id=record.receipt_id,
                subject=pseudonym,
                purpose=record.purpose,
                value=value,
                status=record.status,
                purpose_version=record.purpose_version,
                method=record.method,
                recorded_at=record.decided_at,
                expires_at=record.expires_at,
            )
            for value, record in entries
        ]
        self.s.add_all(events)
        self.s.flush()
        for event, (_value, record) in zip(events, entries, strict=True):
            state = self._states.get(record.purpose)
            if state is None:
                state = ConsentState(subject=pseudonym, purpose=record.purpose)
                self.s.add(state)
                self._states[record.purpose] = state
            state.status = record.status
            state.purpose_version = record.purpose_version
            state.decided_at = record.decided_at
            state.expires_at = record.expires_at
            state.receipt_id = record.receipt_id
            state.method = record.method
            state.event_id = event.id

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

    def notice(self, notice_id: str) -> Notice | None:
        return self.s.get(Notice, notice_id)

    def idempotency(self, actor: str, key: str) -> tuple[IdempotencyKey, Receipt] | None:
        row = self.s.get(IdempotencyKey, (actor, key))
        if row is None:
            return None
        return row, self.s.get_one(Receipt, row.receipt_id)
